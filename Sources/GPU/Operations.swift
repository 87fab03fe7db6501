// The CUDA engine's layers: one device operation per NN layer, built by walking the same layer tree the CPU engine
// runs (Sources/NN/Models), so each net is described once for both engines. Parameters and running statistics
// live on the device, keyed by the host tensors they mirror (`DeviceState`), so the PyTorch names of checkpoints do
// not change. Convolutions run on cuDNN with pinned deterministic algorithms, Linear layers on cuBLAS, the rest on
// the NVRTC kernels of KernelSource.swift. The CPU's fusion decisions are taken as they are: a batch norm and the
// quantized ReLU after it (NN's `BatchNormActivation`) are one pass, and so is the ResNet block's end (batch norm,
// residual add, quantizer).
import Backends
import Kernels
import NN

/// Blocks per channel of a per-channel sum over `count` elements (KernelSource.swift's partial sums): set by the shape
/// alone, never by the device, so that the sums' order — and so the bits — are those of every GPU; chunks of at least
/// 2,048 elements, at most 64 per channel (ResNet-20's first stage at batch 128: 16 channels × 64 blocks).
func channelParts(_ count: Int) -> Int { Swift.max(1, Swift.min(64, count / 2048)) }

extension ComputeDevice {
    /// out[ch] = Σ over batch and space of x [n, c, spatial] (the bias gradients), through `partial` (scratch).
    func channelSums(out: DevicePointer?, x: DeviceTensor, n: Int, c: Int, spatial: Int,
                     partial: inout ReusableDeviceTensor) {
        let parts = channelParts(n * spatial)
        let scratch = partial.get(self, [2 * c * parts])  // c·parts doubles
        channelPartialSums(.blocks(c * parts), partial: scratch.pointer, x: x.pointer, mean: nil, n: Int32(n),
            c: Int32(c), spatial: Int32(spatial), parts: Int32(parts))
        channelSumsFinish(.elements(c), out: out, partial: scratch.pointer, c: Int32(c), parts: Int32(parts))
    }
}

/// Device copies of a network's parameters (value and gradient) and buffers (BN running statistics). The
/// parameters' values and gradients each lie in one flat buffer (`FlatLayout`), so that an optimizer step is one
/// launch per group of parameters rather than one per tensor.
final class DeviceState {
    let device: ComputeDevice
    private(set) var values: [ObjectIdentifier: DeviceBuffer] = [:]
    private(set) var grads: [ObjectIdentifier: DeviceBuffer] = [:]
    let layout: FlatLayout
    let flatValues: DeviceBuffer, flatGrads: DeviceBuffer

    init(_ device: ComputeDevice, network: Network) {
        self.device = device
        layout = FlatLayout(network.parameters)
        flatValues = DeviceBuffer(device, floats: layout.total)
        flatGrads = DeviceBuffer(device, floats: layout.total)
        flatValues.zero()  // the alignment gaps stay zero: an update leaves a zero weight with a zero gradient at zero
        flatGrads.zero()
        for (i, p) in network.parameters.enumerated() {
            values[ObjectIdentifier(p.value)] = DeviceBuffer(viewOf: flatValues, offset: layout.offsets[i], floats: p.value.count)
            grads[ObjectIdentifier(p.value)] = DeviceBuffer(viewOf: flatGrads, offset: layout.offsets[i], floats: p.value.count)
        }
        for b in network.buffers { values[ObjectIdentifier(b.value)] = DeviceBuffer(device, floats: b.value.count) }
    }

    func value(_ t: Tensor) -> DeviceBuffer {
        guard let v = values[ObjectIdentifier(t)] else { fatalError("CUDA engine: a tensor of the net has no device copy") }
        return v
    }

    func grad(_ p: Parameter) -> DeviceBuffer {
        guard let g = grads[ObjectIdentifier(p.value)] else { fatalError("CUDA engine: parameter \(p.name) has no device gradient") }
        return g
    }
}

/// Where each parameter lies in the flat value, gradient and optimizer-state buffers: the parameters with weight
/// decay first, then those without (each group one contiguous range), each tensor starting on a 64-byte boundary.
/// The update is elementwise, so a group's one launch computes what one launch per tensor did, bit for bit.
struct FlatLayout {
    /// Per parameter (in the network's order), its first float.
    let offsets: [Int]
    /// The groups: their weight-decay setting, float range and parameters (indices in the network's order).
    let groups: [(decay: Bool, offset: Int, count: Int, parameters: [Int])]
    let total: Int

