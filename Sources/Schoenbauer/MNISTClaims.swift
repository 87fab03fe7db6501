// The claims of Schoenbauer et al. 2024 scored on the MNIST comparisons of MNISTExperiment.swift, the report
// table and figures. "Tracks" is judged against the Jitter floor (the custom estimator against itself at
// η·(1+j)), not a fixed threshold: a pair tracks when its quantized-weight disagreement exceeds the floor's by no
// more than twice the standard error of the per-seed difference; at a scaled-down η the floor is measured at that η. An η → 0 trend is judged on seed means: the
// disagreement at the smallest η is below that at the base η by more than twice the SE of the per-seed difference.
import Foundation
import Harness

/// Mean and standard error over seeds (SE 0 for one seed).
func meanAndSE(_ xs: [Double]) -> (mean: Double, se: Double) {
    let n = Double(xs.count)
    let mean = xs.reduce(0, +) / n
    guard xs.count > 1 else { return (mean, 0) }
    let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (n - 1)
    return (mean, (variance / n).squareRoot())
}

/// "0.0123 ± 0.0004" (mean ± SE over seeds).
func fmtMeanSE(_ xs: [Double], digits: Int = 3) -> String {
    let (m, se) = meanAndSE(xs.filter { !$0.isNaN })
    if m.isNaN { return "—" }
    return fmt(m, digits: digits) + (xs.count > 1 ? " ± " + fmt(se, digits: 2) : "")
}

/// The recorded comparisons of a Schoenbauer MNIST result and what is read from them: the claims, the tables, the
/// trend figure. A struct of what is computed; `schoenbauerFragment` assembles the report section.
struct MNISTMeasurements {
    let c: SchoenbauerMNISTConfig
    /// "<family>/<comparison>/<metric>" → per seed.
    let results: [String: [Double]]

    func disagreement(_ family: String, _ name: String) -> [Double]? {
        results["\(family)/\(name)/weight_agreement"].map { $0.map { 1 - $0 } }
    }
    var n: Int { c.seeds.count }

    /// Paired difference x − floor over seeds: (mean, SE).
    func excess(_ x: [Double], over floor: [Double]) -> (Double, Double) { meanAndSE(zip(x, floor).map { $0 - $1 }) }
    func tracksClaim(_ text: String, family: String, other: String, floor: String = PairName.jitter(1), expectTracks: Bool) -> Claim? {
        guard let d = disagreement(family, other), let j = disagreement(family, floor) else { return nil }
        let (m, se) = excess(d, over: j)
        let tracks = m <= 2 * se
        return Claim(text, held: tracks == expectTracks, evidence:
            "quantized-weight disagreement \(fmtMeanSE(d)) vs Jitter floor \(fmtMeanSE(j)) (mean ± SE, \(n) seeds); "
                + "excess \(fmt(m, digits: 3)) vs 2·SE \(fmt(2 * se, digits: 2)); inference agreement "
                + fmtMeanSE(results["\(family)/\(other)/inference_agreement"]!, digits: 4))
    }

    func trend(_ family: String) -> (levels: [(Double, [Double])], excess: (Double, Double))? {
        guard let base = disagreement(family, PairName.ste(1)) else { return nil }
        let factors = (family == "sgd" ? c.sgd?.scaledown : c.adam?.scaledown) ?? []
        guard let smallest = factors.min(), let low = disagreement(family, PairName.ste(smallest)) else { return nil }
        let levels = [(1.0, base)] + factors.sorted(by: >).compactMap { f in disagreement(family, PairName.ste(f)).map { (f, $0) } }
        return (levels, excess(base, over: low))
    }
    func trendEvidence(_ t: (levels: [(Double, [Double])], excess: (Double, Double))) -> String {
        t.levels.map { "η×\(fmt($0.0)): \(fmtMeanSE($0.1))" }.joined(separator: ", ")
            + "; drop from η to the smallest η \(fmt(t.excess.0, digits: 3)) vs 2·SE \(fmt(2 * t.excess.1, digits: 2))"
    }

