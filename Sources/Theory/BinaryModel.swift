// The two-linear-layer model with binary activation of Yin et al. 2019 (final version, §2–3), generalised to a
// teacher that is a sum of K binary units: y(Z; v, w) = vᵀσ(Zw), y*(Z) = Σₖ cₖᵀσ(Z bₖ), ‖bₖ‖ = 1,
// Z ∈ ℝ^{m×n} i.i.d. N(0,1), σ(x) = 1{x>0}, ℓ = ½(y − y*)². K = 1 is Yin's realizable model; K > 1 is
// the misspecified model used for Gongyo & Ishikawa 2021 (the student has one filter).
// Closed forms: population loss and gradient (Yin Lemmas 1–2, extended linearly over k), and the
// expected coarse gradient E[g_μ] for the identity, ReLU and clipped-ReLU STEs. With rows zᵢ of Z,
//   g_μ = Σᵢ zᵢ μ′(zᵢ·w) vᵢ (vᵀσ(Zw) − y*),
//   E g_μ = ‖v‖² E₁ + ½(S² − ‖v‖²) E₀ − Σₖ [qₖ Eₖ + ½(S sₖ − qₖ) E₀],
// with S = 𝟙ᵀv, sₖ = 𝟙ᵀcₖ, qₖ = vᵀcₖ and the one-row expectations E₁ = E[z μ′(z·w) σ(z·w)],
// E₀ = E[z μ′(z·w)], Eₖ = E[z μ′(z·w) σ(z·bₖ)]. For ReLU these give Yin's Lemma 4, for identity Lemma 9.
// The clipped-ReLU (μ = min(max(x,0),c)) expectations are our own derivation [I] (the final version states
// its clipped-ReLU results as Lemmas 7–8), checked against Monte Carlo in TheoryTests: with u = z·ŵ, a = c/‖w‖, θ = ∠(w, bₖ), e⊥ = unit(bₖ − cosθ ŵ):
//   E₁ = E₀ = A ŵ, A = (1 − e^{−a²/2})/√(2π),
//   Eₖ = K₁ ŵ + K₂ e⊥, K₁ = 1/(2√(2π)) − φ(a)Φ(a cotθ) + cosθ(Φ(a/sinθ) − ½)/√(2π),
//                      K₂ = sinθ (Φ(a/sinθ) − ½)/√(2π).
import Foundation
import Kernels

public struct BinaryTeacherModel: Sendable {
    /// Number of rows ("patches") of Z and input dimension.
    public let m: Int, n: Int
    /// Teacher filters bₖ (unit vectors in ℝⁿ) and second-layer weights cₖ ∈ ℝᵐ.
    public let filters: [[Double]]
    public let weights: [[Double]]
    /// Top level of the clipped ReLU STE (1 for the binary activation).
    public let clip: Double

    public init(filters: [[Double]], weights: [[Double]], clip: Double = 1) {
        precondition(!filters.isEmpty && filters.count == weights.count)
        self.n = filters[0].count
        self.m = weights[0].count
        self.filters = filters.map { f in let r = norm(f); return f.map { $0 / r } }
        self.weights = weights
        self.clip = clip
    }

    /// Yin's realizable teacher y* = v*ᵀσ(Zw*).
    public init(vStar: [Double], wStar: [Double], clip: Double = 1) {
        self.init(filters: [wStar], weights: [vStar], clip: clip)
    }

    // MARK: - Second moments of the binary units

    /// (E[σ(Za)σ(Zb)ᵀ]) c = ¼((1 − 2∠(a,b)/π) c + (𝟙ᵀc)𝟙).
    func momentTimes(angle t: Double, _ c: [Double]) -> [Double] {
        let s = sum(c)
        return c.map { 0.25 * ((1 - 2 * t / Double.pi) * $0 + s) }
    }

    // MARK: - Population loss and gradients

