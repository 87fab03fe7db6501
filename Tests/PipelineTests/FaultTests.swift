// Fault injection for the training stages: a full disk during a checkpoint write, SIGTERM / SIGINT at many
// points of a run (during a write too), a resume from another parent or under another thread count, two
// processes on one run, truncated and damaged files. Each must end with a message that names the file and
// the cause, the previous state intact, no temporary file, and — once the fault is gone — the same numbers
// as an uninterrupted run.
import Foundation
import Backends
import Kernels
import Storage
import Training
import TestSupport
import XCTest

@testable import Cluster
@testable import Experiments
@testable import Report

final class FaultTests: XCTestCase {
    var dir: String!
    var temporary: TemporaryFolder!

    override func setUpWithError() throws {
        temporary = try TemporaryFolder("fault-tests", entered: true)
        dir = temporary.path
        try TinyGrid.writeDataset("tiny.h5", train: 96, test: 40)
        try TinyGrid.writeGrid("grid.yaml", lr: 0.01)
        clearSignal()
    }

    override func tearDownWithError() throws {
        clearSignal()
        temporary.remove()
    }

    let cell = "lenet5-a2-clipped-s0"

    /// The reference: pretrain and the cell, uninterrupted, under `root`.
    func reference(_ root: String = "ref") throws -> [String: [Float]] {
        _ = try TinyGrid.run("lenet5-s0", root: root)
        _ = try TinyGrid.run(cell, root: root)
        return try TinyGrid.tensors("\(root)/runs/\(cell)/checkpoint.h5")
    }

    /// A results root holding the reference's pretrain only.
    func rootWithPretrain(_ root: String) throws {
        try FileManager.default.createDirectory(atPath: "\(root)/pretrain", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "ref/pretrain/lenet5-s0", toPath: "\(root)/pretrain/lenet5-s0")
    }

