// The Training module's pure parts: learning-rate schedules against a table, the Batcher
// (seeded shuffle, partial last batch, normalisation, crop-and-flip augmentation) and the
// optimizers over `[Parameter]` (decay flag, state export / import). In NNTests because
// KernelsTests does not depend on Training.
import Kernels
import NN
import Training
import XCTest

final class ScheduleTests: XCTestCase {
    func testScheduleTable() {
        let multi = LearningRateSchedule.multiStep(base: 0.1, milestones: [.epoch(80), .epoch(140)], gamma: 0.1)
        let fractions = LearningRateSchedule.multiStep(base: 0.1, milestones: [.fraction(0.5), .fraction(0.75)], gamma: 0.5)
        let cosine = LearningRateSchedule.cosine(base: 0.1, minimum: 0, perStep: false)
        let cosineSteps = LearningRateSchedule.cosine(base: 0.1, minimum: 0.001, perStep: true)
        // (schedule, epoch, step, stepsPerEpoch, total epochs, expected)
        let rows: [(LearningRateSchedule, Int, Int, Int, Int, Double)] = [
            (.constant(0.01), 0, 0, 10, 50, 0.01), (.constant(0.01), 49, 9, 10, 50, 0.01),
            (multi, 0, 0, 391, 200, 0.1), (multi, 79, 390, 391, 200, 0.1),
            (multi, 80, 0, 391, 200, 0.1 * 0.1), (multi, 139, 5, 391, 200, 0.1 * 0.1),
            (multi, 140, 0, 391, 200, 0.1 * 0.1 * 0.1), (multi, 199, 0, 391, 200, 0.1 * 0.1 * 0.1),
            // fractions of 50 epochs: 25 and 37.5 → 38
            (fractions, 24, 0, 1, 50, 0.1), (fractions, 25, 0, 1, 50, 0.05), (fractions, 37, 0, 1, 50, 0.05),
            (fractions, 38, 0, 1, 50, 0.025),
            (cosine, 0, 0, 10, 200, 0.1), (cosine, 0, 9, 10, 200, 0.1), (cosine, 50, 0, 10, 200, 0.085355339059327376),
            (cosine, 100, 0, 10, 200, 0.05), (cosine, 150, 0, 10, 200, 0.014644660940672627),
            (cosineSteps, 0, 5, 10, 1, 0.001 + 0.099 * 0.5), (cosineSteps, 0, 0, 10, 1, 0.1),
        ]
        for (i, row) in rows.enumerated() {
            let got = row.0.rate(epoch: row.1, step: row.2, stepsPerEpoch: row.3, totalEpochs: row.4)
            XCTAssertEqual(got, row.5, accuracy: 1e-15, "row \(i): \(row.0) at epoch \(row.1) step \(row.2)")
        }
        XCTAssertEqual(Milestone.fraction(0.4).epoch(totalEpochs: 200), 80)
        XCTAssertEqual(Milestone.fraction(0.7).epoch(totalEpochs: 200), 140)
    }
}

final class BatcherTests: XCTestCase {
    private func make(count: Int = 10, batch: Int = 4, shuffle: Bool = true, seed: UInt64 = 1,
                      augmentation: Augmentation = .none, c: Int = 1, h: Int = 2, w: Int = 2) throws -> Batcher {
        let images = (0..<(count * c * h * w)).map { UInt8($0 % 251) }
        let labels = (0..<count).map { UInt8($0 % 10) }
        return try Batcher(images: images, labels: labels, count: count, channels: c, height: h, width: w,
                           batchSize: batch, mean: [Float](repeating: 0.5, count: c),
                           std: [Float](repeating: 0.25, count: c), shuffle: shuffle, augmentation: augmentation, seed: seed)
    }

