// The CUDA engine run whole on the host emulation of its device (EmulatedDevice.swift): the checks `ste gpu-check`
// runs on a GPU — kinks, one and two SGD steps of every net of the PyTorch fixture file against PyTorch and the CPU
// engine, determinism, a checkpoint trained on the device evaluated on the CPU — and the training loop driving it
// through a resume. What fails here is a bug of the engine's own code (operations, kernels, optimizer, syncs), found
// without a GPU.
import Backends
import Foundation
import Kernels
import NN
import Storage
import TestSupport
import Training
import XCTest

@testable import GPU

final class EmulatedEngineTests: XCTestCase {
    nonisolated(unsafe) static var device: EmulatedDevice?
    var device: EmulatedDevice!

    override func setUpWithError() throws {
        if Self.device == nil { Self.device = try EmulatedDevice.make() }
        device = Self.device
        setComputeThreads(2)
    }

    /// The stand-in NVRTC says what it is: it shares NVIDIA's soname, so after this suite a lookup of NVRTC by soname
    /// in this process returns it, and the tests that need NVIDIA's NVRTC (GPULibraryTests) skip on this marker.
    func testTheStandInNVRTCCarriesItsMarker() throws {
        let standIn = try XCTUnwrap(dlopen(EmulatedDevice.folder + "/nvidia/libnvrtc.so.13", RTLD_NOW | RTLD_NOLOAD),
            "the emulated device loaded the stand-in NVRTC")
        XCTAssertNotNil(dlsym(standIn, EmulatedDevice.standInNVRTCMarker))
        XCTAssertNotNil(dlopen("libnvrtc.so.13", RTLD_NOW | RTLD_NOLOAD), "a lookup by soname finds an NVRTC once loaded")
    }

    func testTheGPUChecksPassOnTheEmulatedDevice() throws {
        var report = GPUCheckReport()
        GPUChecks.run(on: device, fixtures: repositoryRoot + "/Tests/NNTests/Fixtures/nets.h5", &report)
        for line in report.lines where line.hasPrefix("FAIL") { print(line) }
        XCTAssertEqual(report.failures, 0, report.lines.filter { $0.hasPrefix("FAIL") }.prefix(10).joined(separator: "\n"))
        XCTAssertGreaterThan(report.lines.filter { $0.hasPrefix("PASS parity") }.count, 50)
        XCTAssertEqual(report.lines.filter { $0.hasPrefix("PASS determinism") }.count, 3)
        XCTAssertEqual(report.lines.filter { $0.hasPrefix("PASS transfer") }.count, 2)
    }

