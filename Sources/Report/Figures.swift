// The report's figures: training curves per net, ours against the paper, the repel experiments; and the repel
// outcomes the claims are scored on.
import Experiments
import Foundation
import Harness
import NN
import Storage
import Training

/// The report's figures: one per net (training curves), ours against the paper, and one per repel experiment (Fig. 2,
/// Appendix C) whose runs exist. Returns (title, relative path) pairs.
func writeFigures(_ runs: [RunID: RunRecord], config: ExperimentConfig, root: String, profile: String,
    reference: [CellKey: ReferenceCell], floats: [FloatBaseline], cells: [CellKey: CellResult]) throws -> [(String, String)]
{
    let trained = runs.filter { $0.key.kind == .train }
    // Every STE that was run, the paper's three first: a new STE appears without further edits.
    let stes = Set(trained.keys.compactMap { $0.ste?.rawValue }).sorted { (steOrder($0), $0) < (steOrder($1), $1) }
    var out = try netCurveFigures(trained, stes: stes, root: root, profile: profile, reference: reference, floats: floats)
    out += try vsPaperFigure(cells, stes: stes, root: root, reference: reference)
    out += try repelFigures(runs, config: config, root: root)
    return out
}

/// Per net: panels per bit width of test accuracy and training loss per epoch, one line per STE (mean over seeds,
/// each seed thin behind it), the paper's values and the float net as reference lines.
private func netCurveFigures(_ trained: [RunID: RunRecord], stes: [String], root: String, profile: String,
    reference: [CellKey: ReferenceCell], floats: [FloatBaseline]) throws -> [(String, String)]
{
    var out: [(String, String)] = []
    let nets = Set(trained.keys.map(\.net)).sorted { netOrder($0) < netOrder($1) }
    for net in nets {
        var panels: [Panel] = []
        let bitsList = Set(trained.keys.filter { $0.net == net }.map { $0.bits! }).sorted()
        let seedCount = Set(trained.keys.filter { $0.net == net }.map(\.seed)).count
        let float = floats.first { $0.net == net }
        for bits in bitsList {
            var acc: [Series] = [], loss: [Series] = []
            var accRefs: [ReferenceLine] = [], lossRefs: [ReferenceLine] = []
            for (i, ste) in stes.enumerated() {
                let seeds = trained.filter { $0.key.net == net && $0.key.bits == bits && $0.key.ste?.rawValue == ste }
                    .sorted { $0.key.seed < $1.key.seed }.map(\.value).filter { !$0.diverged }
                guard let n = seeds.map({ $0.history.count }).min(), n > 0 else { continue }
                let x = (1...n).map(Double.init)
                func mean(_ f: (History) -> [Double]) -> [Double] {
                    (0..<n).map { e in seeds.map { f($0.history)[e] }.reduce(0, +) / Double(seeds.count) }
                }
                let color = Figure.palette[i % Figure.palette.count]
                if seeds.count > 1 {  // the spread: each seed as a thin line behind the mean
                    for r in seeds {
                        acc.append(Series("", x: x, y: Array(r.history.testAccuracy.prefix(n)), color: color, lineWidth: 0.7, opacity: 0.45))
                        loss.append(Series("", x: x, y: r.history.trainLoss.prefix(n).map { max($0, 1e-6) }, color: color,
                            lineWidth: 0.7, opacity: 0.45))
                    }
                }
                acc.append(Series("\(ste) STE", x: x, y: mean { $0.testAccuracy }, color: color, lineWidth: 2))
                loss.append(Series("\(ste) STE", x: x, y: mean { $0.trainLoss }.map { max($0, 1e-6) }, color: color, lineWidth: 2))
                if let paper = reference[CellKey(dataset: seeds[0].config.dataset, net: net, bits: bits, ste: ste)] {
                    accRefs.append(ReferenceLine(y: paper.accuracy, color: color))
                    lossRefs.append(ReferenceLine(y: paper.trainLoss, color: color))
                }
            }
            if !accRefs.isEmpty {  // a legend entry for the unlabelled dotted lines
                acc.append(Series("paper (dotted, STE colour)", x: [], y: [], color: "#777", dashed: true))
                loss.append(Series("paper (dotted, STE colour)", x: [], y: [], color: "#777", dashed: true))
            }
            if let float {
                accRefs.append(ReferenceLine(y: meanStd(float.accuracies).0, label: "float net (pretrained)"))
            }
            panels.append(Panel(title: "\(net), \(bits)-bit: test accuracy", xLabel: "epoch", yLabel: "test accuracy (%)",
                series: acc, references: accRefs))
            panels.append(Panel(title: "\(net), \(bits)-bit: training loss", xLabel: "epoch",
                yLabel: "training loss (cross-entropy)", series: loss, logY: true, references: lossRefs))
        }
        let file = "figures/table1-\(net).svg"
        let title = "\(net) from its pretrained float net — profile \(profile), \(seedCount) seed\(seedCount == 1 ? "" : "s")"
            + (seedCount > 1 ? " (thick: mean, thin: each seed)" : "")
        try writeFigure(Figure(title: title, panels: panels, columns: 2, panelWidth: 520), to: "\(root)/\(file)")
        out.append(("\(net) training curves", file))
    }
    return out
}

