// A second experiment on the same pipeline: experiments/fashion.yaml (the paper's protocol on Fashion-MNIST).
// Its config (datasets, padding to the CIFAR nets' 32×32, its own results folder, no paper table), the padding
// itself, the 1-channel deep nets through train + eval, and a report whose cells the paper does not have.
import Foundation
import Storage
import TestSupport
import XCTest

@testable import Datasets
@testable import Cluster
@testable import Experiments
@testable import Report

final class TransferTests: XCTestCase {
    var dir: String!
    var temporary: TemporaryFolder!

    override func setUpWithError() throws {
        temporary = try TemporaryFolder("transfer-tests")
        dir = temporary.path
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(repositoryRoot))
    }

    override func tearDownWithError() throws {
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(repositoryRoot))
        temporary.remove()
    }

    func testFashionGridKeepsThePaperScheduleInItsOwnFolder() throws {
        let c = try ExperimentConfig.load("experiments/fashion.yaml")
        XCTAssertNil(c.reference)
        XCTAssertEqual(c.claims, "experiments/reference/yin2019-claims.csv")
        XCTAssertEqual(c.resultsRoot(profile: "paper"), "results/fashion")
        XCTAssertEqual(c.resultsRoot(profile: "cpu-budget"), "results/fashion/cpu-budget")
        let table1 = try ExperimentConfig.load("experiments/table1.yaml")
        XCTAssertEqual(table1.resultsRoot(profile: "paper"), "results")
        for net in ["lenet5", "vgg11", "resnet20"] {
            XCTAssertEqual(c.nets[net]!.dataset, "fashion-mnist")
            // The quantized phase is Table 1's (the paper's Table 2), only the data differ.
            XCTAssertEqual(c.nets[net]!.train, table1.nets[net]!.train, net)
        }
        XCTAssertNil(c.nets["lenet5"]!.padTo)
        XCTAssertEqual(c.nets["vgg11"]!.padTo, 32)
        XCTAssertEqual(c.nets["resnet20"]!.padTo, 32)
        let run = try c.runConfig(RunID("resnet20-a2-clipped-s0")!, profile: "paper")
        XCTAssertEqual(run.initFrom, "results/fashion/pretrain/resnet20-s0/checkpoint.h5")
        XCTAssertEqual(run.padTo, 32)
        XCTAssertTrue(run.canonicalJSON().contains("\"padTo\":32"))
        // Table 1's stamps do not change: padTo is absent from their JSON.
        XCTAssertFalse(try table1.runConfig(RunID("lenet5-a2-clipped-s0")!, profile: "paper").canonicalJSON().contains("padTo"))
    }

    func testPaddingIsCheckedAgainstTheNet() throws {
        let good = try String(contentsOfFile: "experiments/fashion.yaml", encoding: .utf8)
        let cases: [(String, String, String)] = [
            ("    pad_to: 32                   # transfer: as VGG-11", "",
                "nets.resnet20.pad_to: resnet20 takes 32×32 images and fashion-mnist's are 28×28: set pad_to: 32"),
            ("    pad_to: 32                   # transfer: as VGG-11", "    pad_to: 33", "nets.resnet20.pad_to: 33 cannot pad 28×28 images evenly"),
            ("    dataset: fashion-mnist       # transfer\n    data: data/fashion-mnist.h5\n    augment: false",
                "    dataset: fashion-mnist\n    data: data/fashion-mnist.h5\n    pad_to: 32\n    augment: false",
                "nets.lenet5.pad_to: lenet5 takes 28×28 images and fashion-mnist's are 28×28, padded to 32×32: remove pad_to"),
            ("    dataset: fashion-mnist       # transfer\n    data: data/fashion-mnist.h5\n    augment: false",
                "    dataset: kmnist\n    data: data/fashion-mnist.h5\n    augment: false",
                "nets.lenet5.dataset: unknown dataset 'kmnist' (known: cifar10, fashion-mnist, mnist)"),
        ]
        for (old, new, expected) in cases {
            XCTAssertTrue(good.contains(old), "fixture text not found: \(old)")
            let path = dir + "/bad.yaml"
            try good.replacingOccurrences(of: old, with: new).write(toFile: path, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try ExperimentConfig.load(path), expected) { error in
                XCTAssertTrue("\(error)".contains(expected), "expected '\(expected)' in '\(error)'")
            }
        }
    }

    func testPaddingCentresEachImageInZeros() {
        // Two 1-channel 2×2 images padded to 4×4; then a 3-channel 1×1 image padded to 3×3.
        let split = DatasetSplit(images: [1, 2, 3, 4, 5, 6, 7, 8], labels: [0, 1], count: 2, channels: 1, height: 2, width: 2)
        let padded = LoadedData.padded(split, to: 4)
        XCTAssertEqual([padded.height, padded.width, padded.count, padded.channels], [4, 4, 2, 1])
        XCTAssertEqual(padded.images, [0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0,
                                       0, 0, 0, 0, 0, 5, 6, 0, 0, 7, 8, 0, 0, 0, 0, 0])
        XCTAssertEqual(padded.labels, [0, 1])
        let rgb = LoadedData.padded(DatasetSplit(images: [9, 8, 7], labels: [3], count: 1, channels: 3, height: 1, width: 1), to: 3)
        XCTAssertEqual(rgb.images, [0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0])
        XCTAssertEqual(LoadedData.padded(split, to: nil).images, split.images)
        XCTAssertEqual(LoadedData.padded(split, to: 2).images, split.images)
    }

    /// ResNet-20 on 28×28 grey images padded to 32×32: pretrain, a quantized cell and its eval, then a report
    /// without a paper table (its cells are "not in the paper", the claims file scores what it can).
    func testOneChannelResNetTrainsOnPaddedImagesAndIsReportedWithoutAPaperTable() throws {
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(dir))
        try TinyGrid.writeDataset("tiny.h5", train: 64, test: 32)
        let phase = """
                  epochs: 1
                  batch_size: 32
                  optimizer: sgd
                  lr: 0.05
                  momentum: 0.9
                  weight_decay: 1.0e-4
                  schedule: {kind: constant}
            """
        try """
            experiment: transfer-test
            results: out/transfer
            claims: \(repositoryRoot)/experiments/reference/yin2019-claims.csv
            seeds: [0]
            bits: [2]
            stes: [clipped]
            quantizer: {rounding: ceil, alpha: {2: 0.6511}}
            nets:
              resnet20:
                dataset: fashion-mnist
                data: tiny.h5
                pad_to: 32
                augment: true
                normalize: {mean: [0.2860], std: [0.3530]}
                eval_batch_size: 32
                pretrain:
            \(phase)
                train:
            \(phase)
            """.write(toFile: "grid.yaml", atomically: true, encoding: .utf8)
        let config = try ExperimentConfig.load("grid.yaml")
        let root = config.resultsRoot(profile: "paper")
        for id in ["resnet20-s0", "resnet20-a2-clipped-s0"] {
            let run = try config.runConfig(RunID(id)!, profile: "paper")
            let outcome = try RunExecutor(config: run, resultsRoot: root, quiet: true).run()
            XCTAssertFalse(outcome.diverged, id)
            let result = try evaluateRun(run, resultsRoot: root)
            XCTAssertEqual(result.testTotal, 32)
            XCTAssertTrue(result.testAccuracy.isFinite && result.trainLossFullPass.isFinite, id)
        }
        // The first convolution took one channel.
        let checkpoint = try H5Reader(path: "out/transfer/runs/resnet20-a2-clipped-s0/checkpoint.h5")
        XCTAssertEqual(try checkpoint.shape(of: "/params/stem.0/weight"), [16, 1, 3, 3])
        let md = try writeReport(ReportInputs(config: config, profile: "paper", absentDatasets: ["cifar10"]))
        XCTAssertTrue(md.contains("## Test accuracy"), md)
        XCTAssertTrue(md.contains("| fashion-mnist | resnet20 | 2 | clipped | — |"), md)
        XCTAssertTrue(md.contains("not in the paper"))
        // The float net the cell started from, from its pretrain history.
        XCTAssertTrue(md.contains("| fashion-mnist | resnet20 | float | — (pretrained) | — |"), md)
        XCTAssertTrue(md.contains("1 cell the paper does not have** (fashion-mnist; STEs clipped)"), md)
        XCTAssertFalse(md.contains("mnist | lenet5"), "no rows of the paper's table: \(md)")
        XCTAssertTrue(md.contains("resnet20 2-bit: accuracy clipped ≥ relu ≥ identity | not run"), md)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "out/transfer/table1.csv"))
        // The run's configuration and final metrics as one CSV row, its epochs as rows of histories.csv.
        let runs = try readCSV("out/transfer/runs.csv")
        XCTAssertEqual(runs.map { $0.1["run_id"] }, ["resnet20-a2-clipped-s0", "resnet20-s0"], "the cell and its float pretrain")
        XCTAssertEqual(runs[1].1["kind"], "pretrain")
        let row = runs[0].1
        XCTAssertEqual(row["run_id"], "resnet20-a2-clipped-s0")
        XCTAssertEqual(row["dataset"], "fashion-mnist")
        XCTAssertEqual(row["bits"], "2")
        XCTAssertEqual(row["test_total"], "32")
        let eval = try H5Reader(path: "out/transfer/runs/resnet20-a2-clipped-s0/eval.h5")
        XCTAssertEqual(Double(row["test_accuracy"] ?? ""), try eval.read("/test_accuracy", as: Double.self, shape: []).values[0])
        XCTAssertTrue(row["machine"]?.contains(",") ?? false, "a quoted field with commas survives the round trip")
        let histories = try readCSV("out/transfer/histories.csv").filter { $0.1["run_id"] == "resnet20-a2-clipped-s0" }
        XCTAssertFalse(histories.isEmpty)
        XCTAssertEqual(histories.map { $0.1["epoch"] }, (1...histories.count).map { "\($0)" })
    }
}

