// The criteria that judge the deep-net claims (Sources/Report/Criteria.swift): the shipped file parses, each test
// gives held / not held / inconclusive by the rules in its header, on synthetic runs whose outcome is known; and the
// runs table shows what `test_error_last5` judges.
import Foundation
import Harness
import TestSupport
import XCTest

@testable import Experiments
@testable import Report
@testable import Training

final class CriteriaTests: XCTestCase {
    override func setUpWithError() throws {
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(repositoryRoot))
    }

    /// A finished run whose history has the given per-epoch training losses and test accuracies.
    func run(_ id: String, losses: [Double], accuracies: [Double], phase: Int? = nil) -> (RunID, RunRecord) {
        let rid = RunID(id)!
        var h = History()
        for (e, (l, a)) in zip(losses, accuracies).enumerated() {
            h.append(epoch: e + 1, trainLoss: l, trainAccuracy: 0, testLoss: 0, testAccuracy: a, lr: 0.01, wall: 1,
                imagesPerSecond: 1, residentMiB: 0)
        }
        var phaseSpec = PhaseSpec(epochs: phase ?? losses.count, batchSize: 128, optimizer: "sgd", lr: 1e-5, momentum: 0.9,
            weightDecay: 0, schedule: ScheduleSpec(kind: "constant", milestones: [], gamma: 1, milestoneEpochs: nil))
        phaseSpec.epochs = phase ?? losses.count
        let config = RunConfig(experiment: "t", profile: "t", runID: id, kind: rid.kind.rawValue, net: rid.net,
            dataset: "fashion-mnist", data: "x.h5", augment: false, mean: [0], std: [1], evalBatchSize: 100, seed: rid.seed,
            activation: ActivationSpec(), phases: [phaseSpec], initFrom: nil, trainSubset: 8000, testSubset: nil)
        return (rid, RunRecord(id: rid, config: config, eval: [:], history: h, diverged: false, wallSeconds: 1, threads: 1,
            trainedBy: "unknown", machine: "test"))
    }

    func criterion(_ test: String, a: String, b: String, quantity: String, margin: Double, minSeeds: Int = 3) -> Criterion {
        Criterion(id: "c", claim: "c", kind: "paper", test: test, net: "resnet20", bits: 2, a: a, b: b, quantity: quantity,
            margin: margin, minSeeds: minSeeds, source: "", line: 1)
    }

    func testShippedCriteriaParse() throws {
        let criteria = try loadCriteria("experiments/reference/yin2019-criteria.csv")
        XCTAssertEqual(Set(criteria.filter { $0.kind == "paper" }.map(\.claim)).count, 10)
        XCTAssertEqual(criteria.filter { $0.test == "repelled" }.map(\.b), ["relu->relu", "clipped->clipped", "clipped->clipped"])
    }

    func testErrorRatio() {
        let c = criterion("error-ratio", a: "identity", b: "clipped", quantity: "test_error_last5", margin: 1.5)
        // identity error 40 ± 1, clipped 10 ± 1: d = 40 − 15 = 25 per seed, clearly above 0.
        var runs: [RunID: RunRecord] = [:]
        for s in 0..<3 {
            let (ia, ra) = run("resnet20-a2-identity-s\(s)", losses: Array(repeating: 1, count: 6), accuracies: Array(repeating: 60 + Double(s), count: 6))
            let (ib, rb) = run("resnet20-a2-clipped-s\(s)", losses: Array(repeating: 1, count: 6), accuracies: Array(repeating: 90 - Double(s), count: 6))
            runs[ia] = ra
            runs[ib] = rb
        }
        let held = evaluateCriteria([c], runs: runs, pretrains: [:])[0]
        XCTAssertEqual(held.outcome, .held)
        XCTAssertEqual(held.seeds, [0, 1, 2])
        XCTAssertEqual(held.aValues[0], 40, accuracy: 1e-9)
        // The same with margin 4: d = 40 − 40 ± 3 → within 2 SE: inconclusive; margin 6: clearly below → not held.
        var wide = c
        wide.margin = 4
        XCTAssertEqual(evaluateCriteria([wide], runs: runs, pretrains: [:])[0].outcome, .inconclusive)
        wide.margin = 6
        XCTAssertEqual(evaluateCriteria([wide], runs: runs, pretrains: [:])[0].outcome, .notHeld)
        // One seed: inconclusive whatever the point estimate.
        let one = runs.filter { $0.key.seed == 0 }
        let r = evaluateCriteria([c], runs: one, pretrains: [:])[0]
        XCTAssertEqual(r.outcome, .inconclusive)
        XCTAssertTrue(r.reason.contains("1 of the 3 seeds"), r.reason)
        // … and says where that one seed stands: identity 40 vs clipped 10 meets margin 1.5, not margin 6; the
        // reversed comparison is against the claimed direction.
        XCTAssertTrue(r.reason.hasSuffix("(the point estimate so far: in the claimed direction, margin met)"), r.reason)
        wide.margin = 6
        XCTAssertTrue(evaluateCriteria([wide], runs: one, pretrains: [:])[0].reason.hasSuffix("in the claimed direction, short of the margin)"))
        let reversed = criterion("error-ratio", a: "clipped", b: "identity", quantity: "test_error_last5", margin: 1)
        XCTAssertTrue(evaluateCriteria([reversed], runs: one, pretrains: [:])[0].reason.hasSuffix("against the claimed direction)"))
    }

    func testRepelledAgainstControl() {
        let c = criterion("repelled", a: "clipped->relu", b: "clipped->clipped", quantity: "train_loss_phase_end", margin: 0.05)
        func runs(repelLoss: Double, repelAccuracy: Double) -> [RunID: RunRecord] {
            var out: [RunID: RunRecord] = [:]
            for s in 0..<3 {
                let jitter = 0.001 * Double(s)
                let (ia, ra) = run("resnet20-a2-relu-from-clipped-s\(s)", losses: Array(repeating: repelLoss + jitter, count: 10),
                    accuracies: Array(repeating: repelAccuracy, count: 10), phase: 10)
                let (ib, rb) = run("resnet20-a2-clipped-from-clipped-s\(s)", losses: Array(repeating: 0.30 + jitter, count: 10),
                    accuracies: Array(repeating: 88, count: 10), phase: 10)
                out[ia] = ra
                out[ib] = rb
            }
            return out
        }
        // 0.40 vs 0.30: a rise of a third, test error up → held, and the rise is there from the first full window.
        let up = evaluateCriteria([c], runs: runs(repelLoss: 0.40, repelAccuracy: 85), pretrains: [:])[0]
        XCTAssertEqual(up.outcome, .held)
        XCTAssertEqual(up.riseEpochs, [5, 5, 5])
        // The loss rises but the test error does not: inconclusive, and it says why.
        let lossOnly = evaluateCriteria([c], runs: runs(repelLoss: 0.40, repelAccuracy: 90), pretrains: [:])[0]
        XCTAssertEqual(lossOnly.outcome, .inconclusive)
        XCTAssertTrue(lossOnly.reason.contains("test error"), lossOnly.reason)
        // One seed of each: where the point estimate stands (a rise of a third with the test error up; a rise of 1 %;
        // the loss lower than the control's; a rise with the test error not up is short of the margin).
        for (loss, accuracy, standing) in [(0.40, 85.0, "in the claimed direction, margin met"),
                                           (0.303, 85, "in the claimed direction, short of the margin"),
                                           (0.25, 85, "against the claimed direction"),
                                           (0.40, 90, "in the claimed direction, short of the margin")] {
            let one = runs(repelLoss: loss, repelAccuracy: accuracy).filter { $0.key.seed == 0 }
            let r = evaluateCriteria([c], runs: one, pretrains: [:])[0]
            XCTAssertEqual(r.outcome, .inconclusive)
            XCTAssertTrue(r.reason.hasSuffix("(the point estimate so far: \(standing))"), "\(loss), \(accuracy): \(r.reason)")
        }
        // Flat: any rise is below 5 % of the control's loss → not held.
        XCTAssertEqual(evaluateCriteria([c], runs: runs(repelLoss: 0.30, repelAccuracy: 85), pretrains: [:])[0].outcome, .notHeld)
        // A claim is held only when all its rows are; one row not held decides it.
        XCTAssertEqual(claimOutcome([up, up]), .held)
        XCTAssertEqual(claimOutcome([up, lossOnly]), .inconclusive)
        XCTAssertEqual(claimOutcome([up, evaluateCriteria([c], runs: runs(repelLoss: 0.30, repelAccuracy: 85), pretrains: [:])[0]]), .notHeld)
    }

    func testPlateauCheck() {
        let c = Criterion(id: "p", claim: "p", kind: "check", test: "plateau", net: "resnet20", bits: nil, a: "pretrain", b: "",
            quantity: "train_loss_last10", margin: 0.05, minSeeds: 1, source: "", line: 1)
        var flat = History(), falling = History()
        for e in 1...20 {
            flat.append(epoch: e, trainLoss: 0.2, trainAccuracy: 0, testLoss: 0, testAccuracy: 0, lr: 0, wall: 0, imagesPerSecond: 0, residentMiB: 0)
            falling.append(epoch: e, trainLoss: 1 / Double(e), trainAccuracy: 0, testLoss: 0, testAccuracy: 0, lr: 0, wall: 0,
                imagesPerSecond: 0, residentMiB: 0)
        }
        XCTAssertEqual(evaluateCriteria([c], runs: [:], pretrains: [0: flat])[0].outcome, .held)
        let r = evaluateCriteria([c], runs: [:], pretrains: [0: flat, 1: falling])[0]
        XCTAssertEqual(r.outcome, .notHeld)
        XCTAssertTrue(r.reason.contains("resnet20-s1"), r.reason)
        // A loss that rose over the last 10 epochs passes (nothing is still falling) but is named, with its rise.
        var rising = History()
        for e in 1...20 {
            rising.append(epoch: e, trainLoss: 0.2 + 0.01 * Double(e), trainAccuracy: 0, testLoss: 0, testAccuracy: 0, lr: 0,
                wall: 0, imagesPerSecond: 0, residentMiB: 0)
        }
        let up = evaluateCriteria([c], runs: [:], pretrains: [0: flat, 2: rising])[0]
        XCTAssertEqual(up.outcome, .held)
        // epochs 11–15 average 0.33, the last five 0.38: a drop of −13.2 %.
        XCTAssertTrue(up.reason.hasSuffix("; rose instead: resnet20-s2 (loss up 13.2 %)"), up.reason)
        XCTAssertFalse(evaluateCriteria([c], runs: [:], pretrains: [0: flat])[0].reason.contains("rose"))
    }

    /// The runs table shows test-time noise beside the final accuracy: the best epoch and the last five epochs'
    /// mean ± sample sd (the criteria judge `test_error_last5`, so the reader sees what they judge).
    func testRunsTableShowsBestEpochAndLastFive() {
        let (id, finished) = run("resnet20-a4-relu-s0", losses: Array(repeating: 1, count: 7), accuracies: [80, 95, 70, 90, 91, 92, 93])
        var r = finished
        r.eval["test_accuracy"] = 93
        let table = runsSection([id: r], root: NSTemporaryDirectory())
        let row = table.split(separator: "\n").first { $0.hasPrefix("| resnet20-a4-relu-s0 ") }
        // last five: 70, 90, 91, 92, 93 → mean 87.2, sd √(374.8/4) = 9.68.
        XCTAssertEqual(row.map { $0.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }[6...8] }.map(Array.init),
            ["93.00", "95.00 (2)", "87.20 ± 9.68"], table)
    }
}