    init(_ parameters: [Parameter]) {
        var offsets = [Int](repeating: 0, count: parameters.count)
        var groups: [(decay: Bool, offset: Int, count: Int, parameters: [Int])] = []
        var next = 0
        for decay in [true, false] {
            let members = parameters.indices.filter { parameters[$0].decay == decay }
            guard !members.isEmpty else { continue }
            let start = next
            for i in members {
                offsets[i] = next
                next += (parameters[i].value.count + 15) / 16 * 16
            }
            groups.append((decay, start, next - start, members))
        }
        (self.offsets, self.groups, total) = (offsets, groups, max(next, 1))
    }
}

protocol DeviceOperation: AnyObject {
    func forward(_ x: DeviceTensor, training: Bool) -> DeviceTensor
    func backward(_ dy: DeviceTensor) -> DeviceTensor
}

struct UnsupportedLayer: Error, CustomStringConvertible {
    let description: String
}

/// The device operation of `layer` (and, inside containers, of its children).
func makeOperation(_ layer: Layer, _ state: DeviceState) throws -> DeviceOperation {
    switch layer {
    case let s as Sequential: return try SequentialOperation(s, state)
    case let c as Conv2d: return ConvolutionOperation(c, state)
    case let l as Linear: return LinearOperation(l, state)
    case let b as BatchNorm: return BatchNormOperation(b, activation: nil, state)
    case let pair as BatchNormActivation: return BatchNormOperation(pair.norm, activation: pair.activation, state)
    case let q as QReLU: return ActivationOperation(q, state.device)
    case is ReLU: return ActivationOperation(nil, state.device)
    case is MaxPool2d: return MaxPoolOperation(state.device)
    case is GlobalAvgPool: return GlobalAveragePoolOperation(state.device)
    case is Flatten: return FlattenOperation()
    case let s as ShortcutOptionA: return ShortcutOperation(s.pad, state.device)
    case let b as BasicBlock: return try BlockOperation(b, state)
    default: throw UnsupportedLayer(description: "the CUDA engine has no operation for \(type(of: layer)) yet")
    }
}

final class SequentialOperation: DeviceOperation {
    let steps: [DeviceOperation]

    /// One operation per step of the CPU's fusion pass (`Sequential.steps`: a batch norm and the quantized ReLU after
    /// it are one `BatchNormActivation`), so both engines fuse the same pairs.
    init(_ s: Sequential, _ state: DeviceState) throws {
        steps = try s.steps.map { try makeOperation($0.layer, state) }
    }

    func forward(_ x: DeviceTensor, training: Bool) -> DeviceTensor {
        steps.reduce(x) { $1.forward($0, training: training) }
    }

    func backward(_ dy: DeviceTensor) -> DeviceTensor { steps.reversed().reduce(dy) { $1.backward($0) } }
}

/// nn.Conv2d through the device's convolution (cuDNN on the GPU): forward, backward filter and backward data
/// (unless the layer is the net's first); the bias, when the layer has one, by the engine's own kernels.
final class ConvolutionOperation: DeviceOperation {
    let layer: Conv2d
    let state: DeviceState
    var device: ComputeDevice { state.device }
    private var input: DeviceTensor?
    private var output = ReusableDeviceTensor(), inputGrad = ReusableDeviceTensor(), partial = ReusableDeviceTensor()
    private var convolutions: [Conv2DGeometry: DeviceConvolution] = [:]

    init(_ layer: Conv2d, _ state: DeviceState) { (self.layer, self.state) = (layer, state) }

    private func geometry(_ shape: [Int]) -> Conv2DGeometry {
        Conv2DGeometry(batch: shape[0], inChannels: layer.inChannels, height: shape[2], width: shape[3],
                       outChannels: layer.outChannels, kernel: layer.kernel, stride: layer.stride, padding: layer.padding)
    }

    private func convolution(_ g: Conv2DGeometry) -> DeviceConvolution {
        if let c = convolutions[g] { return c }
        let c = device.convolution(g)
        convolutions[g] = c
        return c
    }

