// Straight-through estimators as backward rules μ′(x) for a quantized (staircase) or binary activation.
// identity: μ(x) = x; relu: μ(x) = max(x, 0); clipped relu: μ(x) = min(max(x, 0), c) with c the top
// level (c = 1 for the binary σ(x) = 1{x>0}, c = Lα for the b-bit quantized ReLU); log-tailed relu
// (Cai et al. 2017, HWGQ): μ(x) = x on (0, c], c + log(x − c + 1) above — monotone, derivative 1/(x−c+1).
import Foundation

public enum STE: String, CaseIterable, Codable, Sendable {
    case identity
    case relu
    case clippedRelu = "clipped_relu"
    case logTailedRelu = "log_tailed_relu"

    /// μ′(x) for an activation whose top level is `clip`.
    @inline(__always) public func derivative(_ x: Double, clip: Double) -> Double {
        switch self {
        case .identity: return 1
        case .relu: return x > 0 ? 1 : 0
        case .clippedRelu: return x > 0 && x <= clip ? 1 : 0
        case .logTailedRelu: return x <= 0 ? 0 : x <= clip ? 1 : 1 / (x - clip + 1)
        }
    }

    @inline(__always) public func derivative(_ x: Float, clip: Float) -> Float {
        switch self {
        case .identity: return 1
        case .relu: return x > 0 ? 1 : 0
        case .clippedRelu: return x > 0 && x <= clip ? 1 : 0
        case .logTailedRelu: return x <= 0 ? 0 : x <= clip ? 1 : 1 / (x - clip + 1)
        }
    }

    public var label: String {
        switch self {
        case .identity: return "identity"
        case .relu: return "ReLU"
        case .clippedRelu: return "clipped ReLU"
        case .logTailedRelu: return "log-tailed ReLU"
        }
    }
}

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