    /// The loop over the device engine: three epochs straight, or one epoch, a checkpoint, a fresh engine restored
    /// from it (optimizer state included) and two more — the same bits; and close to the CPU engine's history.
    func testTheTrainerResumesTheDeviceEngineBitForBit() throws {
        let act = Activation.quantized(QuantizerSpec(bits: 2, alpha: defaultAlpha(bits: 2)!), .clipped)
        var rng = SplitMix64(seed: 4)
        let count = 256
        let labels = (0..<count).map { _ in UInt8(rng.next(below: 10)) }
        let images = (0..<(count * 784)).map { i in UInt8(min(255, Int(labels[i / 784]) * 20 + Int(rng.next(below: 60)))) }
        func batcher(_ training: Bool) throws -> Batcher {
            try Batcher(images: images, labels: labels, count: count, channels: 1, height: 28, width: 28, batchSize: 64,
                        mean: [0.3], std: [0.3], shuffle: training, augmentation: .none, seed: 2)
        }
        let phases = [TrainingPhase(epochs: 3, optimizer: .adam(learningRate: 1e-3, weightDecay: 1e-4),
                                    schedule: .multiStep(base: 1e-3, milestones: [.epoch(2)], gamma: 0.1))]
        func trainer(_ engine: TrainingEngine) throws -> Trainer {
            try Trainer(engine: engine, phases: phases, trainBatches: batcher(true), testBatches: batcher(false), label: "t",
                        quiet: true)
        }
        let straightNet = makeNetwork(named: "lenet5", activation: act, seed: 1)
        let straightEngine = try CUDAEngine(network: straightNet, optimizer: phases[0].optimizer, device: device)
        XCTAssertEqual(straightEngine.libraries, device.recordedLibraries, "a CUDA run records its device's libraries")
        XCTAssertNil(straightEngine.libraries["onednn"], "and not the CPU's, which it does not run on")
        XCTAssertNotNil(CPUEngine(network: straightNet).libraries["onednn"])
        let straight = try trainer(straightEngine)
        XCTAssertEqual(try straight.train(from: 0), .completed)

        let firstNet = makeNetwork(named: "lenet5", activation: act, seed: 1)
        let firstEngine = try CUDAEngine(network: firstNet, optimizer: phases[0].optimizer, device: device)
        let first = try trainer(firstEngine)
        first.epochEnded = { $0 < 1 }
        XCTAssertEqual(try first.train(from: 0), .stopped(epoch: 1))
        let folder = try TemporaryFolder("emulated-resume")
        defer { folder.remove() }
        let state = firstEngine.hostState()
        try Checkpoint.save(to: folder.path + "/resume.h5", network: state.network, optimizer: state.optimizer,
                            configuration: "{}", seed: 1, epoch: 1, step: state.optimizer!.stepCount)
        let resumedNet = makeNetwork(named: "lenet5", activation: act, seed: 99)
        let resumedEngine = try CUDAEngine(network: resumedNet, optimizer: phases[0].optimizer, device: device)
        let resumed = try trainer(resumedEngine)
        resumed.prepareToContinue(after: 1, history: first.history)
        let host = resumedEngine.hostState()
        try Checkpoint.restore(from: folder.path + "/resume.h5", network: host.network, optimizer: host.optimizer)
        resumedEngine.hostStateChanged()
        XCTAssertEqual(try resumed.train(from: 1), .completed)
        XCTAssertEqual(resumed.history.trainLoss, straight.history.trainLoss)
        XCTAssertEqual(resumed.history.testAccuracy, straight.history.testAccuracy)
        let a = straight.engine.hostState().network, b = resumedEngine.hostState().network
        for (p, q) in zip(a.parameters, b.parameters) { XCTAssertEqual(bitPatterns(p.value), bitPatterns(q.value), p.name) }
        for (p, q) in zip(a.buffers, b.buffers) { XCTAssertEqual(bitPatterns(p.value), bitPatterns(q.value), p.name) }

        let cpu = try trainer(CPUEngine(network: makeNetwork(named: "lenet5", activation: act, seed: 1), optimizer: phases[0].optimizer))
        XCTAssertEqual(try cpu.train(from: 0), .completed)
        for (g, c) in zip(straight.history.trainLoss, cpu.history.trainLoss) {
            XCTAssertEqual(g, c, accuracy: 2e-3 * abs(c), "train loss, device vs CPU engine")
        }
    }

