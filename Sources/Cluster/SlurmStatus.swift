// `ste status`: the state of every run of the grid, from the run folders (eval.h5, checkpoint.h5's
// `diverged` attribute, resume.h5), the submission folders `ste plan --slurm` wrote (manifests, job ids,
// task exit files) and, when Slurm's commands are on the PATH, squeue and scontrol. No database.
import Experiments
import Foundation
import Storage

public struct RunStatus: Equatable, Sendable {
    public enum State: String, Sendable, CaseIterable {
        case done, diverged, running, pending, failed, cancelled, interrupted, stale
        case notRun = "not run"
    }
    public let id: RunID
    public let state: State
    public let detail: String
}

/// What Slurm says about one array task (or a whole pending array).
public struct QueueEntry: Equatable, Sendable {
    public let state: String
    public let reason: String
    public let exitCode: String?
}

/// The queue as Slurm reports it, keyed "<array job id>_<task index>".
public struct SlurmQueue {
    public var tasks: [String: QueueEntry] = [:]

    public init() {}

    /// Queries squeue (queued and running tasks) and scontrol (recently finished ones) for these array jobs.
    public static func query(jobIDs: [String]) -> SlurmQueue? {
        guard !jobIDs.isEmpty, let squeue = findExecutable("squeue") else { return nil }
        var q = SlurmQueue()
        if let scontrol = findExecutable("scontrol") {
            for id in jobIDs {
                guard let r = try? runProgram(scontrol, ["-o", "show", "job", id]), r.status == 0 else { continue }
                q.parseScontrol(r.output)
            }
        }
        if let r = try? runProgram(squeue, ["-h", "-r", "-o", "%i|%T|%r", "-j", jobIDs.joined(separator: ",")]),
            r.status == 0
        {
            q.parseSqueue(r.output)
        }
        return q
    }

    /// Lines "12_3|RUNNING|None" (squeue -r -o "%i|%T|%r").
    public mutating func parseSqueue(_ text: String) {
        for line in text.split(separator: "\n") {
            let f = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 3, f[0].contains("_") else { continue }
            tasks[f[0]] = QueueEntry(state: f[1], reason: f[2], exitCode: nil)
        }
    }

    /// `scontrol -o show job <array id>`: one line per task with ArrayJobId=, ArrayTaskId=, JobState=, Reason=, ExitCode=.
    public mutating func parseScontrol(_ text: String) {
        for line in text.split(separator: "\n") {
            var fields: [String: String] = [:]
            for word in line.split(separator: " ") {
                guard let eq = word.firstIndex(of: "=") else { continue }
                fields[String(word[..<eq])] = String(word[word.index(after: eq)...])
            }
            guard let job = fields["ArrayJobId"], let spec = fields["ArrayTaskId"], let state = fields["JobState"]
            else { continue }
            // A task that ran has its own record ("3"); tasks that never started share one ("0-5%4", "0%4", "1,3").
            for task in Self.taskIndexes(spec) where tasks["\(job)_\(task)"] == nil || Int(spec) != nil {
                tasks["\(job)_\(task)"] = QueueEntry(state: state, reason: fields["Reason"] ?? "", exitCode: fields["ExitCode"])
            }
        }
    }

    /// "0-5%4" → 0...5, "1,3" → [1, 3], "2-8:2" → [2, 4, 6, 8].
    static func taskIndexes(_ spec: String) -> [Int] {
        let list = spec.split(separator: "%")[0]
        return list.split(separator: ",").flatMap { part -> [Int] in
            let stepParts = part.split(separator: ":")
            let step = stepParts.count == 2 ? Int(stepParts[1]) ?? 1 : 1
            let bounds = stepParts[0].split(separator: "-").compactMap { Int($0) }
            if bounds.count == 1 { return bounds }
            guard bounds.count == 2, bounds[0] <= bounds[1], step > 0 else { return [] }
            return Array(stride(from: bounds[0], through: bounds[1], by: step))
        }
    }
}

/// Where a run was last submitted: submission folder, job key, array job id, task index.
public struct Submission: Equatable, Sendable {
    public let folder: String
    public let key: String
    public let jobID: String
    public let task: Int
}

public struct GridStatus {
    public let files: RunFiles

    public init(config: ExperimentConfig, profile: String) { files = RunFiles(config: config, profile: profile) }

