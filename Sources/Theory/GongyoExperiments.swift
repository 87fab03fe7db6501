// Gongyo & Ishikawa 2021 ("Proper straight-through estimator", OpenReview hEiwVblq4P; abstract only): scale symmetry
// and STEs. Their model is unknown [N]; we use the binary two-linear-layer model of Yin 2019 with a misspecified
// teacher: y* = Σₖ σ(zᵀbₖ), b₁, b₂, b₃ the standard basis of ℝ³ (m = 1 row), student y = v σ(zᵀw) with one filter —
// no (v, w) represents y*. The loss is invariant to the scale of w (binary σ). gongyo-scale trains it with Algorithm
// 1; gongyo-misspecified locates the stationary points of f and the zeros of each STE's expected coarse gradient.
import Foundation
import Kernels
import Harness

public struct GongyoModelConfig: Codable {
    /// Teacher filters (normalised) and their output weights (m = 1).
    public var teacher_filters: [[Double]]
    public var teacher_weights: [Double]

    var model: BinaryTeacherModel {
        BinaryTeacherModel(filters: teacher_filters, weights: teacher_weights.map { [$0] })
    }
    var description: String {
        "y* = " + zip(teacher_weights, teacher_filters).map { "\(fmt($0))·σ(zᵀ(" + $1.map { fmt($0) }.joined(separator: ", ") + "))" }
            .joined(separator: " + ") + ", student y = v·σ(zᵀw), z ~ N(0, I_\(teacher_filters[0].count))"
    }
}

// MARK: - gongyo-scale

public struct GongyoScaleConfig: Codable {
    public var seed: UInt64
    public var model: GongyoModelConfig
    public var starts: Int
    public var iterations: Int
    public var eta: Double
    public var stes: [STE]
    public var record_every: Int
    /// Converged: ‖(∂f/∂v, E g)‖ < grad_tol at the end.
    public var grad_tol: Double
}

@Sendable public func runGongyoScale(configPath: String, outPath: String, threads: Int) throws {
    try runExperiment(name: "gongyo-scale", configType: GongyoScaleConfig.self, configPath: configPath,
        outPath: outPath, threads: threads)
    { c, ctx in
        let model = c.model.model
        let n = model.n
        let invariance = scaleInvariance(c, model: model)
        let starts: [([Double], [Double])] = (0..<c.starts).map { s in
            var r = SplitMix64(seed: c.seed, stream: UInt64(1 + s))
            return (r.normals(1), r.normals(n, scale: 1 / Double(n).squareRoot()))
        }
        let recorded = Array(stride(from: 0, through: c.iterations, by: c.record_every))
        let xs = recorded.map(Double.init)
        var normSeries: [Series] = [], lossSeries: [Series] = []
        var rows: [[String]] = []
        var result: [STE: (converged: Int, drift: Double, finalNorms: [Double])] = [:]
        for (t, ste) in c.stes.enumerated() {
            let runs = parallelMap(c.starts, threads: ctx.threads) { s in
                coarseGradientDescent(model: model, ste: ste, v: starts[s].0, w: starts[s].1, eta: c.eta,
                    iterations: c.iterations)
            }
            let converged = runs.filter { $0.coarseNorm.last! < c.grad_tol }.count
            // Relative change of ‖w‖ over the last 10 % of the iterations.
            let tail = c.iterations - c.iterations / 10
            let drifts = runs.map { abs($0.wNorm.last! - $0.wNorm[tail]) / $0.wNorm[tail] }
            let finalNorms = runs.map { $0.wNorm.last! }
            result[ste] = (converged, drifts.min()!, finalNorms)
            rows.append([
                ste.label, fmt(invariance[ste]!), fmtFraction(converged, c.starts),
                fmt(quantile(finalNorms, 0)), fmt(quantile(finalNorms, 0.5)), fmt(quantile(finalNorms, 1)),
                fmt(quantile(drifts, 0)), fmt(quantile(runs.map { $0.loss.last! }, 0.5)),
                fmt(quantile(runs.map { $0.coarseNorm.last! }, 0.5)),
            ])
            try ctx.write("/\(ste.rawValue)/w_norm", runs.flatMap { r in recorded.map { r.wNorm[$0] } },
                shape: [c.starts, recorded.count])
            try ctx.write("/\(ste.rawValue)/loss", runs.flatMap { r in recorded.map { r.loss[$0] } },
                shape: [c.starts, recorded.count])
            try ctx.write("/\(ste.rawValue)/final_w_norm", finalNorms)
            for s in 0..<min(3, c.starts) {
                let color = Figure.palette[t]
                normSeries.append(Series(s == 0 ? ste.label : "", x: xs, y: recorded.map { runs[s].wNorm[$0] },
                    color: color, dashed: s > 0))
                lossSeries.append(Series(s == 0 ? ste.label : "", x: xs, y: recorded.map { runs[s].loss[$0] },
                    color: color, dashed: s > 0))
            }
        }
        try ctx.write("/iterations_recorded", recorded)
        try ctx.save(Figure(title: "Scale of w under coarse gradient descent (misspecified binary model, η = \(fmt(c.eta)); 3 starts per STE)",
            panels: [
                Panel(title: "‖w‖ over training", xLabel: "iteration", yLabel: "‖w‖", series: normSeries, logY: true),
                Panel(title: "population loss", xLabel: "iteration", yLabel: "f(v, w)", series: lossSeries, logY: true),
            ], columns: 2, panelWidth: 460))

        let body = markdownTable(
            header: ["STE", "max scale-invariance defect", "converged", "min final ‖w‖", "median final ‖w‖",
                "max final ‖w‖", "min ‖w‖ drift (last 10 %)", "median final f", "median final ‖coarse grad‖"],
            rows: rows)
        return Fragment(title: "Gongyo 2021 — scale symmetry (gongyo-scale)", setting: scaleSetting(c),
            claims: scaleClaims(c, invariance: invariance, result: result),
            body: body)
    }
}