/// Ours against the paper, every cell: the difference in test accuracy with its tolerance (a cell is consistent
/// when the bar crosses 0), each point named.
private func vsPaperFigure(_ cells: [CellKey: CellResult], stes: [String], root: String,
    reference: [CellKey: ReferenceCell]) throws -> [(String, String)]
{
    var out: [(String, String)] = []
    let compared = cells.filter { reference[$0.key] != nil && $0.value.n > 0 }.sorted { $0.key < $1.key }
    if !compared.isEmpty {
        var series: [Series] = []
        for (i, ste) in stes.enumerated() {
            let color = Figure.palette[i % Figure.palette.count]
            let mine = compared.filter { $0.key.ste == ste }
            guard !mine.isEmpty else { continue }
            var xs: [Double] = [], ys: [Double] = [], names: [String] = []
            for (key, r) in mine {
                // Nudged sideways by STE so cells with the same paper value stay apart.
                let x = reference[key]!.accuracy + 0.01 * (Double(i) - 1), d = r.accuracyMean - reference[key]!.accuracy
                series.append(Series("", x: [x, x], y: [d - r.accuracyTolerance, d + r.accuracyTolerance], color: color, lineWidth: 1.2))
                xs += [x, .nan]
                ys += [d, .nan]
                names += ["\(key.net) \(key.bits)-bit", ""]
            }
            series.append(Series("\(ste) STE", x: xs, y: ys, color: color, markers: true, pointLabels: names))
        }
        let paperValues = compared.map { reference[$0.key]!.accuracy }
        let margin = max(0.05, 0.06 * (paperValues.max()! - paperValues.min()!))
        let panel = Panel(title: "every cell: ours − paper in test accuracy, ± its tolerance (consistent when the bar crosses 0)",
            xLabel: "the paper's test accuracy (%)", yLabel: "ours − paper (percentage points)", series: series,
            xRange: (paperValues.min()! - margin)...(paperValues.max()! + margin),
            references: [ReferenceLine(y: 0, label: "the paper")])
        let file = "figures/table1-vs-paper.svg"
        try writeFigure(Figure(panel, width: 720, height: 420), to: "\(root)/\(file)")
        out.append(("Ours against the paper, every cell", file))
    }
    return out
}

