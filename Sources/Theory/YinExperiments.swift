// Yin et al. 2019 (arXiv 1903.05662v4, the ICLR 2019 final version) synthetic experiments on the two-linear-layer
// model with binary activation: yin-fig1 (one coarse-gradient step vs step size, Fig. 1, at its sample sizes 10,
// 50, 1000), yin-cgd (Algorithm 1 from random starts, Theorem 1 scored on the runs inside its ‖wᵗ‖ ≥ c_w
// hypothesis), yin-spurious (Lemma 9 and Theorem 1 near the spurious minimizers). Lemma numbers are the final
// version's. Departures: m, n, step sizes, initialisation, iteration counts and c_w are not numbers the paper
// gives [N]; the configs state ours.
import Foundation
import Kernels
import Harness

// MARK: - Algorithm 1

/// One trajectory of full-batch coarse gradient descent on the population loss (Algorithm 1):
/// v ← v − η ∂f/∂v, w ← w − η E[g_μ].
struct Trajectory {
    var loss: [Double] = []
    var theta: [Double] = []
    var wNorm: [Double] = []
    /// ⟨E g_μ, ∂f/∂w⟩ at every iterate, and the same divided by ‖E g_μ‖‖∂f/∂w‖ (NaN where either is 0).
    var inner: [Double] = []
    var cosine: [Double] = []
    var coarseNorm: [Double] = []
    var v: [Double]
    var w: [Double]
}

func coarseGradientDescent(model: BinaryTeacherModel, ste: STE, v v0: [Double], w w0: [Double], eta: Double,
    iterations: Int, reference: [Double]? = nil) -> Trajectory
{
    var t = Trajectory(v: v0, w: w0)
    let ref = reference ?? model.filters[0]
    for it in 0...iterations {
        let gv = model.gradientV(v: t.v, w: t.w)
        let gw = model.expectedCoarseGradient(ste, v: t.v, w: t.w)
        let fw = model.gradientW(v: t.v, w: t.w)
        t.loss.append(model.loss(v: t.v, w: t.w))
        t.theta.append(angle(t.w, ref))
        t.wNorm.append(norm(t.w))
        t.inner.append(dot(gw, fw))
        let scale = norm(gw) * norm(fw)
        t.cosine.append(scale > 0 ? dot(gw, fw) / scale : .nan)  // undefined where ∇_w f = 0 (θ ∈ {0, π})
        t.coarseNorm.append((dot(gv, gv) + dot(gw, gw)).squareRoot())
        if it == iterations { break }
        axpy(-eta, gv, &t.v)
        axpy(-eta, gw, &t.w)
    }
    return t
}

/// Minimum over the non-NaN entries (NaN if there are none).
func minDefined(_ xs: [Double]) -> Double { xs.filter { !$0.isNaN }.min() ?? .nan }

/// Largest one-step change f(t+1) − f(t) (negative when f decreases at every step).
func largestIncrease(_ loss: [Double]) -> Double { zip(loss, loss.dropFirst()).map { $1 - $0 }.max() ?? 0 }

/// f increased at some step by more than `tol` (rounding of the closed forms stays far below it).
func lossIncreased(_ loss: [Double], tol: Double = 1e-12) -> Bool { largestIncrease(loss) > tol }

/// Theorem 1 (final version) assumes ‖wᵗ‖ ≥ c_w at every iterate: runs (by their min_t ‖wᵗ‖) inside and outside.
func splitByWeightNorm(_ minNorms: [Double], cW: Double) -> (inside: [Int], outside: [Int]) {
    (minNorms.indices.filter { minNorms[$0] >= cW }, minNorms.indices.filter { minNorms[$0] < cW })
}

