// Shape layers: MaxPool2d(2) (PyTorch tie rule: first maximum in scan order), AvgPool2d(2), global average pooling
// to [n, c] (adaptive_avg_pool2d(·, 1).flatten(1)), Flatten, and the ResNet option-A shortcut.
import Kernels

public final class MaxPool2d: Layer {
    private var inputShape: [Int] = []
    private var inputLayout = ActivationLayout.nchw, outputLayout = ActivationLayout.nchw
    private var argmax: [UInt8] = []
    private var output = ReusableTensor(), inputGrad = ReusableTensor()
    public init() {}

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.rank == 4, "MaxPool2d got \(x.shape)")
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        // A channel-blocked input's layout is kept where the Kernels handle the output in it, else NCHW.
        inputLayout = x.layout
        outputLayout = x.layout.block.map {
            channelBlockingSupported(channels: c, spatial: (h / 2) * (w / 2), block: $0) ? x.layout : .nchw
        } ?? .nchw
        let y = output.get([n, c, h / 2, w / 2], layout: outputLayout)
        if argmax.count != y.count { argmax = [UInt8](repeating: 0, count: y.count) }
        argmax.withUnsafeMutableBufferPointer {
            if x.layout == .nchw {
                maxPool2Forward(y.buffer, argmax: $0, x.readBuffer, n: n, c: c, h: h, w: w)
            } else {
                maxPool2ForwardBlocked(y.buffer, argmax: $0, x.readBuffer, n: n, c: c, h: h, w: w,
                                       inputLayout: inputLayout, outputLayout: outputLayout)
            }
        }
        inputShape = x.shape
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        precondition(inputShape.count == 4, "MaxPool2d.backward without a forward")
        precondition(dy.layout == outputLayout, "MaxPool2d.backward: dy in \(dy.layout), output was \(outputLayout)")
        let dx = inputGrad.get(inputShape, layout: inputLayout)  // the backward kernels write every element
        argmax.withUnsafeBufferPointer {
            if inputLayout == .nchw {
                maxPool2Backward(dx.buffer, dy.readBuffer, argmax: $0, n: inputShape[0], c: inputShape[1],
                                 h: inputShape[2], w: inputShape[3])
            } else {
                maxPool2BackwardBlocked(dx.buffer, dy.readBuffer, argmax: $0, n: inputShape[0], c: inputShape[1],
                                        h: inputShape[2], w: inputShape[3], inputLayout: inputLayout,
                                        outputLayout: outputLayout)
            }
        }
        return dx
    }
}

/// AvgPool2d(2) (PyTorch nn.AvgPool2d(2), flax avg_pool with a 2×2 window and stride 2) on NCHW input with
/// even height and width: each output is the mean of its 2×2 window, and backward spreads dy/4 over it.
public final class AvgPool2d: Layer {
    private var inputShape: [Int] = []
    private var output = ReusableTensor(), inputGrad = ReusableTensor()
    public init() {}

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.rank == 4 && x.layout == .nchw && x.shape[2] % 2 == 0 && x.shape[3] % 2 == 0,
                     "AvgPool2d needs NCHW with even height and width, got \(x.shape) in \(x.layout)")
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        let y = output.get([x.shape[0], x.shape[1], h / 2, w / 2])
        let (src, dst) = (x.pointer, y.pointer)
        for p in 0..<planes {
            let xp = src + p * h * w, yp = dst + p * (h / 2) * (w / 2)
            for i in 0..<(h / 2) {
                let r0 = xp + 2 * i * w, r1 = r0 + w, yr = yp + i * (w / 2)
                for j in 0..<(w / 2) { yr[j] = 0.25 * ((r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1])) }
            }
        }
        inputShape = x.shape
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        precondition(inputShape.count == 4, "AvgPool2d.backward without a forward")
        let (planes, h, w) = (inputShape[0] * inputShape[1], inputShape[2], inputShape[3])
        let dx = inputGrad.get(inputShape)  // every element written below
        let (src, dst) = (dy.pointer, dx.pointer)
        for p in 0..<planes {
            let yp = src + p * (h / 2) * (w / 2), xp = dst + p * h * w
            for i in 0..<(h / 2) {
                let r0 = xp + 2 * i * w, r1 = r0 + w, yr = yp + i * (w / 2)
                for j in 0..<(w / 2) {
                    let g = 0.25 * yr[j]
                    (r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]) = (g, g, g, g)
                }
            }
        }
        return dx
    }
}

