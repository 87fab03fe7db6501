// A batch norm and the activation after it as one layer — the single owner of the fused kernels: when the
// activation is a quantized ReLU, its forward normalises and quantizes in one pass over memory and its
// backward applies the STE's mask inside the batch norm's backward (Kernels/BatchNorm.swift), bit-identical
// to the two layers run in turn (Tests/NNTests/FusionTests.swift). With a float activation it runs the two
// layers in turn. The parameters, running statistics and the activation setting stay in the `BatchNorm` and
// `QReLU` it wraps (so checkpoint names do not change); `Sequential` and the ResNet block build one for
// every such pair (Containers.swift).
import Kernels

public final class BatchNormActivation: Layer {
    public let norm: BatchNorm
    public let activation: QReLU
    private var pass: BatchNormPass
    private var sumGrad = ReusableTensor()
    /// How the latest forward ran: the fused quantizer (nil: the two layers in turn), and the residual
    /// it added (the ResNet block's end).
    private var fused: (spec: QuantizerSpec, ste: STE)?
    private var residual: Tensor?

    public init(_ norm: BatchNorm, _ activation: QReLU) {
        (self.norm, self.activation) = (norm, activation)
        pass = BatchNormPass(channels: norm.channels)
    }

    public var parameters: [Parameter] { norm.parameters }
    public var buffers: [(name: String, value: Tensor)] { norm.buffers }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        residual = nil
        guard case .quantized(let spec, let ste) = activation.activation else {
            fused = nil
            return activation.forward(norm.forward(x, training: training), training: training)
        }
        fused = (spec, ste)
        return pass.forward(x, of: norm, training: training, quantizer: spec)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        precondition(residual == nil, "BatchNormActivation: the forward added a residual; use backwardWithResidual")
        guard let fused else { return norm.backward(activation.backward(dy)) }
        guard pass.trainingMode else { preconditionFailure("QReLU.backward without a training forward") }
        return pass.backward(dy, of: norm, activation: fused)
    }

    /// act(BN(x) + residual) in one pass (the ResNet block's end); nil when it cannot be fused (a float
    /// activation, or a residual whose shape or layout differs): the caller then runs the layers in turn.
    public func forward(_ x: Tensor, training: Bool, adding residual: Tensor) -> Tensor? {
        guard x.rank == 4, residual.shape == x.shape, residual.layout == x.layout,
              case .quantized(let spec, let ste) = activation.activation else { return nil }
        fused = (spec, ste)
        self.residual = training ? residual : nil
        return pass.forward(x, of: norm, training: training, quantizer: spec, residual: residual)
    }

    /// The backward of `forward(_:training:adding:)`: the gradient at the residual sum (dy·STE'(sum), the sum
    /// recomputed from the saved input) and the gradient at the batch norm's input.
    public func backwardWithResidual(_ dy: Tensor) -> (sum: Tensor, input: Tensor) {
        guard let r = residual, let x = pass.input, pass.trainingMode, let (spec, ste) = fused else {
            preconditionFailure("QReLU.backward without a training forward")
        }
        precondition(dy.layout == x.layout && r.layout == x.layout, "BatchNorm: gradient layouts differ from the input's")
        let d = sumGrad.get(x.shape, layout: x.layout)
        batchNormResidualActivationGradient(d.buffer, dy.readBuffer, x.readBuffer, residual: r.readBuffer,
                                            mean: pass.mean.readBuffer, invstd: pass.invstd.readBuffer,
                                            weight: norm.weight?.value.readBuffer, bias: norm.bias?.value.readBuffer,
                                            shape: pass.shape(of: x, norm), spec: spec, ste: ste)
        residual = nil
        return (d, pass.backward(d, of: norm, activation: nil))
    }
}