    /// The latest submission of each run, from <root>/slurm/<submission>/{jobs.txt, <key>.txt}.
    public func submissions() -> [RunID: Submission] {
        let base = "\(files.root)/slurm"
        let folders = ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []).sorted()
        var out: [RunID: Submission] = [:]
        for name in folders {
            let folder = "\(base)/\(name)"
            guard let jobs = try? String(contentsOfFile: "\(folder)/jobs.txt", encoding: .utf8) else { continue }
            for line in jobs.split(separator: "\n") {
                let f = line.split(separator: " ").map(String.init)
                guard f.count == 2,
                    let manifest = try? String(contentsOfFile: "\(folder)/\(f[0]).txt", encoding: .utf8)
                else { continue }
                for (i, run) in manifest.split(separator: "\n").enumerated() {
                    if let id = RunID(String(run)) { out[id] = Submission(folder: folder, key: f[0], jobID: f[1], task: i) }
                }
            }
        }
        return out
    }

    /// Status of every run of the grid; `queue` nil when Slurm is not reachable.
    public func collect(queue: SlurmQueue?) -> [RunStatus] {
        let all = files.config.allRuns()
        let subs = submissions()
        return (all.pretrains + all.cells + all.repel).map { status($0, subs[$0], queue) }
    }

    /// Array job ids of every recorded submission (to query Slurm about).
    public func jobIDs() -> [String] { Array(Set(submissions().values.map(\.jobID))).sorted() }

    func status(_ id: RunID, _ sub: Submission?, _ queue: SlurmQueue?) -> RunStatus {
        let dir = files.directory(id)
        if files.complete(id) {
            let diverged = (try? H5Reader(path: "\(dir)/checkpoint.h5").attribute("diverged").intValue) ?? 0
            if diverged != 0 {
                let epoch = (try? H5Reader(path: "\(dir)/checkpoint.h5").attribute("diverged_epoch").intValue) ?? 0
                return RunStatus(id: id, state: .diverged, detail: "loss not finite in epoch \(epoch)")
            }
            return RunStatus(id: id, state: .done, detail: "")
        }
        let resume = FileManager.default.fileExists(atPath: "\(dir)/resume.h5")
        let resumeEpoch = resume ? ((try? H5Reader(path: "\(dir)/resume.h5").attribute("epoch").intValue) ?? nil) : nil
        let progress = resumeEpoch.map { "epoch \($0) saved" }
        if let sub {
            let task = "\(sub.jobID)_\(sub.task)"
            let log = "\(sub.folder)/logs/\(sub.key)-\(task).out"
            if let e = queue?.tasks[task] {
                switch e.state {
                case "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "STOPPED":
                    return RunStatus(id: id, state: .running, detail: ["job \(task)", progress].compactMap { $0 }.joined(separator: ", "))
                case "PENDING", "REQUEUED", "RESV_DEL_HOLD", "REQUEUE_HOLD", "REQUEUE_FED":
                    return RunStatus(id: id, state: .pending, detail: "job \(task) (\(e.reason))")
                default: break
                }
            }
            if let text = try? String(contentsOfFile: "\(sub.folder)/exit/\(id)", encoding: .utf8),
                let rc = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), rc != 0
            {
                // 143 / 130: stopped by SIGTERM (the time limit's --signal) or SIGINT after saving its state.
                if rc == 143 || rc == 130 {
                    return RunStatus(id: id, state: .interrupted, detail: "\(progress ?? "no epoch saved"); job \(task) stopped by "
                        + (rc == 143 ? "SIGTERM (time limit)" : "SIGINT") + "; resubmit to resume")
                }
                return RunStatus(id: id, state: .failed, detail: "exit \(rc), job \(task), log \(log)")
            }
            if let e = queue?.tasks[task] {
                switch e.state {
                case "CANCELLED":
                    return RunStatus(id: id, state: .cancelled, detail: "job \(task) (\(e.reason))")
                case "COMPLETED":
                    return RunStatus(id: id, state: .failed, detail: "job \(task) completed but eval.h5 is not up to date")
                default:
                    return RunStatus(id: id, state: .failed, detail: "job \(task) \(e.state) (\(e.reason)), log \(log)")
                }
            }
            if resume { return RunStatus(id: id, state: .interrupted, detail: "\(progress ?? "resume.h5"); job \(task) ended; resubmit to resume") }
            if files.stale(id) {
                return RunStatus(id: id, state: .stale, detail: "job \(task) ran before its settings, data or parent changed; make run RUN=\(id) reruns it")
            }
            return RunStatus(id: id, state: .notRun, detail: "job \(task) is no longer known to Slurm")
        }
        if resume { return RunStatus(id: id, state: .interrupted, detail: (progress ?? "resume.h5") + "; rerun to resume") }
        if files.stale(id) {
            return RunStatus(id: id, state: .stale, detail: "its files predate its settings, data or parent; make run RUN=\(id) reruns it")
        }
        return RunStatus(id: id, state: .notRun, detail: "")
    }

    /// The status table and a summary line.
    public static func format(_ rows: [RunStatus]) -> String {
        let width = max(4, rows.map { "\($0.id)".count }.max() ?? 0)
        func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
        var out = pad("run", width) + "  " + pad("kind", 8) + "  " + pad("state", 11) + "  detail\n"
        for r in rows {
            out += pad("\(r.id)", width) + "  " + pad(r.id.kind.rawValue, 8) + "  " + pad(r.state.rawValue, 11) + "  "
                + r.detail + "\n"
        }
        let counts = RunStatus.State.allCases.compactMap { s -> String? in
            let n = rows.filter { $0.state == s }.count
            return n == 0 ? nil : "\(n) \(s.rawValue)"
        }
        out = out.split(separator: "\n").map { String($0.reversed().drop(while: { $0 == " " }).reversed()) }.joined(separator: "\n") + "\n"
        return out + "\(rows.count) runs: " + counts.joined(separator: ", ") + "\n"
    }
}
