// Convolutions whose narrow side is run by the direct NCHW kernels (Kernels/DirectConvolution.swift)
// and the rest by a library convolution (oneDNN). `ConvolutionPasses.direct(for:)` is the rule that
// picks the passes: those whose channel count oneDNN would pad to a 16-channel block and reorder.

import Kernels

/// The three passes of a convolution.
public struct ConvolutionPasses: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let forward = ConvolutionPasses(rawValue: 1)
    public static let backwardData = ConvolutionPasses(rawValue: 2)
    public static let backwardWeights = ConvolutionPasses(rawValue: 4)
    public static let all: ConvolutionPasses = [.forward, .backwardData, .backwardWeights]

    /// The passes the direct kernels run faster than oneDNN on this project's machines (`ste bench
    /// --convs`, ms per 128-image call at 2 threads, oneDNN's time including its reorders):
    /// - fewer than 8 output channels (LeNet-5 conv1, 1→6): forward (0.18 vs 0.54) and backward-weights
    ///   (0.26 vs 0.40), the row-vectorised kernels;
    /// - fewer than 8 input channels and a multiple of 8 output channels (LeNet-5 conv2, 6→16):
    ///   backward-data through columns (0.55 vs 0.74) and backward-weights over channel vectors (0.33 vs
    ///   0.53); its forward stays on oneDNN (0.28 vs 0.52 for the row kernel). Only for kernels of 5 and
    ///   more: the weight kernel's tile is 5 kernel columns (ResNet-20's 3→16 stem, k3: 1.10 vs 0.71).
    /// Empty for geometries the kernels do not handle.
    public static func direct(for g: Conv2DGeometry) -> ConvolutionPasses {
        guard let shape = g.directShape else { return [] }
        if g.outChannels < 8, DirectConvolution.supports(shape) { return [.forward, .backwardWeights] }
        if g.inChannels < 8, g.kernel >= 5, DirectConvolution.supportsChannelVectors(shape),
           DirectConvolution.supportsColumns(shape) {
            return [.backwardData, .backwardWeights]
        }
        return []
    }
}

extension Conv2DGeometry {
    /// The direct kernels' description of this geometry; nil when strided.
    public var directShape: DirectConvShape? {
        guard stride == 1 else { return nil }
        return DirectConvShape(batch: batch, inChannels: inChannels, height: height, width: width,
                               outChannels: outChannels, kernel: kernel, padding: padding)
    }
}

/// The direct kernels for every pass (tests and `ste bench --convs`); only for geometries they handle.
public final class DirectBackend: ConvolutionBackend {
    public let name = "direct (NCHW, SIMD8)"
    public init() {}
    public func convolution(_ geometry: Conv2DGeometry, bias: Bool) -> Convolution2D {
        MixedConvolution(geometry, bias: bias, direct: .all, library: nil)
    }
}

/// A convolution that runs the `direct` passes on the direct kernels and the others on `library`.
public final class MixedConvolution: Convolution2D {
    public let geometry: Conv2DGeometry
    public let hasBias: Bool
    public let implementation: String
    public let direct: ConvolutionPasses
    private let shape: DirectConvShape
    private let library: Convolution2D?
    /// The weight gradient vectorised over output channels (a multiple of 8) rather than along rows.
    private let weightsOverChannels: Bool

    public init(_ geometry: Conv2DGeometry, bias: Bool, direct: ConvolutionPasses, library: Convolution2D?) {
        guard let shape = geometry.directShape else { preconditionFailure("direct kernels: strided \(geometry)") }
        weightsOverChannels = DirectConvolution.supportsChannelVectors(shape)
        let rows = DirectConvolution.supports(shape)
        precondition(!direct.contains(.forward) || rows, "direct convolution kernels do not handle \(geometry)")
        precondition(!direct.contains(.backwardData) || DirectConvolution.supportsColumns(shape),
                     "direct backward-data kernel does not handle \(geometry)")
        precondition(!direct.contains(.backwardWeights) || rows || weightsOverChannels,
                     "direct weight-gradient kernels do not handle \(geometry)")
        precondition(direct == .all || library != nil, "conv \(geometry): passes left without a library")
        (self.geometry, hasBias, self.direct, self.shape, self.library) = (geometry, bias, direct, shape, library)
        let names = [(ConvolutionPasses.forward, "fwd"), (.backwardData, "bwd-data"),
                     (.backwardWeights, weightsOverChannels ? "bwd-weights over channels" : "bwd-weights")]
            .filter { direct.contains($0.0) }.map(\.1)
        implementation = "direct (\(names.joined(separator: ", ")))"
            + (direct == .all ? "" : "; \(library!.implementation)")
    }

    public func forward(input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        output: UnsafeMutablePointer<Float>) {
        precondition((bias != nil) == hasBias, "conv \(geometry): bias \(bias != nil) vs built with \(hasBias)")
        if direct.contains(.forward) {
            DirectConvolution.forward(shape, input: input, weight: weight, bias: bias, output: output)
        } else {
            library!.forward(input: input, weight: weight, bias: bias, output: output)
        }
    }

    public func backwardData(outputGrad: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                             inputGrad: UnsafeMutablePointer<Float>) {
        if direct.contains(.backwardData) {
            DirectConvolution.backwardDataByColumns(shape, outputGrad: outputGrad, weight: weight, inputGrad: inputGrad)
        } else {
            library!.backwardData(outputGrad: outputGrad, weight: weight, inputGrad: inputGrad)
        }
    }

    public func backwardWeights(input: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>,
                                weightGrad: UnsafeMutablePointer<Float>, biasGrad: UnsafeMutablePointer<Float>?) {
        precondition((biasGrad != nil) == hasBias, "conv \(geometry): bias grad \(biasGrad != nil) vs \(hasBias)")
        if direct.contains(.backwardWeights) && weightsOverChannels {
            DirectConvolution.backwardWeightsOverChannels(shape, input: input, outputGrad: outputGrad,
                                                          weightGrad: weightGrad, biasGrad: biasGrad)
        } else if direct.contains(.backwardWeights) {
            DirectConvolution.backwardWeights(shape, input: input, outputGrad: outputGrad, weightGrad: weightGrad,
                                              biasGrad: biasGrad)
        } else {
            library!.backwardWeights(input: input, outputGrad: outputGrad, weightGrad: weightGrad, biasGrad: biasGrad)
        }
    }

    public func backward(input: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         inputGrad: UnsafeMutablePointer<Float>?, weightGrad: UnsafeMutablePointer<Float>,
                         biasGrad: UnsafeMutablePointer<Float>?) {
        // Both backward passes on the library: let it share its reorders between them.
        if let library, direct.isDisjoint(with: [.backwardData, .backwardWeights]) {
            library.backward(input: input, outputGrad: outputGrad, weight: weight, inputGrad: inputGrad,
                             weightGrad: weightGrad, biasGrad: biasGrad)
            return
        }
        if let inputGrad { backwardData(outputGrad: outputGrad, weight: weight, inputGrad: inputGrad) }
        backwardWeights(input: input, outputGrad: outputGrad, weightGrad: weightGrad, biasGrad: biasGrad)
    }
}
