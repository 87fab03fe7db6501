// `ste gpu-check`: what proves the CUDA engine on a GPU machine (scripts/gpu-check.sh runs it there), since the
// XCTest suite cannot run where there is no Swift toolchain. Each check prints PASS or FAIL with its largest
// difference and tolerance:
// - kinks: the quantizer and every STE at x = 0, L·α and their float neighbours, bit for bit against the CPU kernels;
// - parity: one (and where the fixture has it, a second) SGD step of every net in the PyTorch fixture file
//   (Tests/NNTests/Fixtures/nets.h5, written by tools/make_fixtures.py): logits, loss, every gradient, the parameters
//   and BN statistics after the step, the eval logits — against PyTorch and against the CPU engine;
// - determinism: two engines from the same start, five steps each, the same bits;
// - transfer: a LeNet-5 trained on the GPU and saved as a checkpoint: restored on the GPU, the same parameters and
//   evaluation bit for bit; evaluated by the CPU engine, within 1 % of the images and 1 % of the loss (another
//   summation order moves a few 2-bit activations across a quantizer step, so exact agreement is not expected).
// Tolerances (elementwise |a − b| ≤ atol + rtol·|b|): logits 1e-4 + 1e-5, loss 1e-5 relative, gradients 1e-3 +
// 1e-4, parameters and statistics after a step 1e-4 + 1e-5 — ten times the CPU engine's against PyTorch
// (Tests/NNTests/NetParityTests.swift), for cuDNN's and cuBLAS's other summation orders.
import Foundation
import Kernels
import NN
import Storage
import Training

public struct GPUCheckReport {
    public var lines: [String] = []
    public var failures = 0
    /// Print each line as it is recorded (and flush), so that the log of a run that crashes holds every check before.
    public var echo = false
    public init(echo: Bool = false) { self.echo = echo }
    mutating func record(_ ok: Bool, _ text: String) {
        note((ok ? "PASS " : "FAIL ") + text)
        if !ok { failures += 1 }
    }
    mutating func note(_ line: String) {
        lines.append(line)
        if echo {
            print(line)
            fflush(stdout)
        }
    }
}

/// Largest elementwise excess over the tolerance (≤ 0: within), and the largest difference.
func compare(_ a: [Float], _ b: [Float], rtol: Float, atol: Float) -> (ok: Bool, maxDiff: Float) {
    guard a.count == b.count else { return (false, .infinity) }
    var ok = true, worst: Float = 0
    for (x, y) in zip(a, b) {
        let d = abs(x - y)
        if !(d <= atol + rtol * abs(y)) { ok = false }
        worst = max(worst, d.isNaN ? .infinity : d)
    }
    return (ok, worst)
}

public enum GPUChecks {
    static let logits: (Float, Float) = (1e-4, 1e-5)
    static let grads: (Float, Float) = (1e-3, 1e-4)
    static let after: (Float, Float) = (1e-4, 1e-5)

    public static func run(gpu: CUDADevice, fixtures: String, echo: Bool = false) -> GPUCheckReport {
        var report = GPUCheckReport(echo: echo)
        gpu.recordsErrors = true
        do { report.note("libraries: " + (try gpu.libraryVersions())) } catch { report.record(false, "libraries: \(error)") }
        report.note("device: \(gpu.description), \(gpu.multiprocessors) SMs, nominal float32 peak "
            + String(format: "%.1f", gpu.float32PeakGFLOPS / 1000) + " TFLOP/s; kernels loaded as \(gpu.kernelImage)")
        run(on: gpu, fixtures: fixtures, &report)
        // The cuDNN algorithm of every convolution pass the checks ran (ConvolutionAlgorithms.swift).
        for line in gpu.convolutionChoices { report.note("cuDNN: " + line) }
        return report
    }

