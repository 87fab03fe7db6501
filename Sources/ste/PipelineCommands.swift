// The pipeline stages of Yin et al. 2019 Table 1: plan, pretrain, train, eval, report, diff.
// Each `run()` is glue: parse, load, call the Experiments library, report errors.
import ArgumentParser
import Backends
import Cluster
import Experiments
import Report
import Foundation
import Storage

struct GridOptions: ParsableArguments {
    @Option(help: "The experiment grid (YAML).")
    var config = "experiments/table1.yaml"

    @Option(help: "paper (the protocol as stated) or a profile of the config file, e.g. smoke.")
    var profile = "paper"

    @Option(name: .customLong("set"), help: ArgumentHelp(
        "Override one key of the config: key.path=value (value in YAML), e.g. nets.lenet5.train.lr=0.05; repeatable. "
            + "The runs then live in their own folder, <results root>/set-<overrides>.", valueName: "key=value"))
    var overrides: [String] = []

    func load() throws -> ExperimentConfig {
        try ExperimentConfig.load(config, profile: profile, overrides: overrides).resolved(profile: profile)
    }
}

struct RunOptions: ParsableArguments {
    @OptionGroup var grid: GridOptions

    @Option(help: "Run id: <net>-s<seed> (pretrain), <net>-a<bits>-<ste>-s<seed> (train), or <net>-a<bits>-<ste>-from-<ste>-s<seed> (repel run: Fig. 2, Appendix C).")
    var run: String

    @Option(help: "Compute threads (oneDNN, kernels). Same seed and threads → bit-identical results. Default: $STE_THREADS or 2.")
    var threads: Int?

    @Flag(help: "No progress line.")
    var quiet = false

    @OptionGroup var device: DeviceOptions

    func resolve(expect kinds: [RunID.Kind]) throws -> (ExperimentConfig, RunConfig) {
        guard let id = RunID(run) else { throw ValidationError(RunID.whyInvalid(run)) }
        guard kinds.contains(id.kind) else {
            throw ValidationError("'\(run)' is a \(id.kind.rawValue) run; this stage takes \(kinds.map(\.rawValue).joined(separator: " or ")) runs")
        }
        let n = threads ?? EnvironmentSettings.threads ?? 2
        guard n >= 1 else { throw ValidationError("--threads must be at least 1") }
        setComputeThreads(n)
        let config = try grid.load()
        return (config, try config.runConfig(id, profile: grid.profile))
    }
}

/// Runs a stage body, turning library errors into one `error:` line and a non-zero exit; a run stopped by
/// SIGINT / SIGTERM prints where it stopped and exits with 130 / 143.
func stage(_ body: () throws -> Void) throws {
    do { try body() } catch let e as ValidationError { throw e } catch let e as ExitCode { throw e } catch let e as Interrupted {
        FileHandle.standardError.write(Data("\n\(e)\n".utf8))
        throw ExitCode(e.exitStatus)
    } catch {
        FileHandle.standardError.write(Data("error: \(readableError(error))\n".utf8))
        throw ExitCode.failure
    }
}

/// Options of the stages that train (pretrain, train).
struct TrainingOptions: ParsableArguments {
    @Flag(help: "Continue a resume state written under another thread count, device or code version (make: RESUME_ANYWAY=1); the output then lists each segment. A changed parent checkpoint is refused regardless.")
    var resumeAnyway = false

    /// Runs `executor`: one process per run folder (a second one stops at once), SIGINT / SIGTERM end it
    /// cleanly after the step or write in progress.
    func run(_ executor: RunExecutor) throws {
        executor.resumeAnyway = resumeAnyway || ProcessInfo.processInfo.environment["RESUME_ANYWAY"] == "1"
        installInterruptHandlers()
        _ = try executor.run()
    }
}

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Resolve the grid: write one config stamp per run and print the Make rules.",
        discussion: """
            Stamps (results[/<profile>]/stamps/<run>.json) are rewritten only when a run's resolved \
            configuration changes, so Make reruns exactly the cells whose settings changed.

            Example: ste plan --profile smoke --make .plan/smoke.mk
            """)
    @OptionGroup var grid: GridOptions
    @Option(help: "Write the Make fragment to this file (default: standard output).")
    var make: String?
    @Flag(help: "List the runs instead of printing Make rules.")
    var list = false
    @Flag(help: "Print every run with its folder and resolved configuration as JSON instead of Make rules.")
    var json = false
    @Flag(help: "Write the runs that are not complete as Slurm job arrays and submit them (docs/cluster.md).")
    var slurm = false
    @OptionGroup(title: "Slurm (with --slurm)") var slurmOptions: SlurmOptions

    func run() throws {
        try stage {
            let config = try grid.load()
            let plan = Experiments.Plan(config: config, profile: grid.profile)
            try plan.writeStamps()
            if list {
                let r = config.allRuns()
                for id in r.pretrains + r.cells + r.repel { print(id) }
                return
            }
            if json {
                let r = config.allRuns()
                let rows = try (r.pretrains + r.cells + r.repel).map { id in
                    "{\"run\":\"\(id)\",\"kind\":\"\(id.kind.rawValue)\",\"folder\":\"\(config.runFolder(id, profile: grid.profile))\",\"configuration\":"
                        + (try config.runConfig(id, profile: grid.profile).canonicalJSON()) + "}"
                }
                print("[\n" + rows.joined(separator: ",\n") + "\n]")
                return
            }
            if slurm {
                return try submitSlurm(plan, config: config, profile: grid.profile, options: slurmOptions, makeFile: make)
            }
            let text = try plan.makefile()
            if let make { try writeAtomically(text, to: make) } else { print(text, terminator: "") }
        }
    }
}

