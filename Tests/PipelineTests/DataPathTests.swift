// The data path of the deep nets on Fashion-MNIST, checked on its own (it is what a training batch and a test
// batch are made of): with augmentation switched off a training batch is, row for row, bit for bit the test
// pipeline's tensor of the same image; that tensor is torchvision's Pad(2) + ToTensor + Normalize computed
// independently here; and the augmented rows are RandomCrop(32, padding=4) + RandomHorizontalFlip of the padded
// image under the draws the batcher reports (`ste batches` exports the same draws for the PyTorch twin).
import Foundation
import TestSupport
import XCTest

@testable import Datasets
@testable import Experiments

final class DataPathTests: XCTestCase {
    override func setUpWithError() throws {
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(repositoryRoot))
    }

    /// Three 28×28 grey images of every pixel value, labels 0, 1, 2.
    private func split() -> DatasetSplit {
        let images: [UInt8] = (0..<(3 * 28 * 28)).map { (i: Int) -> UInt8 in UInt8(truncatingIfNeeded: i * 37 + i / 11) }
        return DatasetSplit(images: images, labels: [0, 1, 2], count: 3, channels: 1, height: 28, width: 28)
    }

    private func config(augment: Bool) throws -> RunConfig {
        let grid = try ExperimentConfig.load("experiments/fashion.yaml", profile: "cpu-budget")
        var run = try grid.runConfig(RunID("resnet20-a4-relu-s0")!, profile: "cpu-budget")
        run.augment = augment
        return run
    }

    /// torchvision: Pad(2) with fill 0, ToTensor (p / 255 in float32), Normalize ((x − mean) / std in float32).
    private func torchvisionTensor(_ s: DatasetSplit, _ i: Int, mean: Float, std: Float) -> [Float] {
        var out = [Float](repeating: (0 / 255 - mean) / std, count: 32 * 32)
        for r in 0..<28 {
            for c in 0..<28 { out[(r + 2) * 32 + c + 2] = (Float(s.images[i * 784 + r * 28 + c]) / 255 - mean) / std }
        }
        return out
    }

    func testTrainingBatchWithoutAugmentationIsTheTestTensorBitForBit() throws {
        let run = try config(augment: false)
        let data = LoadedData.padded(split(), to: run.padTo)
        XCTAssertEqual(run.padTo, 32)
        let train = try makeBatcher(data, run, batchSize: 3, training: true)
        let test = try makeBatcher(data, run, batchSize: 3, training: false)
        let trainBatch = train.batch(epoch: 0, index: 0), testBatch = test.batch(epoch: 0, index: 0)
        XCTAssertNotEqual(trainBatch.indices, [0, 1, 2], "training batches are shuffled")
        let (mean, std) = (Float(run.mean[0]), Float(run.std[0]))
        for (row, i) in trainBatch.indices.enumerated() {
            let trainRow = Array(trainBatch.x.array[(row * 1024)..<((row + 1) * 1024)])
            let testRow = Array(testBatch.x.array[(i * 1024)..<((i + 1) * 1024)])
            XCTAssertEqual(trainRow.map(\.bitPattern), testRow.map(\.bitPattern), "image \(i)")
            XCTAssertEqual(testRow.map(\.bitPattern), torchvisionTensor(split(), i, mean: mean, std: std).map(\.bitPattern),
                           "image \(i): torchvision's Pad + ToTensor + Normalize")
            XCTAssertEqual(trainBatch.labels[row], Int32(i))
        }
    }

    func testAugmentedRowsAreTorchvisionCropAndFlipOfTheReportedDraws() throws {
        let run = try config(augment: true)
        let data = LoadedData.padded(split(), to: run.padTo)
        let train = try makeBatcher(data, run, batchSize: 3, training: true)
        let (mean, std) = (Float(run.mean[0]), Float(run.std[0]))
        var seen = Set<[Int]>()
        for epoch in 0..<40 {
            let batch = train.batch(epoch: epoch, index: 0)
            let draws = train.augmentationDraws(epoch: epoch, index: 0, count: batch.count)
            for (row, i) in batch.indices.enumerated() {
                let (top, left, flip) = draws[row]
                seen.insert([top, left, flip ? 1 : 0])
                // RandomCrop(32, padding=4): the padded image padded again by 4, cropped at (top + 4, left + 4);
                // then the flip mirrors the crop.
                let padded = torchvisionTensor(split(), i, mean: mean, std: std), zero = (0 / 255 - mean) / std
                var expected = [Float](repeating: 0, count: 1024)
                for r in 0..<32 {
                    for c in 0..<32 {
                        let (sr, sc) = (r + top, (flip ? 31 - c : c) + left)
                        expected[r * 32 + c] = (0..<32).contains(sr) && (0..<32).contains(sc) ? padded[sr * 32 + sc] : zero
                    }
                }
                let got = Array(batch.x.array[(row * 1024)..<((row + 1) * 1024)])
                XCTAssertEqual(got.map(\.bitPattern), expected.map(\.bitPattern), "epoch \(epoch), image \(i)")
            }
        }
        XCTAssertGreaterThan(seen.count, 60, "the draws cover the 9 × 9 × 2 crops and flips")
    }
}