    /// The paper's claims, the controls and the project's predictions, in the order the claim kinds file lists them.
    func claims() -> [Claim] {
        var claims: [Claim] = []
        if c.sgd != nil {
            claims += [tracksClaim("SGD with momentum: the STE with learning rate αη and init M(w₀) trains like the custom estimator "
                + "(its disagreement with DSQ is within the Jitter floor)", family: "sgd", other: PairName.ste(1), expectTracks: true)].compactMap { $0 }
            claims += [tracksClaim("SGD control (the files' \"no warp\"): the STE at η from w₀ does not (disagreement above the Jitter floor)",
                family: "sgd", other: PairName.unmapped(1), expectTracks: false)].compactMap { $0 }
            if let f = c.sgd?.scaledown.min() {
                claims += [tracksClaim("… at a smaller step (the claim is for a sufficiently small learning rate): η×\(fmt(f)) for \(fmt(1 / f))× "
                    + "the steps, against the Jitter floor at that η", family: "sgd", other: PairName.ste(f),
                    floor: PairName.jitter(f), expectTracks: true)].compactMap { $0 }
            }
            if let t = trend("sgd") {
                claims.append(Claim("SGD: the agreement improves as η → 0 (seed-mean disagreement of the Default pair lower at "
                    + "the smallest η, equal training time ηt)", held: t.excess.0 > 2 * t.excess.1, evidence: trendEvidence(t)))
            }
            if c.sgd?.controlsAtEveryStep == true { claims += smallStepClaims() }
        }
        if let ad = c.adam {
            let paperBeta2 = ad.beta2.contains(0.95) ? 0.95 : ad.beta2[0]
            claims += [tracksClaim("Adam (β₂ = \(fmt(paperBeta2)), the files' setting): the plain STE with the same η and init trains like "
                + "the custom estimator (within the Jitter floor)", family: "adam-b\(fmt(paperBeta2))", other: PairName.ste(1),
                expectTracks: true)].compactMap { $0 }
            if let f = ad.scaledown.min() {
                claims += [tracksClaim("… at a smaller step: η×\(fmt(f)) for \(fmt(1 / f))× the steps, against the Jitter floor at that η",
                    family: "adam-b\(fmt(paperBeta2))", other: PairName.ste(f), floor: PairName.jitter(f),
                    expectTracks: true)].compactMap { $0 }
            }
            // The paper's Adam claim names no β₂ ("without any modifications"): every other β₂ of the sweep tests it too.
            for beta2 in ad.beta2 where beta2 != paperBeta2 {
                claims += [tracksClaim("Adam at β₂ = \(fmt(beta2)) (the paper's claim names no β₂; the files use \(fmt(paperBeta2))): the plain STE "
                    + "with the same η and init trains like the custom estimator (within the Jitter floor)",
                    family: "adam-b\(fmt(beta2))", other: PairName.ste(1), expectTracks: true)].compactMap { $0 }
            }
            let short = ad.beta2.min()!, long = ad.beta2.max()!
            if short != long, let ts = trend("adam-b\(fmt(short))"), let tl = trend("adam-b\(fmt(long))") {
                claims.append(Claim("Prediction (this project's reading, not the paper's): under Adam with β₂ = \(fmt(short)) the "
                    + "agreement improves as η → 0", held: ts.excess.0 > 2 * ts.excess.1, evidence: trendEvidence(ts)))
                claims.append(Claim("Prediction (this project's reading): with β₂ = \(fmt(long)) — a second-moment memory longer "
                    + "than the run can average over — it stays flat (no drop beyond 2·SE)", held: tl.excess.0 <= 2 * tl.excess.1,
                    evidence: trendEvidence(tl)))
            }
        }
        return claims
    }

    var families: [String] { (c.sgd != nil ? ["sgd"] : []) + (c.adam?.beta2.map { "adam-b\(fmt($0))" } ?? []) }

    /// Every comparison's metrics, mean ± SE over seeds, after the SGD Jitter-equivalence table.
    func tables() -> String {
        var rows: [[String]] = []
        for family in families {
            let sweep = family == "sgd" ? (c.jitterSweep ?? []).sorted() : []
            let scales = [1.0] + ((family == "sgd" ? c.sgd?.scaledown : c.adam?.scaledown) ?? [])
            let names = scales.flatMap { f in
                [PairName.ste(f), PairName.unmapped(f), PairName.jitter(f)] + sweep.map { PairName.jitter(f, j: $0) }
            }
            for name in names {
                guard let agree = results["\(family)/\(name)/weight_agreement"] else { continue }
                func col(_ metric: String, _ digits: Int = 3) -> String { fmtMeanSE(results["\(family)/\(name)/\(metric)"]!, digits: digits) }
                rows.append([family, name, fmtMeanSE(agree, digits: 4), col("change_point_agreement"),
                    col("compressed_change_point_agreement"), col("change_point_error"), col("alignment_error"),
                    col("inference_agreement", 4), col("accuracy_a", 4), col("accuracy_x", 4)])
            }
        }
        return jitterEquivalentTable()
            + "Every comparison: mean ± SE over \(n) seeds. DSQ is run (a) of each pair; x is the other run.\n\n"
            + markdownTable(header: ["optimizer", "comparison", "quantized-weight agreement", "change-point agreement",
                "compressed", "avg change-point error (steps)", "alignment error / distance", "inference agreement",
                "test acc. a (%)", "test acc. x (%)"], rows: rows, align: ["l", "l", "r", "r", "r", "r", "r", "r", "r", "r"])
    }