/// One figure per repel experiment: each run's curves against the minimum it starts from (reference lines, dotted in
/// the run's colour: the test accuracy and training loss measured at the start, before the first step).
private func repelFigures(_ runs: [RunID: RunRecord], config: ExperimentConfig, root: String) throws -> [(String, String)] {
    var out: [(String, String)] = []
    for spec in config.repel {
        let members = runs.filter { $0.key.kind == .repel && !$0.key.isControl && config.repelSpec(for: $0.key) == spec
            && !$0.value.diverged }
            .sorted { "\($0.key)" < "\($1.key)" }
        guard !members.isEmpty else { continue }
        var acc: [Series] = [], loss: [Series] = []
        var accRefs: [ReferenceLine] = [], lossRefs: [ReferenceLine] = []
        for (i, (id, r)) in members.enumerated() {
            let x = (1...max(1, r.history.count)).map(Double.init)
            let color = Figure.palette[i % Figure.palette.count]
            let label = "from \(id.from!.rawValue) (s\(id.seed))"
            acc.append(Series(label, x: x, y: r.history.testAccuracy, color: color))
            loss.append(Series(label, x: x, y: r.history.trainLoss.map { max($0, 1e-6) }, color: color))
            if let parent = runs[id.parent!] {
                let startLoss = r.history.startTrainLoss ?? parent.eval["train_loss_last_epoch"]!
                let startAcc = r.history.startTestAccuracy ?? parent.eval["test_accuracy"]!
                // In the run's colour, unlabelled: the starts of several seeds lie close together, where text
                // labels would cover each other and the curves leaving them.
                accRefs.append(ReferenceLine(y: startAcc, color: color))
                lossRefs.append(ReferenceLine(y: max(startLoss, 1e-6), color: color))
            }
        }
        // No-break spaces keep "lr 1e-05" and "124 epochs" on one line when the title wraps.
        let figure = Figure(title: "\(spec.title): \(spec.ste.rawValue) STE started at other STEs' minima (\(spec.net), \(spec.bits)-bit; lr\u{00A0}\(spec.warmupLR) for \(spec.warmupEpochs)\u{00A0}epochs)", panels: [
            Panel(title: "test accuracy (dotted: each run's start)", xLabel: "epoch", yLabel: "test accuracy (%)", series: acc,
                references: accRefs),
            Panel(title: "training loss (dotted: each run's start)", xLabel: "epoch", yLabel: "training loss (cross-entropy)",
                series: loss, logY: true, references: lossRefs),
        ], columns: 2)
        let file = "figures/repel-\(spec.name).svg"
        try writeFigure(figure, to: "\(root)/\(file)")
        out.append((spec.title, file))
    }
    return out
}

/// An SVG figure written atomically, and a PNG beside it when rsvg-convert is installed (for viewers without SVG).
func writeFigure(_ figure: Figure, to path: String) throws {
    try writeAtomically(figure.svg(), to: path)
    try writePNG(ofSVG: path)
}

/// Start, end of the low-LR phase and end of each repel experiment, means over the seeds whose runs finished,
/// keyed by `RepelKey`. Start = the run's own measurement before its first step (`History.startTrainLoss`),
/// measured as its epochs are; the starting cell's last epoch for files written before that existed.
func repelOutcomes(_ runs: [RunID: RunRecord], config: ExperimentConfig) -> [RepelKey: RepelOutcome] {
    var groups: [RepelKey: [RepelOutcome.Seed]] = [:]
    for (id, r) in runs where id.kind == .repel && !r.diverged {
        guard let parent = runs[id.parent!], let spec = config.repelSpec(for: id), r.history.count >= spec.warmupEpochs
        else { continue }
        let w = spec.warmupEpochs - 1
        groups[RepelKey(net: id.net, bits: id.bits!, from: id.from!.rawValue, ste: id.ste!.rawValue), default: []].append(
            RepelOutcome.Seed(seed: id.seed, startLoss: r.history.startTrainLoss ?? parent.eval["train_loss_last_epoch"]!,
                startAccuracy: r.history.startTestAccuracy ?? parent.eval["test_accuracy"]!, lowLRLoss: r.history.trainLoss[w],
                lowLRAccuracy: r.history.testAccuracy[w], endLoss: r.eval["train_loss_last_epoch"]!,
                endAccuracy: r.eval["test_accuracy"]!, lowLREpochs: spec.warmupEpochs, epochs: r.history.count))
    }
    return groups.mapValues { RepelOutcome(seeds: $0.sorted { $0.seed < $1.seed }) }
}