/// Scale (in)variance of E g_μ at random points: per STE, max ‖E g(v, s·w) − E g(v, w)‖ over s ∈ {0.1, 10}.
private func scaleInvariance(_ c: GongyoScaleConfig, model: BinaryTeacherModel) -> [STE: Double] {
    var rng = SplitMix64(seed: c.seed, stream: 0)
    var invariance: [STE: Double] = [:]
    for _ in 0..<50 {
        let v = rng.normals(1), w = rng.normals(model.n)
        for ste in c.stes {
            let g = model.expectedCoarseGradient(ste, v: v, w: w)
            for s in [0.1, 10.0] {
                let d = norm(sub(model.expectedCoarseGradient(ste, v: v, w: scaled(w, s)), g))
                invariance[ste] = max(invariance[ste] ?? 0, d)
            }
        }
    }
    return invariance
}

/// The identity and ReLU STEs keep the scale symmetry and never settle; the clipped ReLU breaks it and settles.
private func scaleClaims(_ c: GongyoScaleConfig, invariance: [STE: Double],
    result: [STE: (converged: Int, drift: Double, finalNorms: [Double])]) -> [Claim]
{
    var claims: [Claim] = []
    for ste in c.stes where ste != .clipped {
        let r = result[ste]!
        claims.append(Claim("The \(ste.label) STE keeps the scale symmetry (E g(v, s·w) = E g(v, w)) and so "
            + "leaves ‖w‖ undetermined: ‖w‖ keeps drifting, no run settles.",
            held: invariance[ste]! < 1e-12 && r.converged == 0 && r.drift > 1e-3,
            evidence: "max ‖E g(v,s·w) − E g(v,w)‖ = \(fmt(invariance[ste]!)); converged "
                + "\(fmtFraction(r.converged, c.starts)); smallest relative ‖w‖ change over the last 10 % "
                + "of iterations \(fmt(r.drift))"))
    }
    if let r = result[.clipped] {
        let spread = (r.finalNorms.max()! - r.finalNorms.min()!) / quantile(r.finalNorms, 0.5)
        claims.append(Claim("The clipped ReLU STE breaks the scale symmetry and settles at a finite scale.",
            held: invariance[.clipped]! > 1e-3 && r.converged == c.starts && r.finalNorms.allSatisfy { $0.isFinite },
            evidence: "max ‖E g(v,s·w) − E g(v,w)‖ = \(fmt(invariance[.clipped]!)); converged "
                + "\(fmtFraction(r.converged, c.starts)); final ‖w‖ ∈ [\(fmt(r.finalNorms.min()!)), "
                + "\(fmt(r.finalNorms.max()!))] (relative spread \(fmt(spread)))"))
    }
    return claims
}