/// Theorem 1's claims for the ReLU or clipped-ReLU STE (f decreases monotonically; the iterates converge to a
/// critical point), scored on the runs inside its ‖wᵗ‖ ≥ c_w hypothesis; the monotone-decrease claim on the
/// other runs is outside the paper's hypotheses.
func theorem1Claims(ste: STE, runs: [Trajectory], cW: Double) -> [Claim] {
    let split = splitByWeightNorm(runs.map { $0.wNorm.min()! }, cW: cW)
    let increased = runs.map { lossIncreased($0.loss) }
    let name = "Coarse gradient descent with the \(ste.label) STE"
    let hypothesis = "(Theorem 1, final version: ‖wᵗ‖ ≥ c_w = \(fmt(cW)), small η)"
    var claims: [Claim] = []
    if !split.inside.isEmpty {
        let up = split.inside.filter { increased[$0] }
        // Where the split sits: the largest min‖wᵗ‖ of any run whose f increased.
        let worst = runs.indices.filter { increased[$0] }.map { runs[$0].wNorm.min()! }.max()
        claims.append(Claim("\(name) decreases f monotonically \(hypothesis); runs that keep ‖wᵗ‖ ≥ c_w.",
            held: up.isEmpty,
            evidence: "f increased (by > 1e-12) in \(up.count) of the \(split.inside.count) runs inside the hypotheses"
                + (up.isEmpty ? "" : ", largest increase \(fmt(up.map { largestIncrease(runs[$0].loss) }.max()!))")
                + (worst.map { "; every run with an f increase had min‖wᵗ‖ ≤ \(fmt($0))" } ?? "")))
        let converged = split.inside.filter { runs[$0].coarseNorm.last! < 1e-6 }.count
        claims.append(Claim("\(name) converges to a critical point \(hypothesis); runs that keep ‖wᵗ‖ ≥ c_w.",
            held: converged == split.inside.count,
            evidence: "‖(∂f/∂v, E g)‖ < 1e-6 at the end in \(converged) of the \(split.inside.count) runs (and in "
                + "\(split.outside.filter { runs[$0].coarseNorm.last! < 1e-6 }.count) of the "
                + "\(split.outside.count) outside them)"))
    }
    if !split.outside.isEmpty {
        let up = split.outside.filter { increased[$0] }
        let norms = split.outside.map { runs[$0].wNorm.min()! }
        claims.append(Claim("\(name) decreases f monotonically; runs whose ‖wᵗ‖ drops below c_w.",
            outcome: .outsideHypotheses,
            evidence: "f increased in \(up.count) of these \(split.outside.count) runs"
                + (up.isEmpty ? "" : ", largest increase \(fmt(up.map { largestIncrease(runs[$0].loss) }.max()!))")
                + "; their min‖wᵗ‖ ∈ [\(fmt(norms.min()!)), \(fmt(norms.max()!))]",
            reason: "Theorem 1 assumes ‖wᵗ‖ ≥ c_w at every iterate, with a step small for that c_w; "
                + "\(split.outside.count) of the \(runs.count) runs went below c_w = \(fmt(cW))"))
    }
    return claims
}

// MARK: - yin-fig1

public struct YinFig1Config: Codable {
    public var seed: UInt64
    public var m: Int
    public var n: Int
    public var sample_sizes: [Int]
    public var eta_max: Double
    public var eta_points: Int
    public var repeats: Int
    public var ste: STE
    /// Scale of the random initial w (entries N(0, w_scale²/n)).
    public var w_scale: Double
}

@Sendable public func runYinFig1(configPath: String, outPath: String, threads: Int) throws {
    try runExperiment(name: "yin-fig1", configType: YinFig1Config.self, configPath: configPath, outPath: outPath,
        threads: threads)
    { c, ctx in
        var rng = SplitMix64(seed: c.seed, stream: 0)
        let yin = Yin2019(vStar: rng.normals(c.m), wStar: rng.unitVector(c.n))
        let model = yin.model
        let v0 = rng.normals(c.m)
        let w0 = rng.normals(c.n, scale: c.w_scale / Double(c.n).squareRoot())
        let etas = (0..<c.eta_points).map { c.eta_max * Double($0) / Double(c.eta_points - 1) }
        let curves = fig1Curves(c, model: model, v0: v0, w0: w0, etas: etas, threads: ctx.threads)
        var rows: [[String]] = []
        var meanRough: [Double] = []
        var descends: [Int] = []
        for (s, size) in c.sample_sizes.enumerated() {
            let stats = (0..<c.repeats).map { fig1Roughness(curves[s * c.repeats + $0].empirical) }
            let finite = stats.map { $0.rough }.filter { $0.isFinite }
            let mr = finite.isEmpty ? .infinity : finite.reduce(0, +) / Double(finite.count)
            meanRough.append(mr)
            descends.append(stats.filter { $0.firstStepDescends }.count)
            rows.append([
                "\(size)", fmt(mr), fmt(stats.map { Double($0.upSteps) }.reduce(0, +) / Double(c.repeats)),
                fmtFraction(stats.filter { $0.firstStepDescends }.count, c.repeats),
            ])
            try ctx.write("/curves/n\(size)/empirical_loss",
                (0..<c.repeats).flatMap { curves[s * c.repeats + $0].empirical }, shape: [c.repeats, etas.count])
            try ctx.write("/curves/n\(size)/population_loss",
                (0..<c.repeats).flatMap { curves[s * c.repeats + $0].population }, shape: [c.repeats, etas.count])
        }
        try ctx.write("/eta", etas)
        try ctx.write("/sample_sizes", c.sample_sizes)
        try ctx.write("/roughness_mean", meanRough)
        try ctx.write("/teacher/v_star", yin.vStar)
        try ctx.write("/teacher/w_star", yin.wStar)
        try ctx.write("/start/v", v0)
        try ctx.write("/start/w", w0)

        let panels = c.sample_sizes.enumerated().map { (s, size) in
            Panel(title: "\(size) samples", xLabel: "step size η", yLabel: "loss",
                series: [
                    Series("empirical loss (same samples)", x: etas, y: curves[s * c.repeats].empirical),
                    Series("population loss f", x: etas, y: curves[s * c.repeats].population, dashed: true),
                ])
        }
        try ctx.save(Figure(
            title: "Loss after one step along the negative coarse gradient (\(c.ste.label) STE), m=\(c.m), n=\(c.n)",
            panels: panels, columns: min(3, panels.count), panelWidth: 380))

        let last = meanRough.count - 1
        let claims = [
            Claim("With many samples the empirical loss along the negative coarse gradient descends monotonically "
                + "and smoothly to its minimum (roughness < 0.01 at the largest sample size).",
                held: meanRough[last] < 0.01 && descends[last] == c.repeats,
                evidence: "roughness \(fmt(meanRough[last])) at \(c.sample_sizes[last]) samples; first step "
                    + "descends in \(fmtFraction(descends[last], c.repeats)) draws"),
            Claim("With few samples it descends only roughly (roughness at every smaller sample size larger than at "
                + "the largest).",
                held: meanRough.dropLast().allSatisfy { $0 > meanRough[last] },
                evidence: "roughness " + c.sample_sizes.indices.map { "\(fmt(meanRough[$0])) at \(c.sample_sizes[$0])" }
                    .joined(separator: ", ") + " samples"),
        ]
        let body = markdownTable(
            header: ["samples", "mean roughness", "mean up-steps before the minimum", "first step descends"],
            rows: rows, align: ["r", "r", "r", "r"])
        return Fragment(title: "Yin 2019 — Fig. 1 (yin-fig1)", setting: fig1Setting(c), claims: claims, body: body)
    }
}