    public func loss(v: [Double], w: [Double]) -> Double {
        var f = 0.5 * dot(v, momentTimes(angle: 0, v))
        for k in 0..<filters.count {
            f -= dot(v, momentTimes(angle: angle(w, filters[k]), weights[k]))
            for l in 0..<filters.count {
                f += 0.5 * dot(weights[k], momentTimes(angle: angle(filters[k], filters[l]), weights[l]))
            }
        }
        return f
    }

    /// ∂f/∂v (Lemma 2, first part).
    public func gradientV(v: [Double], w: [Double]) -> [Double] {
        var g = momentTimes(angle: 0, v)
        for k in 0..<filters.count {
            axpy(-1, momentTimes(angle: angle(w, filters[k]), weights[k]), &g)
        }
        return g
    }

    /// ∂f/∂w = −Σₖ (vᵀcₖ)/(2π‖w‖) e⊥ₖ (Lemma 2, second part; 0 where w ∥ bₖ).
    public func gradientW(v: [Double], w: [Double]) -> [Double] {
        let r = norm(w)
        var g = [Double](repeating: 0, count: n)
        for k in 0..<filters.count {
            let (_, _, perp) = geometry(w, filters[k])
            axpy(-dot(v, weights[k]) / (2 * Double.pi * r), perp, &g)
        }
        return g
    }

    /// The v minimising f for the direction of w: (I + 𝟙𝟙ᵀ)v = 4 Σₖ E[σσₖᵀ]cₖ.
    public func optimalV(w: [Double]) -> [Double] {
        var r = [Double](repeating: 0, count: m)
        for k in 0..<filters.count { axpy(4, momentTimes(angle: angle(w, filters[k]), weights[k]), &r) }
        let s = sum(r) / Double(m + 1)
        return r.map { $0 - s }
    }

    // MARK: - Expected coarse gradients

    /// E_Z[g_μ(v, w; Z)] in closed form for identity, ReLU and clipped ReLU.
    public func expectedCoarseGradient(_ ste: STE, v: [Double], w: [Double]) -> [Double] {
        let r = norm(w)
        let wHat = w.map { $0 / r }
        let c0 = 1 / (2 * Double.pi).squareRoot()
        let vv = dot(v, v), S = sum(v)
        // E₁ and E₀ are multiples of ŵ.
        let e1: Double, e0: Double
        switch ste {
        case .identity: (e1, e0) = (c0, 0)
        case .relu: (e1, e0) = (c0, c0)
        case .clipped:
            let a = clip / r
            let A = -expm1(-0.5 * a * a) * c0
            (e1, e0) = (A, A)
        case .logTailed:
            preconditionFailure("no closed form for the log-tailed STE in the binary model")
        }
        var g = scaled(wHat, vv * e1 + 0.5 * (S * S - vv) * e0)
        for k in 0..<filters.count {
            let q = dot(v, weights[k]), s = sum(weights[k])
            axpy(-0.5 * (S * s - q) * e0, wHat, &g)
            let b = filters[k]
            let (cosT, sinT, perp) = geometry(w, b)
            switch ste {
            case .identity:
                axpy(-q * c0, b, &g)
            case .relu:
                // cos(θ/2)·unit(ŵ + b) = ((1 + cosθ)ŵ + sinθ e⊥)/2
                axpy(-q * c0 * 0.5 * (1 + cosT), wHat, &g)
                axpy(-q * c0 * 0.5 * sinT, perp, &g)
            case .clipped:
                let a = clip / r
                let (k1, k2) = clippedRowExpectation(a: a, cosT: cosT, sinT: sinT)
                axpy(-q * k1, wHat, &g)
                axpy(-q * k2, perp, &g)
            case .logTailed: break
            }
        }
        return g
    }