private func scaleSetting(_ c: GongyoScaleConfig) -> String {
    let setting = """
        Gongyo & Ishikawa 2021 (abstract only; model, data and settings unknown [N]). Reconstruction: the \
        binary two-linear-layer model of Yin 2019 with a misspecified teacher, \(c.model.description); \
        the loss is invariant to the scale of w because σ(x) = 1{x>0}. Algorithm 1 (population, closed-form \
        expected coarse gradients) from \(c.starts) random starts (v₀ ~ N(0,1), w₀ ~ N(0, I/n)), \
        η = \(fmt(c.eta)), \(c.iterations) iterations; clipped ReLU μ = min(max(x,0),1). Converged: \
        ‖(∂f/∂v, E g)‖ < \(fmt(c.grad_tol)) at the end. Why this model: at the minimizers of a realizable \
        teacher every STE's coarse gradient vanishes for any ‖w‖, so the symmetry only shows when the \
        student cannot fit the teacher, which is the situation the abstract describes.
        """
    return setting
}

// MARK: - gongyo-misspecified

public struct GongyoMisspecifiedConfig: Codable {
    public var model: GongyoModelConfig
    /// Number of Fibonacci-sphere start directions for the root searches.
    public var start_directions: Int
    /// Start scales ‖w‖ for the clipped-ReLU search.
    public var start_scales: [Double]
    public var stes: [STE]
    /// A residual below this is a root.
    public var root_tol: Double
    /// Two directions closer than this (radians) are the same point.
    public var same_point: Double
    /// Points of the set v(ŵ) = 0 are excluded (there f is flat in w and every coarse gradient vanishes).
    public var min_abs_v: Double
    /// ‖w‖ range of the radial-component plot.
    public var plot_scales: [Double]
}

/// Levenberg–Marquardt on F: ℝ³ → ℝ³ with a central-difference Jacobian. Returns the end point and ‖F‖.
func levenbergMarquardt(_ F: ([Double]) -> [Double], start: [Double], normalize: Bool, iterations: Int = 300)
    -> (x: [Double], residual: Double)
{
    var x = start
    var r = F(x)
    var lambda = 1e-3
    for _ in 0..<iterations {
        let res = norm(r)
        if res < 1e-15 { break }
        let h = 1e-7 * max(1, norm(x))
        var J = [[Double]](repeating: [Double](repeating: 0, count: 3), count: 3)  // J[i][j] = ∂Fᵢ/∂xⱼ
        for j in 0..<3 {
            var xp = x, xm = x
            xp[j] += h
            xm[j] -= h
            let fp = F(xp), fm = F(xm)
            for i in 0..<3 { J[i][j] = (fp[i] - fm[i]) / (2 * h) }
        }
        var improved = false
        for _ in 0..<20 {
            var A = [[Double]](repeating: [Double](repeating: 0, count: 3), count: 3)
            var b = [Double](repeating: 0, count: 3)
            for i in 0..<3 {
                for j in 0..<3 { for k in 0..<3 { A[i][j] += J[k][i] * J[k][j] } }
                A[i][i] += lambda * (1 + A[i][i])
                for k in 0..<3 { b[i] -= J[k][i] * r[k] }
            }
            guard let d = solve3(A, b) else { lambda *= 10; continue }
            var xn = add(x, d)
            if normalize { xn = xn.map { $0 / norm(xn) } }
            if norm(xn) < 1e-8 || norm(xn) > 1e8 { lambda *= 10; continue }
            let rn = F(xn)
            if norm(rn) < res {
                x = xn
                r = rn
                lambda = max(lambda / 3, 1e-12)
                improved = true
                break
            }
            lambda *= 4
        }
        if !improved { break }
    }
    return (x, norm(r))
}

