// Small dense-vector helpers for the closed forms (dimensions here are ≤ a few dozen).
import Foundation

@inline(__always) func dot(_ a: [Double], _ b: [Double]) -> Double {
    var s = 0.0
    for i in 0..<a.count { s += a[i] * b[i] }
    return s
}

@inline(__always) public func norm(_ a: [Double]) -> Double { dot(a, a).squareRoot() }

@inline(__always) func axpy(_ alpha: Double, _ x: [Double], _ y: inout [Double]) {
    for i in 0..<x.count { y[i] += alpha * x[i] }
}

func scaled(_ a: [Double], _ s: Double) -> [Double] { a.map { $0 * s } }
func sub(_ a: [Double], _ b: [Double]) -> [Double] { zip(a, b).map { $0 - $1 } }
func add(_ a: [Double], _ b: [Double]) -> [Double] { zip(a, b).map { $0 + $1 } }
func sum(_ a: [Double]) -> Double { a.reduce(0, +) }

/// Angle between two non-zero vectors, in [0, π].
/// Computed as atan2(sin, cos) with the sine from the re-orthogonalised component, which stays accurate
/// near 0 and π (acos does not).
public func angle(_ a: [Double], _ b: [Double]) -> Double {
    let (c, s, _) = cosSinPerp(a, b)
    return atan2(s, c)
}

/// cos∠(a,b), sin∠(a,b) and the unit vector e⊥ = unit(b̂ − cos·â) (zero when b ∥ a); e⊥ is
/// re-orthogonalised against â so that ⟨â, e⊥⟩ ≈ 1e-16 even when the angle is tiny.
func cosSinPerp(_ a: [Double], _ b: [Double]) -> (Double, Double, [Double]) {
    let na = norm(a), nb = norm(b)
    let aHat = a.map { $0 / na }
    var p = b.map { $0 / nb }
    let c = dot(aHat, p)
    axpy(-c, aHat, &p)
    axpy(-dot(aHat, p), aHat, &p)
    let s = norm(p)
    if s < 1e-15 { return (max(-1, min(1, c)), 0, [Double](repeating: 0, count: b.count)) }
    return (max(-1, min(1, c)), s, p.map { $0 / s })
}

/// Standard normal density and distribution function.
@inline(__always) func phi(_ x: Double) -> Double { exp(-0.5 * x * x) / (2 * Double.pi).squareRoot() }
@inline(__always) func Phi(_ x: Double) -> Double { 0.5 * erfc(-x / 2.0.squareRoot()) }
