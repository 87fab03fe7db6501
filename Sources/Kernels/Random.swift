// SplitMix64: the project's only random number generator (Steele, Lea & Flood 2014; the
// reference constants of Vigna's splitmix64.c). Seeded, tiny, and identical on every platform,
// so the same seed gives bit-identical runs. One generator per purpose, derived from the run seed:
// SplitMix64(seed: runSeed &+ RandomStream.shuffle.rawValue) etc.

public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension SplitMix64 {
    /// Uniform in [0, 1) from the top 24 bits (every value is an exact multiple of 2^-24).
    public mutating func nextUniform() -> Float {
        Float(next() >> 40) * 0x1p-24
    }

    /// Uniform in [0, 1) from the top 53 bits.
    public mutating func nextUniformDouble() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// Standard normal by Box–Muller (one draw per call; the second value is discarded so the
    /// generator carries no hidden state besides `state`). Computed in Double, rounded once.
    public mutating func nextGaussian() -> Float {
        let u1 = 1 - nextUniformDouble()  // (0, 1]: log never sees 0
        let u2 = nextUniformDouble()
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    /// Uniform integer in 0..<bound without modulo bias (Lemire's multiply-shift with rejection).
    /// Our own, so shuffles do not depend on the standard library's `random(in:using:)` algorithm.
    public mutating func next(below bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive, got \(bound)")
        let n = UInt64(bound)
        var m = next().multipliedFullWidth(by: n)
        if m.low < n {
            let threshold = (0 &- n) % n
            while m.low < threshold { m = next().multipliedFullWidth(by: n) }
        }
        return Int(m.high)
    }
}

// The theory experiments' draws: per-purpose streams from a base seed, open-interval uniforms and Box–Muller
// normals in Double (their closed forms are in Double).
extension SplitMix64 {
    /// A generator for one purpose (`stream`) derived from a base seed, so streams do not overlap.
    public init(seed: UInt64, stream: UInt64) {
        var s = SplitMix64(seed: seed ^ (stream &* 0xD1B5_4A32_D192_ED03))
        self.init(seed: s.next())
    }

    /// Uniform in (0, 1): 53 random bits, never exactly 0.
    public mutating func uniform() -> Double { (Double(next() >> 11) + 0.5) * 0x1p-53 }

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
        let r = g.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return g.map { $0 / r }
    }
}

/// Offsets added to the run seed to derive one independent stream per purpose, so that changing
/// e.g. the augmentation does not change the initial weights.
public enum RandomStream: UInt64, Sendable {
    case initialization = 0x1000
    case shuffle = 0x2000
    case augmentation = 0x3000
    case synthetic = 0x4000

    public func generator(runSeed: UInt64) -> SplitMix64 { SplitMix64(seed: runSeed &+ rawValue) }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
