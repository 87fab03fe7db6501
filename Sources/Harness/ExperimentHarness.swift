// The one harness of the theory and Schoenbauer experiments: read the YAML config (errors name the file), open the
// HDF5 result with its provenance, let the experiment write datasets and figures, then store its claims (outcomes
// computed from the measurements) and wall time in the HDF5 file and write its Markdown section next to it:
// <out>.h5, <stem>[-suffix].svg (+ PNG), <stem>.md. A failure leaves no result file behind.
import Dispatch
import Foundation
import Storage
import Yams

/// What an experiment hands back: its report section.
public struct ExperimentSection {
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

/// What an experiment writes through while it runs.
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

    /// Writes a figure (SVG, and PNG when a converter is installed) next to the result file.
    public func save(_ figure: Figure, suffix: String = "") throws {
        let path = stem + (suffix.isEmpty ? "" : "-" + suffix) + ".svg"
        try figure.write(to: path)
        try writePNG(ofSVG: path)
        figures.append(path)
    }

    public func write(_ object: String, _ values: [Double], shape: [Int]? = nil) throws {
        try writer.write(object, values, shape: shape ?? [values.count])
    }

    public func write(_ object: String, _ values: [Int]) throws {
        try writer.write(object, values.map { Int64($0) }, shape: [values.count])
    }
}

/// Decodes a YAML config file into `T` strictly (StrictYAML.swift), naming the file in any error.
public func loadExperimentConfig<T: Codable>(_ type: T.Type, from path: String) throws -> T {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw ReportError("\(path): " + (FileManager.default.fileExists(atPath: path) ? "cannot read the config file" : "no such file"))
    }
    return try decodeStrictYAML(T.self, from: text, file: path)
}

/// Runs one experiment end to end; returns its wall time in seconds. `stage` is the provenance stage (e.g.
/// "theory yin-cgd"), `command` the command line shown at the top of its section.
@discardableResult
public func runExperiment<C: Codable>(
    name: String, stage: String, command: String, configType: C.Type, configPath: String, outPath: String,
    threads: Int, extraInputs: (C) -> [String] = { _ in [] }, validate: (C) throws -> Void = { _ in },
    body: (C, ExperimentContext) throws -> ExperimentSection
) throws -> Double {
    let start = DispatchTime.now()
    let config = try loadExperimentConfig(C.self, from: configPath)
    do { try validate(config) } catch { throw ReportError("\(configPath): \(error)") }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let json = (try? encoder.encode(config)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    let writer = try H5Writer(path: outPath)
    let context = ExperimentContext(name: name, configPath: configPath, outPath: outPath, threads: threads, writer: writer)
    let section: ExperimentSection
    do {
        try Provenance(stage: stage, configuration: "{\"config\":\(json),\"threads\":\(threads)}",
            inputs: [configPath] + extraInputs(config)).write(to: writer)
        section = try body(config, context)
        try writeClaims(section.claims, to: writer)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        try writer.setAttribute("wall_seconds", .double(seconds), on: "/")
        try writer.commit()
    } catch {
        writer.discard()
        throw error
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9

    var md = "### \(section.title)\n\n"
    md += "`\(command)` → `\(outPath)`; wall time \(String(format: "%.1f", seconds)) s (\(threads) thread"
        + "\(threads == 1 ? "" : "s"), \(machineDescription()), code version `\(codeVersion().prefix(12))`).\n\n"
    md += section.setting + "\n\n"
    md += claimsTable(section.claims) + "\n"
    if !section.body.isEmpty { md += section.body + "\n" }
    for path in context.figures {
        let file = URL(fileURLWithPath: path).lastPathComponent
        md += "![\(file)](\(file))\n\n"  // the figure sits next to the section
    }
    do {
        try md.write(toFile: context.markdownPath, atomically: true, encoding: .utf8)
    } catch {
        throw ReportError("cannot write \(context.markdownPath): \(error)")
    }
    return seconds
}
