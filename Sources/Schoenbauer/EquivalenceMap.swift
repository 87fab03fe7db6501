// The equivalence map of Schoenbauer et al. 2024 (the paper's equivalence rule): training with a cyclical estimator Q̂′,
// learning rate η and init w₀ under SGD ≈ training with the STE, learning rate αη and init M(w₀), where
//   α = Δ / ∫_bin ds/Q̂′(s)      and      M(w) = w_b + α ∫_{w_b}^{w} ds/Q̂′(s)   (w_b a bin boundary).
// Computed numerically for any estimator: composite Simpson over one period of the phase (the shape is the
// same in every bin), a cumulative table at the nodes, and Simpson again on the partial cell.
import Foundation

public struct EquivalenceMap: Sendable {
    public let estimator: WeightEstimator
    /// Simpson cells over one bin (even, so the tent's kink at φ = ½ is a node).
    public let cells: Int
    /// I = ∫₀¹ dφ / shape(φ): the bin integral in units of Δ.
    public let periodIntegral: Double
    /// The STE learning-rate factor α = 1 / I.
    public var alpha: Double { 1 / periodIntegral }
    /// cumulative[i] = ∫₀^{i/cells} dφ / shape(φ).
    private let cumulative: [Double]

    public init(estimator: WeightEstimator, cells: Int = 2048) {
        precondition(cells >= 2 && cells % 2 == 0, "equivalence map: cells \(cells) must be even and ≥ 2")
        self.estimator = estimator
        self.cells = cells
        var table = [Double](repeating: 0, count: cells + 1)
        let h = 1 / Double(cells)
        for i in 0..<cells {
            let a = Double(i) * h
            table[i + 1] = table[i] + Self.simpson(estimator, a, a + h)
        }
        cumulative = table
        periodIntegral = table[cells]
    }

    /// Simpson's rule for ∫_a^b dφ / shape(φ) on one cell.
    @inline(__always) static func simpson(_ e: WeightEstimator, _ a: Double, _ b: Double) -> Double {
        (b - a) / 6 * (1 / e.shape(phase: a) + 4 / e.shape(phase: (a + b) / 2) + 1 / e.shape(phase: b))
    }

    /// J(φ) = ∫₀^φ ds / shape(s) for φ ∈ [0, 1].
    public func phaseIntegral(_ φ: Double) -> Double {
        let x = min(max(φ, 0), 1) * Double(cells)
        let i = min(Int(x), cells - 1)
        let node = Double(i) / Double(cells)
        return cumulative[i] + Self.simpson(estimator, node, min(max(φ, 0), 1))
    }

    /// ∫_{t}^{w} ds / Q̂′(s) from the threshold t = q.origin, in the clipping range of `q`, by periodicity.
    public func integral(to w: Double, _ q: WeightQuantizer) -> Double {
        let x = (w - q.origin) / q.step
        let k = x.rounded(.down)
        return q.step * (k * periodIntegral + phaseIntegral(x - k))
    }

    /// M(w) = t + α ∫_t^w ds/Q̂′(s) = t + Δ·(k + J(φ)/I) inside the clipping range (t = q.origin, a threshold);
    /// the identity outside it, where every estimator is 0 so the weight never moves in either run. M fixes every
    /// threshold; it fixes the range ends too when they are thresholds (mid-rise) or, for the He-uniform
    /// quantizer's half cells, when the shape is symmetric in its cell (J(½) = I/2), as every estimator here is.
    public func map(_ w: Double, _ q: WeightQuantizer) -> Double {
        guard q.contains(w) else { return w }
        let x = (w - q.origin) / q.step
        let k = x.rounded(.down)
        return q.origin + q.step * (k + phaseIntegral(x - k) / periodIntegral)
    }
}