    func forward(_ x: DeviceTensor, training: Bool) -> DeviceTensor {
        precondition(x.shape.count == 4 && x.shape[1] == layer.inChannels, "Conv2d(\(layer.inChannels)→…) got \(x.shape)")
        let g = geometry(x.shape)
        let y = output.get(device, [g.batch, g.outChannels, g.outHeight, g.outWidth])
        convolution(g).forward(x: x.pointer, w: state.value(layer.weight.value).pointer, y: y.pointer)
        if let b = layer.bias {
            let (n, c, s) = (g.batch, g.outChannels, g.outHeight * g.outWidth)
            device.channelBiasAdd(.elements(n * c * s), y: y.pointer, bias: state.value(b.value).pointer,
                total: n * c * s, c: Int32(c), spatial: Int32(s))
        }
        input = training ? x : nil
        return y
    }

    func backward(_ dy: DeviceTensor) -> DeviceTensor {
        guard let x = input else { preconditionFailure("Conv2d.backward without a training forward") }
        input = nil
        let conv = convolution(geometry(x.shape))
        conv.backwardFilter(x: x.pointer, dy: dy.pointer, dw: state.grad(layer.weight).pointer)
        if let b = layer.bias {
            let (n, c, s) = (dy.shape[0], dy.shape[1], dy.shape[2] * dy.shape[3])
            device.channelSums(out: state.grad(b).pointer, x: dy, n: n, c: c, spatial: s, partial: &partial)
        }
        guard layer.computesInputGradient else { return DeviceTensor(buffer: x.buffer, shape: [0]) }
        let dx = inputGrad.get(device, x.shape)
        conv.backwardData(dy: dy.pointer, w: state.value(layer.weight.value).pointer, dx: dx.pointer)
        return dx
    }
}

/// nn.Linear through the device's SGEMM (cuBLAS on the GPU; row-major tensors as column-major transposes): y = x·Wᵀ + b.
final class LinearOperation: DeviceOperation {
    let layer: Linear
    let state: DeviceState
    var device: ComputeDevice { state.device }
    private var input: DeviceTensor?
    private var output = ReusableDeviceTensor(), inputGrad = ReusableDeviceTensor(), partial = ReusableDeviceTensor()

    init(_ layer: Linear, _ state: DeviceState) { (self.layer, self.state) = (layer, state) }

    private func gemm(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ a: UnsafeRawPointer, _ lda: Int,
                      _ b: UnsafeRawPointer, _ ldb: Int, _ c: UnsafeMutableRawPointer, _ ldc: Int) {
        device.sgemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc)
    }

    func forward(_ x: DeviceTensor, training: Bool) -> DeviceTensor {
        let (n, i, o) = (x.shape[0], layer.inFeatures, layer.outFeatures)
        precondition(x.count == n * i, "Linear(\(i)→\(o)) got \(x.shape)")
        let y = output.get(device, [n, o])
        gemm(true, false, o, n, i, state.value(layer.weight.value).pointer, i, x.pointer, i, y.pointer, o)
        if let b = layer.bias {
            device.channelBiasAdd(.elements(n * o), y: y.pointer, bias: state.value(b.value).pointer, total: n * o,
                c: Int32(o), spatial: 1)
        }
        input = training ? x : nil
        return y
    }

    func backward(_ dy: DeviceTensor) -> DeviceTensor {
        guard let x = input else { preconditionFailure("Linear.backward without a training forward") }
        input = nil
        let (n, i, o) = (x.shape[0], layer.inFeatures, layer.outFeatures)
        gemm(false, true, i, o, n, x.pointer, i, dy.pointer, o, state.grad(layer.weight).pointer, i)
        if let b = layer.bias {
            device.channelSums(out: state.grad(b).pointer, x: dy, n: n, c: o, spatial: 1, partial: &partial)
        }
        let dx = inputGrad.get(device, [n, i])
        gemm(false, false, i, n, o, state.value(layer.weight.value).pointer, i, dy.pointer, o, dx.pointer, i)
        return dx.reshaped(x.shape)
    }
}