func solve3(_ A: [[Double]], _ b: [Double]) -> [Double]? {
    var M = A.enumerated().map { $0.element + [b[$0.offset]] }
    for c in 0..<3 {
        let p = (c..<3).max { abs(M[$0][c]) < abs(M[$1][c]) }!
        if abs(M[p][c]) < 1e-300 { return nil }
        M.swapAt(c, p)
        for r in 0..<3 where r != c {
            let f = M[r][c] / M[c][c]
            for k in c..<4 { M[r][k] -= f * M[c][k] }
        }
    }
    return (0..<3).map { M[$0][3] / M[$0][$0] }
}

func fibonacciSphere(_ count: Int) -> [[Double]] {
    let golden = Double.pi * (3 - 5.0.squareRoot())
    return (0..<count).map { i in
        let y = 1 - 2 * (Double(i) + 0.5) / Double(count)
        let r = (1 - y * y).squareRoot()
        return [r * cos(golden * Double(i)), y, r * sin(golden * Double(i))]
    }
}

@Sendable public func runGongyoMisspecified(configPath: String, outPath: String, threads: Int) throws {
    try runExperiment(name: "gongyo-misspecified", configType: GongyoMisspecifiedConfig.self,
        configPath: configPath, outPath: outPath, threads: threads)
    { c, ctx in
        guard c.model.model.n == 3, c.model.model.m == 1 else {
            throw ReportError("\(configPath): gongyo-misspecified needs n = 3 filters entries and m = 1")
        }
        let search = MisspecifiedSearch(c: c, threads: ctx.threads)
        let stationary = search.roots(search.trueResidual, normalize: true, scales: [1])
        var steRoots: [STE: [MisspecifiedSearch.Root]] = [:]
        for ste in c.stes {
            steRoots[ste] = search.roots(search.coarseResidual(ste), normalize: ste != .clipped,
                scales: ste == .clipped ? c.start_scales : [1]).roots
        }
        try ctx.write("/stationary/w", stationary.roots.flatMap { $0.w }, shape: [stationary.roots.count, 3])
        try ctx.write("/stationary/v", stationary.roots.map { search.vOf($0.w)[0] })
        for ste in c.stes {
            let roots = steRoots[ste]!
            try ctx.write("/\(ste.rawValue)/zeros_w", roots.flatMap { $0.w }, shape: [roots.count, 3])
            try ctx.write("/\(ste.rawValue)/zeros_residual", roots.map { $0.residual })
        }
        let found = MisspecifiedFindings(search: search, stationary: stationary.roots, steRoots: steRoots)
        try found.figure(ctx)
        let setting = """
            Gongyo & Ishikawa 2021's "simple misspecified model" is unknown [N]. Reconstruction: \
            \(c.model.description). Stationary points of f: with v = v(ŵ) solving ∂f/∂v = 0 exactly, roots of \
            ‖w‖·∂f/∂w on the sphere by Levenberg–Marquardt from \(c.start_directions) Fibonacci-sphere \
            directions (residual < \(fmt(c.root_tol))); the kinks ŵ = ±bₖ, where f is not differentiable, and the \
            set v(ŵ) = 0, where f is flat in w and every coarse gradient vanishes trivially (\(stationary.vZero) \
            searches ended there), are left out. Zeros of each STE's expected coarse gradient (with the same exact \
            v-gradient): identity and ReLU are scale-free, so searched on the sphere; clipped ReLU in ℝ³ from \
            start scales \(c.start_scales). Distances are angles between directions (radians).
            """
        return Fragment(title: "Gongyo 2021 — stationary points vs STE zeros in a misspecified model (gongyo-misspecified)",
            setting: setting, claims: found.claims(), body: found.tables())
    }
}

/// The misspecified model's searches: true stationary points of f and zeros of each STE's expected coarse gradient,
/// by Levenberg–Marquardt from Fibonacci-sphere directions, kinks and the flat set v(ŵ) = 0 left out.
struct MisspecifiedSearch {
    let c: GongyoMisspecifiedConfig
    let threads: Int
    let model: BinaryTeacherModel
    let directions: [[Double]]
    let kinks: [[Double]]

    struct Root { var w: [Double]; var residual: Double }

    init(c: GongyoMisspecifiedConfig, threads: Int) {
        (self.c, self.threads) = (c, threads)
        model = c.model.model
        directions = fibonacciSphere(c.start_directions)
        kinks = model.filters.flatMap { [$0, $0.map { -$0 }] }
    }

