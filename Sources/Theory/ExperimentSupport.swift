// The theory experiments on the shared harness (Harness/ExperimentHarness.swift: config, provenance, claims, result
// file and Markdown section), and small helpers they share: a deterministic parallel map and quantiles.
import Dispatch
import Foundation
import Harness
import Storage

/// A theory experiment's report section (the shared harness's type).
public typealias Fragment = ExperimentSection

/// Runs one theory experiment through the shared harness (Harness/ExperimentHarness.swift).
func runExperiment<C: Codable>(
    name: String, configType: C.Type, configPath: String, outPath: String, threads: Int,
    extraInputs: [String] = [], body: (C, ExperimentContext) throws -> Fragment
) throws {
    try runExperiment(name: name, stage: "theory " + name, command: "ste theory \(name) --config \(configPath)",
        configType: configType, configPath: configPath, outPath: outPath, threads: threads,
        extraInputs: { _ in extraInputs }, body: body)
}

/// Maps 0..<count on `threads` threads; results are stored by index, so the output does not depend on
/// scheduling.
public func parallelMap<T>(_ count: Int, threads: Int, _ body: (Int) -> T) -> [T] {
    var results = [T?](repeating: nil, count: count)
    let lock = NSLock()
    let workers = max(1, min(threads, count))
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
        var i = worker
        while i < count {
            let r = body(i)
            lock.lock()
            results[i] = r
            lock.unlock()
            i += workers
        }
    }
    return results.map { $0! }
}

/// Median and quantiles of a list.
func quantile(_ xs: [Double], _ q: Double) -> Double {
    let s = xs.filter { !$0.isNaN }.sorted()
    if s.isEmpty { return .nan }
    let pos = q * Double(s.count - 1)
    let lo = Int(pos.rounded(.down)), hi = min(lo + 1, s.count - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - Double(lo))
}
