// Conv2d (PyTorch nn.Conv2d, square kernel, bias optional): forward and backward through the
// `Convolution2D` of the current backend, one per input geometry, built on first use and reused.
import Backends
import Kernels

public final class Conv2d: Layer {
    public let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int
    public let weight: Parameter
    public let bias: Parameter?
    /// false for a net's first layer: its input needs no gradient, so backward skips backward-data
    /// and returns an empty tensor (shape [0]).
    public var computesInputGradient = true
    /// nil: `Compute.backend`.
    public var backend: ConvolutionBackend?
    /// Hand the output over in the channel-blocked layout the backend computes in (when it computes in
    /// one) instead of NCHW, so no reorder runs between this layer and the next convolution. The layers
    /// in between must take that layout (BatchNorm, QReLU, ReLU, MaxPool2d, BasicBlock, ShortcutOptionA,
    /// GlobalAvgPool do; Linear and Flatten refuse it). An input in the backend's blocked layout is always
    /// taken as it is; one in another blocked layout is reordered to NCHW first (and its gradient back).
    public var keepsChannelBlocks = false
    private var layouts = ConvolutionLayouts.nchw
    /// The layout of the latest training forward's input, when it had to be reordered (see above).
    private var reorderedInputLayout: ActivationLayout?
    private var inputInNCHW = ReusableTensor(), inputGradInOriginalLayout = ReusableTensor()
    private var convolutions: [Conv2DGeometry: Convolution2D] = [:]
    private var input: Tensor?
    private var convolution: Convolution2D?
    /// Geometry of the latest forward (FLOP counts).
    public private(set) var lastGeometry: Conv2DGeometry?
    private let weightGrad: Tensor, biasGrad: Tensor?
    private var output = ReusableTensor(), inputGrad = ReusableTensor()

    /// Weights and bias drawn as PyTorch's defaults, U(−1/√fanIn, 1/√fanIn), from `rng`.
    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                bias: Bool = false, rng: inout SplitMix64) {
        (self.inChannels, self.outChannels, self.kernel) = (inChannels, outChannels, kernel)
        (self.stride, self.padding) = (stride, padding)
        weight = Parameter(name: "weight", shape: [outChannels, inChannels, kernel, kernel])
        self.bias = bias ? Parameter(name: "bias", shape: [outChannels]) : nil
        weightGrad = Tensor(zeros: weight.value.shape)
        biasGrad = bias ? Tensor(zeros: [outChannels]) : nil
        let bound = 1 / Float(inChannels * kernel * kernel).squareRoot()
        fillUniform(weight.value, bound: bound, rng: &rng)
        if let b = self.bias { fillUniform(b.value, bound: bound, rng: &rng) }
    }

    public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

    public func geometry(for x: Tensor) -> Conv2DGeometry {
        precondition(x.rank == 4 && x.shape[1] == inChannels, "Conv2d(\(inChannels)→\(outChannels)) got \(x.shape)")
        return Conv2DGeometry(batch: x.shape[0], inChannels: inChannels, height: x.shape[2], width: x.shape[3],
                              outChannels: outChannels, kernel: kernel, stride: stride, padding: padding)
    }

    private func convolution(for g: Conv2DGeometry) -> Convolution2D {
        if let c = convolutions[g] { return c }
        let c = (backend ?? Compute.backend).convolution(g, bias: bias != nil)
        convolutions[g] = c
        return c
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let g = geometry(for: x)
        let conv = convolution(for: g)
        lastGeometry = g
        let native = conv.nativeLayouts
        // A blocked layout this convolution does not compute in (a block size oneDNN chose otherwise) is
        // reordered to NCHW; the backward reorders the gradient back.
        let reorders = x.layout != .nchw && x.layout != native.source
        reorderedInputLayout = reorders && training ? x.layout : nil
        let source = reorders ? x.converted(to: .nchw, reusing: &inputInNCHW) : x
        layouts = ConvolutionLayouts(source: source.layout, destination: keepsChannelBlocks ? native.destination : .nchw)
        let y = output.get([g.batch, outChannels, g.outHeight, g.outWidth], layout: layouts.destination)
        if training {
            conv.forward(input: source.pointer, weight: weight.value.pointer, bias: bias?.value.pointer, output: y.pointer,
                         layouts: layouts)
        } else {
            conv.forwardInference(input: source.pointer, weight: weight.value.pointer, bias: bias?.value.pointer,
                                  output: y.pointer, layouts: layouts)
        }
        input = training ? source : nil
        convolution = training ? conv : nil
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input, let conv = convolution else { preconditionFailure("Conv2d.backward without a training forward") }
        input = nil  // consumed: the producer may reuse that buffer next step
        precondition(dy.layout == layouts.destination, "Conv2d.backward: dy in \(dy.layout), output was \(layouts.destination)")
        let dx = computesInputGradient ? inputGrad.get(x.shape, layout: x.layout) : Tensor(uninitialized: [0])
        conv.backward(input: x.pointer, outputGrad: dy.pointer, weight: weight.value.pointer,
                      inputGrad: computesInputGradient ? dx.pointer : nil, weightGrad: weightGrad.pointer,
                      biasGrad: biasGrad?.pointer, layouts: layouts)
        accumulate(weight.grad.buffer, weightGrad.readBuffer)
        if let bias, let biasGrad { accumulate(bias.grad.buffer, biasGrad.readBuffer) }
        if let original = reorderedInputLayout, computesInputGradient {
            return dx.converted(to: original, reusing: &inputGradInOriginalLayout)
        }
        return dx
    }
}

