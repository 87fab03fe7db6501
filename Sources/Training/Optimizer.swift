// Optimizers over a network's `[Parameter]`: SGD with momentum and Adam, both with PyTorch's
// semantics (torch.optim.SGD / Adam, L2 weight decay added to the gradient, applied only to
// parameters with `decay`). State (momentum buffers, moments, step count) exports to and imports
// from `OptimizerState` for checkpoints. The element loops are in Kernels/OptimizerKernels.swift.
import Kernels
import NN

/// An optimizer's state, keyed for checkpoints: slot ("momentum_buffer", "exp_avg", ...) →
/// parameter name → values. A parameter missing from a slot has no state yet (PyTorch: buffer None).
public struct OptimizerState: Equatable, Sendable {
    public var kind: String
    public var step: Int
    public var slots: [String: [String: [Float]]]

    public init(kind: String, step: Int, slots: [String: [String: [Float]]]) {
        self.kind = kind
        self.step = step
        self.slots = slots
    }
}

public struct OptimizerError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public protocol Optimizer: AnyObject {
    /// "sgd" or "adam": the group name below /optimizer in checkpoints.
    var kind: String { get }
    var parameters: [Parameter] { get }
    /// Set by the training loop from the schedule before each step. Double, as PyTorch's Python float.
    var learningRate: Double { get set }
    /// Completed steps.
    var stepCount: Int { get }
    /// Updates every parameter from its `grad` (does not zero the gradients).
    func step()
    func exportState() -> OptimizerState
    /// Restores state exported by an optimizer of the same kind over parameters of the same names and sizes.
    func importState(_ state: OptimizerState) throws
}

/// torch.optim.SGD: d = g + wd·w; buf = d (first step) or μ·buf + d; w −= lr·buf (nesterov: lr·(d + μ·buf)).
public final class SGD: Optimizer {
    /// The checkpoint slot of its state (PyTorch's name); the GPU engine's optimizer keeps the same.
    public static let slotNames = ["momentum_buffer"]
    public let kind = "sgd"
    public let parameters: [Parameter]
    public var learningRate: Double
    public let momentum: Double
    public let weightDecay: Double
    public let nesterov: Bool
    public private(set) var stepCount = 0
    /// One buffer per parameter, nil until its first step.
    private var buffers: [Tensor?]

    public init(parameters: [Parameter], learningRate: Double, momentum: Double = 0.9, weightDecay: Double = 0,
                nesterov: Bool = false) {
        precondition(!nesterov || momentum > 0, "nesterov needs momentum")
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        buffers = Array(repeating: nil, count: parameters.count)
    }

    public func step() {
        var tensors: [(weight: UnsafeMutableBufferPointer<Float>, grad: UnsafeBufferPointer<Float>,
                       buffer: UnsafeMutableBufferPointer<Float>, decay: Float, first: Bool)] = []
        for (i, p) in parameters.enumerated() {
            let first = buffers[i] == nil
            if momentum != 0 && first { buffers[i] = Tensor(zeros: p.value.shape) }
            tensors.append((p.value.buffer, p.grad.readBuffer, buffers[i]?.buffer ?? UnsafeMutableBufferPointer(start: nil, count: 0),
                            p.decay ? Float(weightDecay) : 0, first))
        }
        let (lr, mu, nesterov) = (Float(learningRate), Float(momentum), nesterov)
        nonisolated(unsafe) let work = tensors
        // Elementwise, so any split gives the same bits: each worker takes its share of every tensor, in one
        // parallel region, and updates the rows of the gradients it mostly wrote itself.
        Parallel.forEachShare(ofElements: tensors.reduce(0) { $0 + $1.weight.count }) { part, parts in
            for t in work {
                let r = Parallel.share(part, of: parts, count: t.weight.count)
                guard !r.isEmpty else { continue }
                sgdUpdate(UnsafeMutableBufferPointer(rebasing: t.weight[r]), grad: UnsafeBufferPointer(rebasing: t.grad[r]),
                          momentumBuffer: mu == 0 ? t.buffer : UnsafeMutableBufferPointer(rebasing: t.buffer[r]),
                          learningRate: lr, momentum: mu, weightDecay: t.decay, nesterov: nesterov, firstStep: t.first)
            }
        }
        stepCount += 1
    }