/// Batch norm (BatchNorm1d/2d semantics), with the activation after it when there is one: a quantized ReLU in the
/// same pass (its STE masks the backward's dy), a float ReLU as its own kernel. With a residual (the ResNet block's
/// end) the pass computes σ(BN(x) + residual).
final class BatchNormOperation: DeviceOperation {
    let norm: BatchNorm
    let activation: QReLU?
    let state: DeviceState
    var device: ComputeDevice { state.device }
    private let mean: DeviceBuffer, invstd: DeviceBuffer, sums: DeviceBuffer
    private var output = ReusableDeviceTensor(), normalized = ReusableDeviceTensor(), inputGrad = ReusableDeviceTensor()
    private var sumGrad = ReusableDeviceTensor(), reluGrad = ReusableDeviceTensor(), partial = ReusableDeviceTensor()
    private var input: DeviceTensor?, residual: DeviceTensor?, preActivation: DeviceTensor?
    private var training = false
    private var fused: QuantizerSpec?, fusedSTE: STE?

    init(_ norm: BatchNorm, activation: QReLU?, _ state: DeviceState) {
        (self.norm, self.activation, self.state) = (norm, activation, state)
        mean = DeviceBuffer(state.device, floats: norm.channels)
        invstd = DeviceBuffer(state.device, floats: norm.channels)
        sums = DeviceBuffer(state.device, bytes: 16 * norm.channels)
    }

    private func dimensions(_ x: DeviceTensor) -> (n: Int, c: Int, spatial: Int) {
        precondition((x.shape.count == 2 || x.shape.count == 4) && x.shape[1] == norm.channels,
                     "BatchNorm(\(norm.channels)) got \(x.shape)")
        return (x.shape[0], norm.channels, x.shape.count == 4 ? x.shape[2] * x.shape[3] : 1)
    }

    private var weightPointer: Ptr { norm.weight.map { state.value($0.value).pointer } }
    private var biasPointer: Ptr { norm.bias.map { state.value($0.value).pointer } }

    func forward(_ x: DeviceTensor, training: Bool) -> DeviceTensor { forward(x, training: training, adding: nil) }

    /// σ(BN(x) (+ residual)); a residual needs a quantized activation (else the caller adds and activates itself).
    func forward(_ x: DeviceTensor, training: Bool, adding residual: DeviceTensor?) -> DeviceTensor {
        let (n, c, s) = dimensions(x)
        let total = n * c * s
        let meanPointer: Ptr
        if training {
            // Two rounds of partial sums: the mean, then the squared deviations from it.
            let parts = channelParts(n * s)
            let scratch = partial.get(device, [2 * c * parts])
            let (nn, cc, ss, pp) = (Int32(n), Int32(c), Int32(s), Int32(parts))
            device.channelPartialSums(.blocks(c * parts), partial: scratch.pointer, x: x.pointer, mean: nil, n: nn,
                c: cc, spatial: ss, parts: pp)
            device.batchNormMean(.elements(c), mean: mean.pointer, partial: scratch.pointer, c: cc, parts: pp,
                count: n * s)
            device.channelPartialSums(.blocks(c * parts), partial: scratch.pointer, x: x.pointer, mean: mean.pointer,
                n: nn, c: cc, spatial: ss, parts: pp)
            device.batchNormVariance(.elements(c), invstd: invstd.pointer,
                runningMean: state.value(norm.runningMean).pointer, runningVar: state.value(norm.runningVar).pointer,
                mean: mean.pointer, partial: scratch.pointer, c: cc, parts: pp, count: n * s, eps: norm.eps,
                momentum: norm.momentum)
            meanPointer = mean.pointer
        } else {
            device.batchNormEvalInvstd(.elements(c), invstd: invstd.pointer,
                runningVar: state.value(norm.runningVar).pointer, c: Int32(c), eps: norm.eps)
            meanPointer = state.value(norm.runningMean).pointer
        }
        var quantizer: (QuantizerSpec, STE)? = nil
        if case .quantized(let spec, let ste) = activation?.activation { quantizer = (spec, ste) }
        precondition(residual == nil || quantizer != nil, "the residual pass needs a quantized activation")
        (fused, fusedSTE) = (quantizer?.0, quantizer?.1)
        let y = activation != nil && quantizer == nil ? normalized.get(device, x.shape) : output.get(device, x.shape)
        let spec = quantizer?.0
        device.batchNormApply(.elements(total), y: y.pointer, x: x.pointer, residual: residual?.pointer,
            mean: meanPointer, invstd: invstd.pointer, weight: weightPointer, bias: biasPointer, total: total,
            c: Int32(c), spatial: Int32(s), quantizeOutput: spec == nil ? 0 : 1, levels: Int32(spec?.levels ?? 0),
            alpha: spec?.alpha ?? 1, rounding: spec?.rounding == .nearest ? 1 : 0)
        input = x
        self.residual = training ? residual : nil
        self.training = training
        guard activation != nil, quantizer == nil else { preActivation = nil; return y }
        // A float ReLU after the batch norm (pretraining): its own kernel, its input kept for the backward.
        let r = output.get(device, x.shape)
        device.reluForward(.elements(total), y: r.pointer, x: y.pointer, n: total)
        preActivation = training ? y : nil
        return r
    }

