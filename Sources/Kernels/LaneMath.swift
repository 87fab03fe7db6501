// Transcendental functions on 8 float lanes, for STE rules whose derivative needs them (a tanh- or sigmoid-shaped
// STE): the rule stays one vector expression in `STE.withDerivative`, instead of a per-lane call into libm's
// Double functions, which makes a training step's backward several times slower. Cephes' single-precision
// algorithms (S. L. Moshier, Cephes Math Library, expf.c and tanhf.c): range reduction and a short polynomial,
// branch-free (both sides computed, one selected), so a lane's result does not depend on its neighbours.
// Accuracy (Tests/KernelsTests/LaneMathTests.swift, against Foundation's Double functions on a dense grid):
// exp within 2 ulp, tanh and sigmoid within 3e-7 absolute and 4 ulp (measured: 0.96, 1.28 and 2.35 ulp).

public enum Lanes {
    /// eˣ on 8 lanes; x is clamped to [−87.3, 88.7] (the float range: 0 and +∞ are not reached, the results are
    /// the smallest normal float and 3.3e38 there). NaN lanes give NaN.
    @inline(__always)
    public static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        // (Clamped with selects: pointwiseMin/Max compile to per-lane code, several times slower.)
        let low = SIMD8<Float>(repeating: -87.3), high = SIMD8<Float>(repeating: 88.7)
        let clamped = x.replacing(with: low, where: x .< low).replacing(with: high, where: x .> high)
        // x = n·ln 2 + r with |r| ≤ ln 2 / 2; ln 2 in two parts so that n·C1 is exact. n rounded to nearest by
        // adding and subtracting 1.5·2²³ (|n| ≤ 128); its bits then hold n as an integer.
        let shifted = clamped * 1.44269504088896341 + 12_582_912
        let n = shifted - 12_582_912
        let r = clamped - n * 0.693359375 + n * 2.12194440e-4
        var p = SIMD8<Float>(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let er = p * r * r + r + 1
        // 2ⁿ from its exponent bits (n in [−126, 128]: 2¹²⁸ is split as 2·2¹²⁷ so that the bits stay finite).
        let k = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4b40_0000  // the bits of 1.5·2²³
        let half = k &>> 1
        let scaleA = unsafeBitCast((half &+ 127) &<< 23, to: SIMD8<Float>.self)
        let scaleB = unsafeBitCast((k &- half &+ 127) &<< 23, to: SIMD8<Float>.self)
        let result = er * scaleA * scaleB
        return result.replacing(with: x, where: x .!= x)  // NaN stays NaN
    }

    /// tanh x on 8 lanes: an odd polynomial for |x| < 0.625, 1 − 2 / (e^{2|x|} + 1) with the sign of x above.
    @inline(__always)
    public static func tanh(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let z = x * x
        var p = SIMD8<Float>(repeating: -5.70498872745e-3)
        p = p * z + 2.06390887954e-2
        p = p * z - 5.37397155531e-2
        p = p * z + 1.33314422036e-1
        p = p * z - 3.33332819422e-1
        let small = p * z * x + x
        let a = unsafeBitCast(unsafeBitCast(x, to: SIMD8<UInt32>.self) & 0x7fff_ffff, to: SIMD8<Float>.self)  // |x|
        let large = 1 - 2 / (exp(a + a) + 1)
        let signed = large.replacing(with: -large, where: x .< 0)
        return signed.replacing(with: small, where: a .< 0.625).replacing(with: x, where: x .!= x)
    }

    /// The logistic function 1 / (1 + e^{−x}) on 8 lanes.
    @inline(__always)
    public static func sigmoid(_ x: SIMD8<Float>) -> SIMD8<Float> {
        1 / (1 + exp(-x))
    }
}
