// Slurm scale-out: the options of `ste plan --slurm` (write and submit the grid as job arrays) and
// `ste status` (a table of every run's state). The logic lives in Experiments (Slurm*.swift).
import ArgumentParser
import Cluster
import Datasets
import Experiments
import Report
import Foundation
import Storage

struct SlurmOptions: ParsableArguments {
    @Option(help: "Cluster settings (YAML); command-line options override it. A missing default file means defaults.")
    var slurmConfig = "experiments/slurm.yaml"
    @Option(help: "Slurm partition (default: the cluster's default).")
    var partition: String?
    @Option(help: "Slurm account to charge.")
    var account: String?
    @Option(help: "Time limit of one run per net, NET=LIMIT (repeatable), e.g. resnet20=1-00:00:00; a bare LIMIT sets the default.")
    var time: [String] = []
    @Option(help: "CPUs per array task.")
    var cpusPerTask: Int?
    @Option(help: "Memory per array task, e.g. 8G.")
    var mem: String?
    @Option(help: "GPUs per array task (--gres=gpu:N); 0 requests none.")
    var gpusPerTask: Int?
    @Option(help: "At most this many tasks of one array at once (--array=…%N).")
    var maxConcurrent: Int?
    @Option(parsing: .unconditionalSingleValue, help: "An extra #SBATCH option (repeatable), e.g. --sbatch --qos=long.")
    var sbatch: [String] = []
    @Option(help: "Shell lines run before make in every job, e.g. 'module load hdf5'.")
    var preamble: String?
    @Flag(help: "Print the job scripts and the submit script; write and submit nothing.")
    var dryRun = false
    @Option(help: "Variables every job passes to make (default: PROFILE, EXPERIMENT, CONFIG=release, THREADS).")
    var makeVars: String?
    @Option(help: "Files make must not rebuild inside a job, passed as make -o (default: the binary and the plan).")
    var oldFiles: String?

    func settings() throws -> SlurmSettings {
        var s = SlurmSettings()
        if FileManager.default.fileExists(atPath: slurmConfig) {
            s = try SlurmSettings.load(slurmConfig)
        } else if slurmConfig != "experiments/slurm.yaml" {
            throw SlurmError(description: "\(slurmConfig): the file does not exist")
        }
        if let partition { s.partition = partition.isEmpty ? nil : partition }
        if let account { s.account = account.isEmpty ? nil : account }
        for t in time {
            let parts = t.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { s.time[parts[0]] = parts[1] } else { s.time = ["default": t] }
        }
        if let cpusPerTask { s.cpusPerTask = cpusPerTask }
        if let mem { s.mem = mem }
        if let gpusPerTask { s.gpusPerTask = gpusPerTask }
        if let maxConcurrent { s.maxConcurrent = maxConcurrent }
        s.extraSbatch += sbatch
        if let preamble { s.preamble = preamble }
        try s.validate(file: "command line / \(slurmConfig)")
        return s
    }
}

struct SlurmError: Error, CustomStringConvertible {
    let description: String
}

