// The weight quantizer and the weight-gradient estimators Q̂′ of Schoenbauer, Moro, Lew & Howard 2024,
// "Custom Gradient Estimators are Straight-Through Estimators in Disguise" (arXiv 2405.05171), notes §4.
// Quantizer (our documented choice; the paper's "Δ, L, U" quantizer is not readable): b-bit uniform
// MID-RISE levels Δ·(k + ½), k ∈ {−2^(b−1), …, 2^(b−1)−1}, so the levels are symmetric, the bin
// boundaries are the multiples kΔ, and the clipping range [−2^(b−1)Δ, 2^(b−1)Δ] is a union of whole bins.
import Foundation

public struct WeightQuantizer: Sendable, Equatable {
    public let bits: Int
    /// Δ: the spacing of the levels and the width of every bin.
    public let step: Double

    public init(bits: Int, step: Double) {
        precondition(bits >= 1 && bits <= 16, "weight quantizer: bits \(bits) outside 1...16")
        precondition(step > 0 && step.isFinite, "weight quantizer: step \(step) must be positive")
        self.bits = bits
        self.step = step
    }

    public var lowestBin: Int { -(1 << (bits - 1)) }
    public var highestBin: Int { (1 << (bits - 1)) - 1 }
    /// The clipping range [lower, upper]: the estimators are zero outside it.
    public var lower: Double { Double(lowestBin) * step }
    public var upper: Double { Double(highestBin + 1) * step }

    /// The bin index k of w (clamped to the b-bit range): w ∈ [kΔ, (k+1)Δ).
    @inline(__always) public func bin(_ w: Double) -> Int {
        let k = (w / step).rounded(.down)
        if !(k >= Double(lowestBin)) { return lowestBin }  // also NaN → lowest, never a trap
        if k > Double(highestBin) { return highestBin }
        return Int(k)
    }

    /// Q(w) = Δ·(k + ½).
    @inline(__always) public func quantize(_ w: Double) -> Double { step * (Double(bin(w)) + 0.5) }

    /// Every level, lowest first.
    public var levels: [Double] { (lowestBin...highestBin).map { step * (Double($0) + 0.5) } }

    @inline(__always) public func contains(_ w: Double) -> Bool { w >= lower && w <= upper }
}

/// Q̂′: the backward rule for the weights. All rules are zero outside the clipping range; inside it each has
/// the same shape in every bin (a "cyclical" estimator), written as a function of the phase φ = w/Δ − ⌊w/Δ⌋.
public enum WeightEstimator: Sendable, Equatable, CustomStringConvertible {
    /// 1 inside the range.
    case ste
    /// 1 + a·cos(2πw/Δ), |a| < 1: largest at the bin boundaries for a > 0, smallest at the levels.
    case cosine(amplitude: Double)
    /// A tent per bin: `low` at the bin boundaries, `high` at the level (bin centre), linear between.
    case piecewiseLinear(low: Double, high: Double)

    /// Throws a message naming the problem when the parameters leave the class 0 < L₋ ≤ Q̂′ ≤ L₊.
    public func validated() throws -> WeightEstimator {
        switch self {
        case .ste: break
        case .cosine(let a):
            guard a.isFinite, abs(a) < 1 else { throw EstimatorError("cosine estimator: |amplitude| must be < 1, got \(a)") }
        case .piecewiseLinear(let low, let high):
            guard low > 0, high >= low, high.isFinite else {
                throw EstimatorError("piecewise-linear estimator: need 0 < low ≤ high, got low \(low), high \(high)")
            }
        }
        return self
    }

    /// The in-range value at phase φ ∈ [0, 1].
    @inline(__always) public func shape(phase φ: Double) -> Double {
        switch self {
        case .ste: return 1
        case .cosine(let a): return 1 + a * cos(2 * Double.pi * φ)
        case .piecewiseLinear(let low, let high): return low + (high - low) * (1 - abs(2 * φ - 1))
        }
    }

    /// Q̂′(w): the shape inside the clipping range, 0 outside.
    @inline(__always) public func derivative(_ w: Double, _ q: WeightQuantizer) -> Double {
        guard q.contains(w) else { return 0 }
        let x = w / q.step
        return shape(phase: x - x.rounded(.down))
    }

    /// (L₋, L₊): the bounds of Q̂′ inside the range.
    public var bounds: (low: Double, high: Double) {
        switch self {
        case .ste: return (1, 1)
        case .cosine(let a): return (1 - abs(a), 1 + abs(a))
        case .piecewiseLinear(let low, let high): return (low, high)
        }
    }

    /// Short name used in result paths and figures.
    public var name: String {
        switch self {
        case .ste: return "ste"
        case .cosine: return "cosine"
        case .piecewiseLinear: return "pwl"
        }
    }

    public var description: String {
        switch self {
        case .ste: return "STE (1 in range)"
        case .cosine(let a): return "cosine 1+\(a)·cos(2πw/Δ)"
        case .piecewiseLinear(let low, let high): return "PWL tent \(low)→\(high)→\(low)"
        }
    }
}

public struct EstimatorError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

/// An estimator as written in a YAML config: `{name: cosine, amplitude: 0.8}`, `{name: pwl, low: 0.25,
/// high: 1.75}` or `{name: ste}`.
public struct EstimatorConfig: Codable, Sendable, Equatable {
    public var name: String
    public var amplitude: Double?
    public var low: Double?
    public var high: Double?

    public init(name: String, amplitude: Double? = nil, low: Double? = nil, high: Double? = nil) {
        self.name = name
        self.amplitude = amplitude
        self.low = low
        self.high = high
    }

    public func make() throws -> WeightEstimator {
        switch name {
        case "ste": return .ste
        case "cosine":
            guard let amplitude else { throw EstimatorError("estimator cosine needs `amplitude`") }
            return try WeightEstimator.cosine(amplitude: amplitude).validated()
        case "pwl":
            guard let low, let high else { throw EstimatorError("estimator pwl needs `low` and `high`") }
            return try WeightEstimator.piecewiseLinear(low: low, high: high).validated()
        default: throw EstimatorError("unknown estimator \(name); known: ste, cosine, pwl")
        }
    }
}
