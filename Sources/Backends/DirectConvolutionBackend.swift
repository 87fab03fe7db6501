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

    /// The passes the direct kernels run faster than oneDNN on this project's machines: forward and
    /// backward-weights when the output has fewer than 8 channels (LeNet-5 conv1, 2 threads, `ste bench
    /// --convs`: forward 0.18 vs 0.54 ms, weights 0.26 vs 0.40 ms). Not backward-data: on LeNet-5 conv2
    /// (6 input channels) the direct kernel took 1.17 ms, oneDNN 0.75 ms. Empty for geometries the
    /// kernels do not handle.
    public static func direct(for g: Conv2DGeometry) -> ConvolutionPasses {
        guard let shape = g.directShape, DirectConvolution.supports(shape), g.outChannels < 8 else { return [] }
        return [.forward, .backwardWeights]
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

    public init(_ geometry: Conv2DGeometry, bias: Bool, direct: ConvolutionPasses, library: Convolution2D?) {
        guard let shape = geometry.directShape, DirectConvolution.supports(shape) else {
            preconditionFailure("direct convolution kernels do not handle \(geometry)")
        }
        precondition(direct == .all || library != nil, "conv \(geometry): passes left without a library")
        (self.geometry, hasBias, self.direct, self.shape, self.library) = (geometry, bias, direct, shape, library)
        let names = [(ConvolutionPasses.forward, "fwd"), (.backwardData, "bwd-data"), (.backwardWeights, "bwd-weights")]
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
            DirectConvolution.backwardData(shape, outputGrad: outputGrad, weight: weight, inputGrad: inputGrad)
        } else {
            library!.backwardData(outputGrad: outputGrad, weight: weight, inputGrad: inputGrad)
        }
    }

    public func backwardWeights(input: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>,
                                weightGrad: UnsafeMutablePointer<Float>, biasGrad: UnsafeMutablePointer<Float>?) {
        precondition((biasGrad != nil) == hasBias, "conv \(geometry): bias grad \(biasGrad != nil) vs \(hasBias)")
        if direct.contains(.backwardWeights) {
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