/// The loss after one step of size η along the negative coarse gradient, for every η, on each draw of each sample
/// size (items in the order sample size, then draw): the empirical loss on the draw and the population loss.
func fig1Curves(_ c: YinFig1Config, model: BinaryTeacherModel, v0: [Double], w0: [Double], etas: [Double], threads: Int)
    -> [(empirical: [Double], population: [Double])]
{
    // Work item: (sample size index, repeat); each has its own RNG stream.
    let items = c.sample_sizes.indices.flatMap { s in (0..<c.repeats).map { (s, $0) } }
    return parallelMap(items.count, threads: threads) {
        let (s, r) = items[$0]
        var draw = SplitMix64(seed: c.seed, stream: UInt64(1000 + s * 1000 + r))
        let (samples, labels) = model.drawSamples(c.sample_sizes[s], rng: &draw)
        let g = model.empirical(v: v0, w: w0, samples: samples, labels: labels, stes: [c.ste])
        // Zw(η) = Zw₀ − η Z g: project every row once, then each η costs O(m) per sample.
        let count = labels.count, m = c.m, n = c.n
        var a = [Double](repeating: 0, count: count * m), b = a
        for r in 0..<(count * m) {
            var pa = 0.0, pb = 0.0
            for j in 0..<n {
                pa += samples[r * n + j] * w0[j]
                pb += samples[r * n + j] * g.coarseW[0][j]
            }
            a[r] = pa
            b[r] = pb
        }
        var emp: [Double] = [], pop: [Double] = []
        for eta in etas {
            var v = v0, w = w0
            axpy(-eta, g.gradV, &v)
            axpy(-eta, g.coarseW[0], &w)
            var loss = 0.0
            for s in 0..<count {
                var y = 0.0
                for i in 0..<m where a[s * m + i] - eta * b[s * m + i] > 0 { y += v[i] }
                loss += 0.5 * (y - labels[s]) * (y - labels[s])
            }
            emp.append(loss / Double(count))
            pop.append(model.loss(v: v, w: w))
        }
        return (emp, pop)
    }
}

/// Roughness of a curve: total variation on [0, η_argmin] over the net descent, minus 1
/// (0 for a curve that descends monotonically to its minimum).
func fig1Roughness(_ L: [Double]) -> (rough: Double, firstStepDescends: Bool, upSteps: Int) {
    let iMin = L.indices.min { L[$0] < L[$1] }!
    guard iMin > 0 else { return (.infinity, L[1] < L[0], 0) }
    var tv = 0.0, ups = 0
    for i in 0..<iMin {
        tv += abs(L[i + 1] - L[i])
        if L[i + 1] > L[i] { ups += 1 }
    }
    return (tv / (L[0] - L[iMin]) - 1, L[1] < L[0], ups)
}

private func fig1Setting(_ c: YinFig1Config) -> String {
    let setting = """
        Yin et al. 2019, Fig. 1 and the remark on it (few samples: the loss descends only roughly). Teacher v* ~ N(0, I_m), w* uniform on the unit sphere; \
        one start (v₀ ~ N(0, I_m), w₀ ~ N(0, \(c.w_scale)²/n·I_n)); m = \(c.m), n = \(c.n). For each sample \
        size, \(c.repeats) independent draws of i.i.d. Gaussian inputs; on each draw the empirical \
        v-gradient and \(c.ste.label)-STE coarse w-gradient are computed and the empirical loss on the same \
        draw is evaluated at (v₀, w₀) − η·(gradient) for \(c.eta_points) values of η in [0, \(fmt(c.eta_max))]. \
        Roughness = (total variation of the curve on [0, η_min]) / (its net descent) − 1: zero for a curve \
        that falls monotonically to its minimum, measured on this η grid (a finer grid resolves more of the \
        small jumps the binary units put into the empirical loss). The sample sizes \(c.sample_sizes) are \
        those of the paper's Fig. 1 (final version: three panels, 10, 50 and 1000 samples); m, n, the start, \
        the η grid, the number of draws and the roughness measure are ours [N].
        """
    return setting
}

