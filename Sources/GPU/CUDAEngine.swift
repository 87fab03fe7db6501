// The second engine: `TrainingEngine` (Training/Engine.swift) on an NVIDIA GPU, beside the CPU engine the way a CUDA
// file sits beside its C file. It walks the same NN layer tree as the CPU engine (Operations.swift), keeps
// parameters, BN statistics and optimizer state on the device, and syncs them with the host `Network` only for
// checkpoints, so checkpoints are the same files whichever engine wrote them. Each step uploads its batch, runs
// forward, the loss (a thread per row, summed on the host in the CPU engine's order), backward and the update on one
// stream; same seed, same device → the same bits (deterministic kernels, pinned cuDNN algorithms, TF32 off unless
// asked for).
import Kernels
import NN
import Training

public final class CUDAEngine: TrainingEngine {
    public let network: Network
    let gpu: ComputeDevice
    let state: DeviceState
    let root: DeviceOperation
    public var device: String { gpu.description }

    private var spec: OptimizerSpec?
    /// The host optimizer checkpoints read (its state is downloaded into it by `hostState`).
    private var hostOptimizer: Optimizer?
    /// Per parameter: SGD's momentum buffer, or Adam's two moments; `hasMomentum`: SGD's buffer exists (PyTorch:
    /// not before the first step).
    private var slots: [[DeviceBuffer]] = []
    private var hasMomentum: [Bool] = []
    private var steps = 0
    public var learningRate: Double = 0

    private var input = ReusableDeviceTensor(), dlogits = ReusableDeviceTensor()
    /// The shape of the latest logits (their gradient's), and the logits (the checks read them).
    private var dlogitsShape: [Int] = []
    private(set) var lastLogits: DeviceTensor?
    private var labels: DeviceBuffer?, rowLoss: DeviceBuffer?, rowCorrect: DeviceBuffer?

    public convenience init(network: Network, optimizer: OptimizerSpec?, gpu: CUDADevice) throws {
        try self.init(network: network, optimizer: optimizer, device: gpu)
    }

    /// On any `ComputeDevice` (the tests' host emulation too).
    init(network: Network, optimizer: OptimizerSpec?, device gpu: ComputeDevice) throws {
        self.network = network
        self.gpu = gpu
        state = DeviceState(gpu, network: network)
        root = try makeOperation(network.root, state)
        uploadTensors()
        if let optimizer { startOptimizer(optimizer) }
    }

    private func uploadTensors() {
        for p in network.parameters { state.value(p.value).upload(p.value) }
        for b in network.buffers { state.value(b.value).upload(b.value) }
    }

    public func startOptimizer(_ spec: OptimizerSpec) {
        self.spec = spec
        let counts = network.parameters.map(\.value.count)
        switch spec {
        case .sgd(let lr, _, _):
            learningRate = lr
            slots = counts.map { [DeviceBuffer(gpu, floats: $0)] }
        case .adam(let lr, _):
            learningRate = lr
            slots = counts.map { n in [DeviceBuffer(gpu, floats: n), DeviceBuffer(gpu, floats: n)] }
            slots.flatMap { $0 }.forEach { $0.zero() }
        }
        hasMomentum = counts.map { _ in false }
        steps = 0
        hostOptimizer = nil
    }

