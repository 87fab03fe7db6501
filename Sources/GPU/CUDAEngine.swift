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
    /// CUDA's, cuDNN's and cuBLAS's versions (not the CPU libraries': nothing of the step runs on them).
    public var libraries: [String: String] { gpu.recordedLibraries }

    /// SGD or Adam on the device (DeviceOptimizer.swift); nil until `startOptimizer`.
    private var optimizer: DeviceOptimizer?
    public var learningRate: Double {
        get { optimizer?.learningRate ?? 0 }
        set { optimizer?.learningRate = newValue }
    }

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
        optimizer = DeviceOptimizer(spec, parameters: network.parameters, layout: state.layout, gpu)
    }

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
        gpu.softmaxCrossEntropy(.blocks((n + 127) / 128, threads: 128), rowLoss: rowLoss!.pointer,
            rowCorrect: rowCorrect!.pointer, dlogits: d?.pointer, logits: logits.pointer, labels: labels!.pointer,
            batch: Int32(n), classes: Int32(classes))
        var losses = [Double](repeating: 0, count: n), correct = [Int32](repeating: 0, count: n)
        losses.withUnsafeMutableBytes { rowLoss!.download($0.baseAddress!, bytes: 8 * n) }
        correct.withUnsafeMutableBytes { rowCorrect!.download($0.baseAddress!, bytes: 4 * n) }
        // The CPU engine's sum (Kernels/CrossEntropy.swift): rows in order, in double, then the mean as a float.
        var total = 0.0
        for l in losses { total += l }
        return (Float(total * (1 / Double(n))), correct.reduce(0) { $0 + Int($1) })
    }

    public func trainStep(_ batch: Batch) -> StepResult {
        guard let optimizer else { preconditionFailure("CUDAEngine.trainStep before startOptimizer") }
        let (loss, right) = forwardAndLoss(batch, training: true, gradient: true)
        guard loss.isFinite else { return StepResult(loss: loss, correct: right, updated: false) }
        _ = root.backward(dlogits.get(gpu, dlogitsShape))
        optimizer.step(network.parameters, state)
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
        guard let optimizer else { return (network, nil) }
        return (network, optimizer.hostOptimizer(network.parameters))
    }

    public func hostStateChanged() {
        uploadTensors()
        optimizer?.hostChanged(network.parameters)
    }
}

#if canImport(Glibc)
import Glibc
#endif