// MARK: - yin-cgd

public struct YinCGDConfig: Codable {
    public var seed: UInt64
    public var m: Int
    public var n: Int
    public var starts: Int
    public var iterations: Int
    public var eta: Double
    public var stes: [STE]
    /// Entries of w₀ are N(0, w_scale²/n); of v₀ N(0, v_scale²).
    public var w_scale: Double
    public var v_scale: Double
    /// Global minimum reached: f < loss_tol and θ < theta_tol.
    public var loss_tol: Double
    public var theta_tol: Double
    /// Theorem 1's lower bound on ‖wᵗ‖ used to split the runs.
    public var c_w: Double
    /// Trajectories are stored every `record_every` iterations.
    public var record_every: Int
}

@Sendable public func runYinCGD(configPath: String, outPath: String, threads: Int) throws {
    try runExperiment(name: "yin-cgd", configType: YinCGDConfig.self, configPath: configPath, outPath: outPath,
        threads: threads)
    { c, ctx in
        // One teacher and one start per index, shared by all STEs.
        let problems: [(Yin2019, [Double], [Double])] = (0..<c.starts).map { s in
            var rng = SplitMix64(seed: c.seed, stream: UInt64(s))
            let yin = Yin2019(vStar: rng.normals(c.m), wStar: rng.unitVector(c.n))
            return (yin, rng.normals(c.m, scale: c.v_scale),
                rng.normals(c.n, scale: c.w_scale / Double(c.n).squareRoot()))
        }
        let recorded = Array(stride(from: 0, through: c.iterations, by: c.record_every))
        var rows: [[String]] = []
        var claims: [Claim] = []
        var medianLoss: [Series] = [], fracGlobal: [Series] = [], minCos: [Series] = [], increaseByNorm: [Series] = []
        var minInners: [STE: Double] = [:], theorem1: [STE: [Claim]] = [:]
        for ste in c.stes {
            let runs = parallelMap(c.starts, threads: ctx.threads) { s -> Trajectory in
                let (yin, v0, w0) = problems[s]
                return coarseGradientDescent(model: yin.model, ste: ste, v: v0, w: w0, eta: c.eta,
                    iterations: c.iterations)
            }
            let finalLoss = runs.map { $0.loss.last! }, finalTheta = runs.map { $0.theta.last! }
            let global = (0..<c.starts).filter { finalLoss[$0] < c.loss_tol && finalTheta[$0] < c.theta_tol }.count
            let spurious = (0..<c.starts).filter { abs(finalTheta[$0] - .pi) < c.theta_tol }.count
            let minInner = minDefined(runs.flatMap { $0.cosine })
            let maxIncrease = runs.map { largestIncrease($0.loss) }.max()!
            let increased = runs.map { lossIncreased($0.loss) }
            let increases = increased.filter { $0 }.count
            let split = splitByWeightNorm(runs.map { $0.wNorm.min()! }, cW: c.c_w)
            let insideIncreases = split.inside.filter { increased[$0] }.count
            let converged = runs.filter { $0.coarseNorm.last! < 1e-6 }.count
            minInners[ste] = minInner
            if ste == .relu || ste == .clipped { theorem1[ste] = theorem1Claims(ste: ste, runs: runs, cW: c.c_w) }
            rows.append([
                ste.label, fmtFraction(global, c.starts), fmtFraction(spurious, c.starts),
                fmt(quantile(finalLoss, 0.5)), fmt(quantile(finalLoss, 0.9)), fmt(quantile(finalTheta, 0.5)),
                fmt(quantile(finalTheta, 0.9)), fmt(minInner), fmtFraction(increases, c.starts), fmt(maxIncrease),
                "\(insideIncreases)/\(split.inside.count)",
                fmtFraction(converged, c.starts),
            ])
            try writeCGDRuns(runs, group: "/\(ste.rawValue)", recorded: recorded, ctx)
            let xs = recorded.map(Double.init)
            medianLoss.append(Series(ste.label, x: xs, y: recorded.map { i in quantile(runs.map { $0.loss[i] }, 0.5) }))
            fracGlobal.append(Series(ste.label, x: xs, y: recorded.map { i in
                Double(runs.filter { $0.loss[i] < c.loss_tol && $0.theta[i] < c.theta_tol }.count) / Double(c.starts)
            }))
            minCos.append(Series(ste.label, x: xs, y: recorded.map { i in
                minDefined(runs.map { $0.cosine[i] })
            }))
            // Theorem 1's STEs: one marker per run with an f increase, at (min‖wᵗ‖, largest increase), so the split
            // by c_w shows at a glance.
            if ste != .identity {
                let byNorm = runs.filter { lossIncreased($0.loss) }.map { ($0.wNorm.min()!, largestIncrease($0.loss)) }
                    .sorted { $0.0 < $1.0 }
                increaseByNorm.append(Series(ste.label, x: byNorm.map { $0.0 }, y: byNorm.map { $0.1 },
                    color: Figure.palette[c.stes.firstIndex(of: ste)!], markers: true, lineWidth: 0))
            }
        }
        try cgdFigure(c, medianLoss: medianLoss, fracGlobal: fracGlobal, minCos: minCos,
            increaseByNorm: increaseByNorm, ctx)

        claims += cgdClaims(c, minInners: minInners, theorem1: theorem1)
        let body = markdownTable(
            header: ["STE", "global min", "θ → π (spurious)", "median f", "90 % f", "median θ", "90 % θ",
                "min cos(E g, ∇_w f)", "runs with an f increase", "largest f increase",
                "f increases / runs with min‖w‖ ≥ c_w", "converged"],
            rows: rows, align: ["l", "r", "r", "r", "r", "r", "r", "r", "r", "r", "r", "r"])
        return Fragment(title: "Yin 2019 — coarse gradient descent from random starts (yin-cgd)", setting: cgdSetting(c),
            claims: claims, body: body)
    }
}

