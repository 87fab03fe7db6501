// The Schoenbauer experiments on the shared harness (Harness/ExperimentHarness.swift: config, provenance, claims,
// result file and Markdown section), their registry, and a log-log slope they share.
import Dispatch
import Foundation
import Harness
import Storage

/// A Schoenbauer experiment's report section and context (the shared harness's types).
public typealias SchoenbauerFragment = ExperimentSection
public typealias SchoenbauerContext = ExperimentContext

public struct SchoenbauerExperimentEntry: Sendable {
    public let name: String
    public let run: @Sendable (_ config: String, _ out: String, _ threads: Int) throws -> Double
    /// Scores the claims again from result files' recorded measurements (one file, or the parts trained with
    /// `seeds`), nothing trained (nil: not offered).
    public var rescore: (@Sendable (_ config: String, _ out: String, _ from: [String], _ threads: Int) throws -> Double)? = nil
    /// Trains only some of the config's seeds: a part of the experiment (nil: not offered).
    public var runSeeds: (@Sendable (_ config: String, _ out: String, _ seeds: [UInt64], _ threads: Int) throws -> Double)? = nil
}

public let schoenbauerExperiments: [SchoenbauerExperimentEntry] = [
    .init(name: "simulation", run: runSchoenbauerSimulation),
    .init(name: "mnist", run: runSchoenbauerMNIST,
        rescore: { try runSchoenbauerMNIST(configPath: $0, outPath: $1, threads: $3, rescoreFrom: $2, seeds: nil) },
        runSeeds: { try runSchoenbauerMNIST(configPath: $0, outPath: $1, threads: $3, rescoreFrom: [], seeds: $2) }),
]

/// Runs one experiment through the shared harness (Harness/ExperimentHarness.swift); returns the wall time in seconds.
func runSchoenbauerExperiment<C: Codable>(
    name: String, configType: C.Type, configPath: String, outPath: String, threads: Int, commandSuffix: String = "",
    extraInputs: @escaping (C) -> [String] = { _ in [] }, validate: (C) throws -> Void,
    body: (C, SchoenbauerContext) throws -> SchoenbauerFragment
) throws -> Double {
    try runExperiment(name: name, stage: "schoenbauer " + name,
        command: "ste schoenbauer \(name) --config \(configPath) --out \(outPath)" + commandSuffix, configType: configType,
        configPath: configPath, outPath: outPath, threads: threads, extraInputs: extraInputs, validate: validate, body: body)
}

/// Least-squares slope of log y against log x (points with y ≤ 0 are skipped).
func logLogSlope(_ x: [Double], _ y: [Double]) -> Double {
    let pts = zip(x, y).filter { $0.0 > 0 && $0.1 > 0 }.map { (log($0.0), log($0.1)) }
    guard pts.count >= 2 else { return .nan }
    let mx = pts.map(\.0).reduce(0, +) / Double(pts.count), my = pts.map(\.1).reduce(0, +) / Double(pts.count)
    var sxy = 0.0, sxx = 0.0
    for (a, b) in pts { sxy += (a - mx) * (b - my); sxx += (a - mx) * (a - mx) }
    return sxx > 0 ? sxy / sxx : .nan
}