/// Linear (PyTorch nn.Linear): y = x·Wᵀ + b on [n, in] → [n, out], through OpenBLAS sgemm.
public final class Linear: Layer {
    public let inFeatures: Int, outFeatures: Int
    public let weight: Parameter
    public let bias: Parameter?
    private var input: Tensor?
    private var output = ReusableTensor(), inputGrad = ReusableTensor()

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, rng: inout SplitMix64) {
        (self.inFeatures, self.outFeatures) = (inFeatures, outFeatures)
        weight = Parameter(name: "weight", shape: [outFeatures, inFeatures])
        self.bias = bias ? Parameter(name: "bias", shape: [outFeatures]) : nil
        let bound = 1 / Float(inFeatures).squareRoot()
        fillUniform(weight.value, bound: bound, rng: &rng)
        if let b = self.bias { fillUniform(b.value, bound: bound, rng: &rng) }
    }

    public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.rank == 2 && x.shape[1] == inFeatures && x.layout == .nchw,
                     "Linear(\(inFeatures)→\(outFeatures)) got \(x.shape) in \(x.layout)")
        let n = x.shape[0]
        let y = output.get([n, outFeatures])
        if let b = bias { for i in 0..<n { (y.pointer + i * outFeatures).update(from: b.value.pointer, count: outFeatures) } }
        sgemmSplittingRows(transposeA: false, transposeB: true, m: n, n: outFeatures, k: inFeatures, a: x.pointer,
                           b: weight.value.pointer, beta: bias == nil ? 0 : 1, c: y.pointer)
        input = training ? x : nil
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("Linear.backward without a training forward") }
        input = nil
        let n = x.shape[0]
        let dx = inputGrad.get(x.shape)
        // dx[n, in] = dy[n, out] · W[out, in];  dW[out, in] += dyᵀ · x;  db += Σ_n dy
        sgemmSplittingRows(transposeA: false, transposeB: false, m: n, n: inFeatures, k: outFeatures, a: dy.pointer,
                           b: weight.value.pointer, beta: 0, c: dx.pointer)
        sgemmSplittingRows(transposeA: true, transposeB: false, m: outFeatures, n: inFeatures, k: n, a: dy.pointer,
                           b: x.pointer, beta: 1, c: weight.grad.pointer)
        if let b = bias {
            for i in 0..<n { for o in 0..<outFeatures { b.grad.pointer[o] += dy.pointer[i * outFeatures + o] } }
        }
        return dx
    }
}

/// U(−bound, bound) from `rng`, in element order.
func fillUniform(_ t: Tensor, bound: Float, rng: inout SplitMix64) {
    for i in 0..<t.count { t.pointer[i] = (2 * rng.nextUniform() - 1) * bound }
}
