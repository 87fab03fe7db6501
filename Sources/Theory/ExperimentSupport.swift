// Running one theory experiment: read its YAML config, open the HDF5 result (provenance in the root
// attributes), let the experiment write datasets and figures, then write the claims and verdicts (computed
// by the experiment from its measurements) into the HDF5 file and a Markdown fragment next to it.
// Output names: <out>.h5, <out-without-.h5>[-suffix].svg, <out-without-.h5>.md.
import Dispatch
import Foundation
import Report
import Storage
import Yams

/// What an experiment hands back: its report section.
public struct Fragment {
    public var title: String
    /// One paragraph: the setting, including reconstruction choices and why.
    public var setting: String
    public var claims: [Claim]
    /// Further Markdown (tables, notes) after the claims table.
    public var body: String
    public init(title: String, setting: String, claims: [Claim], body: String) {
        self.title = title
        self.setting = setting
        self.claims = claims
        self.body = body
    }
}

public final class ExperimentContext {
    public let name: String
    public let configPath: String
    public let outPath: String
    public let threads: Int
    public let writer: H5Writer
    public private(set) var figures: [String] = []

    init(name: String, configPath: String, outPath: String, threads: Int, writer: H5Writer) {
        self.name = name
        self.configPath = configPath
        self.outPath = outPath
        self.threads = threads
        self.writer = writer
    }

    var stem: String { outPath.hasSuffix(".h5") ? String(outPath.dropLast(3)) : outPath }
    public var markdownPath: String { stem + ".md" }

    /// Writes a figure next to the result file and remembers it for the report.
    public func save(_ figure: Figure, suffix: String = "") throws {
        let path = stem + (suffix.isEmpty ? "" : "-" + suffix) + ".svg"
        try figure.write(to: path)
        figures.append(path)
    }

    public func write(_ object: String, _ values: [Double], shape: [Int]? = nil) throws {
        try writer.write(object, values, shape: shape ?? [values.count])
    }

    public func write(_ object: String, _ values: [Int]) throws {
        try writer.write(object, values.map { Int64($0) }, shape: [values.count])
    }
}

/// Decodes a YAML config file into `T`, naming the file in any error.
public func loadConfig<T: Decodable>(_ type: T.Type, from path: String) throws -> T {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw ReportError("\(path): cannot read config file")
    }
    do {
        return try YAMLDecoder().decode(T.self, from: text)
    } catch {
        throw ReportError("\(path): invalid config: \(error)")
    }
}

/// The resolved config as canonical JSON (sorted keys), recorded in the provenance.
func canonicalJSON<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
}

/// Runs one experiment end to end; returns the wall time in seconds.
@discardableResult
func runExperiment<C: Codable>(
    name: String, configType: C.Type, configPath: String, outPath: String, threads: Int,
    extraInputs: [String] = [], body: (C, ExperimentContext) throws -> Fragment
) throws -> Double {
    let start = DispatchTime.now()
    let config = try loadConfig(C.self, from: configPath)
    let writer = try H5Writer(path: outPath)
    let json = canonicalJSON(config)
    try Provenance(
        stage: "theory " + name, configuration: "{\"config\":\(json),\"threads\":\(threads)}",
        inputs: [configPath] + extraInputs
    ).write(to: writer)
    let context = ExperimentContext(
        name: name, configPath: configPath, outPath: outPath, threads: threads, writer: writer)
    let fragment: Fragment
    do {
        fragment = try body(config, context)
    } catch {
        writer.discard()
        throw error
    }
    try writeClaims(fragment.claims, to: writer)
    try writer.commit()
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9

    var md = "### \(fragment.title)\n\n"
    md += "`ste theory \(name) --config \(configPath)` → `\(outPath)`; wall time \(String(format: "%.1f", seconds)) s "
    md += "(\(threads) thread\(threads == 1 ? "" : "s"), this machine).\n\n"
    md += fragment.setting + "\n\n"
    md += claimsTable(fragment.claims) + "\n"
    if !fragment.body.isEmpty { md += fragment.body + "\n" }
    for path in context.figures {
        let file = URL(fileURLWithPath: path).lastPathComponent
        md += "![\(file)](\(file))\n\n"  // the figure sits next to the fragment and REPORT-theory.md
    }
    do {
        try md.write(toFile: context.markdownPath, atomically: true, encoding: .utf8)
    } catch {
        throw ReportError("cannot write \(context.markdownPath): \(error)")
    }
    return seconds
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