    func temporaries(_ folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.contains(".tmp-") }
    }

    /// A full disk while epoch 2's resume state is written: the error says "no space left on device" with
    /// the file, the epoch-1 state is intact, no temporary file is left, and once space returns the same
    /// command ends with the uninterrupted run's tensors.
    func testFullDiskDuringACheckpointWrite() throws {
        let expected = try reference()
        try rootWithPretrain("a")
        let runDir = "a/runs/\(cell)"
        let e = try TinyGrid.executor(cell, root: "a")
        // Writes to /dev/full fail with ENOSPC: the writer's temporary name is made to point there.
        e.testPoint = { epoch, batch in
            if epoch == 2 && batch == 0 { symlink("/dev/full", "\(runDir)/.resume.h5.tmp-\(getpid())") }
        }
        XCTAssertThrowsError(try e.run()) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("\(runDir)/resume.h5"), text)
            XCTAssertTrue(text.contains("no space left on device (errno 28)"), text)
            XCTAssertTrue(text.contains("free in \(runDir)"), text)
        }
        XCTAssertEqual(temporaries(runDir), [], "no temporary file left")
        XCTAssertEqual(try H5Reader(path: "\(runDir)/resume.h5").attribute("epoch").intValue, 1, "the previous state is intact")
        _ = try TinyGrid.run(cell, root: "a")
        XCTAssertEqual(try TinyGrid.tensors("\(runDir)/checkpoint.h5"), expected)
    }

    /// SIGTERM and SIGINT at many points — before the first step, inside epochs, on the last step, during
    /// resume-state writes — stop the run with the conventional status and the epoch; the same command then
    /// ends with the uninterrupted run's tensors and history.
    func testSignalsAtManyPointsResumeBitIdentical() throws {
        let expected = try reference()
        let expectedHistory = try History.read(from: H5Reader(path: "ref/runs/\(cell)/history.h5"))
        let points: [(epoch: Int, batch: Int?, signal: Int32)] = [
            (1, 0, SIGTERM), (1, 2, SIGINT), (2, 1, SIGTERM), (3, 2, SIGINT), (1, nil, SIGTERM), (2, nil, SIGINT),
        ]
        for (i, p) in points.enumerated() {
            let root = "s\(i)"
            try rootWithPretrain(root)
            let e = try TinyGrid.executor(cell, root: root)
            e.testPoint = { epoch, batch in if epoch == p.epoch && batch == p.batch { simulateSignal(p.signal) } }
            XCTAssertThrowsError(try e.run(), "point \(p)") { error in
                guard let stop = error as? Interrupted else { return XCTFail("\(error)") }
                XCTAssertEqual(stop.exitStatus, p.signal == SIGTERM ? 143 : 130)
                // Inside an epoch: that epoch; during the write after epoch N: epoch N + 1, N saved.
                XCTAssertEqual(stop.epoch, p.batch == nil ? p.epoch + 1 : p.epoch, "point \(p)")
                XCTAssertEqual(stop.saved, stop.epoch - 1)
                XCTAssertTrue("\(stop)".contains("interrupted (\(p.signal == SIGTERM ? "SIGTERM" : "SIGINT")) at epoch \(stop.epoch) of 3; the same command resumes"), "\(stop)")
            }
            clearSignal()
            XCTAssertEqual(temporaries("\(root)/runs/\(cell)"), [])
            _ = try TinyGrid.run(cell, root: root)
            XCTAssertEqual(try TinyGrid.tensors("\(root)/runs/\(cell)/checkpoint.h5"), expected, "point \(p)")
            let h = try History.read(from: H5Reader(path: "\(root)/runs/\(cell)/history.h5"))
            XCTAssertEqual(h.trainLoss, expectedHistory.trainLoss)
            XCTAssertEqual(h.testAccuracy, expectedHistory.testAccuracy)
            XCTAssertEqual(h.segments.count, 1, "one setting throughout: one segment")
        }
    }

    /// A resume whose parent checkpoint was rebuilt in between is refused, naming the parent and how to start
    /// over — with or without --resume-anyway.
    func testResumeFromAChangedParentIsRefused() throws {
        _ = try TinyGrid.run("lenet5-s0", root: "a")
        _ = try TinyGrid.run(cell, root: "a", stopAfter: 1)
        // The pretrain is redone with another rate: same path, other tensors.
        try FileManager.default.removeItem(atPath: "a/pretrain/lenet5-s0")
        try TinyGrid.writeGrid("grid.yaml", lr: 0.02)
        _ = try TinyGrid.run("lenet5-s0", root: "a")
        try TinyGrid.writeGrid("grid.yaml", lr: 0.01)
        for anyway in [false, true] {
            let e = try TinyGrid.executor(cell, root: "a")
            e.resumeAnyway = anyway
            XCTAssertThrowsError(try e.run()) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("a/pretrain/lenet5-s0/checkpoint.h5"), text)
                XCTAssertTrue(text.contains("its tensors differ"), text)
                XCTAssertTrue(text.contains("rm a/runs/\(cell)/resume.h5"), text)
            }
        }
    }

    /// A resume under another thread count is refused; with --resume-anyway it continues and the history
    /// records both segments.
    func testResumeUnderAnotherThreadCountNeedsTheOverride() throws {
        let saved = Parallel.workers
        defer { setComputeThreads(saved) }
        setComputeThreads(1)
        _ = try TinyGrid.run("lenet5-s0", root: "a")
        _ = try TinyGrid.run(cell, root: "a", stopAfter: 1)
        setComputeThreads(2)
        XCTAssertThrowsError(try TinyGrid.run(cell, root: "a")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("1 → 2 threads"), text)
            XCTAssertTrue(text.contains("--resume-anyway"), text)
            XCTAssertTrue(text.contains("THREADS=1"), text)
        }
        let e = try TinyGrid.executor(cell, root: "a")
        e.resumeAnyway = true
        XCTAssertEqual(try e.run().epochs, 3)
        let h = try History.read(from: H5Reader(path: "a/runs/\(cell)/history.h5"))
        XCTAssertEqual(h.segments.map { [$0.firstEpoch, $0.lastEpoch, $0.threads] }, [[1, 1, 1], [2, 3, 2]])
        let r = try H5Reader(path: "a/runs/\(cell)/checkpoint.h5")
        XCTAssertEqual(try r.attribute("segments", on: "/history"),
            .strings(h.segments.map(\.description)))
        XCTAssertTrue(h.segments[1].description.hasPrefix("epochs 2–3: 2 threads, device cpu, code "), h.segments[1].description)
    }

    /// A second process on a run being written stops at once, naming the run and the holder.
    func testSecondProcessOnOneRunIsRefused() throws {
        _ = try TinyGrid.run("lenet5-s0", root: "a")
        let runDir = "a/runs/\(cell)"
        try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        // A stale temporary of a dead process, removed by the next start of the run.
        _ = FileManager.default.createFile(atPath: "\(runDir)/.resume.h5.tmp-999999", contents: Data([1, 2, 3]))
        do {
            let holder = try RunLock(directory: runDir, run: cell)  // flock conflicts across open files, even in one process
            XCTAssertEqual(temporaries(runDir), [], "stale temporaries removed under the lock")
            XCTAssertThrowsError(try TinyGrid.run(cell, root: "a")) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("run \(cell) is already being written by process \(getpid()) on "), text)
                XCTAssertTrue(text.contains(ProcessInfo.processInfo.hostName), text)
            }
            withExtendedLifetime(holder) {}
        }
        XCTAssertEqual(try TinyGrid.run(cell, root: "a").epochs, 3, "free again once the holder is gone")
    }

    /// Every kind of file the pipeline reads — dataset, checkpoint, resume state, history, eval — cut short
    /// or damaged gives a message that names the file and says so.
    func testTruncatedAndDamagedFilesAreNamed() throws {
        _ = try TinyGrid.run("lenet5-s0", root: "a")
        _ = try TinyGrid.run(cell, root: "a", stopAfter: 1)
        try FileManager.default.copyItem(atPath: "a/runs/\(cell)/resume.h5", toPath: "resume.h5")
        _ = try TinyGrid.run(cell, root: "a")
        let config = try ExperimentConfig.load("grid.yaml")
        var run = try config.runConfig(RunID(cell)!, profile: "paper")
        run.initFrom = "a/pretrain/lenet5-s0/checkpoint.h5"
        _ = try evaluateRun(run, resultsRoot: "a")
        let files = ["tiny.h5", "a/runs/\(cell)/checkpoint.h5", "resume.h5", "a/runs/\(cell)/history.h5", "a/runs/\(cell)/eval.h5"]
        for file in files {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
            try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: "cut.h5"))
            XCTAssertThrowsError(try H5Reader(path: "cut.h5"), file) { error in
                XCTAssertTrue("\(error)".hasPrefix("cut.h5: truncated HDF5 file: \(bytes.count / 2) bytes of the "), "\(file): \(error)")
            }
            try Data().write(to: URL(fileURLWithPath: "cut.h5"))
            XCTAssertThrowsError(try H5Reader(path: "cut.h5")) { XCTAssertTrue("\($0)".contains("empty file (0 bytes)"), "\($0)") }
            var damaged = bytes
            for i in 0..<8 { damaged[i] = 0 }
            try damaged.write(to: URL(fileURLWithPath: "cut.h5"))
            XCTAssertThrowsError(try H5Reader(path: "cut.h5")) { XCTAssertTrue("\($0)".contains("not an HDF5 file"), "\($0)") }
        }
        // The stages say it with the file's name: the dataset loader and the checkpoint restore.
        let data = try Data(contentsOf: URL(fileURLWithPath: "tiny.h5"))
        try data.prefix(1000).write(to: URL(fileURLWithPath: "tiny.h5"))
        XCTAssertThrowsError(try TinyGrid.run("lenet5-s0", root: "b")) { XCTAssertTrue("\($0)".contains("tiny.h5: truncated HDF5 file"), "\($0)") }
    }
}