    /// Uploads the batch, runs the forward pass and the loss; returns the logits' loss and correct count.
    private func forwardAndLoss(_ batch: Batch, training: Bool, gradient: Bool) -> (loss: Float, correct: Int) {
        let x = input.get(gpu, batch.x.shape)
        x.buffer.upload(batch.x)
        let n = batch.count
        if (labels?.bytes ?? 0) < 4 * n {
            labels = DeviceBuffer(gpu, bytes: 4 * n)
            rowLoss = DeviceBuffer(gpu, bytes: 8 * n)
            rowCorrect = DeviceBuffer(gpu, bytes: 4 * n)
        }
        batch.labels.withUnsafeBytes { labels!.upload($0.baseAddress!, bytes: 4 * n) }
        let logits = root.forward(x, training: training)
        let classes = logits.shape[1]
        dlogitsShape = logits.shape
        lastLogits = logits
        let d = gradient ? dlogits.get(gpu, logits.shape) : nil
        gpu.launch("softmax_cross_entropy", blocks: (n + 127) / 128, threads: 128, [
            .pointer(rowLoss!.pointer), .pointer(rowCorrect!.pointer), .pointer(d?.pointer), .pointer(logits.pointer),
            .pointer(labels!.pointer), .int(Int32(n)), .int(Int32(classes))])
        var losses = [Double](repeating: 0, count: n), correct = [Int32](repeating: 0, count: n)
        losses.withUnsafeMutableBytes { rowLoss!.download($0.baseAddress!, bytes: 8 * n) }
        correct.withUnsafeMutableBytes { rowCorrect!.download($0.baseAddress!, bytes: 4 * n) }
        // The CPU engine's sum (Kernels/CrossEntropy.swift): rows in order, in double, then the mean as a float.
        var total = 0.0
        for l in losses { total += l }
        return (Float(total * (1 / Double(n))), correct.reduce(0) { $0 + Int($1) })
    }

    public func trainStep(_ batch: Batch) -> StepResult {
        guard let spec else { preconditionFailure("CUDAEngine.trainStep before startOptimizer") }
        let (loss, right) = forwardAndLoss(batch, training: true, gradient: true)
        guard loss.isFinite else { return StepResult(loss: loss, correct: right, updated: false) }
        _ = root.backward(dlogits.get(gpu, dlogitsShape))
        steps += 1
        for (i, p) in network.parameters.enumerated() {
            let (w, g, n) = (state.value(p.value).pointer, state.grad(p).pointer, p.value.count)
            switch spec {
            case .sgd(_, let momentum, let wd):
                gpu.launchElementwise("sgd_update", count: n, [
                    .pointer(w), .pointer(g), .pointer(slots[i][0].pointer), .long(n), .float(Float(learningRate)),
                    .float(Float(momentum)), .float(p.decay ? Float(wd) : 0), .int(hasMomentum[i] ? 0 : 1)])
                hasMomentum[i] = momentum != 0
            case .adam(_, let wd):
                let (beta1, beta2, epsilon) = (0.9, 0.999, 1e-8)  // torch.optim.Adam's defaults, as Training.Adam
                let t = Double(steps)
                gpu.launchElementwise("adam_update", count: n, [
                    .pointer(w), .pointer(g), .pointer(slots[i][0].pointer), .pointer(slots[i][1].pointer), .long(n),
                    .float(Float(learningRate / (1 - pow(beta1, t)))), .float(Float((1 - pow(beta2, t)).squareRoot())),
                    .float(Float(1 - beta1)), .float(Float(1 - beta2)), .float(Float(beta2)), .float(Float(epsilon)),
                    .float(p.decay ? Float(wd) : 0)])
            }
        }
        return StepResult(loss: loss, correct: right, updated: true)
    }


    /// An eval-mode forward pass and the loss of `batch`, finished on the device (the benchmark's eval step).
    public func forward(_ batch: Batch) { _ = forwardAndLoss(batch, training: false, gradient: false) }

    /// Waits for the device's queued work.
    public func synchronize() { gpu.synchronize() }

    /// The logits of `batch` in eval mode (the checks).
    func evalLogits(_ batch: Batch) -> [Float] {
        _ = forwardAndLoss(batch, training: false, gradient: false)
        return download(lastLogits!)
    }

    func download(_ t: DeviceTensor) -> [Float] {
        var v = [Float](repeating: 0, count: t.count)
        v.withUnsafeMutableBytes { t.buffer.download($0.baseAddress!, bytes: 4 * t.count) }
        return v
    }

