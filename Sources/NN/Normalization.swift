// BatchNorm over channels, PyTorch BatchNorm1d ([n, c]) and BatchNorm2d ([n, c, h, w]) semantics:
// eps 1e-5, momentum 0.1, biased batch variance to normalise, unbiased variance into running_var,
// running statistics in eval. The paper uses it WITHOUT scale and shift (affine off) before every
// quantized activation; affine on is supported (weight 1, bias 0 at init, as PyTorch).
import Kernels

public final class BatchNorm: Layer {
    public let channels: Int, eps: Float, momentum: Float
    public let weight: Parameter?, bias: Parameter?
    public let runningMean: Tensor, runningVar: Tensor
    private var input: Tensor?
    private var trainingMode = false
    /// The quantized activation the latest forward applied in its own pass (nil: none).
    private var fusedActivation: (spec: QuantizerSpec, ste: STE)?
    private let mean: Tensor, invstd: Tensor
    private var output = ReusableTensor(), inputGrad = ReusableTensor(), sumGrad = ReusableTensor()

    public init(_ channels: Int, affine: Bool = false, eps: Float = 1e-5, momentum: Float = 0.1) {
        (self.channels, self.eps, self.momentum) = (channels, eps, momentum)
        weight = affine ? Parameter(name: "weight", value: Tensor(repeating: 1, shape: [channels]),
                                    grad: Tensor(zeros: [channels]), decay: true) : nil
        bias = affine ? Parameter(name: "bias", shape: [channels]) : nil
        runningMean = Tensor(zeros: [channels])
        runningVar = Tensor(repeating: 1, shape: [channels])
        mean = Tensor(zeros: [channels])
        invstd = Tensor(zeros: [channels])
    }

    public var parameters: [Parameter] { [weight, bias].compactMap { $0 } }
    public var buffers: [(name: String, value: Tensor)] { [("running_mean", runningMean), ("running_var", runningVar)] }

    private func shape(of x: Tensor) -> BatchNormShape {
        precondition((x.rank == 2 || x.rank == 4) && x.shape[1] == channels && (x.rank == 4 || x.layout == .nchw),
                     "BatchNorm(\(channels)) got \(x.shape) in \(x.layout)")
        return BatchNormShape(n: x.shape[0], c: channels, spatial: x.rank == 4 ? x.shape[2] * x.shape[3] : 1,
                              layout: x.layout)
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        normalize(x, training: training, quantizer: nil)
    }

    /// This layer followed by `activation` (the next layer of the net), as one pass over memory when the
    /// activation is a quantized ReLU: the pair's output, bit-identical to calling the two layers in turn.
    /// Its backward is `backward(_:through:)` with the same activation.
    public func forward(_ x: Tensor, training: Bool, then activation: QReLU) -> Tensor {
        guard case .quantized(let spec, let ste) = activation.activation else {
            return activation.forward(forward(x, training: training), training: training)
        }
        let y = normalize(x, training: training, quantizer: spec)
        fusedActivation = training ? (spec, ste) : nil
        activation.forwardWasFused()
        return y
    }

    /// act(this layer's output + residual) in one pass when `activation` is a quantized ReLU (the ResNet
    /// block's end); bit-identical to BatchNorm, add, QReLU in turn. The backward starts with
    /// `activationGradient(_:residual:through:)`, then this layer's `backward` and the residual's.
    public func forward(_ x: Tensor, training: Bool, adding residual: Tensor, then activation: QReLU) -> Tensor? {
        guard x.rank == 4, residual.shape == x.shape, residual.layout == x.layout,
              case .quantized(let spec, _) = activation.activation else {
            return nil
        }
        let y = normalize(x, training: training, quantizer: spec, residual: residual)
        activation.forwardWasFused()
        return y
    }

