// Fits the quantizer resolution α for any bit width (Yin et al. 2019 §4: α is the Lloyd/MSE fit to
// half-Gaussian data, because a BN without scale and shift feeds each quantized ReLU, then fixed).
// Deterministic: the MSE of the uniform quantizer under the half-normal density is integrated in
// closed form (Gaussian moments over each decision cell) and minimised by golden-section search.

/// E[(X − σ_α(X))²] for X half-normal (|N(0, 1)|) and the quantizer of `bits` bits with step α.
/// ceil: cell ((k−1)α, kα] ↦ kα; nearest: cell [(k−½)α, (k+½)α) ↦ kα; the last cell extends to ∞.
public func halfNormalQuantizationMSE(alpha: Double, bits: Int, rounding: Rounding) -> Double {
    precondition(alpha > 0 && bits >= 1, "halfNormalQuantizationMSE: alpha \(alpha), bits \(bits)")
    let levels = (1 << bits) - 1
    let offset = rounding == .ceil ? 1.0 : 0.5  // cell k (k ≥ 1) starts at (k − offset)·α
    var mse = 0.0
    var lower = 0.0
    for k in 0...levels {
        let upper = k == levels ? Double.infinity : (Double(k + 1) - offset) * alpha
        if k == 0 && rounding == .ceil { continue }  // ceil: only x ≤ 0 maps to 0, measure zero
        mse += 2 * gaussianSecondMoment(from: lower, to: upper, about: Double(k) * alpha)
        lower = upper
    }
    return mse
}

/// ∫_a^b (x − c)² φ(x) dx for the standard normal density φ (b may be +∞).
func gaussianSecondMoment(from a: Double, to b: Double, about c: Double) -> Double {
    let phi = { (x: Double) -> Double in x.isInfinite ? 0 : exp(-x * x / 2) / (2 * Double.pi).squareRoot() }
    let mass = (erfc(a / 2.0.squareRoot()) - (b.isInfinite ? 0 : erfc(b / 2.0.squareRoot()))) / 2
    let first = phi(a) - phi(b)  // ∫ x φ
    let bTerm = b.isInfinite ? 0 : b * phi(b)
    let second = mass + a * phi(a) - bTerm  // ∫ x² φ
    return second - 2 * c * first + c * c * mass
}

/// The MSE-optimal α for `bits` bits on half-normal input (golden-section on a bracket found by a
/// coarse scan, tolerance 1e-9). nearest: 2 → 0.6508, 4 → 0.1932 (the authors' 0.6511 / 0.1946
/// are this fit); ceil: 2 → 0.487, 4 → 0.167.
public func fitAlpha(bits: Int, rounding: Rounding = .nearest) -> Float {
    precondition(bits >= 1 && bits <= 16, "fitAlpha: bits must be in 1...16, got \(bits)")
    let mse = { (a: Double) in halfNormalQuantizationMSE(alpha: a, bits: bits, rounding: rounding) }
    // Coarse scan over (0, 4·2/L]: the optimum step times L lies well below 8 standard deviations.
    let hi = 8.0 / Double((1 << bits) - 1) + 1
    let steps = 400
    var best = 1
    var bestValue = Double.infinity
    for i in 1...steps {
        let v = mse(hi * Double(i) / Double(steps))
        if v < bestValue { (best, bestValue) = (i, v) }
    }
    var a = hi * Double(best - 1) / Double(steps), b = hi * Double(best + 1) / Double(steps)
    let ratio = (5.0.squareRoot() - 1) / 2
    var c = b - ratio * (b - a), d = a + ratio * (b - a)
    var fc = mse(c), fd = mse(d)
    while b - a > 1e-9 {
        if fc < fd {
            (b, d, fd) = (d, c, fc)
            c = b - ratio * (b - a)
            fc = mse(c)
        } else {
            (a, c, fc) = (c, d, fd)
            d = a + ratio * (b - a)
            fd = mse(d)
        }
    }
    return Float((a + b) / 2)
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