    /// The checks on any device (the tests run them on the host emulation).
    static func run(on gpu: ComputeDevice, fixtures: String, _ report: inout GPUCheckReport) {
        // A device error inside a check fails that check (its numbers are meaningless) and the next ones still run.
        func deviceErrors(_ check: String) {
            if let e = gpu.pendingError() { report.record(false, "\(check): device error: \(e)") }
        }
        kinks(gpu, &report)
        deviceErrors("kinks")
        do { try parity(gpu, fixtures: fixtures, &report) } catch { report.record(false, "parity: \(error)") }
        deviceErrors("parity")
        do { try determinism(gpu, &report) } catch { report.record(false, "determinism: \(error)") }
        deviceErrors("determinism")
        do { try deviceBatches(gpu, &report) } catch { report.record(false, "data set on the device: \(error)") }
        deviceErrors("data set on the device")
        do { try transfer(gpu, &report) } catch { report.record(false, "transfer: \(error)") }
        deviceErrors("transfer")
    }

    /// The quantizer and the STEs at their kinks, on the GPU's ActivationOperation and the CPU kernels.
    static func kinks(_ gpu: ComputeDevice, _ report: inout GPUCheckReport) {
        for bits in [2, 4] {
            for rounding in Rounding.allCases {
                let spec = QuantizerSpec(bits: bits, alpha: bits == 2 ? 0.5 : 0.1946, rounding: rounding)
                var points: [Float] = [0, -0, spec.top, spec.alpha, spec.alpha / 2, 3 * spec.alpha / 2, -1, 10]
                points += points.flatMap { [$0.nextUp, $0.nextDown] }
                for ste in STE.allCases {
                    let layer = QReLU(.quantized(spec, ste))
                    let op = ActivationOperation(layer, gpu)
                    let x = Tensor(points, shape: [points.count])
                    let dx = DeviceBuffer(gpu, floats: points.count)
                    dx.upload(x)
                    let y = op.forward(DeviceTensor(buffer: dx, shape: [points.count]), training: true)
                    let dyHost = Tensor((0..<points.count).map { Float($0 % 5) - 2 }, shape: [points.count])
                    let dyDevice = DeviceBuffer(gpu, floats: points.count)
                    dyDevice.upload(dyHost)
                    let g = op.backward(DeviceTensor(buffer: dyDevice, shape: [points.count]))
                    let (cpuY, cpuG) = (Tensor(zeros: [points.count]), Tensor(zeros: [points.count]))
                    quantizedReLUForward(cpuY.buffer, x.readBuffer, spec: spec)
                    quantizedReLUBackward(cpuG.buffer, dyHost.readBuffer, x.readBuffer, spec: spec, ste: ste, accumulate: false)
                    let (gy, gg) = (Tensor(zeros: [points.count]), Tensor(zeros: [points.count]))
                    y.buffer.download(into: gy)
                    g.buffer.download(into: gg)
                    let same = gy.array.map(\.bitPattern) == cpuY.array.map(\.bitPattern)
                        && gg.array.map(\.bitPattern) == cpuG.array.map(\.bitPattern)
                    report.record(same, "kinks \(bits)-bit \(rounding) \(ste): quantizer and STE bit for bit with the CPU kernels")
                }
            }
        }
    }

    static func activation(_ r: H5Reader, _ g: String, variant: String) throws -> Activation {
        if variant == "float" { return .float }
        let bits = Int(try r.attribute("bits", on: g).intValue!)
        let alpha = Float(try r.attribute("alpha", on: g).doubleValue!)
        let ste = STE(rawValue: try r.stringAttribute("ste", on: g))!
        let rounding = Rounding(rawValue: try r.stringAttribute("rounding", on: g))!
        return .quantized(QuantizerSpec(bits: bits, alpha: alpha, rounding: rounding), ste)
    }

    static func makeNet(_ net: String, _ activation: Activation) -> Network {
        net == "vgg11_w8" ? makeVGG11(activation: activation, seed: 1, widthDivisor: 8)
            : makeNetwork(named: net, activation: activation, seed: 1)
    }

