// Yin et al. 2019's closed forms for the realizable model y* = v*ᵀσ(Zw*), ‖w*‖ = 1, written exactly as in
// the paper (arXiv 1903.05662v4, the ICLR 2019 final version, §3): Lemma 1 (f), Lemma 2 (∇f), Lemma 4
// (E g_relu), Lemma 5, Lemma 9 (E g_id), Lemma 10, the spurious minimizers and Proposition 1 (saddles). Lemma
// numbers are the final version's (its submission numbered the identity-STE Lemmas 9–10 as 7–8). `BinaryTeacherModel` is the general
// version used by the experiments; the tests check both against Monte Carlo and each other.
import Foundation

public struct Yin2019: Sendable {
    public let vStar: [Double]
    public let wStar: [Double]
    public var m: Int { vStar.count }

    public init(vStar: [Double], wStar: [Double]) {
        self.vStar = vStar
        let r = norm(wStar)
        self.wStar = wStar.map { $0 / r }
    }

    public var model: BinaryTeacherModel { BinaryTeacherModel(vStar: vStar, wStar: wStar) }

    /// (I + 𝟙𝟙ᵀ)x and ((1 − 2θ/π)I + 𝟙𝟙ᵀ)x.
    func iPlusOnes(_ x: [Double], diag: Double = 1) -> [Double] {
        let s = sum(x)
        return x.map { diag * $0 + s }
    }

    /// Lemma 1.
    public func loss(v: [Double], w: [Double]) -> Double {
        let vs = vStar
        if norm(w) == 0 { return dot(vs, iPlusOnes(vs)) / 8 }
        let t = angle(w, wStar)
        return (dot(v, iPlusOnes(v)) - 2 * dot(v, iPlusOnes(vs, diag: 1 - 2 * t / .pi)) + dot(vs, iPlusOnes(vs)))
            / 8
    }

    /// Lemma 2: (∂f/∂v, ∂f/∂w); ∂f/∂w is set to 0 where P_w⊥w* = 0 (θ ∈ {0, π}).
    public func gradient(v: [Double], w: [Double]) -> (v: [Double], w: [Double]) {
        let t = angle(w, wStar)
        let gv = sub(iPlusOnes(v), iPlusOnes(vStar, diag: 1 - 2 * t / .pi)).map { $0 / 4 }
        // P_w⊥w*/‖P_w⊥w*‖ is e⊥ (computed stably near θ ∈ {0, π}).
        let (_, _, perp) = cosSinPerp(w, wStar)
        let c = -dot(v, vStar) / (2 * .pi * norm(w))
        return (gv, perp.map { c * $0 })
    }

    /// Lemma 4: E[g_relu].
    public func expectedReluGradient(v: [Double], w: [Double]) -> [Double] {
        let r = norm(w)
        let wHat = w.map { $0 / r }
        let t = angle(w, wStar)
        let one = sum(v), oneStar = sum(vStar), q = dot(v, vStar)
        let h = dot(v, v) + one * one - one * oneStar + q
        let s2pi = (2 * Double.pi).squareRoot()
        var g = scaled(wHat, h / (2 * s2pi))
        let bis = add(wHat, wStar)
        let bn = norm(bis)
        if bn > 1e-13 { axpy(-cos(t / 2) * q / (s2pi * bn), bis, &g) }
        return g
    }

    /// Lemma 9: E[g_id].
    public func expectedIdentityGradient(v: [Double], w: [Double]) -> [Double] {
        let r = norm(w)
        let s2pi = (2 * Double.pi).squareRoot()
        return zip(w, wStar).map { (dot(v, v) * $0 / r - dot(v, vStar) * $1) / s2pi }
    }

    /// Lemma 5: ⟨E g_relu, ∂f/∂w⟩ = sinθ/(2(√(2π))³‖w‖)·(vᵀv*)².
    public func reluCorrelation(v: [Double], w: [Double]) -> Double {
        let q = dot(v, vStar)
        return sin(angle(w, wStar)) / (2 * pow(2 * Double.pi, 1.5) * norm(w)) * q * q
    }

    /// Lemma 10: ⟨E g_id, ∂f/∂w⟩ = sinθ/((√(2π))³‖w‖)·(vᵀv*)².
    public func identityCorrelation(v: [Double], w: [Double]) -> Double {
        2 * reluCorrelation(v: v, w: w)
    }

    /// Spurious local minimizer (θ = π): v = (I + 𝟙𝟙ᵀ)⁻¹(𝟙𝟙ᵀ − I)v*, w = −ρw*.
    public func spuriousMinimizer(scale rho: Double = 1) -> (v: [Double], w: [Double]) {
        let rhs = iPlusOnes(vStar, diag: -1)
        let s = sum(rhs) / Double(m + 1)
        return (rhs.map { $0 - s }, wStar.map { -rho * $0 })
    }

    /// Proposition 1: saddle points exist iff (𝟙ᵀv*)² < (m+1)/2·‖v*‖².
    public var saddlesExist: Bool {
        let s = sum(vStar)
        return s * s < Double(m + 1) / 2 * dot(vStar, vStar)
    }

    /// A saddle point, found directly: ∂f/∂v = 0 gives v(θ), and ∂f/∂w = 0 needs vᵀv* = 0, which is
    /// affine in θ; returns (θ, v) when the root lies in (0, π). Any w with ∠(w, w*) = θ is a saddle.
    public func saddle() -> (theta: Double, v: [Double])? {
        func vOf(_ t: Double) -> [Double] {
            let rhs = iPlusOnes(vStar, diag: 1 - 2 * t / .pi)
            let s = sum(rhs) / Double(m + 1)
            return rhs.map { $0 - s }
        }
        let q0 = dot(vOf(0), vStar), q1 = dot(vOf(.pi), vStar)
        guard q0 != q1 else { return nil }
        let t = .pi * q0 / (q0 - q1)
        guard t > 0 && t < .pi else { return nil }
        return (t, vOf(t))
    }
}
