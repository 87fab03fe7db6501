// `ste plan --slurm`: the grid as Slurm job arrays. Per net, the pretrains are one array, the Table 1
// cells a second (afterok on the pretrains), the repel runs (Fig. 2, Appendix C) a third (afterok on exactly the cell tasks
// they start from); a report job (afterany on every array) writes the report and the diff. Each array
// task picks its run id from a manifest line by SLURM_ARRAY_TASK_ID and runs the same Make target a
// local run would (`make <root>/<folder>/<id>/eval.h5`), so a cluster run and a local rerun agree.
// Runs whose eval.h5 is up to date (by Make's own rule: no prerequisite newer) are not submitted again.
import Experiments
import Foundation
import NN
import Storage

/// Make's view of a run's files: is its checkpoint / eval.h5 up to date? Mirrors the rules `ste plan`
/// writes: checkpoint.h5 ← stamp, data, parent checkpoint; eval.h5 ← checkpoint.h5.
public struct RunFiles {
    public let config: ExperimentConfig
    public let profile: String
    public var root: String { config.resultsRoot(profile: profile) }

    public init(config: ExperimentConfig, profile: String) {
        self.config = config
        self.profile = profile
    }

    public func directory(_ id: RunID) -> String { config.runFolder(id, profile: profile) }

    /// Modification time in nanoseconds, nil when the file is missing.
    public static func mtime(_ path: String) -> Int64? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
    }

    public func checkpointUpToDate(_ id: RunID) -> Bool {
        guard let ck = Self.mtime("\(directory(id))/checkpoint.h5") else { return false }
        guard let stamp = Self.mtime("\(config.runRoot(id, profile: profile))/stamps/\(id).json"), stamp <= ck else { return false }
        if let net = config.nets[id.net] {
            guard let data = Self.mtime(net.data), data <= ck else { return false }
        }
        if let parent = id.parent {
            guard checkpointUpToDate(parent), let p = Self.mtime("\(directory(parent))/checkpoint.h5"), p <= ck
            else { return false }
        }
        return true
    }

    /// True when `make <dir>/eval.h5` would do nothing (a pretrain: its checkpoint; it has no eval.h5). A profile
    /// with `resume_from_committed` decides by content, as its plan does: files that record the run's configuration.
    public func complete(_ id: RunID) -> Bool {
        if config.profiles[profile]?.resumeFromCommitted == true, let run = try? config.runConfig(id, profile: profile) {
            let plan = Plan(config: config, profile: profile)
            return plan.isCurrent("\(directory(id))/\(id.kind == .pretrain ? "checkpoint" : "eval").h5", run)
        }
        if id.kind == .pretrain { return checkpointUpToDate(id) }
        guard let ev = Self.mtime("\(directory(id))/eval.h5"), let ck = Self.mtime("\(directory(id))/checkpoint.h5"),
            ck <= ev
        else { return false }
        return checkpointUpToDate(id)
    }

    /// A run with result files that are no longer up to date (its settings, data or parent changed since).
    public func stale(_ id: RunID) -> Bool {
        !complete(id) && (Self.mtime("\(directory(id))/checkpoint.h5") != nil || Self.mtime("\(directory(id))/eval.h5") != nil)
    }
}

public struct SlurmPlan {
    public enum Stage: String, Sendable { case pretrain, cells, repel, report }

    /// What a job waits for: "afterok" / "afterany" on whole arrays (task nil) or single array tasks.
    public struct Dependency {
        public struct Target {
            public let key: String
            public let task: Int?
        }
        public let kind: String
        public let on: [Target]
    }

    /// One sbatch submission: an array of runs (or the report job).
    public struct Job {
        public let key: String
        public let stage: Stage
        public let net: String?
        public let runs: [RunID]
        public let dependency: Dependency?
        public var scriptName: String { "\(key).sbatch" }
        public var manifestName: String { "\(key).txt" }
    }

