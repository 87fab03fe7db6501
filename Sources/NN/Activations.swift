// The activation layers: `QReLU`, the net's activation slot (float ReLU for pretraining or the b-bit
// quantized ReLU with an STE backward, kernels in Kernels/QuantizedReLU.swift), and a plain `ReLU`.
// After a batch norm the slot runs fused into it (BatchNormActivation.swift).
import Kernels

/// The activation slot of the nets; `Network.setActivation` swaps what it computes.
public final class QReLU: Layer {
    public var activation: Activation
    private var input: Tensor?
    private var output = ReusableTensor(), inputGrad = ReusableTensor()

    public init(_ activation: Activation) { self.activation = activation }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let y = output.get(x.shape, layout: x.layout)
        switch activation {
        case .float: reluForward(y.buffer, x.readBuffer)
        case .quantized(let spec, _): quantizedReLUForward(y.buffer, x.readBuffer, spec: spec)
        }
        input = training ? x : nil
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("QReLU.backward without a training forward") }
        input = nil  // the forward's cache is consumed: the producer may reuse that buffer next step
        let dx = inputGrad.get(x.shape, layout: x.layout)
        switch activation {
        case .float: reluBackward(dx.buffer, dy.readBuffer, x.readBuffer, accumulate: false)
        case .quantized(let spec, let ste):
            quantizedReLUBackward(dx.buffer, dy.readBuffer, x.readBuffer, spec: spec, ste: ste, accumulate: false)
        }
        return dx
    }
}

/// max(x, 0); not swapped by `setActivation`.
public final class ReLU: Layer {
    private var input: Tensor?
    private var output = ReusableTensor(), inputGrad = ReusableTensor()
    public init() {}

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let y = output.get(x.shape, layout: x.layout)
        reluForward(y.buffer, x.readBuffer)
        input = training ? x : nil
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("ReLU.backward without a training forward") }
        input = nil
        let dx = inputGrad.get(x.shape, layout: x.layout)
        reluBackward(dx.buffer, dy.readBuffer, x.readBuffer, accumulate: false)
        return dx
    }
}