    static func parity(_ gpu: ComputeDevice, fixtures: String, _ report: inout GPUCheckReport) throws {
        let r = try H5Reader(path: fixtures)
        for (net, _) in try r.children(of: "/") {
            for (variant, kind) in try r.children(of: "/\(net)") where kind == .group && variant != "params" && variant != "buffers" {
                let g = "/\(net)/\(variant)"
                let act = try activation(r, g, variant: variant)
                func load(_ n: Network) throws {
                    for p in n.parameters { p.set(try r.read("/\(net)/params/\(p.name)", as: Float.self).values) }
                    for b in n.buffers {
                        let v = try r.read("/\(net)/buffers/\(b.name)", as: Float.self).values
                        v.withUnsafeBufferPointer { b.value.pointer.update(from: $0.baseAddress!, count: b.value.count) }
                    }
                }
                let (gpuNet, cpuNet) = (makeNet(net, act), makeNet(net, act))
                try load(gpuNet)
                try load(cpuNet)
                let (xv, xs) = try r.read("\(g)/x", as: Float.self)
                let labels = try r.read("\(g)/labels", as: Int64.self).values.map { Int32($0) }
                let batch = Batch(x: Tensor(xv, shape: xs), labels: labels, indices: Array(0..<labels.count))
                let sgd = OptimizerSpec.sgd(learningRate: 0.1, momentum: 0.9, weightDecay: 1e-4)
                let engine = try CUDAEngine(network: gpuNet, optimizer: sgd, device: gpu)
                let cpu = CPUEngine(network: cpuNet, optimizer: sgd)
                let name = "parity \(net)/\(variant)"
                func check(_ what: String, _ got: [Float], _ path: String, _ cpuValues: [Float]?, _ tol: (Float, Float)) throws {
                    let expected = try r.read(path, as: Float.self).values
                    let (ok, d) = compare(got, expected, rtol: tol.0, atol: tol.1)
                    var text = "\(name) \(what): max |GPU − PyTorch| \(d) (rtol \(tol.0), atol \(tol.1))"
                    var okCPU = true
                    if let c = cpuValues {
                        let (o, dc) = compare(got, c, rtol: tol.0, atol: tol.1)
                        okCPU = o
                        text += ", max |GPU − CPU| \(dc)"
                    }
                    report.record(ok && okCPU, text)
                }
                let step = engine.trainStep(batch)
                let gpuLogits = engine.download(engine.lastLogits!)
                let cpuStep = cpu.trainStep(batch)
                try check("logits", gpuLogits, "\(g)/logits", nil, logits)
                let lossRef = try r.read("\(g)/loss", as: Float.self).values[0]
                report.record(abs(step.loss - lossRef) <= 1e-5 * abs(lossRef) && abs(step.loss - cpuStep.loss) <= 1e-5 * abs(lossRef),
                              "\(name) loss: GPU \(step.loss), PyTorch \(lossRef), CPU \(cpuStep.loss)")
                let host = engine.hostState()
                for p in host.network.parameters {
                    let cpuGrad = cpuNet.parameters.first { $0.name == p.name }!.grad.array
                    try check("grad \(p.name)", engine.gradient(of: p), "\(g)/grads/\(p.name)", cpuGrad, grads)
                }
                for p in host.network.parameters {
                    let c = cpuNet.parameters.first { $0.name == p.name }!.value.array
                    try check("\(p.name) after the step", p.value.array, "\(g)/params_after/\(p.name)", c, after)
                }
                for b in host.network.buffers {
                    let c = cpuNet.buffers.first { $0.name == b.name }!.value.array
                    try check("\(b.name) after the step", b.value.array, "\(g)/buffers_after/\(b.name)", c, after)
                }
                try check("eval logits", engine.evalLogits(batch), "\(g)/eval_logits",
                          cpuNet.forward(batch.x, training: false).array, logits)
                if let steps = try? r.attribute("steps", on: g).intValue, steps >= 2 {
                    let second = engine.trainStep(batch)
                    let loss2 = try r.read("\(g)/loss2", as: Float.self).values[0]
                    report.record(abs(second.loss - loss2) <= 1e-4 * abs(loss2), "\(name) loss after one step: GPU \(second.loss), PyTorch \(loss2)")
                    let host2 = engine.hostState()
                    for p in host2.network.parameters {
                        try check("\(p.name) after two steps", p.value.array, "\(g)/params_after2/\(p.name)", nil, after)
                    }
                }
            }
        }
    }

