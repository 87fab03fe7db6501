// The report stage: every eval.h5 / history.h5 of the grid → results/table1.csv, results/REPORT.md
// and SVG figures. Numbers and verdicts are computed here from the files, never typed by hand.
import Foundation
import Report
import Storage

public struct RunRecord: Sendable {
    public var id: RunID
    public var config: RunConfig
    public var eval: [String: Double]
    public var history: History
    public var diverged: Bool
    public var wallSeconds: Double
    public var threads: Int
}

/// Reads the finished runs of the (profiled) grid; runs without eval.h5 are absent.
public func collectRuns(_ config: ExperimentConfig, profile: String) throws -> [RunID: RunRecord] {
    let root = ExperimentConfig.resultsRoot(profile: profile)
    let all = config.allRuns()
    var out: [RunID: RunRecord] = [:]
    for id in all.cells + all.fig2 {
        let dir = "\(root)/\(id.folder)"
        guard FileManager.default.fileExists(atPath: "\(dir)/eval.h5") else { continue }
        let r = try H5Reader(path: "\(dir)/eval.h5")
        var eval: [String: Double] = [:]
        for name in ["train_loss_full_pass", "train_accuracy_full_pass", "train_loss_last_epoch", "test_loss",
            "test_accuracy"]
        {
            eval[name] = try r.read("/\(name)", as: Double.self, shape: []).values[0]
        }
        eval["test_total"] = Double(try r.read("/test_total", as: Int64.self, shape: []).values[0])
        let history = try History.read(from: H5Reader(path: "\(dir)/history.h5"))
        out[id] = RunRecord(id: id, config: try config.runConfig(id, profile: profile), eval: eval, history: history,
            diverged: (try r.attribute("diverged").intValue ?? 0) != 0,
            wallSeconds: try r.attribute("wall_seconds").doubleValue ?? 0,
            threads: Int(try r.attribute("threads").intValue ?? 0))
    }
    return out
}

/// Aggregates per cell over seeds. Diverged runs count as n but contribute no accuracy (reported apart).
public func aggregateCells(_ runs: [RunID: RunRecord], lossKind: String = "train_loss_last_epoch") -> [CellKey: CellResult] {
    var groups: [CellKey: [RunRecord]] = [:]
    for (id, r) in runs where id.kind == .train {
        groups[CellKey(dataset: r.config.dataset, net: id.net, bits: id.bits!, ste: id.ste!.rawValue), default: []].append(r)
    }
    var out: [CellKey: CellResult] = [:]
    for (key, records) in groups {
        let ok = records.filter { !$0.diverged }.sorted { $0.id.seed < $1.id.seed }
        out[key] = CellResult(key: key, accuracies: ok.map { $0.eval["test_accuracy"]! },
            losses: ok.map { $0.eval[lossKind]! }, testTotal: Int(ok.first?.eval["test_total"] ?? 10000),
            diverged: records.count - ok.count)
    }
    return out
}

public struct ReportInputs {
    public var config: ExperimentConfig
    public var profile: String
    public var theorySection: String?
    public var cifarPresent: Bool

    public init(config: ExperimentConfig, profile: String, theorySection: String?, cifarPresent: Bool) {
        self.config = config
        self.profile = profile
        self.theorySection = theorySection
        self.cifarPresent = cifarPresent
    }
}