    /// Disagreement against η per family, Default pairs, with the unmapped STE and the Jitter floor.
    func trendFigure(_ ctx: SchoenbauerContext) throws {
        var panels: [Panel] = []
        for (k, family) in families.enumerated() {
            guard let t = trend(family) ?? disagreement(family, PairName.ste(1)).map({ ([(1.0, $0)], (0.0, 0.0)) }) else { continue }
            let x = t.levels.map(\.0)
            var series = [Series("Default pair (thin: each seed)", x: x, y: t.levels.map { meanAndSE($0.1).mean },
                color: Figure.palette[k % Figure.palette.count], markers: true, lineWidth: 2)]
            for s in 0..<n {  // each seed thin and unlabelled behind the mean
                series.append(Series("", x: x, y: t.levels.map { $0.1[s] }, color: Figure.palette[k % Figure.palette.count],
                    lineWidth: 0.8, opacity: 0.45))
            }
            // The Jitter floor at each η where it was measured (DSQ against itself at η·(1 + j)).
            let floors = t.levels.map { level -> Double in
                disagreement(family, PairName.jitter(level.0)).map { meanAndSE($0).mean } ?? .nan
            }
            let unmapped = t.levels.map { level -> Double in
                disagreement(family, PairName.unmapped(level.0)).map { meanAndSE($0).mean } ?? .nan
            }
            if unmapped.count > 1, !unmapped.contains(where: \.isNaN) {
                series.append(Series("unmapped STE (η, w₀)", x: x, y: unmapped, color: "#b2182b", markers: true))
            }
            if floors.contains(where: { !$0.isNaN }) {
                series.append(Series("Jitter floor (DSQ vs DSQ at η·(1+j))", x: x, y: floors, color: "#333333", dashed: true,
                    markers: true))
            }
            panels.append(Panel(title: "\(family): DSQ vs STE", xLabel: "learning rate η / base η (steps × base η / η)",
                yLabel: "quantized-weight disagreement", series: series, logX: true, logY: true))
        }
        if !panels.isEmpty {
            // One panel (SGD only) gets the width the title needs.
            try ctx.save(Figure(title: "Disagreement of the Default pair as η → 0 at equal training time ηt", panels: panels,
                columns: 2, panelWidth: panels.count == 1 ? 640 : 420), suffix: "trend")
        }
    }
}

func schoenbauerFragment(_ c: SchoenbauerMNISTConfig, results: [String: [Double]], alpha: Double,
    estimator: WeightEstimator, kernelWeights: Int, runCount: Int, _ ctx: SchoenbauerContext) throws -> SchoenbauerFragment
{
    let measured = MNISTMeasurements(c: c, results: results)
    try measured.trendFigure(ctx)
    let setting = """
        Reconstructed from the authors' experiment files (a strong inference that they are the paper's). MNIST, the \
        first \(c.trainImages) training images (batch \(c.batchSize), seeded shuffle shared by the runs of a seed) and \
        \(c.testImages) test images, pixels scaled to [0, 1]. The flax-example ConvNet (conv 32, conv 64, dense 256, \
        dense 10, average pooling); only its \(kernelWeights) convolution-kernel weights are quantized and measured: \
        \(c.bits) bits, per tensor m = √(6/fan_in), Δ = 2m/(2^b − 1), round to nearest, clip to [−m, m], He-uniform \
        init inside it. Custom estimator: \(estimator.description) (its α = \(fmt(alpha))). Learning rate: linear \
        warm-up over \(fmt(100 * c.warmupFraction)) % of the steps, then cosine decay to 0; \(c.steps) steps at the \
        base η. \(c.sgd.map { "SGD: η = \(fmt($0.lr)), momentum \(fmt($0.momentum)), Scaledown η×{\($0.scaledown.map { fmt($0) }.joined(separator: ", "))} with the steps ×1/s. " } ?? "")\
        \(c.adam.map { "Adam: η = \(fmt($0.lr)), β₁ = \(fmt($0.beta1)), β₂ ∈ {\($0.beta2.map { fmt($0) }.joined(separator: ", "))}, ε = \(fmt($0.epsilon)), Scaledown η×{\($0.scaledown.map { fmt($0) }.joined(separator: ", "))}. " } ?? "")\
        Jitter: DSQ against itself at η·(1 + \(fmt(c.jitter))). Seeds \(c.seeds.map(String.init).joined(separator: ", ")); \
        \(runCount) training runs. Values the files do not give (their config is missing) are ours, and the departures \
        are listed in Sources/Schoenbauer/MNISTExperiment.swift; the config file states every value.
        """
    return SchoenbauerFragment(title: "Schoenbauer et al. 2024 — MNIST ConvNet with quantized convolution kernels",
        setting: setting, claims: measured.claims(), body: measured.tables())
}


