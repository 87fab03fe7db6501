// Composite layers: `Sequential` (PyTorch nn.Sequential: children named "0", "1", … or given names)
// and the ResNet basic block; backward is the forward in reverse.
import Dispatch
import Kernels

public final class Sequential: Layer {
    public let layers: [(name: String, layer: Layer)]
    /// What forward and backward run: `layers`, except that a BatchNorm directly followed by a QReLU is one
    /// `BatchNormActivation` (the fusion pass; the pair keeps its two names and positions in `layers`). The CUDA
    /// engine builds its operations from these steps, so both engines fuse the same pairs.
    public let steps: [(label: String?, layer: Layer)]

    /// Children named by position, as nn.Sequential.
    public convenience init(_ layers: [Layer]) { self.init(named: layers.enumerated().map { ("\($0.offset)", $0.element) }) }
    /// Children with attribute names (the nets' top level: "features", "classifier", …).
    public init(named layers: [(String, Layer)]) {
        self.layers = layers.map { (name: $0.0, layer: $0.1) }
        steps = Sequential.fused(layers.map(\.1))
    }

    static func fused(_ layers: [Layer]) -> [(label: String?, layer: Layer)] {
        var steps: [(label: String?, layer: Layer)] = [], i = 0
        while i < layers.count {
            if let bn = layers[i] as? BatchNorm, i + 1 < layers.count, let act = layers[i + 1] as? QReLU {
                steps.append((label: "BatchNorm+QReLU", layer: BatchNormActivation(bn, act)))
                i += 2
            } else {
                steps.append((label: nil, layer: layers[i]))
                i += 1
            }
        }
        return steps
    }

    public var children: [(name: String, layer: Layer)] { layers }
    public var parameters: [Parameter] { layers.flatMap { l in l.layer.parameters.map { $0.prefixed(l.name) } } }
    public var buffers: [(name: String, value: Tensor)] {
        layers.flatMap { l in l.layer.buffers.map { (name: l.name + "." + $0.name, value: $0.value) } }
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        steps.reduce(x) { h, step in
            LayerTimer.forward(step.layer, h, label: step.label) { step.layer.forward($0, training: training) }
        }
    }

    public func backward(_ dy: Tensor) -> Tensor {
        steps.reversed().reduce(dy) { g, step in LayerTimer.backward(step.layer, g) { step.layer.backward($0) } }
    }
}

/// ResNet basic block (He et al. 2016, CIFAR form): act2(bn2(conv2(act1(bn1(conv1(x))))) + shortcut(x)),
/// the shortcut the identity or option A (stride-2 subsample, zero-padded channels). Attribute names as
/// ste_torch.py's BasicBlock: conv1, conv2, bn1, bn2, act1, act2.
public final class BasicBlock: Layer {
    public let conv1: Conv2d, conv2: Conv2d
    public let bn1: BatchNorm, bn2: BatchNorm
    public let act1: QReLU, act2: QReLU
    public let shortcut: ShortcutOptionA?
    /// bn1 + act1, and bn2 + the residual add + act2, each in one pass (the CUDA engine's block uses them too).
    public let normAct1: BatchNormActivation, normAct2: BatchNormActivation
    private var sum = ReusableTensor()
    /// bn2, the residual add and act2 in one pass (false: the three in turn; tests compare the two).
    public var fusesResidual = true
    /// Whether the latest forward ended in the fused pass.
    private var endedFused = false
    /// The shortcut's output layout when it differs from the conv branch's (both branches keep oneDNN's
    /// channel-blocked layout, but oneDNN may compute a geometry in NCHW): the residual is reordered.
    private var shortcutLayout = ActivationLayout.nchw
    private var residualInBranchLayout = ReusableTensor(), gradientInShortcutLayout = ReusableTensor()

    public init(_ inChannels: Int, _ outChannels: Int, stride: Int, activation: Activation, rng: inout SplitMix64) {
        conv1 = Conv2d(inChannels, outChannels, kernel: 3, stride: stride, padding: 1, rng: &rng)
        conv2 = Conv2d(outChannels, outChannels, kernel: 3, stride: 1, padding: 1, rng: &rng)
        bn1 = BatchNorm(outChannels)
        bn2 = BatchNorm(outChannels)
        act1 = QReLU(activation)
        act2 = QReLU(activation)
        shortcut = (stride != 1 || inChannels != outChannels) ? ShortcutOptionA(pad: (outChannels - inChannels) / 2) : nil
        normAct1 = BatchNormActivation(bn1, act1)
        normAct2 = BatchNormActivation(bn2, act2)
    }

