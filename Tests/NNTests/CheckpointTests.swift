// Checkpoints: a run saved after k steps and restored into a fresh network and optimizer continues
// bit-identically (SGD with momentum, and Adam); the HDF5 layout (Keras-like /params/<layer>/<name>,
// /buffers, /optimizer/<kind>/<slot>/...) and root attributes; errors name the file.
import Foundation
import Kernels
import NN
import Storage
import Training
import TestSupport
import XCTest

final class CheckpointTests: XCTestCase {
    var folder: String!
    var temporary: TemporaryFolder!

    override func setUpWithError() throws {
        temporary = try TemporaryFolder("ckpt")
        folder = temporary.path
    }

    override func tearDownWithError() throws { temporary.remove() }

    private func batcher() throws -> Batcher {
        let data = syntheticDataset(count: 40, channels: 1, height: 28, width: 28, seed: 3)
        return try Batcher(images: data.images, labels: data.labels, count: 40, channels: 1, height: 28, width: 28,
                           batchSize: 16, mean: [0.1307], std: [0.3081], shuffle: true, seed: 21)
    }

    private let activation = Activation.quantized(QuantizerSpec(bits: 4, alpha: 0.1946, rounding: .ceil), .clipped)
    private let schedule = LearningRateSchedule.multiStep(base: 0.05, milestones: [.epoch(2)], gamma: 0.1)

    private func resumeIsBitIdentical(makeOptimizer: (Network) -> Optimizer) throws {
        // Reference: 8 uninterrupted steps (3 batches per epoch: the resume point is mid-epoch).
        let path = folder + "/ckpt.h5"
        let a = makeLeNet5(activation: activation, seed: 1)
        let optA = makeOptimizer(a)
        let feedA = try batcher()
        trainSteps(a, optA, feedA, from: 0, count: 4, schedule: schedule)
        try Checkpoint.save(to: path, network: a, optimizer: optA, configuration: "{\"test\":1}", seed: 21,
                            epoch: 1, step: 4)
        trainSteps(a, optA, feedA, from: 4, count: 4, schedule: schedule)

        // Restored: another init seed, a fresh optimizer and batcher.
        let b = makeLeNet5(activation: activation, seed: 999)
        let optB = makeOptimizer(b)
        let info = try Checkpoint.restore(from: path, network: b, optimizer: optB)
        XCTAssertEqual(info, CheckpointInfo(configuration: "{\"test\":1}", seed: 21, epoch: 1, step: 4))
        XCTAssertEqual(optB.stepCount, 4)
        trainSteps(b, optB, try batcher(), from: info.step, count: 4, schedule: schedule)

        let sa = stateBits(a), sb = stateBits(b)
        XCTAssertEqual(sa.keys.sorted(), sb.keys.sorted())
        for key in sa.keys.sorted() { XCTAssertEqual(sa[key], sb[key], "\(key) differs after resume") }
        XCTAssertEqual(optA.exportState(), optB.exportState())
    }

    func testSGDResumeIsBitIdentical() throws {
        try resumeIsBitIdentical { SGD(parameters: $0.parameters, learningRate: 0.05, momentum: 0.9, weightDecay: 1e-4) }
    }

    func testAdamResumeIsBitIdentical() throws {
        try resumeIsBitIdentical { Adam(parameters: $0.parameters, learningRate: 1e-3, weightDecay: 1e-4) }
    }

    func testLayoutAndAttributes() throws {
        let path = folder + "/layout.h5"
        let net = makeLeNet5(activation: .float, seed: 2)
        let sgd = SGD(parameters: net.parameters, learningRate: 0.1, momentum: 0.9)
        trainSteps(net, sgd, try batcher(), from: 0, count: 1)
        try Checkpoint.save(to: path, network: net, optimizer: sgd, stage: "pretrain", configuration: "cfg",
                            seed: UInt64.max, epoch: 0, step: 1) { w in try w.setAttribute("extra", .int(7), on: "/") }
        let r = try H5Reader(path: path)
        XCTAssertEqual(Checkpoint.path("/params", "features.0.weight"), "/params/features.0/weight")
        XCTAssertEqual(try r.shape(of: "/params/features.0/weight"), [6, 1, 5, 5])
        XCTAssertEqual(try r.shape(of: "/params/classifier.6/bias"), [10])
        XCTAssertEqual(try r.shape(of: "/buffers/features.1/running_mean"), [6])
        XCTAssertEqual(try r.shape(of: "/optimizer/sgd/momentum_buffer/features.0/weight"), [6, 1, 5, 5])
        XCTAssertEqual(try r.attribute("step", on: "/optimizer/sgd"), .int(1))
        XCTAssertEqual(try r.stringAttribute("stage"), "pretrain")
        XCTAssertEqual(try r.stringAttribute("seed"), String(UInt64.max))
        XCTAssertEqual(try r.stringAttribute("network"), "lenet5")
        XCTAssertEqual(try r.attribute("extra"), .int(7))
        XCTAssertNotNil(try r.attributes(on: "/")["code_version"])
        XCTAssertEqual(try r.read("/params/features.0/weight", as: Float.self).values, net.parameters[0].value.array)
    }

    func testRestoreErrorsNameTheFile() throws {
        let path = folder + "/lenet.h5"
        let net = makeLeNet5(activation: .float, seed: 2)
        try Checkpoint.save(to: path, network: net, optimizer: nil, configuration: "", seed: 1, epoch: 0, step: 0)
        let other = makeResNet20(activation: .float, seed: 2)
        XCTAssertThrowsError(try Checkpoint.restore(from: path, network: other, optimizer: nil)) { error in
            XCTAssertTrue("\(error)".contains(path), "\(error)")
        }
        // No optimizer state saved, one requested.
        let sgd = SGD(parameters: net.parameters, learningRate: 0.1)
        XCTAssertThrowsError(try Checkpoint.restore(from: path, network: net, optimizer: sgd)) { error in
            XCTAssertTrue("\(error)".contains("sgd"), "\(error)")
        }
        XCTAssertThrowsError(try Checkpoint.restore(from: folder + "/absent.h5", network: net, optimizer: nil))
    }

    /// A checkpoint holding NaN or ±Inf in a parameter, a buffer or the optimizer state is refused where it enters,
    /// naming the tensor (a diverged run is recorded as such and never checkpointed).
    func testNonFiniteValuesAreRefusedWithTheTensorsName() throws {
        let net = makeLeNet5(activation: .float, seed: 2)
        let sgd = SGD(parameters: net.parameters, learningRate: 0.1)
        for p in net.parameters { p.grad.buffer.initialize(repeating: 0.5) }
        sgd.step()
        let cases: [(String, () -> Void, () -> Void)] = [
            ("/params/features.0/weight", { net.parameters[0].value.buffer[3] = .nan }, { net.parameters[0].value.buffer[3] = 0.1 }),
            ("/buffers/features.1/running_var", { net.buffers[1].value.buffer[0] = .infinity }, { net.buffers[1].value.buffer[0] = 1 }),
        ]
        for (object, spoil, mend) in cases {
            let path = folder + "/nan.h5"
            spoil()
            try Checkpoint.save(to: path, network: net, optimizer: sgd, configuration: "", seed: 1, epoch: 1, step: 1)
            mend()
            let fresh = makeLeNet5(activation: .float, seed: 3)
            XCTAssertThrowsError(try Checkpoint.restore(from: path, network: fresh, optimizer: nil)) { error in
                XCTAssertTrue("\(error)".hasPrefix("\(path): \(object): holds a non-finite value"), "\(error)")
            }
        }
        XCTAssertEqual(net.buffers[1].name, "features.1.running_var")
    }
}
