// The one interface the layers use for what oneDNN does: 2-D convolution forward, backward-data and
// backward-weights (bias optional). A backend hands out one `Convolution2D` per layer geometry, built
// once and reused every step; a GPU (cuDNN) backend would be one more `ConvolutionBackend`.
// Tensors are plain row-major — activations NCHW, weights (outC, inC, k, k), bias (outC) — except
// activations handed over in a convolution's own channel-blocked layout (`nativeLayouts`), which a
// backend that computes in that layout then uses without a reorder.
import Kernels

public struct Conv2DGeometry: Hashable, Sendable, CustomStringConvertible {
    public var batch: Int, inChannels: Int, height: Int, width: Int
    public var outChannels: Int, kernel: Int, stride: Int, padding: Int

    public init(batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int, kernel: Int,
                stride: Int = 1, padding: Int = 0) {
        (self.batch, self.inChannels, self.height, self.width) = (batch, inChannels, height, width)
        (self.outChannels, self.kernel, self.stride, self.padding) = (outChannels, kernel, stride, padding)
    }

    public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    public var inputCount: Int { batch * inChannels * height * width }
    public var outputCount: Int { batch * outChannels * outHeight * outWidth }
    public var weightCount: Int { outChannels * inChannels * kernel * kernel }
    /// Multiply-adds of one forward pass over the batch.
    public var macs: Int { outputCount * inChannels * kernel * kernel }
    public var description: String {
        "n\(batch) \(inChannels)→\(outChannels) \(height)×\(width) k\(kernel) s\(stride) p\(padding)"
    }
}

/// A convolution built for one geometry. Outputs are overwritten (not accumulated): the layer adds
/// weight gradients into its parameters itself.
/// The layouts of one call's activations: `source` for x and dx, `destination` for y and dy.
public struct ConvolutionLayouts: Hashable, Sendable {
    public var source: ActivationLayout, destination: ActivationLayout
    public init(source: ActivationLayout, destination: ActivationLayout) {
        (self.source, self.destination) = (source, destination)
    }
    public static let nchw = ConvolutionLayouts(source: .nchw, destination: .nchw)
}

public protocol Convolution2D: AnyObject {
    var geometry: Conv2DGeometry { get }
    var hasBias: Bool { get }
    /// Name of the kernel that runs (e.g. "jit:avx2", "im2col+sgemm").
    var implementation: String { get }
    /// y = conv(x, w) (+ b)
    func forward(input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                 output: UnsafeMutablePointer<Float>)
    /// dx = conv_transpose(dy, w)
    func backwardData(outputGrad: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                      inputGrad: UnsafeMutablePointer<Float>)
    /// dw = Σ dy ⋆ x; db = Σ dy (when the convolution has a bias; pass nil otherwise)
    func backwardWeights(input: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>,
                         weightGrad: UnsafeMutablePointer<Float>, biasGrad: UnsafeMutablePointer<Float>?)
    /// Both backward passes; inputGrad nil skips backward-data (the first layer needs no dx). A
    /// requirement (not only an extension method) so that a backend's version that shares work between
    /// the two passes is the one called through `Convolution2D`.
    /// `input` must be the input of the latest `forward` call (backends may reuse what they derived from it).
    func backward(input: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                  inputGrad: UnsafeMutablePointer<Float>?, weightGrad: UnsafeMutablePointer<Float>,
                  biasGrad: UnsafeMutablePointer<Float>?)

    /// The channel-blocked layouts this convolution computes in, for the source and the destination side
    /// (`.nchw` on a side it computes in NCHW, or in a layout the Kernels cannot handle). A call may hand
    /// each side over in NCHW or in this layout; the native one skips a reorder.
    var nativeLayouts: ConvolutionLayouts { get }
    /// `forward` with x in `layouts.source` and y written in `layouts.destination`.
    func forward(input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                 output: UnsafeMutablePointer<Float>, layouts: ConvolutionLayouts)
    /// `backward` with x and dx in `layouts.source`, dy in `layouts.destination`.
    func backward(input: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                  inputGrad: UnsafeMutablePointer<Float>?, weightGrad: UnsafeMutablePointer<Float>,
                  biasGrad: UnsafeMutablePointer<Float>?, layouts: ConvolutionLayouts)
    /// `forward` for eval (no backward follows): a backend may run a kernel it has for inference only,
    /// which may sum in another order (results then agree with `forward` to rounding).
    func forwardInference(input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                          output: UnsafeMutablePointer<Float>, layouts: ConvolutionLayouts)
}

public protocol ConvolutionBackend: AnyObject {
    var name: String { get }
    func convolution(_ geometry: Conv2DGeometry, bias: Bool) -> Convolution2D
}

/// The backend the layers use, and the thread settings of every library, set from one place.
public enum Compute {
    /// oneDNN when it initialises, otherwise the reference path.
    public nonisolated(unsafe) static var backend: ConvolutionBackend = OneDNNBackend.make() ?? ReferenceBackend()

    /// The reference backend (im2col + OpenBLAS), the test reference and fallback.
    public static let reference = ReferenceBackend()
}

extension Convolution2D {
    /// Backends without blocked kernels compute in NCHW only.
    public var nativeLayouts: ConvolutionLayouts { .nchw }

    public func forward(input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        output: UnsafeMutablePointer<Float>, layouts: ConvolutionLayouts) {
        precondition(layouts == .nchw, "conv \(geometry) (\(implementation)) computes in NCHW only, got \(layouts)")
        forward(input: input, weight: weight, bias: bias, output: output)
    }

    public func forwardInference(input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                 output: UnsafeMutablePointer<Float>, layouts: ConvolutionLayouts) {
        forward(input: input, weight: weight, bias: bias, output: output, layouts: layouts)
    }

    public func backward(input: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         inputGrad: UnsafeMutablePointer<Float>?, weightGrad: UnsafeMutablePointer<Float>,
                         biasGrad: UnsafeMutablePointer<Float>?, layouts: ConvolutionLayouts) {
        precondition(layouts == .nchw, "conv \(geometry) (\(implementation)) computes in NCHW only, got \(layouts)")
        backward(input: input, outputGrad: outputGrad, weight: weight, inputGrad: inputGrad, weightGrad: weightGrad,
                 biasGrad: biasGrad)
    }

    /// The two passes one after the other.
    public func backward(input: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         inputGrad: UnsafeMutablePointer<Float>?, weightGrad: UnsafeMutablePointer<Float>,
                         biasGrad: UnsafeMutablePointer<Float>?) {
        if let inputGrad { backwardData(outputGrad: outputGrad, weight: weight, inputGrad: inputGrad) }
        backwardWeights(input: input, outputGrad: outputGrad, weightGrad: weightGrad, biasGrad: biasGrad)
    }
}
