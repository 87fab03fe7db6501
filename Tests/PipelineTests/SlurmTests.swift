// Slurm job-array generation for the full paper grid (array sizes, %N, per-net time limits,
// dependencies down to the array task), cluster settings, Make's up-to-date rule for skipping complete
// runs, and the status table from run folders, exit files and squeue/scontrol output.
import Foundation
import TestSupport
import XCTest

@testable import Cluster
@testable import Experiments
@testable import Report

final class SlurmTests: XCTestCase {
    var dir: String!
    var temporary: TemporaryFolder!

    override func setUpWithError() throws {
        temporary = try TemporaryFolder("slurm-tests")
        dir = temporary.path
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(repositoryRoot))
    }

    override func tearDownWithError() throws {
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(repositoryRoot))
        temporary.remove()
    }

    func paperPlan(settings: SlurmSettings? = nil) throws -> (ExperimentConfig, SlurmPlan) {
        let config = try ExperimentConfig.load("experiments/table1.yaml")
        let s = try settings ?? SlurmSettings.load("experiments/slurm.yaml")
        let all = config.allRuns()
        let plan = SlurmPlan(config: config, profile: "paper", settings: s, workdir: "/repo", submission: "20260101-000000",
            makeVars: ["PROFILE=paper", "CONFIG=release", "THREADS=2"], oldFiles: [".build/release/ste", ".plan/paper.mk"],
            pending: all)
        return (config, plan)
    }

    func line(_ text: String, _ prefix: String) -> String? {
        text.split(separator: "\n").map(String.init).first { $0.hasPrefix(prefix) }
    }

    func testPaperGridArraysTimeLimitsAndDependencies() throws {
        let (config, plan) = try paperPlan()
        XCTAssertEqual(plan.jobs.map(\.key), ["pretrain-lenet5", "cells-lenet5", "pretrain-vgg11", "cells-vgg11",
            "pretrain-resnet20", "cells-resnet20", "repel-resnet20", "report"])
        let seeds = config.seeds.count
        let expected: [String: (Int, String)] = [
            "pretrain-lenet5": (seeds, "02:00:00"), "cells-lenet5": (2 * 3 * seeds, "02:00:00"),
            "pretrain-vgg11": (seeds, "3-00:00:00"), "cells-vgg11": (2 * 3 * seeds, "3-00:00:00"),
            "pretrain-resnet20": (seeds, "1-00:00:00"), "cells-resnet20": (2 * 3 * seeds, "1-00:00:00"),
            "repel-resnet20": (3 * seeds, "1-00:00:00"),
        ]
        for job in plan.jobs where job.stage != .report {
            let script = plan.script(job)
            let (n, time) = expected[job.key]!
            XCTAssertEqual(job.runs.count, n, job.key)
            XCTAssertEqual(plan.manifest(job).split(separator: "\n").count, n, job.key)
            XCTAssertEqual(line(script, "#SBATCH --array="), "#SBATCH --array=0-\(n - 1)%16", job.key)
            XCTAssertEqual(line(script, "#SBATCH --time="), "#SBATCH --time=\(time)", job.key)
            XCTAssertEqual(line(script, "#SBATCH --job-name="), "#SBATCH --job-name=ste-paper-\(job.key)")
            XCTAssertEqual(line(script, "#SBATCH --output="),
                "#SBATCH --output=/repo/results/slurm/20260101-000000/logs/\(job.key)-%A_%a.out")
            XCTAssertEqual(line(script, "#SBATCH --cpus-per-task="), "#SBATCH --cpus-per-task=2")
            XCTAssertEqual(line(script, "#SBATCH --mem="), "#SBATCH --mem=8G")
            XCTAssertNil(line(script, "#SBATCH --partition"), "the default partition is the cluster's")
            XCTAssertNil(line(script, "#SBATCH --gres"), "no GPUs by default")
            XCTAssertFalse(script.contains("STE_DEVICE"), "the CPU engine by default")
            XCTAssertEqual(line(script, "#SBATCH --kill-on-invalid-dep=yes") != nil, job.stage != .pretrain, job.key)
            XCTAssertTrue(script.contains("\nexport HDF5_USE_FILE_LOCKING=FALSE\n"))
            XCTAssertTrue(script.contains("\ncd /repo || exit 1\n"))
            // Asked to stop before the time limit; the shell passes SIGTERM on to make (and make to ste).
            XCTAssertEqual(line(script, "#SBATCH --signal="), "#SBATCH --signal=B:TERM@120")
            XCTAssertTrue(script.contains("\nchild=$!\ntrap 'kill -TERM $child 2>/dev/null' TERM\n"), script)
            XCTAssertTrue(script.contains(
                "RUN=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" /repo/results/slurm/20260101-000000/\(job.key).txt)"))
            let folder = ["pretrain": "pretrain", "cells": "runs", "repel": "repel"][job.stage.rawValue]!
            XCTAssertTrue(script.contains("\nmake --no-print-directory -o .build/release/ste -o .plan/paper.mk "
                + "\"results/\(folder)/$RUN/eval.h5\" PROFILE=paper CONFIG=release THREADS=2 &\n"), job.key)
            // Every manifest line is a run id of this stage whose seed is in the id, not the line number.
            for id in job.runs { XCTAssertEqual(RunID("\(id)"), id) }
        }
        let submit = plan.submitScript()
        XCTAssertTrue(submit.contains("\nJ_pretrain_lenet5=$(submit pretrain-lenet5 \"$D/pretrain-lenet5.sbatch\")\n"))
        XCTAssertTrue(submit.contains(
            "\nJ_cells_resnet20=$(submit cells-resnet20 --dependency=afterok:${J_pretrain_resnet20} \"$D/cells-resnet20.sbatch\")\n"))
        // The repel runs wait for exactly the cell tasks they start from.
        let repel = plan.jobs.first { $0.key == "repel-resnet20" }!
        let cells = plan.jobs.first { $0.key == "cells-resnet20" }!
        let parents = repel.runs.map { $0.parent! }
        let tasks = Set(parents.map { p in cells.runs.firstIndex(of: p)! }).sorted()
        XCTAssertEqual(tasks.count, 3 * config.seeds.count)  // 4-bit relu and clipped (Fig. 2), 2-bit clipped (App. C)
        XCTAssertEqual(repel.dependency?.kind, "afterok")
        XCTAssertEqual(repel.dependency!.on.map { $0.task! }.sorted(), tasks)
        XCTAssertTrue(submit.contains("--dependency=afterok:" + repel.dependency!.on.map { "${J_cells_resnet20}_\($0.task!)" }
            .joined(separator: ":") + " \"$D/repel-resnet20.sbatch\""))
        for t in tasks { XCTAssertTrue(parents.contains(cells.runs[t])) }
        // The report waits for every array, failed ones included.
        let report = plan.jobs.last!
        XCTAssertEqual(report.dependency?.kind, "afterany")
        XCTAssertEqual(report.dependency!.on.map(\.key), plan.jobs.dropLast().map(\.key))
        XCTAssertTrue(plan.script(report).contains("\nmake --no-print-directory -o .build/release/ste -o .plan/paper.mk "
            + "slurm-report PROFILE=paper CONFIG=release THREADS=2\n"))
        XCTAssertNil(line(plan.script(report), "#SBATCH --array"))
        XCTAssertNil(line(plan.script(report), "#SBATCH --kill-on-invalid-dep"))
        XCTAssertTrue(plan.dryRunText().contains("# ==> results/slurm/20260101-000000/submit.sh <=="))
    }

    func testCompleteRunsAreLeftOutAndDependenciesDropped() throws {
        let config = try ExperimentConfig.load("experiments/table1.yaml").resolved(profile: "smoke")
        let all = config.allRuns()
        // Pretrain done, and the cells the repel runs start from done: only cells and repel, without dependencies.
        let repelParents = Set(all.repel.map { $0.parent! })
        let cells = all.cells.filter { !repelParents.contains($0) }
        let plan = SlurmPlan(config: config, profile: "smoke", settings: SlurmSettings(), workdir: "/r", submission: "s",
            makeVars: [], oldFiles: [], pending: ([], cells, all.repel))
        XCTAssertEqual(plan.jobs.map(\.key), ["cells-lenet5", "repel-lenet5", "report"])
        XCTAssertNil(plan.jobs[0].dependency)
        XCTAssertNil(plan.jobs[1].dependency)
        XCTAssertNil(line(plan.script(plan.jobs[0]), "#SBATCH --kill-on-invalid-dep"))
        XCTAssertEqual(line(plan.script(plan.jobs[0]), "#SBATCH --array="), "#SBATCH --array=0-\(cells.count - 1)%16")
        // Nothing left: only the report job.
        let none = SlurmPlan(config: config, profile: "smoke", settings: SlurmSettings(), workdir: "/r", submission: "s",
            makeVars: [], oldFiles: [], pending: ([], [], []))
        XCTAssertEqual(none.jobs.map(\.key), ["report"])
        XCTAssertNil(none.jobs[0].dependency)
        XCTAssertTrue(none.submitScript().contains("\nJ_report=$(submit report \"$D/report.sbatch\")\n"))
    }

    func testSettingsFileOverridesAndRejections() throws {
        let path = dir + "/slurm.yaml"
        try """
            partition: gpu
            account: abc123
            time: {resnet20: "12:00:00", default: "30"}
            cpus_per_task: 8
            mem: 32G
            gpus_per_task: 1
            max_concurrent: 4
            sbatch: ["--qos=long", "#SBATCH --constraint=avx2"]
            preamble: module load hdf5
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let s = try SlurmSettings.load(path)
        let (_, plan) = try paperPlan(settings: s)
        let cells = plan.script(plan.jobs.first { $0.key == "cells-resnet20" }!)
        let lenet = plan.script(plan.jobs.first { $0.key == "cells-lenet5" }!)
        for expected in ["#SBATCH --partition=gpu", "#SBATCH --account=abc123", "#SBATCH --time=12:00:00",
            "#SBATCH --cpus-per-task=8", "#SBATCH --mem=32G", "#SBATCH --gres=gpu:1", "#SBATCH --array=0-17%4",
            "#SBATCH --qos=long", "#SBATCH --constraint=avx2", "module load hdf5"]
        {
            XCTAssertNotNil(line(cells, expected), expected)
        }
        XCTAssertNotNil(line(lenet, "#SBATCH --time=30"), "nets not listed take the default")
        XCTAssertNil(line(plan.script(plan.jobs.last!), "#SBATCH --gres"), "the report job needs no GPU")
        XCTAssertNotNil(line(cells, "export STE_DEVICE=cuda"), "a task with a GPU trains on the CUDA engine")
        XCTAssertFalse(plan.script(plan.jobs.last!).contains("STE_DEVICE"))

        func rejects(_ yaml: String, key: String, file: StaticString = #filePath, line: UInt = #line) throws {
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try SlurmSettings.load(path), file: file, line: line) { error in
                XCTAssertEqual((error as? ConfigError)?.key, key, "\(error)", file: file, line: line)
                XCTAssertEqual((error as? ConfigError)?.file, path, file: file, line: line)
            }
        }
        try rejects("time: {lenet5: two hours}", key: "time.lenet5")
        try rejects("mem: lots", key: "mem")
        try rejects("cpus_per_task: 0", key: "cpus_per_task")
        try rejects("max_concurrent: 0", key: "max_concurrent")
        try rejects("partiton: gpu", key: "partiton")
        try rejects("sbatch: [\"--qos=a\\n--x\"]", key: "sbatch[0]")
        try rejects("partition: 'a b'", key: "partition")
    }

    /// Sets a file's modification time (seconds since 1970).
    func touch(_ path: String, _ seconds: Int) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: path) { XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data())) }
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: Double(seconds))],
            ofItemAtPath: path)
    }

    func testCompletenessFollowsMakesRule() throws {
        let config = try ExperimentConfig.load("experiments/table1.yaml").resolved(profile: "smoke")
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(dir))
        let files = RunFiles(config: config, profile: "smoke")
        let pre = RunID("lenet5-s0")!, cell = RunID("lenet5-a2-clipped-s0")!
        try touch("data/mnist.h5", 100)
        for (id, t) in [(pre, 200), (cell, 300)] {
            try touch("results/smoke/stamps/\(id).json", 150)
            try touch("results/smoke/\(id.folder)/checkpoint.h5", t)
            try touch("results/smoke/\(id.folder)/eval.h5", t + 1)
        }
        XCTAssertTrue(files.complete(pre))
        XCTAssertTrue(files.complete(cell))
        try touch("results/smoke/\(cell.folder)/eval.h5", 299)  // eval older than its checkpoint
        XCTAssertFalse(files.complete(cell))
        try touch("results/smoke/\(cell.folder)/eval.h5", 301)
        try touch("results/smoke/stamps/\(pre).json", 250)  // the pretrain's config changed
        XCTAssertFalse(files.complete(pre))
        XCTAssertFalse(files.complete(cell), "a cell is stale when its pretrain is")
        try touch("results/smoke/stamps/\(pre).json", 150)
        try touch("data/mnist.h5", 350)  // the data changed
        XCTAssertFalse(files.complete(cell))
        try touch("data/mnist.h5", 100)
        try FileManager.default.removeItem(atPath: "results/smoke/\(cell.folder)/eval.h5")
        XCTAssertFalse(files.complete(cell))
    }

    func testStatusFromFoldersExitFilesAndQueue() throws {
        let config = try ExperimentConfig.load("experiments/table1.yaml").resolved(profile: "smoke")
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(dir))
        let all = config.allRuns()
        let sub = "results/smoke/slurm/20260101-000000"
        try FileManager.default.createDirectory(atPath: sub + "/exit", withIntermediateDirectories: true)
        try "cells-lenet5 41\nrepel-lenet5 42\n".write(toFile: sub + "/jobs.txt", atomically: true, encoding: .utf8)
        try all.cells.map { "\($0)\n" }.joined().write(toFile: sub + "/cells-lenet5.txt", atomically: true, encoding: .utf8)
        try all.repel.map { "\($0)\n" }.joined().write(toFile: sub + "/repel-lenet5.txt", atomically: true, encoding: .utf8)
        try "1\n".write(toFile: sub + "/exit/\(all.cells[0])", atomically: true, encoding: .utf8)
        try "143\n".write(toFile: sub + "/exit/\(all.cells[4])", atomically: true, encoding: .utf8)  // SIGTERM at the time limit
        try touch("results/smoke/\(all.cells[2].folder)/resume.h5", 100)
        var q = SlurmQueue()
        q.parseSqueue("41_1|RUNNING|None\n41_3|PENDING|Resources\n")
        q.parseScontrol("JobId=50 ArrayJobId=42 ArrayTaskId=0 JobState=CANCELLED Reason=DependencyNeverSatisfied ExitCode=0:0\n"
            + "JobId=51 ArrayJobId=42 ArrayTaskId=1 JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15\n"
            + "JobId=60 ArrayJobId=60 ArrayTaskId=2-4%4 ArrayTaskThrottle=4 JobState=CANCELLED Reason=DependencyNeverSatisfied\n")
        XCTAssertEqual(q.tasks["60_3"]?.state, "CANCELLED", "an array that never started is one record")
        XCTAssertNil(q.tasks["60_5"])
        XCTAssertEqual(SlurmQueue.taskIndexes("0%4"), [0])
        XCTAssertEqual(SlurmQueue.taskIndexes("1,3-5:2"), [1, 3, 5])
        let g = GridStatus(config: config, profile: "smoke")
        XCTAssertEqual(g.jobIDs(), ["41", "42"])
        let rows = Dictionary(uniqueKeysWithValues: g.collect(queue: q).map { ($0.id, $0) })
        XCTAssertEqual(rows[all.cells[0]]?.state, .failed)
        XCTAssertTrue(rows[all.cells[0]]!.detail.contains("exit 1, job 41_0"))
        XCTAssertEqual(rows[all.cells[1]]?.state, .running)
        XCTAssertEqual(rows[all.cells[2]]?.state, .interrupted, "ended without an exit file, resume.h5 left")
        XCTAssertEqual(rows[all.cells[3]]?.state, .pending)
        XCTAssertEqual(rows[all.cells[4]]?.state, .interrupted, "exit 143: stopped by SIGTERM before the time limit")
        XCTAssertTrue(rows[all.cells[4]]!.detail.contains("SIGTERM"), rows[all.cells[4]]!.detail)
        XCTAssertTrue(rows[all.cells[3]]!.detail.contains("Resources"))
        XCTAssertEqual(rows[all.repel[0]]?.state, .cancelled)
        XCTAssertEqual(rows[all.repel[1]]?.state, .failed)
        XCTAssertTrue(rows[all.repel[1]]!.detail.contains("TIMEOUT"))
        XCTAssertEqual(rows[all.pretrains[0]]?.state, .notRun)
        let table = GridStatus.format(g.collect(queue: q))
        XCTAssertTrue(table.hasPrefix("run "))
        XCTAssertTrue(table.contains("\(all.pretrains.count + all.cells.count + all.repel.count) runs: "))
        // Without Slurm, the exit file and resume.h5 still tell failed and interrupted apart.
        let offline = Dictionary(uniqueKeysWithValues: g.collect(queue: nil).map { ($0.id, $0.state) })
        XCTAssertEqual(offline[all.cells[0]], .failed)
        XCTAssertEqual(offline[all.cells[2]], .interrupted)
        XCTAssertEqual(offline[all.cells[1]], .notRun)
        // A finished pretrain (it has a checkpoint, no eval.h5) is done; a cell whose files predate its stamp is stale.
        let root = "results/smoke"
        try touch("data/mnist.h5", 100)
        try touch("\(root)/stamps/\(all.pretrains[0]).json", 200)
        try touch("\(root)/\(all.pretrains[0].folder)/checkpoint.h5", 300)
        try touch("\(root)/stamps/\(all.cells[5]).json", 400)
        try touch("\(root)/\(all.cells[5].folder)/checkpoint.h5", 350)
        try touch("\(root)/\(all.cells[5].folder)/eval.h5", 360)
        let later = Dictionary(uniqueKeysWithValues: g.collect(queue: nil).map { ($0.id, $0) })
        XCTAssertEqual(later[all.pretrains[0]]?.state, .done)
        XCTAssertEqual(later[all.cells[5]]?.state, .stale)
        XCTAssertTrue(later[all.cells[5]]!.detail.contains("make run RUN=\(all.cells[5])"), later[all.cells[5]]!.detail)
    }

    func testShellQuoting() {
        XCTAssertEqual(shellQuote("results/smoke/x.h5"), "results/smoke/x.h5")
        XCTAssertEqual(shellQuote("a b"), "'a b'")
        XCTAssertEqual(shellQuote("it's"), "'it'\\''s'")
    }
}
