// Running one Schoenbauer experiment: read its YAML config, open the HDF5 result (provenance in the root
// attributes), let the experiment write datasets and figures, then store its claims (verdicts computed from the
// measurements) in the HDF5 file and write a Markdown fragment next to it: <out>.h5, <stem>[-suffix].svg, <stem>.md.
import Dispatch
import Foundation
import Report
import Storage
import Yams

public struct SchoenbauerFragment {
    public var title: String
    public var setting: String
    public var claims: [Claim]
    public var body: String
}

public final class SchoenbauerContext {
    public let outPath: String
    public let writer: H5Writer
    public private(set) var figures: [String] = []

    init(outPath: String, writer: H5Writer) {
        self.outPath = outPath
        self.writer = writer
    }

    var stem: String { outPath.hasSuffix(".h5") ? String(outPath.dropLast(3)) : outPath }

    public func save(_ figure: Figure, suffix: String) throws {
        let path = stem + "-" + suffix + ".svg"
        try figure.write(to: path)
        figures.append(path)
    }

    public func write(_ object: String, _ values: [Double]) throws {
        try writer.write(object, values, shape: [values.count])
    }
}

public struct SchoenbauerExperimentEntry: Sendable {
    public let name: String
    public let run: @Sendable (_ config: String, _ out: String, _ threads: Int) throws -> Double
}

public let schoenbauerExperiments: [SchoenbauerExperimentEntry] = [
    .init(name: "simulation", run: runSchoenbauerSimulation),
    .init(name: "mnist", run: runSchoenbauerMNIST),
]

func loadSchoenbauerConfig<T: Decodable>(_ type: T.Type, from path: String) throws -> T {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw ReportError("\(path): cannot read config file")
    }
    do {
        return try YAMLDecoder().decode(T.self, from: text)
    } catch {
        throw ReportError("\(path): invalid config: \(error)")
    }
}

/// Runs one experiment end to end; returns the wall time in seconds (also written into the fragment).
func runSchoenbauerExperiment<C: Codable>(
    name: String, configType: C.Type, configPath: String, outPath: String, threads: Int,
    extraInputs: (C) -> [String] = { _ in [] }, validate: (C) throws -> Void,
    body: (C, SchoenbauerContext) throws -> SchoenbauerFragment
) throws -> Double {
    let start = DispatchTime.now()
    let config = try loadSchoenbauerConfig(C.self, from: configPath)
    do { try validate(config) } catch { throw ReportError("\(configPath): \(error)") }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let json = (try? encoder.encode(config)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    let writer = try H5Writer(path: outPath)
    let fragment: SchoenbauerFragment
    let context = SchoenbauerContext(outPath: outPath, writer: writer)
    do {
        try Provenance(
            stage: "schoenbauer " + name, configuration: "{\"config\":\(json),\"threads\":\(threads)}",
            inputs: [configPath] + extraInputs(config)
        ).write(to: writer)
        fragment = try body(config, context)
        try writeClaims(fragment.claims, to: writer)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        try writer.setAttribute("wall_seconds", .double(seconds), on: "/")
        try writer.commit()
    } catch {
        writer.discard()
        throw error
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9

    var md = "### \(fragment.title)\n\n"
    md += "`ste schoenbauer \(name) --config \(configPath) --out \(outPath)`; wall time "
    md += "\(String(format: "%.1f", seconds)) s (\(threads) thread\(threads == 1 ? "" : "s"), release build, "
        + "\(machineDescription()), code version `\(codeVersion().prefix(12))`).\n\n"
    md += fragment.setting + "\n\n"
    md += claimsTable(fragment.claims) + "\n"
    if !fragment.body.isEmpty { md += fragment.body + "\n" }
    for path in context.figures {
        let file = URL(fileURLWithPath: path).lastPathComponent
        md += "![\(file)](\(file))\n\n"  // the figure sits next to the Markdown file
    }
    let mdPath = context.stem + ".md"
    do {
        try md.write(toFile: mdPath, atomically: true, encoding: .utf8)
    } catch {
        throw ReportError("cannot write \(mdPath): \(error)")
    }
    return seconds
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