    /// A fixed random batch of `net`'s input shape.
    static func randomBatch(_ net: String, count: Int, seed: UInt64) -> Batch {
        var rng = SplitMix64(seed: seed)
        let shape = [count] + (inputShape(ofNetwork: net) ?? [1, 28, 28])
        let x = Tensor((0..<shape.reduce(1, *)).map { _ in rng.nextGaussian() }, shape: shape)
        return Batch(x: x, labels: (0..<count).map { _ in Int32(rng.next(below: 10)) }, indices: Array(0..<count))
    }

    static func determinism(_ gpu: ComputeDevice, _ report: inout GPUCheckReport) throws {
        for net in ["lenet5", "resnet20", "vgg11"] {
            let act = Activation.quantized(QuantizerSpec(bits: 2, alpha: defaultAlpha(bits: 2)!), .clipped)
            var runs: [[UInt32]] = []
            // A third run without graphs for the two nets whose steps differ in kind (VGG-11's adds nothing to them).
            for graphs in net == "vgg11" ? [true, true] : [true, true, false] {
                let n = makeNetwork(named: net, activation: act, seed: 3)
                let engine = try CUDAEngine(network: n, optimizer: .sgd(learningRate: 0.01, momentum: 0.9, weightDecay: 1e-4), device: gpu)
                engine.graphs.enabled = graphs
                let batch = randomBatch(net, count: net == "lenet5" ? 64 : 32, seed: 5)
                for _ in 0..<5 { _ = engine.trainStep(batch) }
                let host = engine.hostState()
                runs.append(host.network.parameters.flatMap { $0.value.array.map(\.bitPattern) }
                    + host.network.buffers.flatMap { $0.value.array.map(\.bitPattern) })
            }
            report.record(runs[0] == runs[1], "determinism \(net): two runs of 5 steps, parameters and BN statistics bit for bit")
            guard runs.count == 3 else { continue }
            report.record(runs[0] == runs[2], "graphs \(net): 5 steps, the last 4 as captured CUDA graphs, equal the steps "
                + "run directly, bit for bit")
        }
    }