/// `ste plan --slurm`: writes the submission folder and runs its submit.sh (or prints it all with --dry-run).
func submitSlurm(_ plan: Experiments.Plan, config: ExperimentConfig, profile: String, options: SlurmOptions,
    makeFile: String?) throws
{
    let settings = try options.settings()
    if !options.dryRun && findExecutable("sbatch") == nil {
        throw SlurmError(description: """
            sbatch is not on the PATH, so this machine cannot submit Slurm jobs.
              Run the grid locally instead:   make reproduce PROFILE=\(profile)
              Preview the job scripts:        make slurm PROFILE=\(profile) DRY_RUN=1
            """)
    }
    let planFile = makeFile ?? ".plan/\(((config.file as NSString).lastPathComponent as NSString).deletingPathExtension)-\(profile).mk"
    if makeFile != nil || !FileManager.default.fileExists(atPath: planFile) {
        try writeAtomically(try plan.makefile(), to: planFile)
    }
    let files = RunFiles(config: config, profile: profile)
    let all = config.allRuns()
    func ready(_ id: RunID) -> Bool { config.nets[id.net].flatMap { datasetDescriptor($0.dataset)?.isPresent } ?? true }
    func pending(_ ids: [RunID]) -> [RunID] { ids.filter { ready($0) && !files.complete($0) } }
    let todo = (pretrains: pending(all.pretrains), cells: pending(all.cells), repel: pending(all.repel))
    for net in Set((todo.pretrains + todo.cells + todo.repel).map(\.net)).sorted() {
        let data = config.nets[net]!.data
        guard FileManager.default.fileExists(atPath: data) else {
            throw SlurmError(description: "\(data) is missing: run `make \(data)` before submitting (make slurm does)")
        }
    }
    let threads = EnvironmentSettings.threads.map(String.init) ?? "2"
    let makeVars = options.makeVars.map { $0.split(separator: " ").map(String.init) }
        ?? ["PROFILE=\(profile)", "EXPERIMENT=\(config.file)", "CONFIG=release", "THREADS=\(threads)"]
    let oldFiles = options.oldFiles.map { $0.split(separator: " ").map(String.init) } ?? [".build/release/ste", planFile]
    let stampFormat = DateFormatter()
    stampFormat.locale = Locale(identifier: "en_US_POSIX")
    stampFormat.timeZone = TimeZone(identifier: "UTC")
    stampFormat.dateFormat = "yyyyMMdd-HHmmss"
    var submission = stampFormat.string(from: Date())
    let base = "\(config.resultsRoot(profile: profile))/slurm"
    var n = 2
    while FileManager.default.fileExists(atPath: "\(base)/\(submission)") {
        submission = stampFormat.string(from: Date()) + "-\(n)"
        n += 1
    }
    let slurm = SlurmPlan(config: config, profile: profile, settings: settings,
        workdir: FileManager.default.currentDirectoryPath, submission: submission, makeVars: makeVars,
        oldFiles: oldFiles, pending: todo)
    let total = all.pretrains.filter(ready).count + all.cells.filter(ready).count + all.repel.filter(ready).count
    let count = todo.pretrains.count + todo.cells.count + todo.repel.count
    let note = "\(count) of \(total) runs to submit (\(total - count) already complete)"
    if options.dryRun {
        print(slurm.dryRunText(), terminator: "")
        print("# \(note); nothing was written or submitted.")
        return
    }
    try slurm.write()
    print(note + "; job scripts in \(slurm.folder)/")
    let r = try runProgram("/bin/bash", ["\(slurm.folder)/submit.sh"])
    print(r.output, terminator: "")
    guard r.status == 0 else { throw SlurmError(description: "submission failed (\(slurm.folder)/submit.sh exited \(r.status))") }
    print("follow it with: make slurm-status PROFILE=\(profile)   (or: ste status --profile \(profile))")
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show every run's state: done, diverged, running, pending, failed, cancelled, interrupted, stale, not run.",
        discussion: """
            Read from the run folders (eval.h5, checkpoint.h5's diverged attribute, resume.h5), the submission \
            folders written by `ste plan --slurm` (results[/<profile>]/slurm/<submission>/) and, when they are on \
            the PATH, squeue and scontrol.

            Example: ste status --profile smoke
            """)
    @OptionGroup var grid: GridOptions
    @Flag(help: "Do not ask Slurm; use the files only.")
    var noQueue = false
    @Flag(help: "Print the runs' states as JSON ([{run, state, detail}]).")
    var json = false

    func run() throws {
        try stage {
            let config = try grid.load()
            let g = GridStatus(config: config, profile: grid.profile)
            let queue = noQueue ? nil : SlurmQueue.query(jobIDs: g.jobIDs())
            let rows = g.collect(queue: queue)
            if json {
                struct Row: Encodable { let run: String, state: String, detail: String }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(rows.map { Row(run: "\($0.id)", state: $0.state.rawValue, detail: $0.detail) }),
                    as: UTF8.self))
                return
            }
            print(GridStatus.format(rows), terminator: "")
        }
    }
}
