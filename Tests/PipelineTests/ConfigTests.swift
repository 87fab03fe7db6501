// The experiment grid as data: strict parsing, rejection messages naming the key and the file,
// run ids, stamps, and the verdict rule.
import Foundation
import XCTest

@testable import Experiments

/// The repository root (the tests read experiments/ from it).
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

final class ConfigTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "config-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        FileManager.default.changeCurrentDirectoryPath(repoRoot)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func testShippedGridLoadsWithThePaperProtocol() throws {
        let c = try ExperimentConfig.load("experiments/table1.yaml")
        XCTAssertEqual(c.bits, [2, 4])
        XCTAssertEqual(c.stes.map(\.rawValue), ["identity", "relu", "clipped"])
        XCTAssertEqual(c.nets["lenet5"]!.train.epochs, 50)
        XCTAssertEqual(c.nets["resnet20"]!.train.epochs, 200)
        XCTAssertEqual(c.nets["vgg11"]!.train.momentum, 0.9)
        XCTAssertEqual(c.alpha?[2], 0.6511)
        XCTAssertEqual(c.alpha?[4], 0.1946)
        XCTAssertEqual(c.fig2?.warmupLR, 1e-5)
        let runs = c.allRuns()
        XCTAssertEqual(runs.cells.count, 3 * 2 * 3 * c.seeds.count)
        XCTAssertEqual(runs.pretrains.count, 3 * c.seeds.count)
        XCTAssertEqual(runs.fig2.count, 2 * c.seeds.count)
        let smoke = try c.resolved(profile: "smoke")
        XCTAssertEqual(smoke.nets.keys.sorted(), ["lenet5"])
        XCTAssertEqual(smoke.nets["lenet5"]!.train.epochs, 2)
        // The width ablation changes only its own runs; the classic runs' stamps do not mention widths.
        let wide = try c.resolved(profile: "lenet5-wide")
        let wideRun = try wide.runConfig(RunID("lenet5-a2-relu-s0")!, profile: "lenet5-wide")
        XCTAssertEqual(wideRun.lenet5Widths, [12, 32, 240, 168])
        XCTAssertEqual(wideRun.initFrom, "results/lenet5-wide/pretrain/lenet5-s0/checkpoint.h5")
        let classic = try c.runConfig(RunID("lenet5-a2-relu-s0")!, profile: "paper")
        XCTAssertNil(classic.lenet5Widths)
        XCTAssertFalse(classic.canonicalJSON().contains("lenet5Widths"))
        let fast = try c.resolved(profile: "lenet5-lr10x")
        XCTAssertEqual(fast.nets["lenet5"]!.train.lr, 0.1)
        XCTAssertEqual(fast.nets["lenet5"]!.pretrain.lr, 0.1)  // the float pretrain keeps its own rate
        XCTAssertEqual(c.nets["lenet5"]!.train.lr, 0.01)
    }

    /// Each bad config is rejected with a message naming the file and the key.
    func testRejectionsNameKeyAndFile() throws {
        let good = try String(contentsOfFile: "experiments/table1.yaml", encoding: .utf8)
        let cases: [(String, String, String)] = [
            ("experiment: yin2019-table1", "experiment: yin2019-table1\nbogus: 1", "bogus: unknown key"),
            ("stes: [identity, relu, clipped]", "stes: [identity, relu, clipt]", "stes[2]: unknown STE 'clipt'"),
            ("bits: [2, 4]", "bits: [2, 9]", "bits[1]: bits must be in 1...8, found 9"),
            ("      epochs: 50                 # paper", "      epochs: 0", "nets.lenet5.train.epochs: must be positive, found 0"),
            ("    train:\n      epochs: 50                 # paper\n      batch_size: 128",
                "    train:\n      epochs: 50\n      batch_size: -1", "nets.lenet5.train.batch_size: must be positive, found -1"),
            ("reference: experiments/reference/yin2019-table1.csv", "reference: experiments/reference/nope.csv",
                "reference: file 'experiments/reference/nope.csv' does not exist"),
            ("      lr: 0.01 ", "      learning_rate: 0.01 ", "nets.lenet5.train.learning_rate: unknown key"),
            ("    lenet5_widths: [12, 32, 240, 168]", "    lenet5_widths: [12, 32, 240]",
                "profiles.lenet5-wide.lenet5_widths: expected 4 widths"),
            ("    train_lr: 0.1", "    train_lr: -0.1", "profiles.lenet5-lr10x.train_lr: must be positive"),
        ]
        for (old, new, expected) in cases {
            XCTAssertTrue(good.contains(old), "fixture text not found: \(old)")
            let path = dir + "/bad.yaml"
            try good.replacingOccurrences(of: old, with: new).write(toFile: path, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try ExperimentConfig.load(path), expected) { error in
                XCTAssertTrue("\(error)".hasPrefix(path + ": "), "\(error)")
                XCTAssertTrue("\(error)".contains(expected), "expected '\(expected)' in '\(error)'")
            }
        }
        XCTAssertThrowsError(try ExperimentConfig.load(dir + "/absent.yaml")) { error in
            XCTAssertTrue("\(error)".contains("absent.yaml: -: cannot read the file"), "\(error)")
        }
    }

    func testRunIDsRoundTripAndRejectGarbage() {
        for text in ["lenet5-s0", "lenet5-a2-clipped-s0", "resnet20-a4-identity-from-clipped-s2", "vgg11-a4-log-tailed-s1"] {
            XCTAssertEqual(RunID(text).map { "\($0)" }, text)
        }
        XCTAssertEqual(RunID("lenet5-a2-clipped-s0")?.parent.map { "\($0)" }, "lenet5-s0")
        XCTAssertEqual(RunID("resnet20-a4-identity-from-relu-s1")?.parent.map { "\($0)" }, "resnet20-a4-relu-s1")
        for bad in ["", "lenet5", "lenet5-a9-clipped-s0", "lenet5-a2-clip-s0", "lenet5-a2-clipped-x0", "lenet5-s-1",
            "lenet5-a2-clipped-from-s0", "lenet5-s01"]
        {
            XCTAssertNil(RunID(bad), bad)
        }
    }

    /// A stamp changes exactly when that run's resolved configuration changes.
    func testStampsChangeOnlyForTheEditedCell() throws {
        let c = try ExperimentConfig.load("experiments/table1.yaml")
        let id = RunID("lenet5-a2-clipped-s0")!
        let other = RunID("lenet5-a4-clipped-s0")!
        var edited = c
        edited.alpha![2] = 0.7
        XCTAssertNotEqual(try c.runConfig(id, profile: "paper").canonicalJSON(),
            try edited.runConfig(id, profile: "paper").canonicalJSON())
        XCTAssertEqual(try c.runConfig(other, profile: "paper").canonicalJSON(),
            try edited.runConfig(other, profile: "paper").canonicalJSON())
    }

    func testVerdictRule() {
        let key = CellKey(dataset: "mnist", net: "lenet5", bits: 2, ste: "clipped")
        // Binomial SE at 99.2 % on 10,000 images is 0.089 pp; seeds agree closely → tolerance ≈ 0.18 pp.
        let r = CellResult(key: key, accuracies: [99.20, 99.22, 99.18], losses: [5e-3, 6e-3, 5.5e-3], testTotal: 10000)
        XCTAssertEqual(r.accuracyTolerance, 2 * (0.992 * 0.008 / 10000).squareRoot() * 100, accuracy: 1e-9)
        XCTAssertEqual(accuracyVerdict(r, paper: 99.23), .consistent)
        XCTAssertEqual(accuracyVerdict(r, paper: 99.50), .lower)
        XCTAssertEqual(accuracyVerdict(r, paper: 98.90), .higher)
        XCTAssertEqual(lossVerdict(r, paper: 5.4e-3), .consistent)
        XCTAssertEqual(lossVerdict(r, paper: 5.4e-2), .lower)
        // A wide seed spread widens the tolerance.
        let noisy = CellResult(key: key, accuracies: [98.0, 99.0, 100.0], losses: [1, 1, 1], testTotal: 10000)
        XCTAssertEqual(noisy.accuracyTolerance, 2 * 1.0 / 3.0.squareRoot(), accuracy: 1e-9)
    }

    func testReferenceTableIsThePapers() throws {
        let ref = try loadReference("experiments/reference/yin2019-table1.csv")
        XCTAssertEqual(ref.count, 18)
        XCTAssertEqual(ref[CellKey(dataset: "cifar10", net: "resnet20", bits: 2, ste: "clipped")]?.accuracy, 88.39)
        XCTAssertEqual(ref[CellKey(dataset: "mnist", net: "lenet5", bits: 4, ste: "relu")]?.trainLoss, 9.0e-4)
    }
}
