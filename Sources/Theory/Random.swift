// The theory experiments' own random numbers: SplitMix64 (Steele et al. 2014) with uniform and
// Box–Muller normal draws, so that the same seed gives the same numbers on every platform.
import Foundation

public struct SplitMix64: Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// A generator for one purpose (`stream`) derived from a base seed, so streams do not overlap.
    public init(seed: UInt64, stream: UInt64) {
        var s = SplitMix64(seed: seed ^ (stream &* 0xD1B5_4A32_D192_ED03))
        state = s.next()
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in (0, 1): 53 random bits, never exactly 0.
    public mutating func uniform() -> Double { (Double(next() >> 11) + 0.5) * 0x1p-53 }

    /// Uniform integer in 0..<n.
    public mutating func int(below n: Int) -> Int { Int(next() % UInt64(n)) }

    /// Standard normal by Box–Muller (one draw per two uniforms; no cached second value).
    public mutating func normal() -> Double {
        let u1 = uniform(), u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    public mutating func normals(_ count: Int, scale: Double = 1) -> [Double] {
        (0..<count).map { _ in scale * normal() }
    }

    /// A uniformly random unit vector in ℝⁿ.
    public mutating func unitVector(_ n: Int) -> [Double] {
        let g = normals(n)
        let r = norm(g)
        return g.map { $0 / r }
    }
}