    public var children: [(name: String, layer: Layer)] {
        [("conv1", conv1), ("conv2", conv2), ("bn1", bn1), ("bn2", bn2), ("act1", act1), ("act2", act2)]
    }
    public var parameters: [Parameter] { children.flatMap { c in c.layer.parameters.map { $0.prefixed(c.name) } } }
    public var buffers: [(name: String, value: Tensor)] {
        children.flatMap { c in c.layer.buffers.map { (name: c.name + "." + $0.name, value: $0.value) } }
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let h = normAct1.forward(conv1.forward(x, training: training), training: training)
        let c = conv2.forward(h, training: training)
        let shortcutOutput = shortcut?.forward(x, training: training) ?? x
        shortcutLayout = shortcutOutput.layout
        let s = shortcutOutput.converted(to: c.layout, reusing: &residualInBranchLayout)
        endedFused = false
        if fusesResidual, let y = normAct2.forward(c, training: training, adding: s) {
            endedFused = true
            return y
        }
        let o = bn2.forward(c, training: training)
        precondition(o.shape == s.shape && o.layout == s.layout,
                     "BasicBlock: residual \(o.shape) in \(o.layout) vs shortcut \(s.shape) in \(s.layout)")
        let total = sum.get(o.shape, layout: o.layout)
        addForward(total.buffer, o.readBuffer, s.readBuffer)
        return act2.forward(total, training: training)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let dsum: Tensor, dbranch: Tensor
        if endedFused {
            (dsum, dbranch) = normAct2.backwardWithResidual(dy)
        } else {
            dsum = act2.backward(dy)
            dbranch = bn2.backward(dsum)
        }
        let dx = conv1.backward(normAct1.backward(conv2.backward(dbranch)))
        let dshortcut = dsum.converted(to: shortcutLayout, reusing: &gradientInShortcutLayout)
        let dskip = shortcut?.backward(dshortcut) ?? dshortcut
        precondition(dx.layout == dskip.layout, "BasicBlock: branch gradients in \(dx.layout) and \(dskip.layout)")
        accumulate(dx.buffer, dskip.readBuffer)
        return dx
    }
}

/// Per-layer wall time of the children of every `Sequential` (a ResNet block counts as one; nested
/// Sequentials are not entries of their own), for `ste bench --layers`. Off by default, then a call
/// costs one branch.
public enum LayerTimer {
    public struct Entry { public var label: String, forward = 0.0, backward = 0.0 }
    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) private static var index: [ObjectIdentifier: Int] = [:]
    /// Entries in first-forward order.
    nonisolated(unsafe) public private(set) static var report: [Entry] = []

    @inline(__always)
    static func forward(_ layer: Layer, _ x: Tensor, label: String? = nil, _ body: (Tensor) -> Tensor) -> Tensor {
        guard enabled, !(layer is Sequential) else { return body(x) }
        let start = DispatchTime.now().uptimeNanoseconds, input = x.shape
        let y = body(x)
        let i = entry(layer, label: "\(label ?? "\(type(of: layer))") \(input)")
        report[i].forward += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return y
    }

    @inline(__always)
    static func backward(_ layer: Layer, _ dy: Tensor, _ body: (Tensor) -> Tensor) -> Tensor {
        guard enabled, !(layer is Sequential) else { return body(dy) }
        let start = DispatchTime.now().uptimeNanoseconds
        let dx = body(dy)
        let i = entry(layer, label: "\(type(of: layer))")
        report[i].backward += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return dx
    }

    private static func entry(_ layer: Layer, label: String) -> Int {
        let id = ObjectIdentifier(layer)
        if let i = index[id] { return i }
        index[id] = report.count
        report.append(Entry(label: label))
        return report.count - 1
    }

    public static func reset() {
        index = [:]
        report = []
    }
}
