// The engine's layer vocabulary: a trainable `Parameter`, the `Layer` protocol (forward and backward
// side by side, backward accumulating into parameter gradients), the activation choice, and `Network`,
// a named model whose parameter/buffer names are the PyTorch state_dict keys of ste_torch.py.
import Kernels

/// A trainable tensor with its gradient buffer. `decay`: weight decay applies (every conv/linear tensor).
public final class Parameter {
    public let name: String
    public let value: Tensor
    public let grad: Tensor
    public let decay: Bool

    public init(name: String, value: Tensor, grad: Tensor, decay: Bool) {
        precondition(value.shape == grad.shape, "parameter \(name): value \(value.shape) vs grad \(grad.shape)")
        self.name = name
        self.value = value
        self.grad = grad
        self.decay = decay
    }

    /// A zero-valued parameter of `shape` with a zero gradient.
    public convenience init(name: String, shape: [Int], decay: Bool = true) {
        self.init(name: name, value: Tensor(zeros: shape), grad: Tensor(zeros: shape), decay: decay)
    }

    /// The same storage under a longer name (a layer's parameter seen from its parent).
    public func prefixed(_ prefix: String) -> Parameter {
        Parameter(name: prefix + "." + name, value: value, grad: grad, decay: decay)
    }

    /// Copies `values` into the parameter (tests and checkpoints).
    public func set(_ values: [Float]) {
        precondition(values.count == value.count, "parameter \(name): \(values.count) values for \(value.shape)")
        values.withUnsafeBufferPointer { value.pointer.update(from: $0.baseAddress!, count: value.count) }
    }
}

/// One layer: `forward` caches what `backward` needs; `backward` ADDS into parameter gradients and
/// returns the gradient with respect to the layer input.
public protocol Layer: AnyObject {
    func forward(_ x: Tensor, training: Bool) -> Tensor
    func backward(_ dy: Tensor) -> Tensor
    /// Names relative to the layer ("weight", or "0.weight" in a container).
    var parameters: [Parameter] { get }
    /// Non-trainable state (BN running_mean / running_var), names relative to the layer.
    var buffers: [(name: String, value: Tensor)] { get }
    /// Direct children with their names, for walks over the tree (activation swap); empty for leaves.
    var children: [(name: String, layer: Layer)] { get }
}

extension Layer {
    public var parameters: [Parameter] { [] }
    public var buffers: [(name: String, value: Tensor)] { [] }
    public var children: [(name: String, layer: Layer)] { [] }
}

/// What every activation of a net computes: a float ReLU (pretraining) or the b-bit quantized ReLU
/// with a straight-through estimator for its backward.
public enum Activation: Sendable, Equatable {
    case float
    case quantized(QuantizerSpec, STE)
}

/// A model: a root layer plus the names under which PyTorch stores its tensors.
public final class Network {
    public let name: String
    public let root: Layer
    /// Full names = PyTorch state_dict keys; built once so the objects are stable for optimizers.
    public let parameters: [Parameter]
    private let activations: [QReLU]
    private let gradientElements: Int

    public init(name: String, root: Layer) {
        self.name = name
        self.root = root
        parameters = root.parameters
        gradientElements = parameters.reduce(0) { $0 + $1.grad.count }
        var found: [QReLU] = []
        func walk(_ l: Layer) {
            if let q = l as? QReLU { found.append(q) }
            for c in l.children { walk(c.layer) }
        }
        walk(root)
        activations = found
    }

    /// Logits [n, classes].
    public func forward(_ x: Tensor, training: Bool) -> Tensor { root.forward(x, training: training) }

    /// The forward in reverse; adds into every parameter's `grad`.
    public func backward(_ dlogits: Tensor) { _ = root.backward(dlogits) }

    /// Full names, e.g. "features.1.running_mean".
    public var buffers: [(name: String, value: Tensor)] { root.buffers }

    /// Zeroes every gradient, split over the workers as the optimizer's update splits the tensors (each
    /// worker clears the lines it updated last; serial, the main thread pulled them all across).
    public func zeroGrad() {
        let grads = parameters.map(\.grad)
        Parallel.forEachShare(ofElements: gradientElements) { part, parts in
            for g in grads {
                let r = Parallel.share(part, of: parts, count: g.count)
                (g.pointer + r.lowerBound).update(repeating: 0, count: r.count)
            }
        }
    }

    /// Swaps every activation of the net (pretraining float → quantized, or another STE / bit width).
    public func setActivation(_ a: Activation) { for q in activations { q.activation = a } }

    public var activation: Activation? { activations.first?.activation }
    /// What every activation slot computes, in order (an engine that recorded a step checks it did not change).
    public var activationsInOrder: [Activation] { activations.map(\.activation) }

    /// Sets `Conv2d.keepsChannelBlocks` on every convolution: activations stay in the backend's
    /// channel-blocked layout between layers (ResNet-20, whose other layers all take it).
    public func setKeepsChannelBlocks(_ on: Bool) {
        func walk(_ l: Layer) {
            if let c = l as? Conv2d { c.keepsChannelBlocks = on }
            for child in l.children { walk(child.layer) }
        }
        walk(root)
    }

    public func parameter(named n: String) -> Parameter? { parameters.first { $0.name == n } }
    public func buffer(named n: String) -> Tensor? { buffers.first { $0.name == n }?.value }
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }
}