    func testShuffleIsSeededAndBatchesKeepThePartialLast() throws {
        let a = try make(), b = try make(), other = try make(seed: 2)
        XCTAssertEqual(a.batchesPerEpoch, 3)
        XCTAssertEqual(a.permutation(epoch: 0), b.permutation(epoch: 0))
        XCTAssertEqual(a.permutation(epoch: 0).sorted(), Array(0..<10))
        XCTAssertNotEqual(a.permutation(epoch: 0), a.permutation(epoch: 1))
        XCTAssertNotEqual(a.permutation(epoch: 0), other.permutation(epoch: 0))
        XCTAssertEqual(try make(shuffle: false).permutation(epoch: 3), Array(0..<10))
        var seen: [Int] = []
        for i in 0..<3 {
            let batch = a.batch(epoch: 0, index: i)
            XCTAssertEqual(batch.count, i < 2 ? 4 : 2)
            XCTAssertEqual(batch.x.shape, [batch.count, 1, 2, 2])
            XCTAssertEqual(batch.labels, batch.indices.map { Int32($0 % 10) })
            seen += batch.indices
        }
        XCTAssertEqual(seen, a.permutation(epoch: 0))
        // Resuming: a fresh batcher gives the same batch for (epoch, index) without replaying the run.
        XCTAssertEqual(b.batch(epoch: 2, index: 1).indices, a.batch(epoch: 2, index: 1).indices)
    }

    func testNormalisationIsTorchvisionArithmetic() throws {
        let batcher = try make(shuffle: false)
        let batch = batcher.batch(epoch: 0, index: 0)
        for i in 0..<16 {
            let pixel = Float(i % 251)
            XCTAssertEqual(batch.x[i], (pixel / 255 - 0.5) / 0.25)
        }
    }

    /// Each augmented image is one of the (2·4+1)² crops of the zero-padded image, maybe flipped; seeded.
    func testCropAndFlipAugmentation() throws {
        let (h, w, pad) = (8, 8, 4)
        let count = 64
        let a = try make(count: count, batch: 16, shuffle: false, seed: 9, augmentation: .cropAndFlip(padding: pad), h: h, w: w)
        let b = try make(count: count, batch: 16, shuffle: false, seed: 9, augmentation: .cropAndFlip(padding: pad), h: h, w: w)
        let plain = try make(count: count, batch: 16, shuffle: false, seed: 9, h: h, w: w)
        var flips = Set<Bool>(), tops = Set<Int>()
        let zero: Float = (0 - 0.5) / 0.25  // a zero (black) padding pixel after normalisation
        for index in 0..<4 {
            let x = a.batch(epoch: 0, index: index).x.array
            XCTAssertEqual(x, b.batch(epoch: 0, index: index).x.array, "seeded")
            let original = plain.batch(epoch: 0, index: index).x.array
            for r in 0..<16 {
                let out = Array(x[(r * h * w)..<((r + 1) * h * w)]), src = Array(original[(r * h * w)..<((r + 1) * h * w)])
                var matches: [(Int, Int, Bool)] = []
                for top in -pad...pad {
                    for left in -pad...pad {
                        for flip in [false, true] {
                            var ok = true
                            for i in 0..<h where ok {
                                for j in 0..<w {
                                    let si = i + top, sj = (flip ? w - 1 - j : j) + left
                                    let v = si >= 0 && si < h && sj >= 0 && sj < w ? src[si * w + sj] : zero
                                    if v != out[i * w + j] { ok = false; break }
                                }
                            }
                            if ok { matches.append((top, left, flip)) }
                        }
                    }
                }
                XCTAssertFalse(matches.isEmpty, "image \(r) of batch \(index) is no crop/flip of its source")
                if matches.count == 1 { flips.insert(matches[0].2); tops.insert(matches[0].0) }
            }
        }
        XCTAssertEqual(flips, [false, true])
        XCTAssertGreaterThan(tops.count, 4)
        XCTAssertNotEqual(a.batch(epoch: 1, index: 0).x.array, a.batch(epoch: 0, index: 0).x.array)
    }

    func testBadInputIsAnError() {
        XCTAssertThrowsError(try Batcher(images: [1, 2, 3], labels: [0], count: 1, channels: 1, height: 2, width: 2,
                                         batchSize: 1, mean: [0], std: [1], shuffle: false, seed: 0)) {
            XCTAssertTrue("\($0)".contains("3 image bytes"), "\($0)")
        }
        XCTAssertThrowsError(try Batcher(images: [1, 2, 3, 4], labels: [0, 1], count: 1, channels: 1, height: 2, width: 2,
                                         batchSize: 1, mean: [0], std: [1], shuffle: false, seed: 0))
        XCTAssertThrowsError(try Batcher(images: [1, 2, 3, 4], labels: [0], count: 1, channels: 1, height: 2, width: 2,
                                         batchSize: 1, mean: [0], std: [0], shuffle: false, seed: 0))
    }
}

