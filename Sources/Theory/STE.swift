// The theory experiments' quantized activation. Their STEs are the engine's (Kernels.STE: identity, relu, clipped,
// log-tailed; one vocabulary in every config), used through its scalar rules μ′(x) with the top level c = Lα of
// the b-bit quantized ReLU, or c = 1 for the binary σ(x) = 1{x>0}.
import Foundation
import Kernels

/// The b-bit quantized ReLU of Yin et al. 2019, rounding up as the authors' public code does: levels
/// {0, α, …, Lα}, L = 2ᵇ − 1, σ(x) = min(⌈x/α⌉, L)·α for x > 0, 0 otherwise.
public struct QuantizedReLU: Sendable {
    public let bits: Int
    public let alpha: Double
    public var levels: Int { (1 << bits) - 1 }
    public var top: Double { Double(levels) * alpha }

    public init(bits: Int, alpha: Double) {
        self.bits = bits
        self.alpha = alpha
    }

    @inline(__always) public func callAsFunction(_ x: Double) -> Double {
        x <= 0 ? 0 : min((x / alpha).rounded(.up), Double(levels)) * alpha
    }

    @inline(__always) public func callAsFunction(_ x: Float) -> Float {
        x <= 0 ? 0 : min((x / Float(alpha)).rounded(.up), Float(levels)) * Float(alpha)
    }
}