    func vOf(_ w: [Double]) -> [Double] { model.optimalV(w: w) }

    /// A vector at w split into its tangential part and radial part.
    func split(_ g: [Double], _ w: [Double]) -> (tangential: [Double], radial: Double) {
        let wHat = w.map { $0 / norm(w) }
        let rad = dot(g, wHat)
        return (sub(g, scaled(wHat, rad)), rad)
    }

    /// True stationarity (∂f/∂v = 0 is built in through v(ŵ)): ‖w‖·∂f/∂w, scale free.
    var trueResidual: ([Double]) -> [Double] { { [model] w in scaled(model.gradientW(v: model.optimalV(w: w), w: w), norm(w)) } }

    /// Coarse residuals; clipped ReLU: tangential part × max(‖w‖, 1) and radial part × max(‖w‖, 1)², which
    /// keeps the zeros and stays O(1) as ‖w‖ → ∞ (the raw E g_crelu decays like 1/‖w‖ there).
    func coarseResidual(_ ste: STE) -> ([Double]) -> [Double] {
        { w in
            let g = model.expectedCoarseGradient(ste, v: vOf(w), w: w)
            guard ste == .clipped else { return g }
            let (t, r) = split(g, w)
            let rho = norm(w), up = max(rho, 1)
            return add(scaled(t, up), scaled(w.map { $0 / rho }, r * up * up))
        }
    }

    func isKink(_ w: [Double]) -> Bool { kinks.contains { angle($0, w) < 1e-4 } }

    func dedupe(_ roots: [Root], byScale: Bool) -> [Root] {
        var out: [Root] = []
        for r in roots.sorted(by: { $0.residual < $1.residual }) {
            if !out.contains(where: { angle($0.w, r.w) < c.same_point
                && (!byScale || abs(log(norm($0.w) / norm(r.w))) < 1e-3) }) { out.append(r) }
        }
        return out.sorted { ($0.w[0], $0.w[1], $0.w[2]) < ($1.w[0], $1.w[1], $1.w[2]) }
    }

    /// The distinct roots of F from every start (the scales times the directions), and how many searches ended on the
    /// flat set v(ŵ) = 0.
    func roots(_ F: @escaping ([Double]) -> [Double], normalize: Bool, scales: [Double]) -> (roots: [Root], vZero: Int) {
        let starts = scales.flatMap { s in directions.map { scaled($0, s) } }
        let ends = parallelMap(starts.count, threads: threads) { levenbergMarquardt(F, start: starts[$0], normalize: normalize) }
        var roots: [Root] = []
        var vZero = 0
        for e in ends where e.residual < c.root_tol && !isKink(e.x) {
            if abs(vOf(e.x)[0]) < c.min_abs_v { vZero += 1; continue }
            roots.append(Root(w: e.x, residual: e.residual))
        }
        return (dedupe(roots, byScale: !normalize), vZero)
    }
}

/// What the searches found, as claims, tables and the radial-component figure.
struct MisspecifiedFindings {
    let search: MisspecifiedSearch
    let stationary: [MisspecifiedSearch.Root]
    let steRoots: [STE: [MisspecifiedSearch.Root]]
    var c: GongyoMisspecifiedConfig { search.c }
    var model: BinaryTeacherModel { search.model }

    /// Radians from w to the nearest direction of a set.
    func nearest(_ w: [Double], _ set: [MisspecifiedSearch.Root]) -> Double { set.map { angle($0.w, w) }.min() ?? .infinity }