    /// dx of the latest forward (without a residual).
    func backward(_ dy: DeviceTensor) -> DeviceTensor {
        precondition(residual == nil, "BatchNorm: the forward added a residual; use backwardWithResidual")
        guard training, let x = input else { preconditionFailure("BatchNorm.backward without a training forward") }
        var g = dy
        if let pre = preActivation {
            g = reluGrad.get(device, dy.shape)
            device.reluBackward(.elements(dy.count), dx: g.pointer, dy: dy.pointer, x: pre.pointer, n: dy.count)
        }
        return normalizeBackward(g, x, ste: fusedSTE, top: fused?.top ?? 0)
    }

    /// The backward of `forward(_:training:adding:)`: the gradient at the residual sum and at the batch norm's input.
    func backwardWithResidual(_ dy: DeviceTensor) -> (sum: DeviceTensor, input: DeviceTensor) {
        guard training, let x = input, let r = residual, let spec = fused, let ste = fusedSTE else {
            preconditionFailure("QReLU.backward without a training forward")
        }
        let (_, c, s) = dimensions(x)
        let d = sumGrad.get(device, x.shape)
        device.batchNormResidualGradient(.elements(x.count), dsum: d.pointer, dy: dy.pointer, x: x.pointer,
            residual: r.pointer, mean: mean.pointer, invstd: invstd.pointer, weight: weightPointer, bias: biasPointer,
            total: x.count, c: Int32(c), spatial: Int32(s), ste: steCode(ste), top: spec.top)
        residual = nil
        return (d, normalizeBackward(d, x, ste: nil, top: 0))
    }

    private func normalizeBackward(_ dy: DeviceTensor, _ x: DeviceTensor, ste: STE?, top: Float) -> DeviceTensor {
        let (n, c, s) = dimensions(x)
        input = nil
        let dx = inputGrad.get(device, x.shape)
        let code: Int32 = ste.map(steCode) ?? -1
        let parts = channelParts(n * s)
        let scratch = partial.get(device, [4 * c * parts])  // two doubles per block
        device.batchNormBackwardPartialSums(.blocks(c * parts), partial: scratch.pointer, dy: dy.pointer, x: x.pointer,
            mean: mean.pointer, invstd: invstd.pointer, weight: weightPointer, bias: biasPointer, n: Int32(n),
            c: Int32(c), spatial: Int32(s), parts: Int32(parts), ste: code, top: top)
        device.batchNormBackwardSumsFinish(.elements(c), sums: sums.pointer,
            weightGrad: norm.weight.map { state.grad($0).pointer }, biasGrad: norm.bias.map { state.grad($0).pointer },
            partial: scratch.pointer, c: Int32(c), parts: Int32(parts))
        device.batchNormBackwardApply(.elements(x.count), dx: dx.pointer, sums: sums.pointer, dy: dy.pointer,
            x: x.pointer, mean: mean.pointer, invstd: invstd.pointer, weight: weightPointer, bias: biasPointer,
            total: x.count, n: Int32(n), c: Int32(c), spatial: Int32(s), ste: code, top: top)
        return dx
    }
}

/// The kernels' STE numbering (KernelSource.swift).
func steCode(_ ste: STE) -> Int32 {
    switch ste {
    case .identity: return 0
    case .relu: return 1
    case .clipped: return 2
    case .logTailed: return 3
    }
}

