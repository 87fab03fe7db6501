// The weight quantizer and the weight-gradient estimators Q̂′ of Schoenbauer, Moro, Lew & Howard 2024,
// "Custom Gradient Estimators are Straight-Through Estimators in Disguise" (arXiv 2405.05171).
// Two uniform quantizers, one type: Q changes value at the thresholds origin + jΔ, and every level is the
// middle of the cell between two thresholds, so a cyclical estimator's shape is a function of the phase
// φ = (w − origin)/Δ − ⌊·⌋ and the equivalence map fixes every threshold.
// - He-uniform (Schoenbauer et al.'s MNIST experiment files): per tensor m = √(6/fan_in), Δ = 2m/(2^b − 1), levels
//   −m + kΔ (k = 0 … 2^b − 1, both ends included), round to nearest, clip to [−m, m]; the end cells are halves.
// - Mid-rise (the 1-D simulation's choice): levels Δ·(k + ½), k ∈ {−2^(b−1), …, 2^(b−1)−1}, thresholds kΔ, clipping
//   range [−2^(b−1)Δ, 2^(b−1)Δ], a union of whole cells.
import Foundation

public struct WeightQuantizer: Sendable, Equatable {
    public let bits: Int
    /// Δ: the spacing of the levels and the width of every cell.
    public let step: Double
    /// A threshold; the others are origin + jΔ.
    public let origin: Double
    /// The cell indices: cell j is [origin + jΔ, origin + (j+1)Δ), its level origin + (j + ½)Δ.
    public let lowestBin: Int, highestBin: Int
    /// The clipping range [lower, upper]: the estimators are zero outside it.
    public let lower: Double, upper: Double

    /// The mid-rise quantizer (thresholds at multiples of Δ).
    public init(bits: Int, step: Double) {
        precondition(bits >= 1 && bits <= 16, "weight quantizer: bits \(bits) outside 1...16")
        precondition(step > 0 && step.isFinite, "weight quantizer: step \(step) must be positive")
        self.bits = bits
        self.step = step
        origin = 0
        lowestBin = -(1 << (bits - 1))
        highestBin = (1 << (bits - 1)) - 1
        lower = Double(lowestBin) * step
        upper = Double(highestBin + 1) * step
    }

    /// The He-uniform quantizer of a weight tensor with `fanIn` inputs per output (Schoenbauer et al.).
    public init(heUniformBits bits: Int, fanIn: Int) {
        precondition(bits >= 1 && bits <= 16, "weight quantizer: bits \(bits) outside 1...16")
        precondition(fanIn > 0, "weight quantizer: fan-in \(fanIn)")
        let m = (6 / Double(fanIn)).squareRoot()
        self.bits = bits
        step = 2 * m / Double((1 << bits) - 1)
        origin = -m + step / 2
        lowestBin = -1
        highestBin = (1 << bits) - 2
        lower = -m
        upper = m
    }

    /// The cell index j of w, clamped: level k = j + 1 of the He-uniform quantizer.
    @inline(__always) public func bin(_ w: Double) -> Int {
        let k = ((w - origin) / step).rounded(.down)
        if !(k >= Double(lowestBin)) { return lowestBin }  // also NaN → lowest, never a trap
        if k > Double(highestBin) { return highestBin }
        return Int(k)
    }

    /// Q(w): the level of w's cell.
    @inline(__always) public func quantize(_ w: Double) -> Double { origin + step * (Double(bin(w)) + 0.5) }

    /// Every level, lowest first.
    public var levels: [Double] { (lowestBin...highestBin).map { origin + step * (Double($0) + 0.5) } }

    @inline(__always) public func contains(_ w: Double) -> Bool { w >= lower && w <= upper }

    /// The phase of w in its cell, in [0, 1).
    @inline(__always) public func phase(_ w: Double) -> Double {
        let x = (w - origin) / step
        return x - x.rounded(.down)
    }
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
    /// DSQ (Gong et al. 2019, the custom estimator of Schoenbauer et al.'s MNIST experiment): the derivative of
    /// (Δ/2)·coth(κ/2)·tanh(κ(w − t)/Δ) around each threshold t, i.e. (κ/2)·coth(κ/2)·sech²(κ·d) at distance dΔ
    /// from the nearest threshold: largest at the thresholds, mean 1 over a cell. κ = k_nΔ is the sharpness per
    /// cell (the files' k / m times Δ = 2k/(2^b − 1)).
    case dsq(sharpness: Double)

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
        case .dsq(let κ):
            guard κ > 0, κ <= 40 else { throw EstimatorError("DSQ estimator: sharpness κ must be in (0, 40], got \(κ)") }
        }
        return self
    }

    /// The in-range value at phase φ ∈ [0, 1].
    @inline(__always) public func shape(phase φ: Double) -> Double {
        switch self {
        case .ste: return 1
        case .cosine(let a): return 1 + a * cos(2 * Double.pi * φ)
        case .piecewiseLinear(let low, let high): return low + (high - low) * (1 - abs(2 * φ - 1))
        case .dsq(let κ):
            let c = cosh(κ * min(φ, 1 - φ))
            return κ / (2 * tanh(κ / 2)) / (c * c)
        }
    }

    /// Q̂′(w): the shape inside the clipping range, 0 outside.
    @inline(__always) public func derivative(_ w: Double, _ q: WeightQuantizer) -> Double {
        guard q.contains(w) else { return 0 }
        return shape(phase: q.phase(w))
    }

    /// (L₋, L₊): the bounds of Q̂′ inside the range.
    public var bounds: (low: Double, high: Double) {
        switch self {
        case .ste: return (1, 1)
        case .cosine(let a): return (1 - abs(a), 1 + abs(a))
        case .piecewiseLinear(let low, let high): return (low, high)
        case .dsq(let κ):
            let c = cosh(κ / 2)
            return (κ / (2 * tanh(κ / 2)) / (c * c), κ / (2 * tanh(κ / 2)))
        }
    }

    /// Short name used in result paths and figures.
    public var name: String {
        switch self {
        case .ste: return "ste"
        case .cosine: return "cosine"
        case .piecewiseLinear: return "pwl"
        case .dsq: return "dsq"
        }
    }

    public var description: String {
        switch self {
        case .ste: return "STE (1 in range)"
        case .cosine(let a): return "cosine 1+\(a)·cos(2πw/Δ)"
        case .piecewiseLinear(let low, let high): return "PWL tent \(low)→\(high)→\(low)"
        case .dsq(let κ): return "DSQ κ = \(κ)"
        }
    }
}

public struct EstimatorError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

/// An estimator as written in a YAML config: `{name: dsq, sharpness: 1.667}`, `{name: cosine, amplitude: 0.8}`,
/// `{name: pwl, low: 0.25, high: 1.75}` or `{name: ste}`.
public struct EstimatorConfig: Codable, Sendable, Equatable {
    public var name: String
    public var amplitude: Double?
    public var low: Double?
    public var high: Double?
    /// DSQ's κ, the sharpness per cell.
    public var sharpness: Double?

    public init(name: String, amplitude: Double? = nil, low: Double? = nil, high: Double? = nil, sharpness: Double? = nil) {
        self.name = name
        self.amplitude = amplitude
        self.low = low
        self.high = high
        self.sharpness = sharpness
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
        case "dsq":
            guard let sharpness else { throw EstimatorError("estimator dsq needs `sharpness` (κ per cell)") }
            return try WeightEstimator.dsq(sharpness: sharpness).validated()
        default: throw EstimatorError("unknown estimator \(name); known: ste, cosine, pwl, dsq")
        }
    }
}
