// BatchNorm over channels, PyTorch BatchNorm1d ([n, c]) and BatchNorm2d ([n, c, h, w]) semantics:
// eps 1e-5, momentum 0.1, biased batch variance to normalise, unbiased variance into running_var,
// running statistics in eval. The paper uses it WITHOUT scale and shift (affine off) before every
// quantized activation; affine on is supported (weight 1, bias 0 at init, as PyTorch).
// `BatchNorm` is the plain layer; the batch norm fused with the quantized activation after it is
// `BatchNormActivation` (BatchNormActivation.swift). Both compute through one `BatchNormPass`, where the
// kernels' calls are written once.
import Kernels

public final class BatchNorm: Layer {
    public let channels: Int, eps: Float, momentum: Float
    public let weight: Parameter?, bias: Parameter?
    public let runningMean: Tensor, runningVar: Tensor
    private var pass: BatchNormPass

    public init(_ channels: Int, affine: Bool = false, eps: Float = 1e-5, momentum: Float = 0.1) {
        (self.channels, self.eps, self.momentum) = (channels, eps, momentum)
        weight = affine ? Parameter(name: "weight", value: Tensor(repeating: 1, shape: [channels]),
                                    grad: Tensor(zeros: [channels]), decay: true) : nil
        bias = affine ? Parameter(name: "bias", shape: [channels]) : nil
        runningMean = Tensor(zeros: [channels])
        runningVar = Tensor(repeating: 1, shape: [channels])
        pass = BatchNormPass(channels: channels)
    }

    public var parameters: [Parameter] { [weight, bias].compactMap { $0 } }
    public var buffers: [(name: String, value: Tensor)] { [("running_mean", runningMean), ("running_var", runningVar)] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        pass.forward(x, of: self, training: training, quantizer: nil)
    }

    public func backward(_ dy: Tensor) -> Tensor { pass.backward(dy, of: self, activation: nil) }
}

public typealias BatchNorm2d = BatchNorm
public typealias BatchNorm1d = BatchNorm

/// One batch-norm forward and what its backward needs (the input, the batch mean and 1/std, the mode), for
/// the parameters and running statistics of a `BatchNorm`. A quantizer given to the forward is applied in
/// the same pass over memory (Kernels/BatchNorm.swift), and its STE then masks the backward's dy.
struct BatchNormPass {
    let mean: Tensor, invstd: Tensor
    private var output = ReusableTensor(), inputGrad = ReusableTensor()
    private(set) var input: Tensor?
    private(set) var trainingMode = false

    init(channels: Int) {
        mean = Tensor(zeros: [channels])
        invstd = Tensor(zeros: [channels])
    }

    func shape(of x: Tensor, _ norm: BatchNorm) -> BatchNormShape {
        precondition((x.rank == 2 || x.rank == 4) && x.shape[1] == norm.channels && (x.rank == 4 || x.layout == .nchw),
                     "BatchNorm(\(norm.channels)) got \(x.shape) in \(x.layout)")
        return BatchNormShape(n: x.shape[0], c: norm.channels, spatial: x.rank == 4 ? x.shape[2] * x.shape[3] : 1,
                              layout: x.layout)
    }

    /// y = BN(x) (+ residual), then σ of that when `quantizer` is given.
    mutating func forward(_ x: Tensor, of norm: BatchNorm, training: Bool, quantizer: QuantizerSpec?,
                          residual: Tensor? = nil) -> Tensor {
        let s = shape(of: x, norm)
        let y = output.get(x.shape, layout: x.layout)
        if training {
            batchNormForwardTraining(y.buffer, mean: mean.buffer, invstd: invstd.buffer, x.readBuffer,
                                     runningMean: norm.runningMean.buffer, runningVar: norm.runningVar.buffer,
                                     weight: norm.weight?.value.readBuffer, bias: norm.bias?.value.readBuffer,
                                     shape: s, eps: norm.eps, momentum: norm.momentum, quantizer: quantizer,
                                     residual: residual?.readBuffer)
        } else {
            batchNormForwardInference(y.buffer, x.readBuffer, runningMean: norm.runningMean.readBuffer,
                                      runningVar: norm.runningVar.readBuffer, weight: norm.weight?.value.readBuffer,
                                      bias: norm.bias?.value.readBuffer, shape: s, eps: norm.eps, quantizer: quantizer,
                                      residual: residual?.readBuffer)
        }
        input = x
        trainingMode = training
        return y
    }

    /// dx of the latest forward (which must not have added a residual). With `activation` (the forward's
    /// quantizer), `dy` is the gradient at the quantizer's output.
    mutating func backward(_ dy: Tensor, of norm: BatchNorm, activation: (spec: QuantizerSpec, ste: STE)?) -> Tensor {
        guard let x = input else { preconditionFailure("BatchNorm.backward without a forward") }
        input = nil  // consumed: the producer may reuse that buffer next step
        let s = shape(of: x, norm)
        precondition(dy.layout == x.layout, "BatchNorm.backward: dy in \(dy.layout), input was \(x.layout)")
        let dx = inputGrad.get(x.shape, layout: x.layout)
        if trainingMode {
            batchNormBackwardTraining(dx.buffer, dweight: norm.weight?.grad.buffer, dbias: norm.bias?.grad.buffer,
                                      dy.readBuffer, x.readBuffer, mean: mean.readBuffer, invstd: invstd.readBuffer,
                                      weight: norm.weight?.value.readBuffer, shape: s, accumulate: false,
                                      activation: activation, bias: norm.bias?.value.readBuffer)
        } else {
            precondition(norm.weight == nil, "BatchNorm: backward after an eval forward is only for affine off")
            precondition(activation == nil, "QReLU.backward without a training forward")
            batchNormBackwardInference(dx.buffer, dy.readBuffer, runningVar: norm.runningVar.readBuffer, weight: nil,
                                       shape: s, eps: norm.eps, accumulate: false)
        }
        return dx
    }
}
