// The seam between the training loop and the device that computes: the loop (Trainer.swift) drives a
// `TrainingEngine` and nothing else — one step on a batch, an evaluation pass, a fresh optimizer per
// phase, the learning rate — so a second engine (another device) plugs in by implementing this protocol,
// without touching the loop. `CPUEngine` is the first engine: a `Network` of NN layers and an `Optimizer`.
// Checkpoints are written from and restored into an engine's host state (a `Network` with PyTorch's
// parameter names), so every engine reads and writes the same files.
import Backends
import Kernels
import NN

/// Which optimizer a phase trains with; each engine builds its own from it.
public enum OptimizerSpec: Sendable, Equatable {
    /// torch.optim.SGD (Optimizer.swift).
    case sgd(learningRate: Double, momentum: Double, weightDecay: Double)
    /// torch.optim.Adam with its default betas and epsilon.
    case adam(learningRate: Double, weightDecay: Double)
}

/// One training step's mean loss and correct count, measured in the forward pass before the update.
public struct StepResult: Sendable {
    public var loss: Float
    public var correct: Int
    /// false when the loss was not finite: no backward pass and no update were made.
    public var updated: Bool

    public init(loss: Float, correct: Int, updated: Bool) { (self.loss, self.correct, self.updated) = (loss, correct, updated) }
}

/// Mean loss (no weight decay), accuracy (%) and counts over a split.
public struct Evaluation: Sendable, Equatable {
    public var loss: Double
    public var accuracy: Double
    public var correct: Int
    public var total: Int

    public init(loss: Double, accuracy: Double, correct: Int, total: Int) {
        (self.loss, self.accuracy, self.correct, self.total) = (loss, accuracy, correct, total)
    }
}

/// What the training loop needs from a device.
public protocol TrainingEngine: AnyObject {
    /// Where it computes ("cpu"), recorded in every output file.
    var device: String { get }
    /// The compute libraries it runs on and their versions ("onednn" → "3.x", or CUDA's, cuDNN's and cuBLAS's),
    /// recorded in every output file's provenance.
    var libraries: [String: String] { get }
    /// Replaces the optimizer (and its state) with a fresh one.
    func startOptimizer(_ spec: OptimizerSpec)
    /// The rate of the next steps (Double, as PyTorch's Python float).
    var learningRate: Double { get set }
    /// Forward in train mode, softmax cross-entropy and, when the loss is finite, backward and an update
    /// (the optimizer must have been started).
    func trainStep(_ batch: Batch) -> StepResult
    /// `trainStep` on batch `index` of `epoch` of `batcher` (the training loop's call): an engine that keeps the
    /// data set in its own memory builds the batch there; by default the batcher builds it on the host.
    func trainStep(_ batcher: Batcher, epoch: Int, index: Int) -> StepResult
    /// One pass over `batcher`'s epoch-0 batches without updating. `batchStatistics`: batch norm in train mode
    /// (batch statistics), its running statistics left exactly as they were; otherwise in eval mode.
    func evaluate(_ batcher: Batcher, batchStatistics: Bool) -> Evaluation
    /// The net and optimizer (nil before `startOptimizer`) as host tensors, current as of the last step: what
    /// checkpoints are written from and restored into.
    func hostState() -> (network: Network, optimizer: Optimizer?)
    /// After the host state was overwritten (a checkpoint restored into it), the engine computes from it.
    func hostStateChanged()
}

extension TrainingEngine {
    public func trainStep(_ batcher: Batcher, epoch: Int, index: Int) -> StepResult {
        trainStep(batcher.batch(epoch: epoch, index: index))
    }
}

/// The CPU engine: NN's layers (Kernels, oneDNN, OpenBLAS) and the optimizers of Optimizer.swift.
public final class CPUEngine: TrainingEngine {
    public let network: Network
    /// nil until `startOptimizer` (an engine that only evaluates has none).
    public private(set) var optimizer: Optimizer?
    public var device: String { "cpu" }
    public var libraries: [String: String] { computeLibraryVersions() }
    /// Reused between steps (its shape changes only for a short last batch).
    private var dlogits: Tensor?

    public init(network: Network, optimizer: OptimizerSpec? = nil) {
        self.network = network
        self.optimizer = optimizer.map { CPUEngine.makeOptimizer($0, network) }
    }

    static func makeOptimizer(_ spec: OptimizerSpec, _ network: Network) -> Optimizer {
        switch spec {
        case .sgd(let lr, let momentum, let wd):
            return SGD(parameters: network.parameters, learningRate: lr, momentum: momentum, weightDecay: wd)
        case .adam(let lr, let wd):
            return Adam(parameters: network.parameters, learningRate: lr, weightDecay: wd)
        }
    }

    public func startOptimizer(_ spec: OptimizerSpec) { optimizer = CPUEngine.makeOptimizer(spec, network) }

    public var learningRate: Double {
        get { optimizer?.learningRate ?? 0 }
        set { optimizer!.learningRate = newValue }
    }

    public func trainStep(_ batch: Batch) -> StepResult {
        network.zeroGrad()
        let logits = network.forward(batch.x, training: true)
        if dlogits?.shape != logits.shape { dlogits = Tensor(zeros: logits.shape) }
        let (loss, right) = batch.labels.withUnsafeBufferPointer {
            softmaxCrossEntropy(logits: logits.readBuffer, labels: $0, batch: batch.count,
                classes: logits.shape[1], dlogits: dlogits!.buffer)
        }
        guard loss.isFinite else { return StepResult(loss: loss, correct: right, updated: false) }
        network.backward(dlogits!)
        optimizer!.step()
        return StepResult(loss: loss, correct: right, updated: true)
    }

    public func evaluate(_ batcher: Batcher, batchStatistics: Bool) -> Evaluation {
        let saved = batchStatistics ? network.buffers.map { $0.value.clone() } : []
        var lossSum = 0.0, correct = 0, total = 0
        for i in 0..<batcher.batchesPerEpoch {
            let batch = batcher.batch(epoch: 0, index: i)
            let logits = network.forward(batch.x, training: batchStatistics)
            let (loss, right) = batch.labels.withUnsafeBufferPointer {
                softmaxCrossEntropy(logits: logits.readBuffer, labels: $0, batch: batch.count,
                    classes: logits.shape[1], dlogits: nil)
            }
            lossSum += Double(loss) * Double(batch.count)
            correct += right
            total += batch.count
        }
        for (buffer, copy) in zip(network.buffers, saved) { buffer.value.copy(from: copy) }
        return Evaluation(loss: lossSum / Double(total), accuracy: 100 * Double(correct) / Double(total),
            correct: correct, total: total)
    }

    public func hostState() -> (network: Network, optimizer: Optimizer?) { (network, optimizer) }
    public func hostStateChanged() {}
}