    /// (K₁, K₂) of the header: E[z 1{0<u≤a} 1{z·b>0}] = K₁ŵ + K₂e⊥.
    func clippedRowExpectation(a: Double, cosT: Double, sinT: Double) -> (Double, Double) {
        let c0 = 1 / (2 * Double.pi).squareRoot()
        if sinT < 1e-15 {
            // θ = 0: the event z·b > 0 equals u > 0; θ = π: it excludes u > 0.
            return cosT > 0 ? (-expm1(-0.5 * a * a) * c0, 0) : (0, 0)
        }
        let ratio = Phi(a / sinT) - 0.5
        let k1 = 0.5 * c0 - phi(a) * Phi(a * cosT / sinT) + cosT * ratio * c0
        let k2 = sinT * ratio * c0
        return (k1, k2)
    }

    /// cos θ, sin θ and the unit vector e⊥ = unit(b − cosθ ŵ) (zero when b ∥ w).
    func geometry(_ w: [Double], _ b: [Double]) -> (Double, Double, [Double]) { cosSinPerp(w, b) }

    // MARK: - Samples

    /// Draws one input Z (row-major m×n) into `z`.
    public func sample(into z: inout [Double], rng: inout SplitMix64) {
        for i in 0..<z.count { z[i] = rng.normal() }
    }

    /// Teacher output y*(Z).
    public func teacher(_ z: [Double]) -> Double {
        var y = 0.0
        for k in 0..<filters.count {
            for i in 0..<m {
                var p = 0.0
                for j in 0..<n { p += z[i * n + j] * filters[k][j] }
                if p > 0 { y += weights[k][i] }
            }
        }
        return y
    }
}

/// Per-sample quantities averaged over a set of inputs (the empirical counterparts of the closed forms).
public struct EmpiricalGradients: Sendable {
    public var loss: Double
    public var gradV: [Double]
    /// Coarse w-gradient per STE, in the order asked for.
    public var coarseW: [[Double]]
}

extension BinaryTeacherModel {
    /// Empirical loss, v-gradient and coarse w-gradients over the given samples (Z row-major, m·n each,
    /// labels precomputed).
    public func empirical(v: [Double], w: [Double], samples: [Double], labels: [Double], stes: [STE])
        -> EmpiricalGradients
    {
        let count = labels.count
        var loss = 0.0
        var gv = [Double](repeating: 0, count: m)
        var gw = [[Double]](repeating: [Double](repeating: 0, count: n), count: stes.count)
        var pre = [Double](repeating: 0, count: m)
        samples.withUnsafeBufferPointer { Z in
            for s in 0..<count {
                let base = s * m * n
                var y = 0.0
                for i in 0..<m {
                    var p = 0.0
                    for j in 0..<n { p += Z[base + i * n + j] * w[j] }
                    pre[i] = p
                    if p > 0 { y += v[i] }
                }
                let res = y - labels[s]
                loss += 0.5 * res * res
                for i in 0..<m where pre[i] > 0 { gv[i] += res }
                for (t, ste) in stes.enumerated() {
                    for i in 0..<m {
                        let d = ste.derivative(pre[i], clip: clip)
                        if d == 0 { continue }
                        let coef = d * v[i] * res
                        for j in 0..<n { gw[t][j] += coef * Z[base + i * n + j] }
                    }
                }
            }
        }
        let inv = 1 / Double(count)
        return EmpiricalGradients(
            loss: loss * inv, gradV: gv.map { $0 * inv }, coarseW: gw.map { $0.map { $0 * inv } })
    }

    /// Empirical loss only (for line searches over a fixed sample).
    public func empiricalLoss(v: [Double], w: [Double], samples: [Double], labels: [Double]) -> Double {
        var loss = 0.0
        samples.withUnsafeBufferPointer { Z in
            for s in 0..<labels.count {
                let base = s * m * n
                var y = 0.0
                for i in 0..<m {
                    var p = 0.0
                    for j in 0..<n { p += Z[base + i * n + j] * w[j] }
                    if p > 0 { y += v[i] }
                }
                let res = y - labels[s]
                loss += 0.5 * res * res
            }
        }
        return loss / Double(labels.count)
    }

