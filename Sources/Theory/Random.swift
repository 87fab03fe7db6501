// The theory experiments' draws on the project's SplitMix64 (Kernels/Random.swift): per-purpose
// streams, open-interval uniforms and Box–Muller normals in Double, so the same seed gives the same
// numbers on every platform.
import Foundation
import Kernels

extension SplitMix64 {
    /// A generator for one purpose (`stream`) derived from a base seed, so streams do not overlap.
    public init(seed: UInt64, stream: UInt64) {
        var s = SplitMix64(seed: seed ^ (stream &* 0xD1B5_4A32_D192_ED03))
        self.init(seed: s.next())
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