struct Pretrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train the float (plain ReLU) net that initialises the quantized runs.",
        discussion: "Writes results/pretrain/<net>-s<seed>/checkpoint.h5 and history.h5; resumes from resume.h5.\n\nExample: ste pretrain --run lenet5-s0")
    @OptionGroup var options: RunOptions
    @OptionGroup var training: TrainingOptions
    func run() throws {
        try stage {
            let (config, run) = try options.resolve(expect: [.pretrain])
            let executor = RunExecutor(config: run, resultsRoot: config.runRoot(RunID(run.runID)!, profile: options.grid.profile),
                quiet: options.quiet)
            executor.makeEngine = try options.device.engineFactory(quiet: options.quiet)
            try training.run(executor)
        }
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train one quantized cell (or a repel run) from its starting checkpoint.",
        discussion: """
            Writes results/runs/<run>/checkpoint.h5 and history.h5 (repel runs: results/repel/<run>/). \
            A resume state is written atomically after every epoch; a killed or interrupted run (Ctrl-C, \
            SIGTERM: exit 130 / 143) resumes from it under the same thread count, device and code version and \
            ends with the same numbers as an uninterrupted one. One process per run: a second one stops at \
            once. A NaN/inf loss stops the run and records it as diverged.

            Example: ste train --run lenet5-a2-clipped-s0
            """)
    @OptionGroup var options: RunOptions
    @OptionGroup var training: TrainingOptions
    @Option(help: .hidden) var stopAfterEpochs: Int?
    func run() throws {
        try stage {
            let (config, run) = try options.resolve(expect: [.train, .repel])
            let executor = RunExecutor(config: run, resultsRoot: config.runRoot(RunID(run.runID)!, profile: options.grid.profile),
                quiet: options.quiet)
            executor.stopAfterEpochs = stopAfterEpochs
            executor.makeEngine = try options.device.engineFactory(quiet: options.quiet)
            try training.run(executor)
        }
    }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a finished run: training loss (full pass, eval mode), test accuracy and loss → eval.h5.",
        discussion: "Example: ste eval --run lenet5-a2-clipped-s0")
    @OptionGroup var options: RunOptions
    func run() throws {
        try stage {
            let (config, run) = try options.resolve(expect: [.train, .repel, .pretrain])
            let r = try evaluateRun(run, resultsRoot: config.runRoot(RunID(run.runID)!, profile: options.grid.profile),
                makeEngine: try options.device.engineFactory(quiet: options.quiet))
            if !options.quiet {
                print("\(run.runID): test accuracy \(String(format: "%.2f", r.testAccuracy)) %, training loss "
                    + "\(String(format: "%.3e", r.trainLossLastEpoch)) (last epoch), \(String(format: "%.3e", r.trainLossFullPass)) (full pass)"
                    + (r.diverged ? " — DIVERGED" : ""))
            }
        }
    }
}

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write results/table1.csv, results/REPORT.md and the figures from the finished runs.",
        discussion: """
            Example: ste report --section results/theory/REPORT-theory.md --section results/schoenbauer/mnist.md
            """)
    @OptionGroup var grid: GridOptions
    @Option(name: [.customLong("section"), .customLong("theory")],
        help: "A Markdown report to link from the report (theory and Schoenbauer); repeatable; missing files are skipped.")
    var sections: [String] = []
    @Option(name: .customLong("claims"),
        help: "A theory or Schoenbauer result file (.h5) whose claims the summary tallies by outcome; repeatable; missing files are skipped.")
    var claimFiles: [String] = []
    @Option(help: "Unix time at which the `make reproduce` writing this report started (the Makefile passes it); the elapsed time is recorded in <root>/reproduce-timing.txt and shown in the report.")
    var reproduceStarted: Double?
    @Flag(help: "After writing the report, print its cells (table1.csv) and the files it wrote as JSON.")
    var json = false
    func run() throws {
        try stage {
            let config = try grid.load()
            let root = config.resultsRoot(profile: grid.profile)
            if let started = reproduceStarted {
                try recordReproduceTiming(root: root, started: started,
                    alsoRan: sections.isEmpty ? nil : "theory and Schoenbauer experiments")
            }
            try writeReport(ReportInputs(config: config, profile: grid.profile, sectionFiles: sections, claimFiles: claimFiles))
            guard json else { return print("wrote \(root)/REPORT.md") }
            struct Cell: Encodable {
                let dataset: String, net: String, bits: Int, ste: String, n: Int
                let test_accuracy_mean: Double, test_accuracy_std: Double, train_loss_mean: Double, diverged: Int
            }
            struct Summary: Encodable { let report: String, table: String, runs: String, cells: [Cell] }
            let cells = try loadTable1("\(root)/table1.csv").sorted { $0.key < $1.key }.map { k, r in
                Cell(dataset: k.dataset, net: k.net, bits: k.bits, ste: k.ste, n: r.n, test_accuracy_mean: r.accuracyMean,
                    test_accuracy_std: r.accuracyStd, train_loss_mean: r.lossMean, diverged: r.diverged)
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(Summary(report: "\(root)/REPORT.md", table: "\(root)/table1.csv",
                runs: "\(root)/runs.csv", cells: cells)), as: UTF8.self))
        }
    }
}

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare our Table 1 with the paper's, or two of our Table 1 files with each other.",
        discussion: """
            B is the paper's reference table (experiments/reference/*-table1.csv) or another of our table1.csv files \
            (a rerun, an ablation profile, another commit's results): the kind is read from its header. Against the \
            paper, a cell is consistent when the paper value lies within max(2·SE over seeds, 2·binomial SE) of our \
            mean; between two of ours, when |B − A| ≤ √(tol_A² + tol_B²). --json prints the rows as JSON instead.
            Exit status 0 unless the comparison could not run; with --strict a cell that was run in both and is not \
            'consistent' is an error too (exit 2).

            Examples: ste diff results/table1.csv experiments/reference/yin2019-table1.csv
                      ste diff results/table1.csv results/lenet5-caffe/table1.csv --json
            """)
    @Argument(help: "Our table (written by ste report).") var ours = "results/table1.csv"
    @Argument(help: "The paper's table, or another of our tables.") var reference = "experiments/reference/yin2019-table1.csv"
    @Flag(help: "Fail when a cell run in both is not consistent.") var strict = false
    @Flag(help: "Print the rows as JSON.") var json = false
    func run() throws {
        var inconsistent = 0
        try stage {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            if isOurTable1(reference) {
                let rows = compareTables(try loadTable1(ours), try loadTable1(reference))
                inconsistent = rows.filter { $0.difference != nil && $0.verdict != "consistent" }.count
                if json {
                    print(String(decoding: try encoder.encode(rows), as: UTF8.self))
                    return
                }
                print(formatTableDiff(rows, a: ours, b: reference), terminator: "")
                // What the two folders' runs were trained with, where it differs (runs.csv beside each table).
                let settings = settingDifferences(tableA: ours, tableB: reference)
                if !settings.isEmpty {
                    print("settings that differ (A | B):")
                    for line in settings { print("  " + line) }
                    if settings.contains(where: { $0.hasPrefix("profile:") && $0.contains("smoke") }) {
                        print("warning: a smoke table is compared with another profile's: the smoke profile checks the pipeline, its numbers mean nothing about the paper")
                    }
                }
                let both = rows.filter { $0.difference != nil }.count
                print("\(both) cells in both tables; \(both - inconsistent) consistent, \(inconsistent) not; "
                    + "\(rows.count - both) in one table only.")
                return
            }
            let rows = compare(ours: try loadTable1(ours), reference: try loadReference(reference))
            let paperRows = rows.filter { $0.paper != nil }
            inconsistent = paperRows.filter { $0.ours != nil && $0.accuracyVerdict != .consistent }.count
            if json {
                print(String(decoding: try encoder.encode(rows.map(PaperDiffRow.init)), as: UTF8.self))
                return
            }
            print(formatDiff(rows), terminator: "")
            let run = paperRows.filter { $0.ours != nil }.count
            let extra = rows.count - paperRows.count
            print("\(run) of \(paperRows.count) cells of the paper run; \(run - inconsistent) consistent with the paper on "
                + "accuracy, \(inconsistent) not" + (extra > 0 ? "; \(extra) cells not in the paper." : "."))
        }
        if strict && inconsistent > 0 { throw ExitCode(2) }
    }
}

/// A row of `ste diff --json` against the paper.
struct PaperDiffRow: Encodable {
    var dataset: String, net: String, bits: Int, ste: String
    var paperAccuracy: Double?, paperTrainLoss: Double?
    var n: Int?, accuracyMean: Double?, accuracyStd: Double?, accuracyTolerance: Double?, trainLossMean: Double?
    var accuracyVerdict: String, lossVerdict: String

    init(_ r: ComparisonRow) {
        (dataset, net, bits, ste) = (r.key.dataset, r.key.net, r.key.bits, r.key.ste)
        (paperAccuracy, paperTrainLoss) = (r.paper?.accuracy, r.paper?.trainLoss)
        (n, accuracyMean, accuracyStd) = (r.ours?.n, r.ours?.accuracyMean, r.ours?.accuracyStd)
        (accuracyTolerance, trainLossMean) = (r.ours?.accuracyTolerance, r.ours?.lossMean)
        let missing = r.paper == nil ? "not in the paper" : "not run"
        accuracyVerdict = r.accuracyVerdict?.rawValue ?? missing
        lossVerdict = r.lossVerdict?.rawValue ?? missing
    }
}