final class OptimizerTests: XCTestCase {
    func testSGDOverParametersHonoursDecayAndMomentum() {
        let decayed = Parameter(name: "a.weight", value: Tensor([1], shape: [1]), grad: Tensor([1], shape: [1]), decay: true)
        let plain = Parameter(name: "a.bias", value: Tensor([1], shape: [1]), grad: Tensor([1], shape: [1]), decay: false)
        let sgd = SGD(parameters: [decayed, plain], learningRate: 0.1, momentum: 0.9, weightDecay: 0.5)
        sgd.step()
        XCTAssertEqual(decayed.value[0], 1 - 0.1 * 1.5, accuracy: 1e-7)
        XCTAssertEqual(plain.value[0], 0.9, accuracy: 1e-7)
        sgd.step()
        XCTAssertEqual(plain.value[0], 0.71, accuracy: 1e-6)  // the two-step hand example
        XCTAssertEqual(sgd.stepCount, 2)
    }

    func testStateExportImportRoundTrip() throws {
        func params() -> [Parameter] {
            [Parameter(name: "w", value: Tensor([1, 2], shape: [2]), grad: Tensor([0.5, -1], shape: [2]), decay: true)]
        }
        for make in [{ SGD(parameters: $0, learningRate: 0.1, momentum: 0.9) as Optimizer },
                     { Adam(parameters: $0, learningRate: 0.01) as Optimizer }] {
            let p1 = params(), p2 = params()
            let a = make(p1), b = make(p2)
            a.step()
            a.step()
            try b.importState(a.exportState())
            p2[0].value.copy(from: p1[0].value)
            a.step()
            b.step()
            XCTAssertEqual(p1[0].value.array, p2[0].value.array, "\(a.kind)")
            XCTAssertEqual(a.exportState(), b.exportState())
        }
        let sgd = SGD(parameters: params(), learningRate: 0.1, momentum: 0.9)
        XCTAssertThrowsError(try sgd.importState(OptimizerState(kind: "adam", step: 1, slots: [:])))
        XCTAssertThrowsError(try sgd.importState(OptimizerState(kind: "sgd", step: 1, slots: ["momentum_buffer": ["w": [1]]])))
    }
}

/// SGD splits its update over the workers (one share of every tensor each): 1, 2 and 3 workers give the same
/// bits over three steps (the first one creates the momentum buffers), with and without weight decay and momentum.
final class OptimizerSplitTests: XCTestCase {
    func testSGDUpdateGivesTheSameBitsForAnyWorkerCount() {
        let saved = Parallel.workers
        defer { Parallel.workers = saved }
        for momentum in [0.0, 0.9] {
            var results: [[[UInt32]]] = []
            for workers in [1, 2, 3] {
                Parallel.workers = workers
                var rng = SplitMix64(seed: 17)
                let params = [(40_001, true), (7, false), (25_000, true)].enumerated().map { i, spec in
                    Parameter(name: "p\(i)", value: Tensor((0..<spec.0).map { _ in rng.nextGaussian() }, shape: [spec.0]),
                              grad: Tensor(zeros: [spec.0]), decay: spec.1)
                }
                let sgd = SGD(parameters: params, learningRate: 0.1, momentum: momentum, weightDecay: 5e-4)
                for _ in 0..<3 {
                    for p in params { for i in 0..<p.grad.count { p.grad[i] = rng.nextGaussian() } }
                    sgd.step()
                }
                results.append(params.map { p in (0..<p.value.count).map { p.value[$0].bitPattern } })
            }
            XCTAssertEqual(results[1], results[0], "momentum \(momentum): 2 workers vs 1")
            XCTAssertEqual(results[2], results[0], "momentum \(momentum): 3 workers vs 1")
        }
    }
}