/// Writes table1.csv, REPORT.md and the figures; returns the REPORT.md text.
@discardableResult
public func writeReport(_ inputs: ReportInputs) throws -> String {
    let config = inputs.config, profile = inputs.profile
    let root = ExperimentConfig.resultsRoot(profile: profile)
    let runs = try collectRuns(config, profile: profile)
    let cells = aggregateCells(runs)
    let reference = try loadReference(config.reference)
    try writeAtomically(([table1Header] + cells.keys.sorted().map { table1Line(cells[$0]!) }).joined(separator: "\n") + "\n",
        to: "\(root)/table1.csv")
    let rows = compare(ours: cells, reference: reference)
    var repel: [String: (startLoss: Double, startAcc: Double, endLoss: Double, endAcc: Double)] = [:]
    var repelGroups: [String: [(Double, Double, Double, Double)]] = [:]
    for (id, r) in runs where id.kind == .repel {
        guard let parent = runs[id.parent!], !r.diverged else { continue }
        repelGroups["\(id.net)-a\(id.bits!)-\(id.from!.rawValue)", default: []].append((parent.eval["train_loss_last_epoch"]!,
            parent.eval["test_accuracy"]!, r.eval["train_loss_last_epoch"]!, r.eval["test_accuracy"]!))
    }
    for (k, v) in repelGroups {
        let n = Double(v.count)
        repel[k] = (v.map(\.0).reduce(0, +) / n, v.map(\.1).reduce(0, +) / n, v.map(\.2).reduce(0, +) / n,
            v.map(\.3).reduce(0, +) / n)
    }
    let claimsPath = config.reference.replacingOccurrences(of: "-table1.csv", with: "-claims.csv")
    let claims = FileManager.default.fileExists(atPath: claimsPath)
        ? try evaluateClaims(claimsPath, ours: cells, repel: repel) : []
    try FileManager.default.createDirectory(atPath: "\(root)/figures", withIntermediateDirectories: true)
    let figures = try writeFigures(runs, root: root)

    var md = "# Reproduction report — \(config.experiment)\n\n"
    md += "Generated by `ste report` from the run files under `\(root)/` (profile `\(profile)`); do not edit by hand. "
    md += "Code version `\(codeVersion())`.\n\n"
    if profile != "paper" {
        md += "> **Profile `\(profile)`**: a shrunken protocol (subsets, few epochs) that checks the pipeline, not the paper. "
        md += "Its numbers are not comparable with Table 1.\n\n"
    }
    md += "## Table 1 (Yin et al., ICLR 2019): test accuracy\n\n"
    md += "Paper: the OpenReview submission's Table 1 (`\(config.reference)`). Ours: mean ± sample std over seeds (n). "
    md += "Verdict: *consistent* when the paper value lies within max(2·SE over seeds, 2·binomial SE of the test set) of our mean "
    md += "(notes/conventions.md §2), else *lower* / *higher*.\n\n"
    md += markdownTable(header: ["dataset", "net", "bits", "STE", "paper %", "ours %", "n", "diff", "tolerance", "verdict"],
        rows: rows.map { r in
            guard let o = r.ours else {
                let why = r.key.dataset == "cifar10" && !inputs.cifarPresent
                    ? "not run: CIFAR-10 absent"
                    : "not run (`make run RUN=\(r.key.net)-a\(r.key.bits)-\(r.key.ste)-s\(config.seeds.first ?? 0)`)"
                return [r.key.dataset, r.key.net, "\(r.key.bits)", r.key.ste, fmt(r.paper.accuracy, 2), why, "0", "", "", ""]
            }
            return [r.key.dataset, r.key.net, "\(r.key.bits)", r.key.ste, fmt(r.paper.accuracy, 2),
                "\(fmt(o.accuracyMean, 2)) ± \(fmt(o.accuracyStd, 2))", "\(o.n)" + (o.diverged > 0 ? " (+\(o.diverged) diverged)" : ""),
                (o.accuracyMean >= r.paper.accuracy ? "+" : "") + fmt(o.accuracyMean - r.paper.accuracy, 2),
                "±" + fmt(o.accuracyTolerance, 2), r.accuracyVerdict!.rawValue]
        }, align: ["l", "l", "r", "l", "r", "r", "r", "r", "r", "l"])
    if !inputs.cifarPresent && config.nets.values.contains(where: { $0.dataset == "cifar10" }) {
        md += "\nCIFAR-10 rows: not run because CIFAR-10 is absent. Place the official `cifar-10-binary.tar.gz` "
        md += "(MD5 c32a1d4ab5d03f1284b67883e8d87530) in `data/raw/` (or let `ste fetch cifar10` download it where a "
        md += "network is reachable), then run `make reproduce`; the CIFAR cells and Fig. 2 are then part of the plan.\n"
    }
    md += "\n## Table 1: training loss (log scale)\n\n"
    md += "Ours: the mean mini-batch loss of the last epoch (train mode, no weight decay), mean ± std over seeds; the "
    md += "full-pass loss in eval mode is in each run's `eval.h5`. Verdict: *consistent* within max(2·SE over seeds of "
    md += "log10(loss), log10 2) — a factor of two (project's choice: the paper gives one run per cell).\n\n"
    md += markdownTable(header: ["dataset", "net", "bits", "STE", "paper", "ours", "ratio", "verdict"],
        rows: rows.compactMap { r in
            guard let o = r.ours else { return nil }
            return [r.key.dataset, r.key.net, "\(r.key.bits)", r.key.ste, sci(r.paper.trainLoss),
                "\(sci(o.lossMean)) ± \(sci(o.lossStd))", fmt(o.lossMean / r.paper.trainLoss, 2), r.lossVerdict!.rawValue]
        }, align: ["l", "l", "r", "l", "r", "r", "r", "l"])
    md += "\n## The paper's qualitative claims\n\n"
    md += markdownTable(header: ["claim", "verdict", "measured"], rows: claims.map {
        [$0.statement, $0.held.map { $0 ? "**held**" : "**not held**" } ?? "not run", $0.evidence]
    })
    if !figures.isEmpty {
        md += "\n## Figures\n\n"
        for (title, file) in figures { md += "![\(title)](\(file))\n\n" }
    }
    md += "\n## Protocol\n\n" + protocolSection(config)
    md += "\n## Runs\n\n" + runsSection(runs)
    if let theory = inputs.theorySection { md += "\n" + theory }
    try writeAtomically(md, to: "\(root)/REPORT.md")
    return md
}