/// The recorded iterates of every run (loss, θ, ‖w‖ every `record_every` steps) and its summaries, under `group`.
private func writeCGDRuns(_ runs: [Trajectory], group g: String, recorded: [Int], _ ctx: ExperimentContext) throws {
    let starts = runs.count
    try ctx.write(g + "/loss", runs.flatMap { r in recorded.map { r.loss[$0] } }, shape: [starts, recorded.count])
    try ctx.write(g + "/theta", runs.flatMap { r in recorded.map { r.theta[$0] } }, shape: [starts, recorded.count])
    try ctx.write(g + "/w_norm", runs.flatMap { r in recorded.map { r.wNorm[$0] } }, shape: [starts, recorded.count])
    try ctx.write(g + "/min_inner_product", runs.map { $0.inner.min()! })
    try ctx.write(g + "/min_cosine", runs.map { minDefined($0.cosine) })
    try ctx.write(g + "/min_w_norm", runs.map { $0.wNorm.min()! })
    try ctx.write(g + "/final_loss", runs.map { $0.loss.last! })
    try ctx.write(g + "/final_theta", runs.map { $0.theta.last! })
}

/// Lemma 5 / Lemmas 7–8 (the coarse gradient's correlation with the true one) per monotone STE, Theorem 1's claims,
/// and Lemma 10 for the identity STE.
private func cgdClaims(_ c: YinCGDConfig, minInners: [STE: Double], theorem1: [STE: [Claim]]) -> [Claim] {
    var claims: [Claim] = []
    for ste in c.stes where ste != .identity {
        claims.append(Claim("⟨E g_μ, ∇_w f⟩ ≥ 0 along every trajectory for the \(ste.label) STE "
            + (ste == .relu ? "(Lemma 5)." : "(final version, Lemmas 7–8)."),
            held: minInners[ste]! >= -1e-9,
            evidence: "min of ⟨E g, ∇_w f⟩/(‖E g‖‖∇_w f‖) over \(c.starts) trajectories × "
                + "\(c.iterations + 1) iterates (where ∇_w f ≠ 0): \(fmt(minInners[ste]!))"))
    }
    for ste in c.stes { claims += theorem1[ste] ?? [] }
    if let m = minInners[.identity] {
        claims.append(Claim("⟨E g_id, ∇_w f⟩ ≥ 0 (Lemma 10) along every identity-STE trajectory.",
            held: m >= -1e-9, evidence: "min cosine \(fmt(m))"))
    }
    return claims
}