    /// Draws `count` inputs and their teacher labels.
    public func drawSamples(_ count: Int, rng: inout SplitMix64) -> (samples: [Double], labels: [Double]) {
        var samples = [Double](repeating: 0, count: count * m * n)
        var labels = [Double](repeating: 0, count: count)
        var z = [Double](repeating: 0, count: m * n)
        for s in 0..<count {
            sample(into: &z, rng: &rng)
            for i in 0..<(m * n) { samples[s * m * n + i] = z[i] }
            labels[s] = teacher(z)
        }
        return (samples, labels)
    }
}

/// Monte Carlo estimates with standard errors: loss, ∂f/∂v, E g_μ per STE, and ⟨g_μ, d⟩ for a direction d.
public struct MonteCarloEstimate: Sendable {
    public var loss: (mean: Double, se: Double)
    public var gradV: [(mean: Double, se: Double)]
    public var coarseW: [[(mean: Double, se: Double)]]
    public var projection: [(mean: Double, se: Double)]
}

extension BinaryTeacherModel {
    /// Monte Carlo expectation over `samples` fresh inputs (any STE, including log-tailed).
    public func monteCarlo(v: [Double], w: [Double], stes: [STE], direction: [Double]? = nil, samples: Int,
        rng: inout SplitMix64) -> MonteCarloEstimate
    {
        var acc = Moments(count: 1 + m + stes.count * (n + 1))
        var z = [Double](repeating: 0, count: m * n)
        var row = [Double](repeating: 0, count: acc.count)
        var pre = [Double](repeating: 0, count: m)
        for _ in 0..<samples {
            sample(into: &z, rng: &rng)
            let label = teacher(z)
            var y = 0.0
            for i in 0..<m {
                var p = 0.0
                for j in 0..<n { p += z[i * n + j] * w[j] }
                pre[i] = p
                if p > 0 { y += v[i] }
            }
            let res = y - label
            row[0] = 0.5 * res * res
            for i in 0..<m { row[1 + i] = pre[i] > 0 ? res : 0 }
            for (t, ste) in stes.enumerated() {
                let base = 1 + m + t * (n + 1)
                for j in 0..<n { row[base + j] = 0 }
                for i in 0..<m {
                    let coef = ste.derivative(pre[i], clip: clip) * v[i] * res
                    if coef == 0 { continue }
                    for j in 0..<n { row[base + j] += coef * z[i * n + j] }
                }
                var proj = 0.0
                if let d = direction { for j in 0..<n { proj += row[base + j] * d[j] } }
                row[base + n] = proj
            }
            acc.add(row)
        }
        let est = acc.estimates()
        return MonteCarloEstimate(
            loss: est[0], gradV: Array(est[1...m]),
            coarseW: (0..<stes.count).map { t in Array(est[(1 + m + t * (n + 1))..<(1 + m + t * (n + 1) + n)]) },
            projection: (0..<stes.count).map { t in est[1 + m + t * (n + 1) + n] })
    }
}

/// Running mean and variance per component (Welford), for standard errors of Monte Carlo means.
struct Moments {
    let count: Int
    var n = 0
    var mean: [Double]
    var m2: [Double]
    init(count: Int) {
        self.count = count
        mean = [Double](repeating: 0, count: count)
        m2 = [Double](repeating: 0, count: count)
    }
    mutating func add(_ x: [Double]) {
        n += 1
        for i in 0..<count {
            let d = x[i] - mean[i]
            mean[i] += d / Double(n)
            m2[i] += d * (x[i] - mean[i])
        }
    }
    func estimates() -> [(mean: Double, se: Double)] {
        (0..<count).map { (mean[$0], (m2[$0] / Double(n - 1) / Double(n)).squareRoot()) }
    }
}