    /// A repel run's starting point is measured in train mode without moving the running statistics.
    func testTrainModeEvaluationLeavesTheStatisticsAlone() throws {
        let net = makeNetwork(named: "resnet20", activation: .float, seed: 2, inputChannels: 1)
        let engine = try CUDAEngine(network: net, optimizer: nil, device: device)
        var rng = SplitMix64(seed: 1)
        let images = (0..<(16 * 1024)).map { _ in UInt8(rng.next(below: 256)) }
        let batcher = try Batcher(images: images, labels: (0..<16).map { UInt8($0 % 10) }, count: 16, channels: 1, height: 32,
                                  width: 32, batchSize: 8, mean: [0.5], std: [0.25], shuffle: false, augmentation: .none, seed: 0)
        let before = engine.hostState().network.buffers.map { bitPatterns($0.value) }
        let trainMode = engine.evaluate(batcher, batchStatistics: true)
        XCTAssertEqual(engine.hostState().network.buffers.map { bitPatterns($0.value) }, before)
        let cpu = CPUEngine(network: makeNetwork(named: "resnet20", activation: .float, seed: 2, inputChannels: 1))
        let reference = cpu.evaluate(batcher, batchStatistics: true)
        XCTAssertEqual(trainMode.loss, reference.loss, accuracy: 1e-4 * abs(reference.loss))
        XCTAssertEqual(trainMode.correct, reference.correct)
    }
    /// The batches the device builds from the data set kept there are the host batcher's, bit for bit: crops at every
    /// offset (zero padding included), flips, several channels, a short last batch, reshuffled epochs.
    func testBatchesBuiltOnTheDeviceAreTheHostBatchersBits() throws {
        var rng = SplitMix64(seed: 8)
        let (count, c, h, w) = (13, 3, 6, 5)
        let images = (0..<(count * c * h * w)).map { _ in UInt8(rng.next(below: 256)) }
        let labels = (0..<count).map { _ in UInt8(rng.next(below: 10)) }
        for augmentation in [Augmentation.none, .cropAndFlip(padding: 4)] {
            let batcher = try Batcher(images: images, labels: labels, count: count, channels: c, height: h, width: w,
                batchSize: 5, mean: [0.4, 0.5, 0.6], std: [0.2, 0.25, 0.3], shuffle: true, augmentation: augmentation,
                seed: 3)
            let dataset = DeviceDataset(batcher, device)
            var x = ReusableDeviceTensor()
            let deviceLabels = DeviceBuffer(device, bytes: 4 * batcher.batchSize)
            var flips = 0
            for epoch in 0..<3 {
                for index in 0..<batcher.batchesPerEpoch {
                    let (tensor, rows) = dataset.build(epoch: epoch, index: index, into: &x, labels: deviceLabels)
                    var pixels = [Float](repeating: 0, count: tensor.count)
                    pixels.withUnsafeMutableBytes { tensor.buffer.download($0.baseAddress!, bytes: $0.count) }
                    var gathered = [Int32](repeating: -1, count: rows)
                    gathered.withUnsafeMutableBytes { deviceLabels.download($0.baseAddress!, bytes: $0.count) }
                    let host = batcher.batch(epoch: epoch, index: index)
                    XCTAssertEqual(tensor.shape, host.x.shape)
                    XCTAssertEqual(pixels.map(\.bitPattern), bitPatterns(host.x), "\(augmentation) epoch \(epoch) batch \(index)")
                    XCTAssertEqual(gathered, host.labels)
                    flips += batcher.augmentationDraws(epoch: epoch, index: index, count: rows).filter(\.flip).count
                }
            }
            if augmentation != .none { XCTAssertGreaterThan(flips, 0, "the draws include flips") }
        }
    }
    /// A step launched as its two captured graphs computes what the step run directly does, bit for bit: the same
    /// losses, parameters, statistics and optimizer state, through short batches, eval passes between and a resize.
    func testGraphReplayedStepsAreTheDirectStepsBits() throws {
        let act = Activation.quantized(QuantizerSpec(bits: 4, alpha: defaultAlpha(bits: 4)!), .relu)
        var rng = SplitMix64(seed: 6)
        let count = 20
        let images = (0..<(count * 1024)).map { _ in UInt8(rng.next(below: 256)) }
        let labels = (0..<count).map { _ in UInt8(rng.next(below: 10)) }
        func batcher(_ size: Int, shuffle: Bool) throws -> Batcher {
            try Batcher(images: images, labels: labels, count: count, channels: 1, height: 32, width: 32, batchSize: size,
                        mean: [0.5], std: [0.25], shuffle: shuffle, augmentation: .cropAndFlip(padding: 4), seed: 1)
        }
        var runs: [(losses: [Float], tests: [Double], network: Network, launches: Int)] = []
        for graphsOn in [false, true] {
            let net = makeNetwork(named: "resnet20", activation: act, seed: 3, inputChannels: 1)
            let engine = try CUDAEngine(network: net, optimizer: .sgd(learningRate: 0.05, momentum: 0.9, weightDecay: 1e-4),
                                        device: device)
            engine.graphs.enabled = graphsOn
            let (train, test) = (try batcher(8, shuffle: true), try batcher(10, shuffle: false))
            let launchesBefore = device.graphLaunches
            var losses: [Float] = [], tests: [Double] = []
            for epoch in 0..<3 {
                for i in 0..<train.batchesPerEpoch { losses.append(engine.trainStep(train, epoch: epoch, index: i).loss) }
                tests.append(engine.evaluate(test, batchStatistics: false).loss)
            }
            runs.append((losses, tests, engine.hostState().network, device.graphLaunches - launchesBefore))
        }
        XCTAssertEqual(runs[0].launches, 0)
        XCTAssertGreaterThan(runs[1].launches, 10, "the graphs were launched")
        XCTAssertEqual(runs[1].losses.map(\.bitPattern), runs[0].losses.map(\.bitPattern))
        XCTAssertEqual(runs[1].tests, runs[0].tests)
        for (p, q) in zip(runs[0].network.parameters, runs[1].network.parameters) {
            XCTAssertEqual(bitPatterns(p.value), bitPatterns(q.value), p.name)
        }
        for (p, q) in zip(runs[0].network.buffers, runs[1].network.buffers) {
            XCTAssertEqual(bitPatterns(p.value), bitPatterns(q.value), p.name)
        }
    }
}