/// The yin-cgd figure: median loss, the runs where f increased by their smallest ‖w‖ (against c_w), the fraction
/// at the global minimum, the smallest cosine between the coarse and the true gradient.
private func cgdFigure(_ c: YinCGDConfig, medianLoss: [Series], fracGlobal: [Series], minCos: [Series],
    increaseByNorm: [Series], _ ctx: ExperimentContext) throws
{
    let increases = increaseByNorm.flatMap { $0.y }, norms = increaseByNorm.flatMap { $0.x }
    var increaseByNorm = increaseByNorm
    increaseByNorm.append(Series("c_w", x: [c.c_w, c.c_w], y: [increases.min() ?? 1e-12, increases.max() ?? 1],
        color: "#555", dashed: true, lineWidth: 1))
    try ctx.save(Figure(title: "Coarse gradient descent (Algorithm 1), m=\(c.m), n=\(c.n), η=\(fmt(c.eta)), "
        + "\(c.starts) random starts",
        panels: [
            Panel(title: "median population loss", xLabel: "iteration", yLabel: "f(v, w)",
                series: medianLoss, logY: true),
            Panel(title: "ReLU, clipped ReLU: runs where f increased", xLabel: "min over t of ‖wᵗ‖",
                yLabel: "largest one-step increase of f", series: increaseByNorm, logX: true, logY: true,
                xRange: (min(norms.min() ?? c.c_w, c.c_w) / 2)...(max(norms.max() ?? c.c_w, c.c_w) * 10)),
            Panel(title: "fraction at the global minimum", xLabel: "iteration",
                yLabel: "fraction of starts", series: fracGlobal, yRange: 0...1, legendBottom: true),
            Panel(title: "min over starts of cos∠(E g_μ, ∇_w f)", xLabel: "iteration",
                yLabel: "cosine", series: minCos, references: [ReferenceLine(y: 0, label: "0")]),
        ], columns: 2, panelWidth: 460))
}

private func cgdSetting(_ c: YinCGDConfig) -> String {
    let setting = """
        Algorithm 1 (full-batch coarse gradient descent on the population loss, using the closed-form \
        expected coarse gradients; for the clipped ReLU μ = min(max(x,0),1) the closed form derived here \
        and checked against Monte Carlo in TheoryTests). m = \(c.m), n = \(c.n), η = \(fmt(c.eta)), \
        \(c.iterations) iterations, \(c.starts) starts; each start draws its own teacher (v* ~ N(0, I_m), \
        w* uniform on the sphere) and start (v₀ ~ N(0, \(fmt(c.v_scale))²I), w₀ ~ N(0, \(fmt(c.w_scale))²/n·I)); \
        all STEs use the same \(c.starts) problems. Global minimum: f < \(fmt(c.loss_tol)) and \
        θ < \(fmt(c.theta_tol)). The paper's sizes, η and initialisation are unknown [N]. Theorem 1 (final \
        version; vanilla and clipped ReLU STEs) assumes ‖wᵗ‖ ≥ c_w at every iterate and a small enough step, \
        and its step bound shrinks with c_w (∂f/∂w grows like 1/‖w‖): with η fixed, a run whose ‖w‖ drops \
        below c_w = \(fmt(c.c_w)) (our value; the theorem's constant is not a number) is outside its \
        hypotheses, and its claims are scored on the runs that stay above it.
        """
    return setting
}

// MARK: - yin-spurious

public struct YinSpuriousConfig: Codable {
    public var seed: UInt64
    public var ms: [Int]
    public var n: Int
    /// v* = N(0, I) + shift·𝟙 (so that 𝟙ᵀv* ≠ 0).
    public var v_shift: Double
    /// Minimum |𝟙ᵀv*| accepted.
    public var min_abs_sum: Double
    public var perturbation: Double
    public var starts: Int
    public var iterations: Int
    public var eta: Double
    public var stes: [STE]
    public var monte_carlo_samples: Int
    /// "left the neighbourhood": final distance > leave_factor × perturbation.
    public var leave_factor: Double
}