    public let config: ExperimentConfig
    public let profile: String
    public let settings: SlurmSettings
    /// Absolute path of the repository root: jobs `cd` here.
    public let workdir: String
    /// Folder name of this submission below <root>/slurm/.
    public let submission: String
    /// Variables every job passes to make (PROFILE=…, CONFIG=…, THREADS=…, EXPERIMENT=…).
    public let makeVars: [String]
    /// Files make must not rebuild inside a job (the binary, the plan): passed as `make -o`.
    public let oldFiles: [String]
    public private(set) var jobs: [Job] = []

    public var root: String { config.resultsRoot(profile: profile) }
    /// The submission folder, relative to the repository root.
    public var folder: String { "\(root)/slurm/\(submission)" }
    var absFolder: String { "\(workdir)/\(folder)" }

    /// `pending`: the runs to submit (ready and not complete), in the grid's order.
    public init(config: ExperimentConfig, profile: String, settings: SlurmSettings, workdir: String, submission: String,
        makeVars: [String], oldFiles: [String], pending: (pretrains: [RunID], cells: [RunID], repel: [RunID]))
    {
        self.config = config
        self.profile = profile
        self.settings = settings
        self.workdir = workdir
        self.submission = submission
        self.makeVars = makeVars
        self.oldFiles = oldFiles
        let nets = Set((pending.pretrains + pending.cells + pending.repel).map(\.net)).sorted {
            (netOrder($0), $0) < (netOrder($1), $1)
        }
        var jobs: [Job] = []
        for net in nets {
            let pre = pending.pretrains.filter { $0.net == net }
            let cells = pending.cells.filter { $0.net == net }
            let repel = pending.repel.filter { $0.net == net }
            if !pre.isEmpty {
                jobs.append(Job(key: "pretrain-\(net)", stage: .pretrain, net: net, runs: pre, dependency: nil))
            }
            if !cells.isEmpty {
                jobs.append(Job(key: "cells-\(net)", stage: .cells, net: net, runs: cells,
                    dependency: pre.isEmpty ? nil : Dependency(kind: "afterok", on: [.init(key: "pretrain-\(net)", task: nil)])))
            }
            if !repel.isEmpty {
                // Each repel run starts from one cell: wait for exactly those cell tasks.
                let parents = Set(repel.compactMap(\.parent))
                let waits = cells.indices.filter { parents.contains(cells[$0]) }.map {
                    Dependency.Target(key: "cells-\(net)", task: $0)
                }
                jobs.append(Job(key: "repel-\(net)", stage: .repel, net: net, runs: repel,
                    dependency: waits.isEmpty ? nil : Dependency(kind: "afterok", on: waits)))
            }
        }
        let arrays = jobs.map { Dependency.Target(key: $0.key, task: nil) }
        jobs.append(Job(key: "report", stage: .report, net: nil, runs: [],
            dependency: arrays.isEmpty ? nil : Dependency(kind: "afterany", on: arrays)))
        self.jobs = jobs
    }

    /// Folder of a stage's runs below the results root.
    func runFolder(_ stage: Stage) -> String {
        switch stage {
        case .pretrain: return "pretrain"
        case .cells: return "runs"
        case .repel: return "repel"
        case .report: return ""
        }
    }

    var makeCall: String {
        (["make", "--no-print-directory"] + oldFiles.flatMap { ["-o", shellQuote($0)] }).joined(separator: " ")
    }
    var makeVarArgs: String { makeVars.map(shellQuote).joined(separator: " ") }