    func gradient(of p: Parameter) -> [Float] { download(DeviceTensor(buffer: state.grad(p), shape: [p.value.count])) }

    public func evaluate(_ batcher: Batcher, batchStatistics: Bool) -> Evaluation {
        // Train-mode passes update the running statistics: keep them and put them back.
        var saved: [(DeviceBuffer, DeviceBuffer)] = []
        if batchStatistics {
            for b in network.buffers {
                let v = state.value(b.value), copy = DeviceBuffer(gpu, bytes: v.bytes)
                copy.copy(from: v, bytes: v.bytes)
                saved.append((v, copy))
            }
        }
        var lossSum = 0.0, correct = 0, total = 0
        for i in 0..<batcher.batchesPerEpoch {
            let batch = batcher.batch(epoch: 0, index: i)
            let (loss, right) = forwardAndLoss(batch, training: batchStatistics, gradient: false)
            lossSum += Double(loss) * Double(batch.count)
            correct += right
            total += batch.count
        }
        for (v, copy) in saved { v.copy(from: copy, bytes: v.bytes) }
        return Evaluation(loss: lossSum / Double(total), accuracy: 100 * Double(correct) / Double(total), correct: correct,
                          total: total)
    }

    public func hostState() -> (network: Network, optimizer: Optimizer?) {
        for p in network.parameters { state.value(p.value).download(into: p.value) }
        for b in network.buffers { state.value(b.value).download(into: b.value) }
        guard let spec else { return (network, nil) }
        func values(_ buffer: DeviceBuffer, _ count: Int) -> [Float] {
            var v = [Float](repeating: 0, count: count)
            v.withUnsafeMutableBytes { buffer.download($0.baseAddress!, bytes: 4 * count) }
            return v
        }
        let optimizer: Optimizer
        var slotValues: [String: [String: [Float]]] = [:]
        switch spec {
        case .sgd(let lr, let momentum, let wd):
            optimizer = SGD(parameters: network.parameters, learningRate: lr, momentum: momentum, weightDecay: wd)
            var m: [String: [Float]] = [:]
            for (i, p) in network.parameters.enumerated() where hasMomentum[i] { m[p.name] = values(slots[i][0], p.value.count) }
            slotValues["momentum_buffer"] = m
        case .adam(let lr, let wd):
            optimizer = Adam(parameters: network.parameters, learningRate: lr, weightDecay: wd)
            var m: [String: [Float]] = [:], v: [String: [Float]] = [:]
            for (i, p) in network.parameters.enumerated() {
                m[p.name] = values(slots[i][0], p.value.count)
                v[p.name] = values(slots[i][1], p.value.count)
            }
            (slotValues["exp_avg"], slotValues["exp_avg_sq"]) = (m, v)
        }
        do {
            try optimizer.importState(OptimizerState(kind: optimizer.kind, step: steps, slots: slotValues))
        } catch {
            fatalError("CUDA engine: the device's optimizer state does not fit the host optimizer: \(error)")
        }
        optimizer.learningRate = learningRate
        hostOptimizer = optimizer
        return (network, optimizer)
    }

    public func hostStateChanged() {
        uploadTensors()
        guard let optimizer = hostOptimizer else { return }
        let exported = optimizer.exportState()
        steps = exported.step
        learningRate = optimizer.learningRate
        for (i, p) in network.parameters.enumerated() {
            let names = optimizer.kind == "sgd" ? ["momentum_buffer"] : ["exp_avg", "exp_avg_sq"]
            for (k, slot) in names.enumerated() {
                if let v = exported.slots[slot]?[p.name] {
                    v.withUnsafeBytes { slots[i][k].upload($0.baseAddress!, bytes: 4 * v.count) }
                    if optimizer.kind == "sgd" { hasMomentum[i] = true }
                } else if optimizer.kind == "sgd" {
                    hasMomentum[i] = false
                }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