@Sendable public func runYinSpurious(configPath: String, outPath: String, threads: Int) throws {
    try runExperiment(name: "yin-spurious", configType: YinSpuriousConfig.self, configPath: configPath,
        outPath: outPath, threads: threads)
    { c, ctx in
        var trajRows: [[String]] = []
        var idLeft = 0, reluLeft = 0, crLeft = 0, total = 0
        var panels: [Panel] = []
        let cases = try c.ms.indices.map { try spuriousCase(c, index: $0, threads: ctx.threads, configPath: ctx.configPath) }
        for k in cases {
            var series: [Series] = []
            for (t, run) in k.runs.enumerated() {
                let finals = run.dist.map { $0.last! }
                if run.ste == .identity { idLeft += run.left }
                if run.ste == .relu { reluLeft += run.left }
                if run.ste == .clipped { crLeft += run.left }
                trajRows.append([
                    "\(k.m)", run.ste.label, fmt(quantile(finals, 0.5)), fmt(finals.max()!),
                    fmtFraction(run.left, c.starts), fmt(quantile(run.loss.map { $0.last! }, 0.5)),
                    fmt(k.yin.loss(v: k.vs, w: k.ws)),
                ])
                try ctx.write("/m\(k.m)/\(run.ste.rawValue)/distance", run.dist.flatMap { $0 }, shape: [c.starts, c.iterations + 1])
                try ctx.write("/m\(k.m)/\(run.ste.rawValue)/loss", run.loss.flatMap { $0 }, shape: [c.starts, c.iterations + 1])
                series.append(Series(run.ste.label + " (median)", x: (0...c.iterations).map(Double.init),
                    y: (0...c.iterations).map { i in quantile(run.dist.map { $0[i] }, 0.5) }, color: Figure.palette[t]))
            }
            total += c.starts
            try ctx.write("/m\(k.m)/v_star", k.yin.vStar)
            try ctx.write("/m\(k.m)/w_star", k.yin.wStar)
            try ctx.write("/m\(k.m)/spurious_v", k.vs)
            panels.append(Panel(title: "m = \(k.m), 𝟙ᵀv* = \(fmt(sum(k.yin.vStar), digits: 3))", xLabel: "iteration",
                yLabel: "distance to spurious minimizer", series: series, logY: true,
                references: [ReferenceLine(y: c.perturbation, label: "initial perturbation")]))
        }
        let idNorms = cases.compactMap(\.identityNorm), reluNorms = cases.compactMap(\.reluNorm)
        let controlId = cases.map(\.controlIdentityNorm)
        try ctx.write("/identity_gradient_norm", idNorms)
        try ctx.write("/relu_gradient_norm", reluNorms)
        try ctx.save(Figure(title: "Coarse gradient descent started near the spurious minimizers (θ = π), η = \(fmt(c.eta))",
            panels: panels, columns: min(3, panels.count), panelWidth: 400))

        let claims = [
            Claim("At the spurious minimizers with 𝟙ᵀv* ≠ 0 and m > 1 the identity STE's expected coarse gradient "
                + "does not vanish (Lemma 9, final version), the ReLU STE's does.",
                held: idNorms.min()! > 1e-6 && reluNorms.max()! < 1e-10,
                evidence: "‖E g_id‖ ∈ [\(fmt(idNorms.min()!)), \(fmt(idNorms.max()!))], ‖E g_relu‖ ≤ "
                    + "\(fmt(reluNorms.max()!)); control 𝟙ᵀv* = 0: ‖E g_id‖ ≤ \(fmt(controlId.max()!))"),
            Claim("Identity-STE coarse gradient descent started near them does not converge there (leaves the "
                + "neighbourhood) while the ReLU STE's stays (Lemma 9 and Theorem 1, final version).",
                held: idLeft == total && reluLeft == 0,
                evidence: "left (final distance > \(fmt(c.leave_factor))× perturbation): identity "
                    + "\(fmtFraction(idLeft, total)), ReLU \(fmtFraction(reluLeft, total))"
                    + (c.stes.contains(.clipped) ? ", clipped ReLU \(fmtFraction(crLeft, total))" : "")),
        ]
        var body = "Expected coarse-gradient norms at the spurious minimizer (closed form, Monte Carlo ± s.e.):\n\n"
        body += markdownTable(header: ["m", "𝟙ᵀv*", "vᵀv* there (< 0: local min)", "predicted ‖E g_id‖"] + c.stes.map { "‖E g‖ " + $0.label },
            rows: cases.map(\.gradientRow))
        body += "\nTrajectories started near the spurious minimizer:\n\n"
        body += markdownTable(header: ["m", "STE", "median final distance", "max final distance", "left",
            "median final f", "f at spurious min"], rows: trajRows)
        return Fragment(title: "Yin 2019 — near the spurious minimizers (yin-spurious)", setting: spuriousSetting(c),
            claims: claims, body: body)
    }
}

/// One m of yin-spurious: v* and its spurious minimizer, the coarse-gradient norms there (closed form and Monte
/// Carlo, the table row), the control 𝟙ᵀv* = 0, and per STE the runs of Algorithm 1 started near the minimizer.
struct SpuriousCase {
    let m: Int
    let yin: Yin2019
    let vs: [Double], ws: [Double]
    let gradientRow: [String]
    let identityNorm: Double?, reluNorm: Double?, controlIdentityNorm: Double
    /// Per STE: each run's distance to the minimizer and loss per iteration, and how many runs left its neighbourhood.
    let runs: [(ste: STE, dist: [[Double]], loss: [[Double]], left: Int)]
}

