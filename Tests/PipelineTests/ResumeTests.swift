// A run killed after any epoch and restarted ends with exactly the same result as an uninterrupted
// one; a NaN loss is recorded as divergence. Runs on a tiny synthetic MNIST-shaped dataset.
import Foundation
import Storage
import Training
import TestSupport
import XCTest

@testable import Cluster
@testable import Experiments
@testable import Report

final class ResumeTests: XCTestCase {
    var dir: String!
    var temporary: TemporaryFolder!

    override func setUpWithError() throws {
        temporary = try TemporaryFolder("resume-tests", entered: true)
        dir = temporary.path
        try TinyGrid.writeDataset("tiny.h5", train: 96, test: 40)
        try writeTinyGrid("grid.yaml", lr: 0.01)
    }

    override func tearDownWithError() throws {
        temporary.remove()
    }

    func writeTinyGrid(_ path: String, lr: Double, repel: String = "") throws {
        try TinyGrid.writeGrid(path, lr: lr, repel: repel)
    }

    func run(_ id: String, root: String, stopAfter: Int? = nil) throws -> RunOutcome {
        try TinyGrid.run(id, root: root, stopAfter: stopAfter)
    }

    func testInterruptedRunEndsBitIdenticalToUninterrupted() throws {
        _ = try run("lenet5-s0", root: "a")
        try FileManager.default.createDirectory(atPath: "b/pretrain", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "a/pretrain/lenet5-s0", toPath: "b/pretrain/lenet5-s0")

        let full = try run("lenet5-a2-clipped-s0", root: "a")
        XCTAssertEqual(full.epochs, 3)
        // Killed after epoch 1, restarted, killed after epoch 2, restarted.
        let first = try run("lenet5-a2-clipped-s0", root: "b", stopAfter: 1)
        XCTAssertEqual(first.epochs, 1)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "b/runs/lenet5-a2-clipped-s0/resume.h5"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: "b/runs/lenet5-a2-clipped-s0/checkpoint.h5"))
        _ = try run("lenet5-a2-clipped-s0", root: "b", stopAfter: 1)
        let last = try run("lenet5-a2-clipped-s0", root: "b")
        XCTAssertEqual(last.epochs, 3)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "b/runs/lenet5-a2-clipped-s0/resume.h5"))

        let a = try H5Reader(path: "a/runs/lenet5-a2-clipped-s0/checkpoint.h5")
        let b = try H5Reader(path: "b/runs/lenet5-a2-clipped-s0/checkpoint.h5")
        var compared = 0
        for group in ["/params", "/buffers", "/optimizer/sgd/momentum_buffer"] where a.contains(group) {
            for layer in try a.children(of: group) where layer.kind == .group {
                for t in try a.children(of: "\(group)/\(layer.name)") {
                    let path = "\(group)/\(layer.name)/\(t.name)"
                    XCTAssertEqual(try a.read(path, as: Float.self).values, try b.read(path, as: Float.self).values, path)
                    compared += 1
                }
            }
        }
        XCTAssertGreaterThan(compared, 10)
        let ha = try History.read(from: a), hb = try History.read(from: b)
        XCTAssertEqual(ha.trainLoss, hb.trainLoss)
        XCTAssertEqual(ha.testAccuracy, hb.testAccuracy)
        // Memory per epoch is recorded (also across the resume), positive on Linux.
        XCTAssertEqual(ha.residentMiB.count, 3)
        XCTAssertEqual(hb.residentMiB.count, 3)
        XCTAssertTrue((ha.residentMiB + hb.residentMiB).allSatisfy { $0 > 0 })
        XCTAssertEqual(ha.learningRate, [0.01, 0.01, 0.001])  // milestone 0.5·3 = 1.5 rounds to epoch 2
        // The live curves: progress.csv holds a header and each saved epoch once, across the two resumes.
        let progress = try String(contentsOfFile: "b/runs/lenet5-a2-clipped-s0/progress.csv", encoding: .utf8)
            .split(separator: "\n").map(String.init)
        XCTAssertEqual(progress.count, 4, progress.joined(separator: "\n"))
        XCTAssertTrue(progress[0].hasPrefix("epoch,train_loss,"))
        XCTAssertEqual(progress.dropFirst().map { $0.split(separator: ",")[0] }, ["1", "2", "3"])
        XCTAssertEqual(progress[3].split(separator: ",")[4], "\(hb.testAccuracy[2])"[...])
    }

    /// A repel run measures its starting point before the first step without changing the run: the
    /// start's test accuracy is the starting cell's, the parameters after training are bit-identical to
    /// a run that skips the measurement, and a resumed run keeps the measurement.
    func testRepelRunMeasuresItsStartWithoutChangingTheRun() throws {
        try writeTinyGrid("grid.yaml", lr: 0.01, repel: """
            repel:
              appendix-c:
                title: Appendix C
                net: lenet5
                bits: 2
                ste: relu
                from: [clipped]
                warmup_epochs: 1
                warmup_lr: 1.0e-5
                then_normal_schedule: true
            """)
        _ = try run("lenet5-s0", root: "a")
        _ = try run("lenet5-a2-clipped-s0", root: "a")
        for root in ["b", "c"] {
            try FileManager.default.createDirectory(atPath: "\(root)/runs", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: "a/runs/lenet5-a2-clipped-s0", toPath: "\(root)/runs/lenet5-a2-clipped-s0")
        }
        let id = "lenet5-a2-relu-from-clipped-s0"
        XCTAssertEqual(try run(id, root: "a").epochs, 4)
        let config = try ExperimentConfig.load("grid.yaml")
        var unmeasured = try config.runConfig(RunID(id)!, profile: "paper")
        unmeasured.initFrom = "b/runs/lenet5-a2-clipped-s0/checkpoint.h5"
        let executor = RunExecutor(config: unmeasured, resultsRoot: "b", quiet: true)
        executor.measuresStart = false
        _ = try executor.run()
        _ = try run(id, root: "c", stopAfter: 2)
        _ = try run(id, root: "c")

        var cell = try config.runConfig(RunID("lenet5-a2-clipped-s0")!, profile: "paper")
        cell.initFrom = "a/pretrain/lenet5-s0/checkpoint.h5"  // as run() resolved it
        let parent = try evaluateRun(cell, resultsRoot: "a")
        let measured = try History.read(from: H5Reader(path: "a/repel/\(id)/history.h5"))
        XCTAssertEqual(measured.startTestAccuracy, parent.testAccuracy)
        XCTAssertNotNil(measured.startTrainLoss)
        XCTAssertNil(try History.read(from: H5Reader(path: "b/repel/\(id)/history.h5")).startTrainLoss)
        let resumed = try History.read(from: H5Reader(path: "c/repel/\(id)/history.h5"))
        XCTAssertEqual(resumed.startTrainLoss, measured.startTrainLoss)
        XCTAssertEqual(resumed.startTestAccuracy, measured.startTestAccuracy)
        let a = try H5Reader(path: "a/repel/\(id)/checkpoint.h5"), b = try H5Reader(path: "b/repel/\(id)/checkpoint.h5")
        for layer in try a.children(of: "/params") where layer.kind == .group {
            for t in try a.children(of: "/params/\(layer.name)") {
                let path = "/params/\(layer.name)/\(t.name)"
                XCTAssertEqual(try a.read(path, as: Float.self).values, try b.read(path, as: Float.self).values, path)
            }
        }
        XCTAssertEqual(measured.trainLoss, try History.read(from: b).trainLoss)
    }

    func testResumeRefusesStateOfAnotherConfiguration() throws {
        _ = try run("lenet5-s0", root: "a", stopAfter: 1)
        try writeTinyGrid("grid.yaml", lr: 0.02)
        XCTAssertThrowsError(try run("lenet5-s0", root: "a")) { error in
            XCTAssertTrue("\(error)".contains("resume state was written by a different configuration"), "\(error)")
        }
    }

    func testNonFiniteLossIsRecordedAsDivergence() throws {
        try writeTinyGrid("grid.yaml", lr: 1.0e30)
        let outcome = try run("lenet5-s0", root: "a")
        XCTAssertTrue(outcome.diverged)
        let r = try H5Reader(path: "a/pretrain/lenet5-s0/checkpoint.h5")
        XCTAssertEqual(try r.attribute("diverged"), .int(1))
        XCTAssertEqual(try r.attribute("diverged_epoch").intValue, Int64(outcome.divergedEpoch!))
    }
}