    /// dy·STE'(pre-activation) after `forward(_:training:adding:then:)`: the gradient at the residual sum
    /// (what the activation's backward would return), recomputing the sum from this layer's saved input.
    public func activationGradient(_ dy: Tensor, residual: Tensor, through activation: QReLU) -> Tensor {
        guard let x = input, trainingMode, case .quantized(let spec, let ste) = activation.activation else {
            preconditionFailure("QReLU.backward without a training forward")
        }
        precondition(dy.layout == x.layout && residual.layout == x.layout, "BatchNorm: gradient layouts differ from the input's")
        let d = sumGrad.get(x.shape, layout: x.layout)
        batchNormResidualActivationGradient(d.buffer, dy.readBuffer, x.readBuffer, residual: residual.readBuffer,
                                            mean: mean.readBuffer, invstd: invstd.readBuffer,
                                            weight: weight?.value.readBuffer, bias: bias?.value.readBuffer,
                                            shape: shape(of: x), spec: spec, ste: ste)
        return d
    }

    /// The backward of `forward(_:training:then:)`: `dy` is the gradient at the activation's output.
    public func backward(_ dy: Tensor, through activation: QReLU) -> Tensor {
        guard activation.skipsBackward else { return backward(activation.backward(dy)) }
        guard let fused = fusedActivation else { preconditionFailure("QReLU.backward without a training forward") }
        return normalizeBackward(dy, activation: fused)
    }

    private func normalize(_ x: Tensor, training: Bool, quantizer: QuantizerSpec?, residual: Tensor? = nil) -> Tensor {
        let s = shape(of: x)
        let y = output.get(x.shape, layout: x.layout)
        if training {
            batchNormForwardTraining(y.buffer, mean: mean.buffer, invstd: invstd.buffer, x.readBuffer,
                                     runningMean: runningMean.buffer, runningVar: runningVar.buffer,
                                     weight: weight?.value.readBuffer, bias: bias?.value.readBuffer,
                                     shape: s, eps: eps, momentum: momentum, quantizer: quantizer,
                                     residual: residual?.readBuffer)
        } else {
            batchNormForwardInference(y.buffer, x.readBuffer, runningMean: runningMean.readBuffer,
                                      runningVar: runningVar.readBuffer, weight: weight?.value.readBuffer,
                                      bias: bias?.value.readBuffer, shape: s, eps: eps, quantizer: quantizer,
                                      residual: residual?.readBuffer)
        }
        input = x
        trainingMode = training
        fusedActivation = nil
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        precondition(fusedActivation == nil, "BatchNorm: the forward was fused with its activation; use backward(_:through:)")
        return normalizeBackward(dy, activation: nil)
    }

    private func normalizeBackward(_ dy: Tensor, activation: (spec: QuantizerSpec, ste: STE)?) -> Tensor {
        guard let x = input else { preconditionFailure("BatchNorm.backward without a forward") }
        input = nil  // consumed: the producer may reuse that buffer next step
        fusedActivation = nil
        let s = shape(of: x)
        precondition(dy.layout == x.layout, "BatchNorm.backward: dy in \(dy.layout), input was \(x.layout)")
        let dx = inputGrad.get(x.shape, layout: x.layout)
        if trainingMode {
            batchNormBackwardTraining(dx.buffer, dweight: weight?.grad.buffer, dbias: bias?.grad.buffer, dy.readBuffer,
                                      x.readBuffer, mean: mean.readBuffer, invstd: invstd.readBuffer,
                                      weight: weight?.value.readBuffer, shape: s, accumulate: false,
                                      activation: activation, bias: bias?.value.readBuffer)
        } else {
            precondition(weight == nil, "BatchNorm: backward after an eval forward is only for affine off")
            batchNormBackwardInference(dx.buffer, dy.readBuffer, runningVar: runningVar.readBuffer, weight: nil,
                                       shape: s, eps: eps, accumulate: false)
        }
        return dx
    }
}

public typealias BatchNorm2d = BatchNorm
public typealias BatchNorm1d = BatchNorm