/// A QReLU on its own (nil: a plain ReLU).
final class ActivationOperation: DeviceOperation {
    let layer: QReLU?
    let device: ComputeDevice
    private var input: DeviceTensor?
    private var quantizer: (QuantizerSpec, STE)?
    private var output = ReusableDeviceTensor(), inputGrad = ReusableDeviceTensor()

    init(_ layer: QReLU?, _ device: ComputeDevice) { (self.layer, self.device) = (layer, device) }

    func forward(_ x: DeviceTensor, training: Bool) -> DeviceTensor {
        let y = output.get(device, x.shape)
        quantizer = nil
        if case .quantized(let spec, let ste) = layer?.activation {
            quantizer = (spec, ste)
            device.quantizedReluForward(.elements(x.count), y: y.pointer, x: x.pointer, n: x.count,
                levels: Int32(spec.levels), alpha: spec.alpha, rounding: spec.rounding == .nearest ? 1 : 0)
        } else {
            device.reluForward(.elements(x.count), y: y.pointer, x: x.pointer, n: x.count)
        }
        input = training ? x : nil
        return y
    }

    func backward(_ dy: DeviceTensor) -> DeviceTensor {
        guard let x = input else { preconditionFailure("QReLU.backward without a training forward") }
        input = nil
        let dx = inputGrad.get(device, x.shape)
        if let (spec, ste) = quantizer {
            device.quantizedReluBackward(.elements(x.count), dx: dx.pointer, dy: dy.pointer, x: x.pointer, n: x.count,
                ste: steCode(ste), top: spec.top)
        } else {
            device.reluBackward(.elements(x.count), dx: dx.pointer, dy: dy.pointer, x: x.pointer, n: x.count)
        }
        return dx
    }
}

final class MaxPoolOperation: DeviceOperation {
    let device: ComputeDevice
    private var inputShape: [Int] = []
    private var argmax: DeviceBuffer?
    private var output = ReusableDeviceTensor(), inputGrad = ReusableDeviceTensor()
    init(_ device: ComputeDevice) { self.device = device }

    func forward(_ x: DeviceTensor, training: Bool) -> DeviceTensor {
        precondition(x.shape.count == 4, "MaxPool2d got \(x.shape)")
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let y = output.get(device, [n, c, h / 2, w / 2])
        if (argmax?.bytes ?? 0) < y.count { argmax = DeviceBuffer(device, bytes: y.count) }
        device.maxPool2Forward(.elements(y.count), y: y.pointer, argmax: argmax!.pointer, x: x.pointer, n: Int32(n),
            c: Int32(c), h: Int32(h), w: Int32(w))
        inputShape = x.shape
        return y
    }

    func backward(_ dy: DeviceTensor) -> DeviceTensor {
        let dx = inputGrad.get(device, inputShape)
        device.maxPool2Backward(.elements(dx.count), dx: dx.pointer, dy: dy.pointer, argmax: argmax!.pointer,
            n: Int32(inputShape[0]), c: Int32(inputShape[1]), h: Int32(inputShape[2]), w: Int32(inputShape[3]))
        return dx
    }
}

final class GlobalAveragePoolOperation: DeviceOperation {
    let device: ComputeDevice
    private var inputShape: [Int] = []
    private var output = ReusableDeviceTensor(), inputGrad = ReusableDeviceTensor()
    init(_ device: ComputeDevice) { self.device = device }

    func forward(_ x: DeviceTensor, training: Bool) -> DeviceTensor {
        let (planes, spatial) = (x.shape[0] * x.shape[1], x.shape[2] * x.shape[3])
        let y = output.get(device, [x.shape[0], x.shape[1]])
        device.globalAveragePoolForward(.elements(planes), y: y.pointer, x: x.pointer, planes: planes,
            spatial: Int32(spatial))
        inputShape = x.shape
        return y
    }

    func backward(_ dy: DeviceTensor) -> DeviceTensor {
        let dx = inputGrad.get(device, inputShape)
        let (planes, spatial) = (inputShape[0] * inputShape[1], inputShape[2] * inputShape[3])
        device.globalAveragePoolBackward(.elements(dx.count), dx: dx.pointer, dy: dy.pointer, planes: planes,
            spatial: Int32(spatial))
        return dx
    }
}