    func claims() -> [Claim] {
        var claims: [Claim] = []
        var reverse: [STE: Double] = [:], forward: [STE: Double] = [:]
        for ste in c.stes {
            forward[ste] = stationary.map { nearest($0.w, steRoots[ste]!) }.max() ?? 0
            reverse[ste] = steRoots[ste]!.map { nearest($0.w, stationary) }.max() ?? 0
        }
        if let f = forward[.clipped], let r = reverse[.clipped] {
            claims.append(Claim("All stationary points of f coincide with the zeros of the clipped ReLU STE's expected "
                + "coarse gradient.",
                held: !stationary.isEmpty && f < 1e-6 && r < 1e-6,
                evidence: "\(stationary.count) isolated stationary directions, \(steRoots[.clipped]!.count) "
                    + "clipped-ReLU zeros; max distance stationary → zero \(fmt(f)) rad, zero → stationary \(fmt(r)) rad"))
        }
        for ste in c.stes where ste != .clipped {
            let f = forward[ste]!, r = reverse[ste]!
            claims.append(Claim("Some stationary points are not zeros of the \(ste.label) STE's expected coarse gradient.",
                held: f > 1e-3 || r > 1e-3,
                evidence: "\(steRoots[ste]!.count) zeros found; max distance stationary → zero "
                    + (f.isFinite ? "\(fmt(f)) rad" : "∞ (no zero)") + ", zero → stationary \(fmt(r)) rad"))
        }
        return claims
    }

    /// Distances (radians between directions): stationary → nearest STE zero; the tangential parts; the zeros.
    func tables() -> String {
        var rows: [[String]] = []
        for (i, s) in stationary.enumerated() {
            let wHat = s.w.map { $0 / norm(s.w) }
            var row = ["S\(i + 1)", "(" + wHat.map { fmt($0, digits: 3) }.joined(separator: ", ") + ")",
                fmt(search.vOf(s.w)[0]), fmt(model.loss(v: search.vOf(s.w), w: s.w))]
            for ste in c.stes {
                let d = nearest(s.w, steRoots[ste]!)
                var cell = d.isFinite ? fmt(d) : "no zero found"
                if ste == .clipped, let r = steRoots[ste]!.min(by: { angle($0.w, s.w) < angle($1.w, s.w) }),
                    d < 1e-6 { cell += " (‖w‖ = \(fmt(norm(r.w))))" }
                row.append(cell)
            }
            rows.append(row)
        }
        var tangential: [[String]] = []
        for (i, s) in stationary.enumerated() {
            tangential.append(["S\(i + 1)"] + c.stes.map { ste in
                let w = s.w.map { $0 / norm(s.w) }
                return fmt(norm(search.split(model.expectedCoarseGradient(ste, v: search.vOf(w), w: w), w).tangential))
            })
        }
        var body = markdownTable(header: ["point", "ŵ", "v", "f"] + c.stes.map { "distance to nearest \($0.label) zero" },
            rows: rows)
        body += "\nTangential part of E g_μ at the stationary directions (‖w‖ = 1):\n\n"
        body += markdownTable(header: ["point"] + c.stes.map { $0.label }, rows: tangential)
        for ste in c.stes {
            body += "\n\(ste.label) zeros: " + (steRoots[ste]!.isEmpty ? "none" : steRoots[ste]!.map { r in
                "(" + r.w.map { fmt($0, digits: 3) }.joined(separator: ", ") + ")"
            }.joined(separator: ", ")) + "\n"
        }
        return body
    }

    /// Radial component of E g_μ at each stationary direction against ‖w‖ (tangential ones vanish there by symmetry
    /// for all three STEs — reported in the table).
    func figure(_ ctx: ExperimentContext) throws {
        var panels: [Panel] = []
        for (i, s) in stationary.prefix(4).enumerated() {
            let wHat = s.w.map { $0 / norm(s.w) }
            let series = c.stes.enumerated().map { (t, ste) in
                Series(ste.label, x: c.plot_scales, y: c.plot_scales.map { rho in
                    let w = scaled(wHat, rho)
                    return search.split(model.expectedCoarseGradient(ste, v: search.vOf(w), w: w), w).radial
                }, color: Figure.palette[t])
            }
            panels.append(Panel(title: "S\(i + 1): ŵ = (" + wHat.map { fmt($0, digits: 2) }.joined(separator: ", ") + ")",
                xLabel: "‖w‖", yLabel: "radial component ⟨E g_μ, ŵ⟩", series: series, logX: true,
                references: [ReferenceLine(y: 0, label: "0")]))
        }
        if !panels.isEmpty {
            try ctx.save(Figure(title: "Expected coarse gradient along ŵ at the stationary directions of f "
                + "(v = v(ŵ) optimal)", panels: panels, columns: 2, panelWidth: 440))
        }
    }
}