    /// Batches built on the device from the data set kept there (crops, flips, three channels, a short last batch)
    /// against the host batcher's, bit for bit.
    static func deviceBatches(_ gpu: ComputeDevice, _ report: inout GPUCheckReport) throws {
        var rng = SplitMix64(seed: 11)
        let (count, c, h, w) = (50, 3, 32, 32)
        let images = (0..<(count * c * h * w)).map { _ in UInt8(rng.next(below: 256)) }
        let labels = (0..<count).map { _ in UInt8(rng.next(below: 10)) }
        let batcher = try Batcher(images: images, labels: labels, count: count, channels: c, height: h, width: w,
            batchSize: 16, mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26], shuffle: true,
            augmentation: .cropAndFlip(padding: 4), seed: 5)
        let dataset = DeviceDataset(batcher, gpu)
        var x = ReusableDeviceTensor()
        let deviceLabels = DeviceBuffer(gpu, bytes: 4 * batcher.batchSize)
        var same = true
        for epoch in 0..<2 {
            for index in 0..<batcher.batchesPerEpoch {
                let (tensor, rows) = dataset.build(epoch: epoch, index: index, into: &x, labels: deviceLabels)
                var pixels = [Float](repeating: 0, count: tensor.count), gathered = [Int32](repeating: -1, count: rows)
                pixels.withUnsafeMutableBytes { tensor.buffer.download($0.baseAddress!, bytes: $0.count) }
                gathered.withUnsafeMutableBytes { deviceLabels.download($0.baseAddress!, bytes: $0.count) }
                let host = batcher.batch(epoch: epoch, index: index)
                same = same && pixels.map(\.bitPattern) == host.x.array.map(\.bitPattern) && gathered == host.labels
            }
        }
        report.record(same, "data set on the device: 2 epochs of crop + flip batches built there equal the host batcher's, "
            + "bit for bit")
    }

    /// A LeNet-5 trained 30 steps on the GPU, checkpointed, evaluated on both engines.
    static func transfer(_ gpu: ComputeDevice, _ report: inout GPUCheckReport) throws {
        let act = Activation.quantized(QuantizerSpec(bits: 2, alpha: defaultAlpha(bits: 2)!), .clipped)
        let trained = makeNetwork(named: "lenet5", activation: act, seed: 7)
        let engine = try CUDAEngine(network: trained, optimizer: .sgd(learningRate: 0.05, momentum: 0.9, weightDecay: 1e-4), device: gpu)
        var rng = SplitMix64(seed: 9)
        let count = 1024
        let labels = (0..<count).map { _ in UInt8(rng.next(below: 10)) }
        // Images whose mean brightness encodes the label, so 30 steps learn something.
        let images = (0..<(count * 784)).map { i in UInt8(min(255, Int(labels[i / 784]) * 20 + Int(rng.next(below: 60)))) }
        let batcher = try Batcher(images: images, labels: labels, count: count, channels: 1, height: 28, width: 28, batchSize: 64,
                                  mean: [0.3], std: [0.3], shuffle: false, augmentation: .none, seed: 1)
        for step in 0..<30 { _ = engine.trainStep(batcher.batch(epoch: 0, index: step % batcher.batchesPerEpoch)) }
        let gpuEval = engine.evaluate(batcher, batchStatistics: false)
        let host = engine.hostState()
        let file = NSTemporaryDirectory() + "ste-gpu-check-\(getpid()).h5"
        defer { unlink(file) }
        try Checkpoint.save(to: file, network: host.network, optimizer: host.optimizer, configuration: "{}", seed: 7, epoch: 1,
                            step: 30)
        func bits(_ n: Network) -> [UInt32] {
            n.parameters.flatMap { $0.value.array.map(\.bitPattern) } + n.buffers.flatMap { $0.value.array.map(\.bitPattern) }
        }
        // The round trip on the GPU: bit for bit.
        let again = makeNetwork(named: "lenet5", activation: act, seed: 98)
        try Checkpoint.restore(from: file, network: again, optimizer: nil)
        let gpuAgain = try CUDAEngine(network: again, optimizer: nil, device: gpu).evaluate(batcher, batchStatistics: false)
        report.record(bits(again) == bits(host.network) && gpuAgain.correct == gpuEval.correct && gpuAgain.loss == gpuEval.loss,
                      "transfer: LeNet-5 trained on the GPU, checkpoint restored on the GPU: parameters, statistics and "
                      + "evaluation bit for bit (\(gpuAgain.correct) correct, loss \(gpuAgain.loss))")
        // The CPU engine on the same checkpoint: within 1 % of the images and 1 % of the loss.
        let restored = makeNetwork(named: "lenet5", activation: act, seed: 99)
        try Checkpoint.restore(from: file, network: restored, optimizer: nil)
        let cpuEval = CPUEngine(network: restored).evaluate(batcher, batchStatistics: false)
        report.record(abs(cpuEval.correct - gpuEval.correct) <= count / 100 && abs(cpuEval.loss - gpuEval.loss) <= 0.01 * max(1, abs(gpuEval.loss)),
                      "transfer: the same checkpoint evaluated on the CPU: accuracy \(cpuEval.accuracy) % (GPU \(gpuEval.accuracy) %; "
                      + "tolerance 1 % of \(count) images), loss \(cpuEval.loss) (GPU \(gpuEval.loss); tolerance 1 %)")
    }
}