    func header(_ job: Job) -> [String] {
        var lines = ["#!/bin/bash"]
        let what = job.stage == .report ? "report + diff of profile \(profile)"
            : "\(job.runs.count) \(["pretrain": "float pretrain", "cells": "Table 1 cell", "repel": "repel (Fig. 2 / Appendix C)"][job.stage.rawValue]!) "
                + "run\(job.runs.count == 1 ? "" : "s") of \(job.net!) (profile \(profile))"
        lines.append("# \(job.key): \(what); submission \(submission), written by `ste plan --slurm`.")
        if job.stage != .report {
            lines.append("# One array task per line of \(job.manifestName); each runs the Make target a local run would.")
        }
        lines.append("#SBATCH --job-name=ste-\(profile)-\(job.key)")
        if job.stage != .report {
            let cap = settings.maxConcurrent.map { "%\($0)" } ?? ""
            lines.append("#SBATCH --array=0-\(job.runs.count - 1)\(cap)")
            lines.append("#SBATCH --time=\(settings.timeLimit(net: job.net!))")
            lines.append("#SBATCH --output=\(absFolder)/logs/\(job.key)-%A_%a.out")
            // SIGTERM to the batch shell before the time limit; the script passes it on (see below).
            lines.append("#SBATCH --signal=B:TERM@\(Self.stopGraceSeconds)")
        } else {
            lines.append("#SBATCH --time=\(settings.reportTime)")
            lines.append("#SBATCH --output=\(absFolder)/logs/report-%j.out")
        }
        lines.append("#SBATCH --cpus-per-task=\(settings.cpusPerTask)")
        lines.append("#SBATCH --mem=\(settings.mem)")
        if settings.gpusPerTask > 0 && job.stage != .report { lines.append("#SBATCH --gres=gpu:\(settings.gpusPerTask)") }
        if let p = settings.partition { lines.append("#SBATCH --partition=\(p)") }
        if let a = settings.account { lines.append("#SBATCH --account=\(a)") }
        if job.dependency?.kind == "afterok" { lines.append("#SBATCH --kill-on-invalid-dep=yes") }
        lines += settings.extraSbatch.map(settings.sbatchLine)
        lines += ["", "cd \(shellQuote(workdir)) || exit 1"]
        if !settings.preamble.isEmpty { lines += ["# preamble (slurm.yaml / --preamble)", settings.preamble] }
        lines += [
            "# Shared filesystems (NFS, Lustre, GPFS) do not support HDF5's file locks; every file has one writer.",
            "export HDF5_USE_FILE_LOCKING=FALSE",
            "# The submitting make's flags (jobserver descriptors) mean nothing here.",
            "unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES",
        ]
        if settings.gpusPerTask > 0 && job.stage != .report {
            lines += ["# A GPU per task (gpus_per_task): the runs train on the CUDA engine.", "export STE_DEVICE=cuda"]
        }
        return lines
    }

    /// Seconds before the time limit at which a task is asked to stop (one LeNet-5 epoch or one ResNet-20 /
    /// VGG-11 step, plus a checkpoint write, fit easily).
    public static let stopGraceSeconds = 120