/// [n, …] → [n, rest]: the same memory under another shape (NCHW is already row-major by sample).
final class FlattenOperation: DeviceOperation {
    private var inputShape: [Int] = []
    func forward(_ x: DeviceTensor, training: Bool) -> DeviceTensor {
        inputShape = x.shape
        return x.reshaped([x.shape[0], x.count / max(1, x.shape[0])])
    }
    func backward(_ dy: DeviceTensor) -> DeviceTensor { dy.reshaped(inputShape) }
}

final class ShortcutOperation: DeviceOperation {
    let pad: Int
    let device: ComputeDevice
    private var inputShape: [Int] = []
    private var output = ReusableDeviceTensor(), inputGrad = ReusableDeviceTensor()
    init(_ pad: Int, _ device: ComputeDevice) { (self.pad, self.device) = (pad, device) }

    func forward(_ x: DeviceTensor, training: Bool) -> DeviceTensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let y = output.get(device, [n, c + 2 * pad, (h + 1) / 2, (w + 1) / 2])
        device.shortcutOptionAForward(.elements(y.count), y: y.pointer, x: x.pointer, n: Int32(n), c: Int32(c),
            h: Int32(h), w: Int32(w), pad: Int32(pad))
        inputShape = x.shape
        return y
    }

    func backward(_ dy: DeviceTensor) -> DeviceTensor {
        let dx = inputGrad.get(device, inputShape)
        device.shortcutOptionABackward(.elements(dx.count), dx: dx.pointer, dy: dy.pointer, n: Int32(inputShape[0]),
            c: Int32(inputShape[1]), h: Int32(inputShape[2]), w: Int32(inputShape[3]), pad: Int32(pad))
        return dx
    }
}

/// The ResNet basic block (NN/Containers.swift BasicBlock): act2(bn2(conv2(act1(bn1(conv1(x))))) + shortcut(x)), the
/// block's end in one pass when act2 is quantized.
final class BlockOperation: DeviceOperation {
    let conv1: ConvolutionOperation, conv2: ConvolutionOperation
    let normAct1: BatchNormOperation, normAct2: BatchNormOperation, norm2: BatchNormOperation
    let act2: ActivationOperation
    let shortcut: ShortcutOperation?
    let block: BasicBlock
    let device: ComputeDevice
    private var sum = ReusableDeviceTensor()
    private var endedFused = false

    init(_ b: BasicBlock, _ state: DeviceState) throws {
        block = b
        device = state.device
        conv1 = ConvolutionOperation(b.conv1, state)
        conv2 = ConvolutionOperation(b.conv2, state)
        normAct1 = BatchNormOperation(b.normAct1.norm, activation: b.normAct1.activation, state)
        normAct2 = BatchNormOperation(b.normAct2.norm, activation: b.normAct2.activation, state)
        norm2 = BatchNormOperation(b.bn2, activation: nil, state)
        act2 = ActivationOperation(b.act2, state.device)
        shortcut = b.shortcut.map { ShortcutOperation($0.pad, state.device) }
    }

    func forward(_ x: DeviceTensor, training: Bool) -> DeviceTensor {
        let h = normAct1.forward(conv1.forward(x, training: training), training: training)
        let c = conv2.forward(h, training: training)
        let s = shortcut?.forward(x, training: training) ?? x
        precondition(s.shape == c.shape, "BasicBlock: shortcut \(s.shape) vs branch \(c.shape)")
        if case .quantized = block.act2.activation {
            endedFused = true
            return normAct2.forward(c, training: training, adding: s)
        }
        endedFused = false
        let o = norm2.forward(c, training: training)
        let total = sum.get(device, o.shape)
        device.add(.elements(o.count), y: total.pointer, a: o.pointer, b: s.pointer, n: o.count)
        return act2.forward(total, training: training)
    }

    func backward(_ dy: DeviceTensor) -> DeviceTensor {
        let dsum: DeviceTensor, dbranch: DeviceTensor
        if endedFused {
            (dsum, dbranch) = normAct2.backwardWithResidual(dy)
        } else {
            dsum = act2.backward(dy)
            dbranch = norm2.backward(dsum)
        }
        let dx = conv1.backward(normAct1.backward(conv2.backward(dbranch)))
        let dskip = shortcut?.backward(dsum) ?? dsum
        device.accumulate(.elements(dx.count), y: dx.pointer, a: dskip.pointer, n: dx.count)
        return dx
    }
}
