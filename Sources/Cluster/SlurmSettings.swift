// Cluster settings for `ste plan --slurm` (experiments/slurm.yaml, overridden by command-line options):
// partition, account, per-net time limits, CPUs / memory / GPUs per task, the array concurrency cap
// (%N), extra #SBATCH lines and a shell preamble (module loads). Unknown keys and malformed values are
// rejected with the key and the file named, like the experiment grid.
import Experiments
import Foundation
import Storage
import Harness

public struct SlurmSettings: Equatable, Sendable {
    /// nil: the cluster's default partition / account.
    public var partition: String?
    public var account: String?
    /// Time limit of one run (train + eval) per net, Slurm syntax ("1-12:00:00", "90:00"); "default" for
    /// nets not listed.
    public var time: [String: String] = ["default": "04:00:00"]
    /// Time limit of the report + diff job.
    public var reportTime = "00:30:00"
    public var cpusPerTask = 2
    /// Memory per task (Slurm syntax: "8G", "4000M").
    public var mem = "8G"
    /// GPUs per task (0: no GPU request; for a later GPU backend).
    public var gpusPerTask = 0
    /// At most this many tasks of one array run at once (`--array=0-N%max`); nil: no cap.
    public var maxConcurrent: Int? = 16
    /// Extra lines, each becomes `#SBATCH <line>` (a leading "#SBATCH" is accepted and not doubled).
    public var extraSbatch: [String] = []
    /// Shell lines run before `make` in every job (module loads, virtual environments).
    public var preamble = ""

    public init() {}

    /// Time limit of one run of `net`.
    public func timeLimit(net: String) -> String { time[net] ?? time["default"] ?? "04:00:00" }

    /// Reads a settings file (the defaults above fill what it leaves out).
    public static func load(_ path: String) throws -> SlurmSettings {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigError(file: path, key: "", message: FileManager.default.fileExists(atPath: path) ? "cannot read the file (permissions, or not UTF-8 text)" : "no such file")
        }
        let root: Any?
        do { root = try loadStrictYAML(text, file: path) } catch let e as YAMLConfigError {
            throw ConfigError(file: path, key: e.keyPath, message: e.message)
        }
        var s = SlurmSettings()
        if root == nil { return s }
        let p = ConfigParser(file: path)
        let m = try p.map(root, "", allowed: ["partition", "account", "time", "report_time", "cpus_per_task", "mem",
            "gpus_per_task", "max_concurrent", "sbatch", "preamble"], required: [])
        func optionalString(_ key: String) throws -> String? {
            guard let v = m[key], !(v is NSNull) else { return nil }
            let s = try p.string(v, key)
            return s.isEmpty ? nil : s
        }
        s.partition = try optionalString("partition")
        s.account = try optionalString("account")
        if let t = m["time"] {
            guard let tm = t as? [String: Any] else { throw p.fail("time", "expected a mapping net → time limit") }
            s.time = [:]
            for (net, v) in tm { s.time[net] = try p.string(v, "time.\(net)") }
        }
        s.reportTime = try optionalString("report_time") ?? s.reportTime
        if let v = m["cpus_per_task"] { s.cpusPerTask = try p.int(v, "cpus_per_task") }
        s.mem = try optionalString("mem") ?? s.mem
        if let v = m["gpus_per_task"] { s.gpusPerTask = try p.int(v, "gpus_per_task", positive: false) }
        if let v = m["max_concurrent"] { s.maxConcurrent = v is NSNull ? nil : try p.int(v, "max_concurrent") }
        if let v = m["sbatch"], !(v is NSNull) {
            guard let l = v as? [Any] else { throw p.fail("sbatch", "expected a list of #SBATCH options") }
            s.extraSbatch = try l.enumerated().map { try p.string($1, "sbatch[\($0)]") }
        }
        s.preamble = try optionalString("preamble") ?? ""
        try s.validate(file: path)
        return s
    }

    /// Rejects values sbatch would reject, before anything is submitted.
    public func validate(file: String) throws {
        func fail(_ key: String, _ message: String) -> ConfigError { ConfigError(file: file, key: key, message: message) }
        let timePattern = #"^([0-9]+-)?[0-9]+(:[0-9]{1,2}){0,2}$"#
        for (net, t) in time where t.range(of: timePattern, options: .regularExpression) == nil {
            throw fail("time.\(net)", "'\(t)' is not a Slurm time limit (minutes, MM:SS, HH:MM:SS or D-HH:MM:SS)")
        }
        if reportTime.range(of: timePattern, options: .regularExpression) == nil {
            throw fail("report_time", "'\(reportTime)' is not a Slurm time limit")
        }
        if mem.range(of: #"^[0-9]+[KMGT]?$"#, options: .regularExpression) == nil {
            throw fail("mem", "'\(mem)' is not a Slurm memory size (e.g. 8G, 4000M)")
        }
        guard cpusPerTask >= 1 else { throw fail("cpus_per_task", "must be at least 1") }
        guard gpusPerTask >= 0 else { throw fail("gpus_per_task", "must not be negative") }
        if let n = maxConcurrent, n < 1 { throw fail("max_concurrent", "must be at least 1") }
        for (name, v) in [("partition", partition), ("account", account)] {
            if let v, v.range(of: #"^[A-Za-z0-9_.,-]+$"#, options: .regularExpression) == nil {
                throw fail(name, "'\(v)' contains characters Slurm names do not use")
            }
        }
        for (i, line) in extraSbatch.enumerated() where line.contains("\n") || !sbatchLine(line).hasPrefix("#SBATCH -") {
            throw fail("sbatch[\(i)]", "'\(line)' is not one sbatch option (e.g. --qos=normal)")
        }
    }

    /// `--qos=x` and `#SBATCH --qos=x` both become `#SBATCH --qos=x`.
    func sbatchLine(_ line: String) -> String {
        let t = line.trimmingCharacters(in: .whitespaces)
        return t.hasPrefix("#SBATCH") ? t : "#SBATCH \(t)"
    }
}