/// Where a disagreement falls on a Jitter sweep (points (j, seed-mean disagreement), sorted by j): the j at which the
/// sweep disagrees as much, interpolated linearly in log j between the first two neighbouring points around it, or
/// a bound outside the sweep ("< 0.025", "> 0.2").
func jitterEquivalent(_ target: Double, sweep: [(j: Double, disagreement: Double)]) -> (value: Double?, text: String) {
    guard let first = sweep.first, let last = sweep.last, !target.isNaN else { return (nil, "—") }
    for (p, q) in zip(sweep, sweep.dropFirst()) where min(p.disagreement, q.disagreement) <= target
        && target <= max(p.disagreement, q.disagreement)
    {
        let t = p.disagreement == q.disagreement ? 0 : (target - p.disagreement) / (q.disagreement - p.disagreement)
        let j = exp(log(p.j) + t * (log(q.j) - log(p.j)))
        return (j, fmt(j, digits: 2))
    }
    if target < min(first.disagreement, last.disagreement) { return (nil, "< " + fmt(first.j)) }
    return (nil, "> " + fmt(last.j))
}

extension MNISTMeasurements {
    /// Per η (SGD): the mapped and the unmapped STE's disagreement with DSQ, the Jitter floor, and each STE's
    /// Jitter-equivalent perturbation j* on the sweep. Empty without a sweep.
    func jitterEquivalentTable() -> String {
        guard let sweepValues = c.jitterSweep, !sweepValues.isEmpty, let s = c.sgd else { return "" }
        let js = (sweepValues + [c.jitter]).sorted()
        var rows: [[String]] = []
        for f in [1.0] + s.scaledown.sorted(by: >) {
            let sweep = js.compactMap { j in
                disagreement("sgd", PairName.jitter(f, j: j == c.jitter ? nil : j)).map { (j: j, disagreement: meanAndSE($0).mean) }
            }
            guard sweep.count == js.count, let mapped = disagreement("sgd", PairName.ste(f)),
                let floor = disagreement("sgd", PairName.jitter(f)) else { continue }
            let unmapped = disagreement("sgd", PairName.unmapped(f))
            rows.append(["η×\(fmt(f))", "\(Int((Double(c.steps) / f).rounded()))", fmtMeanSE(mapped),
                unmapped.map { fmtMeanSE($0) } ?? "—", fmtMeanSE(floor),
                jitterEquivalent(meanAndSE(mapped).mean, sweep: sweep).text,
                unmapped.map { jitterEquivalent(meanAndSE($0).mean, sweep: sweep).text } ?? "—"])
        }
        guard !rows.isEmpty else { return "" }
        return "SGD at every η: the quantized-weight disagreement of each STE with DSQ (mean ± SE over \(n) "
            + "seeds), the Jitter floor (DSQ against DSQ at η·(1 + \(fmt(c.jitter)))), and the Jitter-equivalent perturbation "
            + "j*: the j at which DSQ against DSQ at η·(1 + j) disagrees as much as the STE does (seed means, interpolated in "
            + "log j on the sweep j ∈ {\(js.map { fmt($0) }.joined(separator: ", "))}; a bound outside it).\n\n"
            + markdownTable(header: ["η", "steps", "mapped STE", "unmapped STE", "Jitter floor", "j* mapped", "j* unmapped"],
                rows: rows, align: ["l", "r", "r", "r", "r", "r", "r"]) + "\n\n"
    }