final class CSVTests: XCTestCase {
    func testReadingSkipsCommentsHonoursQuotesAndNamesTheBadLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("csv-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("t.csv").path
        try "# a comment\nid,text\n1,\"a, b\"\n\n# another\n2,plain\n".write(toFile: path, atomically: true, encoding: .utf8)
        let rows = try readCSV(path)
        XCTAssertEqual(rows.map { $0.0 }, [3, 6], "file line numbers")
        XCTAssertEqual(rows.map { $0.1["text"] }, ["a, b", "plain"])
        try "id,text,more\n1,x,y\n2,z\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try readCSV(path)) { error in
            XCTAssertTrue("\(error)".contains("t.csv: line 3: expected 3 columns, found 2"), "\(error)")
        }
        // Written and read back: quotes, commas and newlines inside fields.
        let text = csvText(header: ["a", "b"], rows: [["x,y", "say \"hi\""], ["1", "two\nlines"]])
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(try readCSV(path).map { $0.1["b"] }, ["say \"hi\"", "two\nlines"])
    }
}

final class TableDiffTests: XCTestCase {
    /// Two of our tables: a cell within √(tol_A² + tol_B²) is consistent, one outside is lower / higher (B against
    /// A), cells of one table only are named; a table1.csv is told from a paper's reference table by its header.
    func testTwoOfOurTables() throws {
        let key = { (ste: String) in CellKey(dataset: "mnist", net: "lenet5", bits: 2, ste: ste) }
        let a: [CellKey: CellResult] = [
            key("relu"): CellResult(key: key("relu"), accuracies: [99.0, 99.2, 99.1], losses: [0.01, 0.01, 0.01], testTotal: 10_000),
            key("clipped"): CellResult(key: key("clipped"), accuracies: [99.0, 99.1, 99.2], losses: [0.01, 0.01, 0.01], testTotal: 10_000),
            key("identity"): CellResult(key: key("identity"), accuracies: [98.0], losses: [0.02], testTotal: 10_000),
        ]
        let b: [CellKey: CellResult] = [
            key("relu"): CellResult(key: key("relu"), accuracies: [99.05, 99.15, 99.1], losses: [0.01, 0.01, 0.01], testTotal: 10_000),
            key("clipped"): CellResult(key: key("clipped"), accuracies: [97.0, 97.1, 97.2], losses: [0.03, 0.03, 0.03], testTotal: 10_000),
            key("log_tailed"): CellResult(key: key("log_tailed"), accuracies: [99.0], losses: [0.01], testTotal: 10_000),
        ]
        let rows = Dictionary(uniqueKeysWithValues: compareTables(a, b).map { ($0.ste, $0) })
        XCTAssertEqual(rows["relu"]?.verdict, "consistent")
        XCTAssertEqual(rows["clipped"]?.verdict, "lower")
        XCTAssertEqual(rows["clipped"]?.difference ?? 0, -2, accuracy: 1e-9)
        XCTAssertEqual(rows["identity"]?.verdict, "only in A")
        XCTAssertEqual(rows["log_tailed"]?.verdict, "only in B")
        let tolA = a[key("relu")]!.accuracyTolerance, tolB = b[key("relu")]!.accuracyTolerance
        XCTAssertEqual(rows["relu"]?.tolerance ?? 0, (tolA * tolA + tolB * tolB).squareRoot(), accuracy: 1e-12)
        XCTAssertTrue(isOurTable1(repositoryRoot + "/results/table1.csv"))
        XCTAssertFalse(isOurTable1(repositoryRoot + "/experiments/reference/yin2019-table1.csv"))
    }
}