/// [n, c, h, w] → [n, c], the mean over each plane.
public final class GlobalAvgPool: Layer {
    private var inputShape: [Int] = []
    private var inputLayout = ActivationLayout.nchw
    private var output = ReusableTensor(), inputGrad = ReusableTensor()
    public init() {}

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.rank == 4, "GlobalAvgPool got \(x.shape)")
        let y = output.get([x.shape[0], x.shape[1]])
        globalAveragePoolForward(y.buffer, x.readBuffer, n: x.shape[0], c: x.shape[1], spatial: x.shape[2] * x.shape[3],
                                 layout: x.layout)
        inputShape = x.shape
        inputLayout = x.layout
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let dx = inputGrad.get(inputShape, layout: inputLayout)  // globalAveragePoolBackward writes every element
        globalAveragePoolBackward(dx.buffer, dy.readBuffer, n: inputShape[0], c: inputShape[1],
                                  spatial: inputShape[2] * inputShape[3], layout: inputLayout)
        return dx
    }
}

/// [n, …] → [n, rest] (a copy: tensors handed out by other layers keep their shape).
public final class Flatten: Layer {
    private var inputShape: [Int] = []
    private var output = ReusableTensor(), inputGrad = ReusableTensor()
    public init() {}

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.layout == .nchw, "Flatten got a tensor in \(x.layout)")
        inputShape = x.shape
        let y = output.get([x.shape[0], x.count / max(1, x.shape[0])])
        copyImages(y.buffer, x.readBuffer, images: x.shape[0])
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let dx = inputGrad.get(inputShape)
        copyImages(dx.buffer, dy.readBuffer, images: inputShape[0])
        return dx
    }
}

/// He et al. (2016) option A: x[:, :, ::2, ::2] with `pad` zero channels on each side.
public final class ShortcutOptionA: Layer {
    public let pad: Int
    private var inputShape: [Int] = []
    private var inputLayout = ActivationLayout.nchw, outputLayout = ActivationLayout.nchw
    private var output = ReusableTensor(), inputGrad = ReusableTensor()
    public init(pad: Int) { self.pad = pad }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.rank == 4, "ShortcutOptionA got \(x.shape)")
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        // A channel-blocked input's layout is kept where the Kernels handle the output in it, else NCHW.
        let (oc, oh, ow) = (c + 2 * pad, (h + 1) / 2, (w + 1) / 2)
        outputLayout = x.layout.block.map {
            channelBlockingSupported(channels: oc, spatial: oh * ow, block: $0) ? x.layout : .nchw
        } ?? .nchw
        let y = output.get([n, oc, oh, ow], layout: outputLayout)
        shortcutOptionAForward(y.buffer, x.readBuffer, n: n, c: c, h: h, w: w, pad: pad, inputLayout: x.layout,
                               outputLayout: outputLayout)
        inputShape = x.shape
        inputLayout = x.layout
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        precondition(dy.layout == outputLayout, "ShortcutOptionA.backward: dy in \(dy.layout), output was \(outputLayout)")
        let dx = inputGrad.get(inputShape, layout: inputLayout)  // shortcutOptionABackward writes every element
        shortcutOptionABackward(dx.buffer, dy.readBuffer, n: inputShape[0], c: inputShape[1], h: inputShape[2],
                                w: inputShape[3], pad: pad, inputLayout: inputLayout, outputLayout: outputLayout)
        return dx
    }
}