func spuriousCase(_ c: YinSpuriousConfig, index mi: Int, threads: Int, configPath: String) throws -> SpuriousCase {
    let m = c.ms[mi]
    // The point θ = π is a local minimizer only where vᵀv* < 0 there, which is Proposition 1's
    // condition (𝟙ᵀv*)² < (m+1)/2·‖v*‖² [I]; draw v* until it holds and |𝟙ᵀv*| ≥ min_abs_sum.
    var rng = SplitMix64(seed: c.seed, stream: UInt64(mi))
    let wStar = rng.unitVector(c.n)
    var draws = 0
    var yin = Yin2019(vStar: rng.normals(m).map { $0 + c.v_shift }, wStar: wStar)
    while !(yin.saddlesExist && abs(sum(yin.vStar)) >= c.min_abs_sum) {
        draws += 1
        guard draws < 10_000 else {
            throw ReportError("\(configPath): no v* with |𝟙ᵀv*| ≥ \(c.min_abs_sum) satisfying "
                + "Proposition 1 for m = \(m) in 10000 draws")
        }
        yin = Yin2019(vStar: rng.normals(m).map { $0 + c.v_shift }, wStar: wStar)
    }
    let model = yin.model
    let (vs, ws) = yin.spuriousMinimizer()
    let s = sum(yin.vStar)
    let predicted = 2 * s * s * Double(m - 1) / (pow(Double(m + 1), 2) * (2 * Double.pi).squareRoot())
    // Gradient norms at the spurious minimizer: closed form and Monte Carlo.
    var mcRng = SplitMix64(seed: c.seed, stream: UInt64(100 + mi))
    let mc = model.monteCarlo(v: vs, w: ws, stes: c.stes, samples: c.monte_carlo_samples, rng: &mcRng)
    var row = ["\(m)", fmt(s), fmt(dot(vs, yin.vStar)), fmt(predicted)]
    var identityNorm: Double?, reluNorm: Double?
    for (t, ste) in c.stes.enumerated() {
        let g = model.expectedCoarseGradient(ste, v: vs, w: ws)
        let mcNorm = norm(mc.coarseW[t].map { $0.mean })
        let mcSE = (mc.coarseW[t].map { $0.se * $0.se }.reduce(0, +)).squareRoot()
        row.append("\(fmt(norm(g))) (MC \(fmt(mcNorm)) ± \(fmt(mcSE)))")
        if ste == .identity { identityNorm = norm(g) }
        if ste == .relu { reluNorm = norm(g) }
    }
    // Control: 𝟙ᵀv* = 0.
    let control = Yin2019(vStar: yin.vStar.map { $0 - s / Double(m) }, wStar: yin.wStar)
    let (cv, cw) = control.spuriousMinimizer()
    // Trajectories from small perturbations of the spurious minimizer.
    let runs = c.stes.map { ste -> (ste: STE, dist: [[Double]], loss: [[Double]], left: Int) in
        let runs = parallelMap(c.starts, threads: threads) { k -> (dist: [Double], loss: [Double]) in
            var r = SplitMix64(seed: c.seed, stream: UInt64(10_000 + mi * 100 + k))
            var v = add(vs, r.normals(m, scale: c.perturbation / Double(m).squareRoot()))
            var w = add(ws, r.normals(c.n, scale: c.perturbation / Double(c.n).squareRoot()))
            var dist: [Double] = [], loss: [Double] = []
            for it in 0...c.iterations {
                let wHat = w.map { $0 / norm(w) }
                dist.append((dot(sub(v, vs), sub(v, vs)) + dot(sub(wHat, ws), sub(wHat, ws))).squareRoot())
                loss.append(model.loss(v: v, w: w))
                if it == c.iterations { break }
                let gv = model.gradientV(v: v, w: w)
                let gw = model.expectedCoarseGradient(ste, v: v, w: w)
                axpy(-c.eta, gv, &v)
                axpy(-c.eta, gw, &w)
            }
            return (dist, loss)
        }
        let left = runs.filter { $0.dist.last! > c.leave_factor * c.perturbation }.count
        return (ste, runs.map(\.dist), runs.map(\.loss), left)
    }
    return SpuriousCase(m: m, yin: yin, vs: vs, ws: ws, gradientRow: row, identityNorm: identityNorm, reluNorm: reluNorm,
        controlIdentityNorm: norm(control.expectedIdentityGradient(v: cv, w: cw)), runs: runs)
}

private func spuriousSetting(_ c: YinSpuriousConfig) -> String {
    let setting = """
        Lemma 9 / Theorem 1 check (final version's numbering). For each m in \(c.ms), \
        v* = N(0, I_m) + \(fmt(c.v_shift))·𝟙, redrawn until |𝟙ᵀv*| ≥ \(fmt(c.min_abs_sum)) and (𝟙ᵀv*)² < (m+1)/2·‖v*‖² (Proposition 1's condition; we find that θ = π \
        is a local minimizer exactly when it holds, since f grows with θ at rate vᵀv*/(2π) and vᵀv* < 0 \
        there iff the condition holds [I] — without it the "spurious minimizer" is not a minimizer), \
        w* uniform on the unit sphere in ℝ^\(c.n). Spurious minimizer v = (I+𝟙𝟙ᵀ)⁻¹(𝟙𝟙ᵀ−I)v*, w = −w*. \
        Gradient norms in closed form and by Monte Carlo (\(c.monte_carlo_samples) samples, ± one standard \
        error of the norm's components combined). Then \(c.starts) runs per STE of Algorithm 1 from the \
        minimizer plus a Gaussian perturbation of size \(fmt(c.perturbation)), η = \(fmt(c.eta)), \
        \(c.iterations) iterations; distance = ‖v − v_s‖ + direction distance ‖w/‖w‖ − w_s‖ (Euclidean, \
        stacked). Predicted ‖E g_id‖ at the minimizer = 2(𝟙ᵀv*)²(m−1)/((m+1)²√(2π)) (our simplification of \
        Lemma 9 there; it points along w, so the identity STE shrinks ‖w‖ until w passes through 0).
        """
    return setting
}

