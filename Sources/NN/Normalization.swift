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
    private let mean: Tensor, invstd: Tensor
    private var output = ReusableTensor(), inputGrad = ReusableTensor()

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
        precondition((x.rank == 2 || x.rank == 4) && x.shape[1] == channels, "BatchNorm(\(channels)) got \(x.shape)")
        return BatchNormShape(n: x.shape[0], c: channels, spatial: x.rank == 4 ? x.shape[2] * x.shape[3] : 1)
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let s = shape(of: x)
        let y = output.get(x.shape)
        if training {
            batchNormForwardTraining(y.buffer, mean: mean.buffer, invstd: invstd.buffer, x.readBuffer,
                                     runningMean: runningMean.buffer, runningVar: runningVar.buffer,
                                     weight: weight?.value.readBuffer, bias: bias?.value.readBuffer,
                                     shape: s, eps: eps, momentum: momentum)
        } else {
            batchNormForwardInference(y.buffer, x.readBuffer, runningMean: runningMean.readBuffer,
                                      runningVar: runningVar.readBuffer, weight: weight?.value.readBuffer,
                                      bias: bias?.value.readBuffer, shape: s, eps: eps)
        }
        input = x
        trainingMode = training
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("BatchNorm.backward without a forward") }
        input = nil  // consumed: the producer may reuse that buffer next step
        let s = shape(of: x)
        let dx = inputGrad.get(x.shape)
        if trainingMode {
            batchNormBackwardTraining(dx.buffer, dweight: weight?.grad.buffer, dbias: bias?.grad.buffer, dy.readBuffer,
                                      x.readBuffer, mean: mean.readBuffer, invstd: invstd.readBuffer,
                                      weight: weight?.value.readBuffer, shape: s, accumulate: false)
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