    public func exportState() -> OptimizerState {
        var slot: [String: [Float]] = [:]
        for (p, b) in zip(parameters, buffers) { if let b { slot[p.name] = b.array } }
        return OptimizerState(kind: kind, step: stepCount, slots: ["momentum_buffer": slot])
    }

    public func importState(_ state: OptimizerState) throws {
        guard state.kind == kind else { throw OptimizerError("optimizer state is \(state.kind), expected \(kind)") }
        let slot = state.slots["momentum_buffer"] ?? [:]
        var restored: [Tensor?] = []
        for p in parameters {
            guard let values = slot[p.name] else { restored.append(nil); continue }
            guard values.count == p.value.count else {
                throw OptimizerError("momentum_buffer of \(p.name): \(values.count) values for \(p.value.shape)")
            }
            restored.append(Tensor(values, shape: p.value.shape))
        }
        let known = Set(parameters.map(\.name))
        if let stray = slot.keys.sorted().first(where: { !known.contains($0) }) {
            throw OptimizerError("optimizer state names unknown parameter \(stray)")
        }
        buffers = restored
        stepCount = state.step
    }
}

/// torch.optim.Adam (amsgrad off): L2 weight decay added to the gradient, bias-corrected moments.
public final class Adam: Optimizer {
    /// torch.optim.Adam's defaults, the ones every engine uses.
    public static let defaults = (beta1: 0.9, beta2: 0.999, epsilon: 1e-8)
    /// The checkpoint slots of its state (PyTorch's names), first and second moment.
    public static let slotNames = ["exp_avg", "exp_avg_sq"]
    public let kind = "adam"
    public let parameters: [Parameter]
    public var learningRate: Double
    public let beta1: Double, beta2: Double, epsilon: Double, weightDecay: Double
    public private(set) var stepCount = 0
    private var expAvg: [Tensor], expAvgSq: [Tensor]

    public init(parameters: [Parameter], learningRate: Double = 1e-3, beta1: Double = Adam.defaults.beta1,
                beta2: Double = Adam.defaults.beta2, epsilon: Double = Adam.defaults.epsilon, weightDecay: Double = 0) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        expAvg = parameters.map { Tensor(zeros: $0.value.shape) }
        expAvgSq = parameters.map { Tensor(zeros: $0.value.shape) }
    }

    public func step() {
        stepCount += 1
        for (i, p) in parameters.enumerated() {
            adamUpdate(
                p.value.buffer, grad: p.grad.readBuffer, expAvg: expAvg[i].buffer, expAvgSq: expAvgSq[i].buffer,
                step: stepCount, learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
                weightDecay: p.decay ? weightDecay : 0)
        }
    }

    public func exportState() -> OptimizerState {
        var m: [String: [Float]] = [:], v: [String: [Float]] = [:]
        for (i, p) in parameters.enumerated() {
            m[p.name] = expAvg[i].array
            v[p.name] = expAvgSq[i].array
        }
        return OptimizerState(kind: kind, step: stepCount, slots: ["exp_avg": m, "exp_avg_sq": v])
    }

    public func importState(_ state: OptimizerState) throws {
        guard state.kind == kind else { throw OptimizerError("optimizer state is \(state.kind), expected \(kind)") }
        for slot in ["exp_avg", "exp_avg_sq"] {
            guard let values = state.slots[slot] else { throw OptimizerError("adam state lacks \(slot)") }
            for p in parameters {
                guard let v = values[p.name], v.count == p.value.count else {
                    throw OptimizerError("adam \(slot) of \(p.name) missing or of the wrong size")
                }
            }
        }
        for (i, p) in parameters.enumerated() {
            expAvg[i] = Tensor(state.slots["exp_avg"]![p.name]!, shape: p.value.shape)
            expAvgSq[i] = Tensor(state.slots["exp_avg_sq"]![p.name]!, shape: p.value.shape)
        }
        stepCount = state.step
    }
}