    /// The batch script of one job.
    public func script(_ job: Job) -> String {
        var lines = header(job)
        if job.stage == .report {
            lines += [
                "# afterany: runs when every array has ended, failed tasks included; the status table shows them.",
                "\(makeCall) slurm-report \(makeVarArgs)",
            ]
            return lines.joined(separator: "\n") + "\n"
        }
        let manifest = "\(absFolder)/\(job.manifestName)"
        let target = "\(root)/\(runFolder(job.stage))/$RUN/eval.h5"
        lines += [
            "RUN=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" \(shellQuote(manifest)))",
            "[ -n \"$RUN\" ] || { echo \"no run id on line $((SLURM_ARRAY_TASK_ID + 1)) of \(manifest)\" >&2; exit 2; }",
            "echo \"task $SLURM_ARRAY_TASK_ID: $RUN on $(hostname -s)\"",
            "# Slurm sends SIGTERM to this shell \(Self.stopGraceSeconds) s before the time limit (--signal=B:TERM@\(Self.stopGraceSeconds)); make",
            "# passes it to ste, which stops after the step in progress and exits 143: the task shows as interrupted",
            "# and a resubmission resumes it.",
            "\(makeCall) \"\(target)\" \(makeVarArgs) &",
            "child=$!",
            "trap 'kill -TERM $child 2>/dev/null' TERM",
            "wait $child; rc=$?",
            "while kill -0 $child 2>/dev/null; do wait $child; rc=$?; done",
            "# The exit status outlives Slurm's job records (read by `ste status`).",
            "EXIT=\(shellQuote(absFolder + "/exit"))",
            "mkdir -p \"$EXIT\" && echo $rc > \"$EXIT/.$RUN.$SLURM_JOB_ID\" && mv -f \"$EXIT/.$RUN.$SLURM_JOB_ID\" \"$EXIT/$RUN\"",
            "exit $rc",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// Manifest of an array job: one run id per line, line i+1 = task i.
    public func manifest(_ job: Job) -> String { job.runs.map { "\($0)\n" }.joined() }

    static func variable(_ key: String) -> String { "J_" + key.replacingOccurrences(of: "-", with: "_") }

    /// The script that submits the jobs in order and records their ids in jobs.txt.
    public func submitScript() -> String {
        var lines = [
            "#!/bin/bash",
            "# Submits \(folder) in dependency order (written by `ste plan --slurm`). Job ids go to jobs.txt,",
            "# which `ste status` reads together with squeue/scontrol and the run folders.",
            "set -euo pipefail",
            "shopt -s inherit_errexit",
            "cd \(shellQuote(workdir))",
            "D=\(shellQuote(absFolder))",
            ": > \"$D/jobs.txt\"",
            "trap 'echo \"sbatch failed: cancelling the jobs of this submission already queued\" >&2; "
                + "[ -s \"$D/jobs.txt\" ] && scancel $(cut -d\" \" -f2 \"$D/jobs.txt\") || true' ERR",
            "submit() { local key=$1 id; shift; id=$(sbatch --parsable \"$@\"); id=${id%%;*}; echo \"$key $id\" >> \"$D/jobs.txt\"; echo \"$id\"; }",
        ]
        for job in jobs {
            var args = ""
            if let dep = job.dependency {
                let targets = dep.on.map { "${\(Self.variable($0.key))}" + ($0.task.map { "_\($0)" } ?? "") }
                args = "--dependency=\(dep.kind):" + targets.joined(separator: ":") + " "
            }
            lines.append("\(Self.variable(job.key))=$(submit \(job.key) \(args)\"$D/\(job.scriptName)\")")
        }
        let summary = jobs.map { job in
            "\(job.key)=${\(Self.variable(job.key))}" + (job.stage == .report ? "" : "[\(job.runs.count)]")
        }
        lines.append("echo \"submitted \(submission): \(summary.joined(separator: " "))\"")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Everything `--dry-run` prints: each file of the submission with its path.
    public func dryRunText() -> String {
        var out = "# Dry run: the files `ste plan --slurm` would write to \(folder)/ and submit with submit.sh.\n"
        for job in jobs {
            if job.stage != .report { out += "\n# ==> \(folder)/\(job.manifestName) <==\n" + manifest(job) }
            out += "\n# ==> \(folder)/\(job.scriptName) <==\n" + script(job)
        }
        out += "\n# ==> \(folder)/submit.sh <==\n" + submitScript()
        return out
    }

    /// Writes the manifests, scripts and submit.sh (and creates logs/ and exit/).
    public func write() throws {
        for sub in ["logs", "exit"] {
            try makeDirectories("\(folder)/\(sub)")
        }
        for job in jobs {
            if job.stage != .report { try writeAtomically(manifest(job), to: "\(folder)/\(job.manifestName)") }
            try writeAtomically(script(job), to: "\(folder)/\(job.scriptName)")
        }
        try writeAtomically(submitScript(), to: "\(folder)/submit.sh")
    }
}

/// Single-quotes a word for bash when it holds anything but safe characters.
public func shellQuote(_ s: String) -> String {
    if !s.isEmpty, s.allSatisfy({ $0.isLetter || $0.isNumber || "/._-=:,+%@".contains($0) }) { return s }
    return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// The full path of an executable on the PATH, nil when there is none.
public func findExecutable(_ name: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let p = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return nil
}

/// Runs a program; returns its exit status and standard output (standard error is passed through).
public func runProgram(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}
