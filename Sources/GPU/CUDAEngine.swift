// The second engine: `TrainingEngine` (Training/Engine.swift) on an NVIDIA GPU, beside the CPU engine the way a CUDA
// file sits beside its C file. It walks the same NN layer tree as the CPU engine (Operations.swift), keeps
// parameters, BN statistics and optimizer state on the device, and syncs them with the host `Network` only for
// checkpoints, so checkpoints are the same files whichever engine wrote them. The data set is kept on the device and
// each batch built there (DeviceDataset.swift); a step runs forward, the loss (a thread per row, summed on the host
// in the CPU engine's order), backward and the update on one stream; same seed, same device → the same bits
// (deterministic kernels, pinned cuDNN algorithms, TF32 off unless asked for).
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

    /// The labels of the batch in flight, and the loss kernel's per-row results: the losses (doubles) then the hits
    /// (ints), read back in one copy.
    private var labels: DeviceBuffer?, rowResults: DeviceBuffer?
    /// The steps' CUDA graphs (Graphs.swift), and the latest forward pass's key and graph, for its backward pass.
    let graphs = StepGraphs()
    private var stepInFlight: (StepKey, StepGraph?)?
    /// The data sets kept on the device (the training and the test set), most recent last.
    private var datasets: [DeviceDataset] = []

    private func reserveRows(_ n: Int) {
        guard (labels?.bytes ?? 0) < 4 * n else { return }
        labels = DeviceBuffer(gpu, bytes: 4 * n)
        rowResults = DeviceBuffer(gpu, bytes: 12 * n)
    }

    /// The host batch uploaded as the input (checks and replays that hand the engine a batch).
    private func stage(_ batch: Batch) -> DeviceTensor {
        reserveRows(batch.count)
        let x = input.get(gpu, batch.x.shape)
        x.buffer.upload(batch.x)
        batch.labels.withUnsafeBytes { labels!.upload($0.baseAddress!, bytes: 4 * batch.count) }
        return x
    }

    /// Batch `index` of `epoch` built on the device from `batcher`'s data set, uploaded on its first use.
    private func stage(_ batcher: Batcher, epoch: Int, index: Int) -> DeviceTensor {
        reserveRows(batcher.batchSize)
        let dataset: DeviceDataset
        if let i = datasets.firstIndex(where: { $0.batcher === batcher }) {
            dataset = datasets.remove(at: i)
        } else {
            dataset = DeviceDataset(batcher, gpu)
            if datasets.count == 2 { datasets.removeFirst() }
        }
        datasets.append(dataset)
        return dataset.build(epoch: epoch, index: index, into: &input, labels: labels!).0
    }

    /// Forward of `x` (its labels in `labelBuffer`), the loss kernel, and the loss summed on the host.
    private func forwardAndLoss(_ x: DeviceTensor, labels labelBuffer: DeviceBuffer, training: Bool, gradient: Bool)
        -> (loss: Float, correct: Int) {
        let n = x.shape[0]
        reserveRows(n)
        let results = rowResults!.pointer
        let key = StepKey(input: x.pointer, labels: labelBuffer.pointer, shape: x.shape, training: training,
                          gradient: gradient)
        let (logits, graph) = graphs.forward(key, gpu, network) {
            let logits = root.forward(x, training: training)
            let d = gradient ? dlogits.get(gpu, logits.shape) : nil
            gpu.softmaxCrossEntropy(.blocks((n + 127) / 128, threads: 128), rowLoss: results,
                rowCorrect: results + 8 * n, dlogits: d?.pointer, logits: logits.pointer, labels: labelBuffer.pointer,
                batch: Int32(n), classes: Int32(logits.shape[1]))
            return logits
        }
        (dlogitsShape, lastLogits, stepInFlight) = (logits.shape, logits, (key, graph))
        var bytes = [UInt8](repeating: 0, count: 12 * n)
        bytes.withUnsafeMutableBytes { rowResults!.download($0.baseAddress!, bytes: 12 * n) }
        // The CPU engine's sum (Kernels/CrossEntropy.swift): rows in order, in double, then the mean as a float.
        return bytes.withUnsafeBytes { raw in
            var total = 0.0, correct = 0
            for i in 0..<n {
                total += raw.load(fromByteOffset: 8 * i, as: Double.self)
                correct += Int(raw.load(fromByteOffset: 8 * n + 4 * i, as: Int32.self))
            }
            return (Float(total * (1 / Double(n))), correct)
        }
    }

    /// Backward from the loss and the update, after a finite loss.
    private func finishStep(_ loss: Float, _ right: Int) -> StepResult {
        guard let optimizer else { preconditionFailure("CUDAEngine.trainStep before startOptimizer") }
        guard loss.isFinite else { return StepResult(loss: loss, correct: right, updated: false) }
        let (key, graph) = stepInFlight!
        graphs.backward(key, graph, gpu) { _ = root.backward(dlogits.get(gpu, dlogitsShape)) }
        optimizer.step(network.parameters, state)
        return StepResult(loss: loss, correct: right, updated: true)
    }

    public func trainStep(_ batch: Batch) -> StepResult {
        let (loss, right) = forwardAndLoss(stage(batch), labels: labels!, training: true, gradient: true)
        return finishStep(loss, right)
    }

    /// The training loop's step: the batch built on the device from the data set kept there.
    public func trainStep(_ batcher: Batcher, epoch: Int, index: Int) -> StepResult {
        let x = stage(batcher, epoch: epoch, index: index)
        let (loss, right) = forwardAndLoss(x, labels: labels!, training: true, gradient: true)
        return finishStep(loss, right)
    }

    /// A batch kept on the device for steps that reuse it (the benchmark's).
    public func resident(_ batch: Batch) -> ResidentBatch { ResidentBatch(batch, gpu) }

    public func trainStep(_ batch: ResidentBatch) -> StepResult {
        let (loss, right) = forwardAndLoss(batch.x, labels: batch.labels, training: true, gradient: true)
        return finishStep(loss, right)
    }

    /// An eval-mode forward pass and the loss of `batch`, finished on the device (the benchmark's eval step).
    public func forward(_ batch: ResidentBatch) {
        _ = forwardAndLoss(batch.x, labels: batch.labels, training: false, gradient: false)
    }

    /// Waits for the device's queued work.
    public func synchronize() { gpu.synchronize() }

    /// The logits of `batch` in eval mode (the checks).
    func evalLogits(_ batch: Batch) -> [Float] {
        _ = forwardAndLoss(stage(batch), labels: labels!, training: false, gradient: false)
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
            let x = stage(batcher, epoch: 0, index: i)
            let (loss, right) = forwardAndLoss(x, labels: labels!, training: batchStatistics, gradient: false)
            lossSum += Double(loss) * Double(x.shape[0])
            correct += right
            total += x.shape[0]
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