    /// The small-step SGD claims (experiments/schoenbauer/mnist-small-steps.yaml states their criteria): the control
    /// at the smallest η, the mapped STE's excess over the Jitter floor shrinking with η, and its margin over the
    /// unmapped STE opening. A positive quantity claimed: held above 2 SE, inconclusive between 0 and 2 SE, not held at
    /// ≤ 0.
    func smallStepClaims() -> [Claim] {
        guard let f = c.sgd?.scaledown.min() else { return [] }
        func at(_ name: (Double) -> String) -> ([Double], [Double])? {
            guard let base = disagreement("sgd", name(1)), let small = disagreement("sgd", name(f)) else { return nil }
            return (base, small)
        }
        guard let (mapped1, mappedF) = at(PairName.ste), let (unmapped1, unmappedF) = at(PairName.unmapped),
            let (floor1, floorF) = at({ PairName.jitter($0) })
        else { return [] }
        func diff(_ a: [Double], _ b: [Double]) -> [Double] { zip(a, b).map { $0 - $1 } }
        func outcome(_ values: [Double]) -> (outcome: ClaimOutcome, measured: String) {
            let (m, se) = meanAndSE(values)
            let measured = "\(fmt(m, digits: 3)) vs 2·SE \(fmt(2 * se, digits: 2))"
            if n < 2 { return (.inconclusive, measured) }
            return (m > 2 * se ? .held : m > 0 ? .inconclusive : .notHeld, measured)
        }
        func claim(_ text: String, _ values: [Double], evidence: String) -> Claim {
            let (o, measured) = outcome(values)
            let reason = n < 2 ? "one seed has no standard error" : "the point estimate goes the claimed way but lies within 2 SE of zero"
            return Claim(text, outcome: o, evidence: evidence + " " + measured, reason: o == .inconclusive ? reason : "")
        }
        var claims: [Claim] = []
        claims.append(claim("SGD control at η×\(fmt(f)) for \(fmt(1 / f))× the steps: the unmapped STE (η, w₀) does not "
            + "track DSQ (its disagreement exceeds the Jitter floor at that η)", diff(unmappedF, floorF), evidence:
            "unmapped STE \(fmtMeanSE(unmappedF)) vs Jitter floor \(fmtMeanSE(floorF)) (mean ± SE, \(n) seeds); excess"))
        let excess1 = diff(mapped1, floor1), excessSmall = diff(mappedF, floorF)
        claims.append(claim("SGD: the mapped STE's excess over the Jitter floor shrinks as η → 0 (excess at η×\(fmt(f)) "
            + "below the base η's, equal training time ηt)", diff(excess1, excessSmall), evidence:
            "excess η×1: \(fmtMeanSE(excess1)), η×\(fmt(f)): \(fmtMeanSE(excessSmall)) (mean ± SE, \(n) seeds); shrink"))
        let margin1 = diff(unmapped1, mapped1), marginF = diff(unmappedF, mappedF)
        let atSmall = outcome(marginF)
        var opens = claim("SGD (the theorem's consequence that the map matters at small η): the unmapped STE's "
            + "disagreement exceeds the mapped STE's at η×\(fmt(f)), by more than at the base η", diff(marginF, margin1),
            evidence: "margin (unmapped − mapped) η×1: \(fmtMeanSE(margin1)), η×\(fmt(f)): \(fmtMeanSE(marginF)) "
                + "(mean ± SE, \(n) seeds); margin at η×\(fmt(f)) \(atSmall.measured); opening")
        // Both parts are needed: a margin that grows but stays inside its noise at the smallest η is not yet open.
        if opens.outcome == .held && atSmall.outcome != .held {
            opens = Claim(opens.text, outcome: atSmall.outcome == .notHeld ? .notHeld : .inconclusive,
                evidence: opens.evidence,
                reason: atSmall.outcome == .notHeld ? "" : "the margin at the smallest η lies within 2 SE of zero")
        }
        claims.append(opens)
        return claims
    }
}

/// The small-step claims of a result's comparisons (MNISTMeasurements.smallStepClaims).
func smallStepClaims(_ c: SchoenbauerMNISTConfig, results: [String: [Double]]) -> [Claim] {
    MNISTMeasurements(c: c, results: results).smallStepClaims()
}