func protocolSection(_ config: ExperimentConfig) -> String {
    var s = "From `\(config.file)` (every value the paper leaves open is marked there as the project's choice, with its reason).\n\n"
    s += "- Quantizer: \(config.rounding == .ceil ? "min(⌈x/α⌉, L)·α for x > 0 (authors' code)" : "clamp(round(x/α), 0, L)·α"), "
    s += "L = 2^b − 1, α " + (config.alpha.map { t in t.keys.sorted().map { "\($0)-bit \(t[$0]!)" }.joined(separator: ", ") } ?? "fitted by Lloyd/MSE on half-Gaussian data")
    s += ", fixed during training; BN without scale/shift before each quantized ReLU; float weights.\n"
    s += "- STE boundary convention: x ≤ 0 blocks the gradient for relu and clipped; clipped passes 0 < x ≤ Lα (authors' code).\n"
    s += "- Seeds: \(config.seeds.map(String.init).joined(separator: ", ")).\n"
    for name in config.nets.keys.sorted(by: { netOrder($0) < netOrder($1) }) {
        let n = config.nets[name]!
        func phase(_ p: PhaseSpec) -> String {
            "\(p.epochs) epochs, batch \(p.batchSize), \(p.optimizer.uppercased()) lr \(p.lr), momentum \(p.momentum), "
                + "weight decay \(p.weightDecay), schedule \(p.schedule.kind)"
                + (p.schedule.kind == "multistep" ? " ×\(p.schedule.gamma) at \(p.schedule.milestones.map { "\(Int($0 * 100)) %" }.joined(separator: ", ")) of the epochs" : "")
        }
        s += "- \(name) on \(n.dataset): augmentation \(n.augment ? "random crop 32 (pad 4) + horizontal flip" : "none"); "
        s += "normalisation mean \(n.mean), std \(n.std).\n  - float pretraining: \(phase(n.pretrain)).\n  - quantized training (init from the pretrained net): \(phase(n.train)).\n"
    }
    if let f = config.fig2 {
        s += "- Fig. 2: \(f.net) \(f.bits)-bit, \(f.ste.rawValue) STE started from the \(f.from.map(\.rawValue).joined(separator: " / ")) minima; lr \(f.warmupLR) for \(f.warmupEpochs) epochs, then the normal schedule.\n"
    }
    return s
}

func runsSection(_ runs: [RunID: RunRecord]) -> String {
    let host = ProcessInfo.processInfo.hostName
    var s = "Machine: \(ProcessInfo.processInfo.activeProcessorCount) cores (\(host)); wall time = training + per-epoch test passes.\n\n"
    let ids = runs.keys.sorted { "\($0)" < "\($1)" }
    s += markdownTable(header: ["run", "epochs", "threads", "wall time", "img/s (last epoch)", "test %", "train loss", "state"],
        rows: ids.map { id in
            let r = runs[id]!
            return ["\(id)", "\(r.history.count)", "\(r.threads)", String(format: "%.1f s", r.wallSeconds),
                String(format: "%.0f", r.history.imagesPerSecond.last ?? 0), fmt(r.eval["test_accuracy"] ?? .nan, 2),
                sci(r.eval["train_loss_last_epoch"] ?? .nan), r.diverged ? "diverged" : "done"]
        }, align: ["l", "r", "r", "r", "r", "r", "r", "l"])
    return s
}

/// One figure per net: panels per bit width of test accuracy and training loss per epoch, one line per STE
/// (mean over seeds); plus Fig. 2 when its runs exist. Returns (title, relative path) pairs.
func writeFigures(_ runs: [RunID: RunRecord], root: String) throws -> [(String, String)] {
    var out: [(String, String)] = []
    let nets = Set(runs.keys.filter { $0.kind == .train }.map(\.net)).sorted { netOrder($0) < netOrder($1) }
    for net in nets {
        var panels: [Panel] = []
        let bitsList = Set(runs.keys.filter { $0.kind == .train && $0.net == net }.map { $0.bits! }).sorted()
        for bits in bitsList {
            var acc: [Series] = [], loss: [Series] = []
            for (i, ste) in ["identity", "relu", "clipped"].enumerated() {
                let seeds = runs.filter { $0.key.kind == .train && $0.key.net == net && $0.key.bits == bits && $0.key.ste?.rawValue == ste }
                    .map(\.value).filter { !$0.diverged }
                guard let n = seeds.map({ $0.history.count }).min(), n > 0 else { continue }
                let x = (1...n).map(Double.init)
                func mean(_ f: (History) -> [Double]) -> [Double] {
                    (0..<n).map { e in seeds.map { f($0.history)[e] }.reduce(0, +) / Double(seeds.count) }
                }
                let color = Figure.palette[i]
                acc.append(Series("\(ste) STE", x: x, y: mean { $0.testAccuracy }, color: color))
                loss.append(Series("\(ste) STE", x: x, y: mean { $0.trainLoss }.map { max($0, 1e-6) }, color: color))
            }
            panels.append(Panel(title: "\(net), \(bits)-bit: test accuracy", xLabel: "epoch", yLabel: "test accuracy (%)", series: acc))
            panels.append(Panel(title: "\(net), \(bits)-bit: training loss", xLabel: "epoch", yLabel: "training loss (cross-entropy)", series: loss, logY: true))
        }
        let file = "figures/table1-\(net).svg"
        try writeAtomically(Figure(title: "\(net): quantized training from the pretrained float net (mean over seeds)", panels: panels, columns: 2).svg(),
            to: "\(root)/\(file)")
        out.append(("\(net) training curves", file))
    }
    let repel = runs.filter { $0.key.kind == .repel && !$0.value.diverged }
    if !repel.isEmpty {
        var acc: [Series] = [], loss: [Series] = []
        for (i, (id, r)) in repel.sorted(by: { "\($0.key)" < "\($1.key)" }).enumerated() {
            let x = (1...max(1, r.history.count)).map(Double.init)
            let color = Figure.palette[i % Figure.palette.count]
            acc.append(Series("from \(id.from!.rawValue) (s\(id.seed))", x: x, y: r.history.testAccuracy, color: color))
            loss.append(Series("from \(id.from!.rawValue) (s\(id.seed))", x: x, y: r.history.trainLoss.map { max($0, 1e-6) }, color: color))
        }
        let net = repel.first!.key.net, bits = repel.first!.key.bits!
        let figure = Figure(title: "Fig. 2: identity STE started at better minima (\(net), \(bits)-bit)", panels: [
            Panel(title: "test accuracy", xLabel: "epoch", yLabel: "test accuracy (%)", series: acc),
            Panel(title: "training loss", xLabel: "epoch", yLabel: "training loss (cross-entropy)", series: loss, logY: true),
        ], columns: 2)
        try writeAtomically(figure.svg(), to: "\(root)/figures/fig2.svg")
        out.append(("Fig. 2", "figures/fig2.svg"))
    }
    return out
}
