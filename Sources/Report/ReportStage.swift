// The report stage: every eval.h5 / history.h5 of the grid → results/table1.csv, results/REPORT.md
// and SVG figures. Numbers and verdicts are computed here from the files, never typed by hand.
import Experiments
import Foundation
import Harness
import Storage
import Training

public struct RunRecord: Sendable {
    public var id: RunID
    public var config: RunConfig
    public var eval: [String: Double]
    public var history: History
    public var diverged: Bool
    public var wallSeconds: Double
    public var threads: Int
    /// Provenance of the training stage (history.h5): the commit that trained the run and the machine.
    public var trainedBy: String
    public var machine: String
}

/// Reads the finished runs of the (profiled) grid; runs without eval.h5 are absent.
public func collectRuns(_ config: ExperimentConfig, profile: String) throws -> [RunID: RunRecord] {
    let root = config.resultsRoot(profile: profile)
    let all = config.allRuns()
    var out: [RunID: RunRecord] = [:]
    for id in all.cells + all.repel {
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
        let historyReader = try H5Reader(path: "\(dir)/history.h5")
        let history = try History.read(from: historyReader)
        out[id] = RunRecord(id: id, config: try config.runConfig(id, profile: profile), eval: eval, history: history,
            diverged: (try r.attribute("diverged").intValue ?? 0) != 0,
            wallSeconds: try r.attribute("wall_seconds").doubleValue ?? 0,
            threads: Int(try r.attribute("threads").intValue ?? 0),
            trainedBy: (try? historyReader.stringAttribute("code_version")) ?? "unknown",
            machine: (try? historyReader.stringAttribute("machine")) ?? "not recorded")
    }
    return out
}

/// The float nets the quantized cells start from, per (dataset, net): the final epoch of each pretrain's
/// history.h5 (test accuracy on the test set in eval mode, mean training loss of the last epoch), over seeds.
public struct FloatBaseline: Sendable {
    public var dataset: String, net: String
    public var accuracies: [Double], losses: [Double]
}

/// A run's best test accuracy over its epochs (the authors' group code's `best_prec1`); the final one when the
/// history is empty.
func bestEpochAccuracy(_ r: RunRecord) -> Double { r.history.testAccuracy.max() ?? r.eval["test_accuracy"]! }

/// The finished pretrains' histories by seed.
func collectPretrainHistories(_ config: ExperimentConfig, profile: String) throws -> [Int: History] {
    let root = config.resultsRoot(profile: profile)
    var out: [Int: History] = [:]
    for id in config.allRuns().pretrains {
        let path = "\(root)/\(id.folder)/history.h5"
        guard FileManager.default.fileExists(atPath: path) else { continue }
        let h = try History.read(from: try H5Reader(path: path))
        if h.count == (try config.runConfig(id, profile: profile)).totalEpochs { out[id.seed] = h }
    }
    return out
}

public func collectFloatBaselines(_ config: ExperimentConfig, profile: String) throws -> [FloatBaseline] {
    let root = config.resultsRoot(profile: profile)
    var out: [FloatBaseline] = []
    let pretrains = config.allRuns().pretrains
    for net in config.nets.keys.sorted() {
        var b = FloatBaseline(dataset: config.nets[net]!.dataset, net: net, accuracies: [], losses: [])
        for id in pretrains where id.net == net {
            let path = "\(root)/\(id.folder)/history.h5"
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let h = try History.read(from: try H5Reader(path: path))
            guard let acc = h.testAccuracy.last, let loss = h.trainLoss.last,
                h.epoch.count == (try config.runConfig(id, profile: profile)).totalEpochs else { continue }
            b.accuracies.append(acc)
            b.losses.append(loss)
        }
        if !b.accuracies.isEmpty { out.append(b) }
    }
    return out
}

/// Aggregates per cell over seeds. Diverged runs count as n but contribute no accuracy (reported apart).
public func aggregateCells(_ runs: [RunID: RunRecord], lossKind: String = "train_loss_last_epoch",
    accuracy: (RunRecord) -> Double = { $0.eval["test_accuracy"]! }) -> [CellKey: CellResult]
{
    var groups: [CellKey: [RunRecord]] = [:]
    for (id, r) in runs where id.kind == .train {
        groups[CellKey(dataset: r.config.dataset, net: id.net, bits: id.bits!, ste: id.ste!.rawValue), default: []].append(r)
    }
    var out: [CellKey: CellResult] = [:]
    for (key, records) in groups {
        let ok = records.filter { !$0.diverged }.sorted { $0.id.seed < $1.id.seed }
        out[key] = CellResult(key: key, accuracies: ok.map(accuracy),
            losses: ok.map { $0.eval[lossKind]! }, testTotal: Int(ok.first?.eval["test_total"] ?? 10000),
            diverged: records.count - ok.count)
    }
    return out
}

public struct ReportInputs {
    public var config: ExperimentConfig
    public var profile: String
    /// Markdown reports of the other experiments (results/theory/REPORT-theory.md, results/schoenbauer/*.md): linked
    /// from a section of their own, each with its title; missing files are skipped.
    public var sectionFiles: [String]
    public var cifarPresent: Bool
    /// Result files of the other papers' experiments (results/theory/*.h5, results/schoenbauer/*.h5) whose claims
    /// the summary tallies by outcome.
    public var claimFiles: [String]

    public init(config: ExperimentConfig, profile: String, sectionFiles: [String] = [], cifarPresent: Bool,
        claimFiles: [String] = [])
    {
        self.config = config
        self.profile = profile
        self.sectionFiles = sectionFiles
        self.cifarPresent = cifarPresent
        self.claimFiles = claimFiles
    }
}

/// Writes table1.csv, REPORT.md and the figures; returns the REPORT.md text.
@discardableResult
public func writeReport(_ inputs: ReportInputs) throws -> String {
    let config = inputs.config, profile = inputs.profile
    let root = config.resultsRoot(profile: profile)
    let runs = try collectRuns(config, profile: profile)
    // The paper is compared with the metric the config names (best-epoch or final-epoch); both are reported.
    let finalCells = aggregateCells(runs)
    let bestCells = aggregateCells(runs, accuracy: bestEpochAccuracy)
    let best = config.paperMetric == "best-epoch"
    let cells = best ? bestCells : finalCells
    let floats = try collectFloatBaselines(config, profile: profile)
    let reference = try config.reference.map(loadReference) ?? [:]
    try writeAtomically(([table1Header + table1MetricHeader] + cells.keys.sorted().map { k in
        table1Line(cells[k]!) + table1MetricColumns(config.paperMetric, final: finalCells[k]!, best: bestCells[k]!)
    }).joined(separator: "\n") + "\n", to: "\(root)/table1.csv")
    try writeAtomically(csvText(header: runsHeader, rows: runsRows(runs, root: root)), to: "\(root)/runs.csv")
    try writeAtomically(csvText(header: historiesHeader, rows: historiesRows(runs)), to: "\(root)/histories.csv")
    let rows = compare(ours: cells, reference: reference)
    let repel = repelOutcomes(runs, config: config)
    let claimsPath = config.claims ?? config.reference?.replacingOccurrences(of: "-table1.csv", with: "-claims.csv") ?? ""
    let claims = !claimsPath.isEmpty && FileManager.default.fileExists(atPath: claimsPath)
        ? try evaluateClaims(claimsPath, ours: cells, repel: repel, repelNetOverride: config.profiles[profile]?.repelNet) : []
    try makeDirectories("\(root)/figures")
    var figures = try writeFigures(runs, config: config, root: root, profile: profile, reference: reference,
        floats: floats, cells: cells)
    // A profile judged by criteria fixed before its runs: that section replaces the claims table.
    var criteriaMarkdown: String? = nil, criteriaTally: String? = nil
    if let criteriaPath = config.profiles[profile]?.criteria {
        let results = evaluateCriteria(try loadCriteria(criteriaPath), runs: runs,
            pretrains: try collectPretrainHistories(config, profile: profile))
        criteriaMarkdown = criteriaSection(path: criteriaPath, results: results, runs: runs)
        criteriaTally = outcomeTally(Dictionary(grouping: results.filter { $0.criterion.kind == "paper" }, by: \.criterion.claim)
            .values.map(claimOutcome), only: [.held, .notHeld, .inconclusive])
        figures += try repelControlFigures(results, runs: runs, root: root)
    }

    // A shrunken check profile (smoke): its verdicts say the pipeline ran, not whether the paper holds.
    let shrunken = config.profiles[profile].map { $0.about == nil && $0.ablation == nil } ?? false
    let shrunkenMark = shrunken ? " (not meaningful: shrunken profile)" : ""
    var md = "# Reproduction report — \(config.experiment)\n\n"
    md += "Generated by `ste report` from the run files under `\(root)/` (profile `\(profile)`); do not edit by hand. "
    md += "Report written by code version `\(codeVersion())`; the commit that trained each run is listed under "
    md += "\"Runs and their provenance\".\n\n"
    if let p = config.profiles[profile] {
        if let about = p.about {
            md += "> **Profile `\(profile)`**: \(about)\n\n"
        } else if let question = p.ablation {
            md += "> **Ablation profile `\(profile)`** (the project's, not the paper's): \(question)\n\n"
        } else {
            md += "> **Profile `\(profile)`**: a shrunken protocol (subsets, few epochs) that checks the pipeline, not the paper. "
            md += "Its numbers are not comparable with the paper's Table 1.\n\n"
        }
    }
    md += summarySection(rows: rows, claims: claims, runs: runs, cifarPresent: inputs.cifarPresent,
        otherClaims: try paperClaimTallies(resultFiles: inputs.claimFiles), criteriaTally: criteriaTally)
    if let referencePath = config.reference {
        md += "## Table 1 (Yin et al., ICLR 2019): test accuracy\n\n"
        md += "Paper: Table 1 of the final version (= the submission's, number for number; `\(referencePath)`). Ours: mean ± sample std over seeds (n) "
        md += best ? "of each run's **best test accuracy over its epochs** — the paper does not say which epoch it reports, and the "
            + "authors' group code logs the best (`paper_metric: best-epoch` in `\(config.file)`); the final epoch's accuracy, the honest "
            + "generalisation figure (selecting on the test set is the paper's practice, not a recommendation), is beside it. "
            : "of each run's final-epoch test accuracy. "
        md += "Verdict: *consistent* when the paper value lies within max(2·SE over seeds, 2·binomial SE of the test set) of our mean "
        md += "(`Sources/Report/Verdict.swift`), else *lower* / *higher*.\n\n"
    } else {
        let datasets = Set(config.nets.values.map(\.dataset)).sorted().joined(separator: ", ")
        md += "## Test accuracy\n\n"
        md += "The protocol of Yin et al. (ICLR 2019) transferred to \(datasets) (`\(config.file)`): the paper has no "
        md += "results on this data, so there is no paper column and no per-cell verdict. Ours: mean ± sample std over seeds (n).\n\n"
    }
    // Each seed's accuracy beside the mean (seed order), so a reader sees the spread without opening runs.csv.
    var perSeed: [CellKey: String] = [:]
    for (key, group) in Dictionary(grouping: runs.filter { $0.key.kind == .train && !$0.value.diverged }, by: { r in
        CellKey(dataset: r.value.config.dataset, net: r.key.net, bits: r.key.bits!, ste: r.key.ste!.rawValue)
    }) {
        perSeed[key] = group.sorted { $0.key.seed < $1.key.seed }
            .map { fmt(best ? bestEpochAccuracy($0.value) : $0.value.eval["test_accuracy"]!, 2) }.joined(separator: ", ")
    }
    let finalColumn: (CellKey) -> String = { k in finalCells[k].map(\.accuracyText) ?? "" }
    md += markdownTable(header: ["dataset", "net", "bits", "STE", "paper %", best ? "ours % (best epoch)" : "ours %", "n", "per seed", "diff",
        "tolerance", "verdict"] + (best ? ["final epoch %"] : []),
        rows: rows.map { r in
            guard let paper = r.paper else {
                let o = r.ours!
                return [r.key.dataset, r.key.net, "\(r.key.bits)", r.key.ste, "—",
                    o.accuracyText, "\(o.n)" + (o.diverged > 0 ? " (+\(o.diverged) diverged)" : ""), perSeed[r.key] ?? "",
                    "", "", "not in the paper"] + (best ? [finalColumn(r.key)] : [])
            }
            guard let o = r.ours else {
                let why = r.key.dataset == "cifar10" && !inputs.cifarPresent
                    ? "not run: CIFAR-10 absent"
                    : "not run (`make run RUN=\(r.key.net)-a\(r.key.bits)-\(r.key.ste)-s\(config.seeds.first ?? 0)`)"
                return [r.key.dataset, r.key.net, "\(r.key.bits)", r.key.ste, fmt(paper.accuracy, 2), why, "0", "", "", "", ""]
                    + (best ? [""] : [])
            }
            return [r.key.dataset, r.key.net, "\(r.key.bits)", r.key.ste, fmt(paper.accuracy, 2),
                o.accuracyText, "\(o.n)" + (o.diverged > 0 ? " (+\(o.diverged) diverged)" : ""), perSeed[r.key] ?? "",
                (o.accuracyMean >= paper.accuracy ? "+" : "") + fmt(o.accuracyMean - paper.accuracy, 2),
                "±" + fmt(o.accuracyTolerance, 2), r.accuracyVerdict!.rawValue + shrunkenMark] + (best ? [finalColumn(r.key)] : [])
        } + floats.map { b in
            let r = CellResult(key: CellKey(dataset: b.dataset, net: b.net, bits: 32, ste: "float"), accuracies: b.accuracies,
                losses: b.losses, testTotal: 0, diverged: 0)
            return [b.dataset, b.net, "float", "— (pretrained)", "—", best ? "" : r.accuracyText, "\(r.n)",
                b.accuracies.map { fmt($0, 2) }.joined(separator: ", "), "", "", "float baseline (final epoch)"]
                + (best ? [r.accuracyText] : [])
        }, align: ["l", "l", "r", "l", "r", "r", "r", "r", "r", "r", "l"] + (best ? ["r"] : []))
    if !inputs.cifarPresent && config.nets.values.contains(where: { $0.dataset == "cifar10" }) {
        md += "\nCIFAR-10 rows: not run because CIFAR-10 is absent. Place the official `cifar-10-binary.tar.gz` "
        md += "(MD5 c32a1d4ab5d03f1284b67883e8d87530) in `data/raw/` (or let `ste fetch cifar10` download it where a "
        md += "network is reachable), then run `make reproduce`; the CIFAR cells, Fig. 2 and Appendix C are then part of the plan.\n"
    }
    md += config.reference == nil ? "\n## Training loss\n\n" : "\n## Table 1: training loss (log scale)\n\n"
    md += "Ours: the mean mini-batch loss of the last epoch (train mode, no weight decay), mean ± std over seeds; the "
    md += "full-pass loss in eval mode is in each run's `eval.h5`."
    md += config.reference == nil ? "\n\n" : " Verdict: *consistent* within max(2·SE over seeds of "
        + "log10(loss), log10 2) — a factor of two (project's choice: the paper gives one run per cell).\n\n"
    md += markdownTable(header: ["dataset", "net", "bits", "STE", "paper", "ours", "ratio", "verdict"],
        rows: rows.compactMap { r in
            guard let o = r.ours else { return nil }
            guard let paper = r.paper else {
                return [r.key.dataset, r.key.net, "\(r.key.bits)", r.key.ste, "—", o.lossText,
                    "", "not in the paper"]
            }
            return [r.key.dataset, r.key.net, "\(r.key.bits)", r.key.ste, sci(paper.trainLoss),
                o.lossText, fmt(o.lossMean / paper.trainLoss, 2), r.lossVerdict!.rawValue + shrunkenMark]
        } + floats.map { b in
            let r = CellResult(key: CellKey(dataset: b.dataset, net: b.net, bits: 32, ste: "float"), accuracies: b.accuracies,
                losses: b.losses, testTotal: 0, diverged: 0)
            return [b.dataset, b.net, "float", "— (pretrained)", "—", r.lossText, "", "float baseline"]
        }, align: ["l", "l", "r", "l", "r", "r", "r", "l"])
    if let criteriaMarkdown {
        md += criteriaMarkdown
    } else {
        md += "\n## The paper's qualitative claims\n\n"
        md += markdownTable(header: ["claim", "verdict", "measured"], rows: claims.map {
            [$0.statement, $0.verdictText, $0.evidence]
        })
    }
    if profile == "paper" { md += try ablationSection(config, paperCells: cells, reference: reference) }
    if !figures.isEmpty {
        md += "\n## Figures\n\n"
        for (title, file) in figures { md += "![\(title)](\(file))\n\n" }
    }
    md += "\n## Protocol\n\n" + protocolSection(config)
    let choices = choiceMarks((try? String(contentsOfFile: config.file, encoding: .utf8)) ?? "")
    if !choices.isEmpty {
        md += "\n## Where the paper is silent: the project's choices\n\n"
        md += "Every value `\(config.file)` marks `# choice:`, with its reason (read from the file, so the list cannot go stale).\n\n"
        md += markdownTable(header: ["key", "value", "why"], rows: choices.map { [$0.key, $0.value, $0.reason] })
    }
    md += otherCriteriaSection(inputs.claimFiles)
    md += "\n## Runs and their provenance\n\n" + runsSection(runs, root: root)
    md += otherExperimentsSection(inputs.sectionFiles, root: root)
    try writeAtomically(md, to: "\(root)/REPORT.md")
    return md
}

/// The `# choice:` marks of a YAML config: each marked line's dotted key path (from the indentation of the keys
/// above it), its value and the reason after the mark. Lines inside a profile are included with their profile path.
func choiceMarks(_ text: String) -> [(key: String, value: String, reason: String)] {
    var stack: [(indent: Int, key: String)] = []
    var out: [(key: String, value: String, reason: String)] = []
    for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
        let line = String(raw)
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, !trimmed.hasPrefix("#"), let colon = trimmed.firstIndex(of: ":") else { continue }
        let indent = line.prefix { $0 == " " }.count
        var key = String(trimmed[..<colon]).trimmingCharacters(in: .whitespaces)
        if key.hasPrefix("- ") { key = String(key.dropFirst(2)) }
        while let last = stack.last, last.indent >= indent { stack.removeLast() }
        stack.append((indent, key))
        guard let mark = line.range(of: "# choice:") else { continue }
        let value = line[line.index(after: line.index(line.startIndex, offsetBy: indent + trimmed.distance(from: trimmed.startIndex, to: colon)))..<mark.lowerBound]
            .trimmingCharacters(in: .whitespaces)
        out.append((stack.map(\.key).joined(separator: "."), value,
            String(line[mark.upperBound...]).trimmingCharacters(in: .whitespaces)))
    }
    return out
}

/// The other experiments' reports as links with their titles (the summary tallies their claims; the evidence is in
/// the linked files, which keeps this report short enough to read).
func otherExperimentsSection(_ files: [String], root: String) -> String {
    let present = files.filter { FileManager.default.fileExists(atPath: $0) }
    guard !present.isEmpty else { return "" }
    var s = "\n## Theory and Schoenbauer experiments\n\n"
    s += "Each linked report gives the setting, every claim with its outcome and evidence, tables and figures.\n\n"
    for path in present {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        let title = text.split(separator: "\n").first { $0.hasPrefix("#") }
            .map { $0.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces) } ?? path
        s += "- [\(title)](\(relativePath(path, from: root))) (`\(URL(fileURLWithPath: path).lastPathComponent)`)\n"
    }
    return s
}

/// `path` relative to the folder `root` (both relative to the working directory).
func relativePath(_ path: String, from root: String) -> String {
    let p = path.split(separator: "/").map(String.init), r = root.split(separator: "/").map(String.init)
    var common = 0
    while common < min(p.count, r.count), p[common] == r[common] { common += 1 }
    return (Array(repeating: "..", count: r.count - common) + p[common...]).joined(separator: "/")
}

/// The report's opening tally: cells by verdict, claims by outcome, what was not run and why, where the
/// runs came from.
func summarySection(rows: [ComparisonRow], claims: [ClaimResult], runs: [RunID: RunRecord], cifarPresent: Bool,
    otherClaims: [String] = [], criteriaTally: String? = nil) -> String
{
    func tally(_ verdicts: [Verdict]) -> String {
        [Verdict.consistent, .lower, .higher].map { v in "\(verdicts.filter { $0 == v }.count) \(v.rawValue)" }
            .joined(separator: ", ")
    }
    let paperRows = rows.filter { $0.paper != nil }
    let run = paperRows.filter { $0.ours != nil }
    var s = "## Summary\n\n"
    if !paperRows.isEmpty {
        s += "- **The paper's cells run: \(run.count) of \(paperRows.count).** Test accuracy: \(tally(run.compactMap(\.accuracyVerdict))); "
        s += "training loss: \(tally(run.compactMap(\.lossVerdict))).\n"
    }
    let extra = rows.filter { $0.paper == nil }
    if !extra.isEmpty {
        s += "- **\(extra.count) cell\(extra.count == 1 ? "" : "s") the paper does not have** (\(Set(extra.map(\.key.dataset)).sorted().joined(separator: ", ")); "
        s += "STEs \(Set(extra.map(\.key.ste)).sorted().joined(separator: ", "))): ours only, no verdict.\n"
    }
    if let criteriaTally {
        s += "- **The paper's claims, by criteria fixed before the runs (each counted once): \(criteriaTally).**\n"
    } else {
        let run = claims.compactMap(\.outcome)
        s += "- **The paper's qualitative claims: \(outcomeTally(run, only: [.held, .notHeld, .inconclusive])), \(claims.count - run.count) not run.**\n"
    }
    if !otherClaims.isEmpty {
        s += "- **The other papers' claims**, each counted once by its deciding test (`\(claimKindsFile)` says what each "
            + "row of the result files is); controls, the project's predictions, extensions and checks apart (the reports "
            + "linked under \"Theory and Schoenbauer experiments\" give each row's evidence and reason):\n"
        s += otherClaims.map { "  " + $0 }.joined(separator: "\n") + "\n"
    }
    let notRun = rows.filter { $0.ours == nil }
    if !notRun.isEmpty {
        let cifar = notRun.filter { $0.key.dataset == "cifar10" }.count
        s += "- Not run: \(notRun.count) cells" + (cifar > 0 && !cifarPresent
            ? " (\(cifar) need CIFAR-10, which is absent: see the note under the table), with the claims that depend on them.\n"
            : ".\n")
    }
    let commits = Set(runs.values.map(\.trainedBy))
    s += "- \(runs.count) runs, trained by \(commits.count == 1 ? "one code version" : "**\(commits.count) code versions**") "
        + "(\"Runs and their provenance\").\n\n"
    return s
}

/// The ablation profiles' cells next to the paper protocol's, read from each profile's table1.csv (written by
/// its own `ste report` from its run files), so the comparison is regenerated with every report.
func ablationSection(_ config: ExperimentConfig, paperCells: [CellKey: CellResult],
    reference: [CellKey: ReferenceCell]) throws -> String
{
    let ablations = config.profiles.filter { $0.value.ablation != nil }.sorted { $0.key < $1.key }
    guard !ablations.isEmpty else { return "" }
    var s = "\n## Ablations (the project's, under the paper protocol)\n\n"
    s += "Each ablation is the paper protocol with one change; `make reproduce PROFILE=<name>` runs it. Verdicts as in Table 1.\n\n"
    for (name, profile) in ablations {
        let table = "\(config.resultsRoot(profile: name))/table1.csv"
        s += "### `\(name)`\n\n\(profile.ablation!)\n\n"
        guard FileManager.default.fileExists(atPath: table) else {
            s += "Not run (no `\(table)`): `make reproduce PROFILE=\(name)`.\n\n"
            continue
        }
        let cells = try loadTable1(table)
        s += markdownTable(header: ["net", "bits", "STE", "paper %", "paper protocol %", "n", "verdict", "ablation %", "n", "verdict",
            "ablation loss", "loss verdict"], rows: cells.keys.sorted().compactMap { key in
            guard let paper = reference[key], let a = cells[key], a.n > 0 else { return nil }
            let base = paperCells[key]
            return [key.net, "\(key.bits)", key.ste, fmt(paper.accuracy, 2),
                base.map { "\(fmt($0.accuracyMean, 2))" + ($0.n > 1 ? " ± \(fmt($0.accuracyStd, 2))" : "") } ?? "not run",
                base.map { "\($0.n)" } ?? "", base.map { accuracyVerdict($0, paper: paper.accuracy).rawValue } ?? "",
                fmt(a.accuracyMean, 2) + (a.n > 1 ? " ± \(fmt(a.accuracyStd, 2))" : ""), "\(a.n)",
                accuracyVerdict(a, paper: paper.accuracy).rawValue, sci(a.lossMean), lossVerdict(a, paper: paper.trainLoss).rawValue]
        }, align: ["l", "r", "l", "r", "r", "r", "l", "r", "r", "l", "r", "l"])
        s += "\n"
    }
    return s
}

/// A multistep schedule scaled to so few epochs that its milestones coincide or fall on epoch 1 (20 → 2 epochs: "×0.1
/// at epochs 1, 1"): not the schedule it was scaled from, said where the protocol is printed.
func milestonesCollapsed(_ p: PhaseSpec) -> Bool {
    let m = p.schedule.milestoneEpochs(ofPhaseWith: p.epochs)
    return Set(m).count < m.count || m.contains { $0 <= 1 }
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
                + (p.schedule.kind == "multistep" ? " ×\(p.schedule.gamma) at epochs \(p.schedule.milestoneEpochs(ofPhaseWith: p.epochs).map(String.init).joined(separator: ", "))" : "")
                + (p.schedule.kind == "multistep" && milestonesCollapsed(p) ? " (**⚠ milestones collapsed**: scaled to so few epochs that two decays fall on one epoch, or one on the first)" : "")
        }
        s += "- \(name) on \(n.dataset): augmentation \(n.augment ? "random crop 32 (pad 4) + horizontal flip" : "none"); "
        s += "normalisation mean \(n.mean), std \(n.std).\n  - float pretraining: \(phase(n.pretrain)).\n  - quantized training (init from the pretrained net): \(phase(n.train)).\n"
    }
    for f in config.repel {
        s += "- \(f.title): \(f.net) \(f.bits)-bit, \(f.ste.rawValue) STE started from the \(f.from.map(\.rawValue).joined(separator: " / ")) "
        s += "minima; lr \(f.warmupLR) for \(f.warmupEpochs) epochs" + (f.thenNormalSchedule ? ", then the normal schedule (the net's quantized phase).\n" : ".\n")
    }
    return s
}

func runsSection(_ runs: [RunID: RunRecord], root: String) -> String {
    var s = ""
    // Per-run provenance: which commit trained each run, on which machine. Mixed commits are flagged: their
    // numbers can differ in the last digits (summation order), and the report is then not one reproduction.
    let commits = Dictionary(grouping: runs.values, by: \.trainedBy)
    let machines = Dictionary(grouping: runs.values, by: \.machine)
    if commits.count > 1 {
        s += "> **Warning: these \(runs.count) runs were trained by \(commits.count) different code versions** ("
        s += commits.keys.sorted().map { "`\(shortVersion($0))`: \(commits[$0]!.count) runs" }.joined(separator: ", ") + ").\n\n"
    } else if let only = commits.keys.first {
        s += "All \(runs.count) runs were trained by code version `\(only)`.\n"
    }
    s += "Machine\(machines.count == 1 ? "" : "s"): " + machines.keys.sorted().map { "\($0) (\(machines[$0]!.count) runs)" }.joined(separator: "; ") + ".\n"
    if let timing = try? String(contentsOfFile: "\(root)/reproduce-timing.txt", encoding: .utf8) {
        s += timing.trimmingCharacters(in: .whitespacesAndNewlines) + "\n"
    }
    let total = runs.values.reduce(0) { $0 + $1.wallSeconds }
    s += String(format: "Sum of the runs' wall times (training + per-epoch test passes, runs overlap under make -j): %.1f min.\n\n", total / 60)
    let ids = runs.keys.sorted { "\($0)" < "\($1)" }
    s += markdownTable(header: ["run", "trained by", "epochs", "threads", "wall time", "img/s (last epoch)", "test %", "train loss", "state"],
        rows: ids.map { id in
            let r = runs[id]!
            return ["\(id)", "`\(shortVersion(r.trainedBy))`", "\(r.history.count)", "\(r.threads)", String(format: "%.1f s", r.wallSeconds),
                String(format: "%.0f", r.history.imagesPerSecond.last ?? 0), fmt(r.eval["test_accuracy"] ?? .nan, 2),
                sci(r.eval["train_loss_last_epoch"] ?? .nan), r.diverged ? "diverged" : "done"]
        }, align: ["l", "l", "r", "r", "r", "r", "r", "r", "l"])
    // A run resumed with --resume-anyway across a change of threads, device or code is not one setting's run.
    let mixed = ids.filter { runs[$0]!.history.segments.count > 1 }
    if !mixed.isEmpty {
        s += "\n**Runs trained in several settings** (resumed with `--resume-anyway`; their numbers are no single setting's):\n\n"
        for id in mixed { s += "- `\(id)`: " + runs[id]!.history.segments.map(\.description).joined(separator: "; ") + "\n" }
    }
    return s
}

/// A commit hash shortened to 10 characters, keeping a "-dirty" mark.
func shortVersion(_ v: String) -> String {
    guard v.count >= 40 else { return v }
    return String(v.prefix(10)) + (v.hasSuffix("-dirty") ? "-dirty" : "")
}

/// One figure per net: panels per bit width of test accuracy and training loss per epoch, one line per STE
/// (mean over seeds); plus one per repel experiment (Fig. 2, Appendix C) whose runs exist. Returns (title, relative path) pairs.
func writeFigures(_ runs: [RunID: RunRecord], config: ExperimentConfig, root: String, profile: String,
    reference: [CellKey: ReferenceCell], floats: [FloatBaseline], cells: [CellKey: CellResult]) throws -> [(String, String)]
{
    var out: [(String, String)] = []
    let trained = runs.filter { $0.key.kind == .train }
    let nets = Set(trained.keys.map(\.net)).sorted { netOrder($0) < netOrder($1) }
    // Every STE that was run, the paper's three first: a new STE appears without further edits.
    let stes = Set(trained.keys.compactMap { $0.ste?.rawValue }).sorted { (steOrder($0), $0) < (steOrder($1), $1) }
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
    // Ours against the paper, every cell: the difference in test accuracy with its tolerance (a cell is consistent
    // when the bar crosses 0).
    let compared = cells.filter { reference[$0.key] != nil && $0.value.n > 0 }.sorted { $0.key < $1.key }
    if !compared.isEmpty {
        var series: [Series] = []
        for (i, ste) in stes.enumerated() {
            let color = Figure.palette[i % Figure.palette.count]
            let mine = compared.filter { $0.key.ste == ste }
            guard !mine.isEmpty else { continue }
            var xs: [Double] = [], ys: [Double] = []
            for (key, r) in mine {
                // Nudged sideways by STE so cells with the same paper value stay apart.
                let x = reference[key]!.accuracy + 0.01 * (Double(i) - 1), d = r.accuracyMean - reference[key]!.accuracy
                series.append(Series("", x: [x, x], y: [d - r.accuracyTolerance, d + r.accuracyTolerance], color: color, lineWidth: 1.2))
                xs += [x, .nan]
                ys += [d, .nan]
            }
            series.append(Series("\(ste) STE", x: xs, y: ys, color: color, markers: true))
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
    // One figure per repel experiment: each run's curves against the minimum it starts from (reference lines:
    // the test accuracy and training loss measured at the start, before the first step).
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
                accRefs.append(ReferenceLine(y: startAcc, label: "start: \(id.from!.rawValue) s\(id.seed)"))
                lossRefs.append(ReferenceLine(y: max(startLoss, 1e-6), label: "start: \(id.from!.rawValue) s\(id.seed)"))
            }
        }
        let figure = Figure(title: "\(spec.title): \(spec.ste.rawValue) STE started at other STEs' minima (\(spec.net), \(spec.bits)-bit; lr \(spec.warmupLR) for \(spec.warmupEpochs) epochs)", panels: [
            Panel(title: "test accuracy", xLabel: "epoch", yLabel: "test accuracy (%)", series: acc, references: accRefs),
            Panel(title: "training loss", xLabel: "epoch", yLabel: "training loss (cross-entropy)", series: loss, logY: true,
                references: lossRefs),
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

/// Records how long the `make reproduce` that writes this report took so far (from its start to this report,
/// the build excluded), as one sentence that later `make report` runs show unchanged.
/// `alsoRan`: what the same `make reproduce` ran besides the runs of this report (the theory and Schoenbauer
/// experiments of the main job), named in the sentence; nil when nothing else.
public func recordReproduceTiming(root: String, started: Double, alsoRan: String? = nil) throws {
    let elapsed = Date().timeIntervalSince1970 - started
    let iso = ISO8601DateFormatter()
    let sentence = String(format: "`make reproduce` of code version `%@` started %@ and wrote this report %d min %02d s later "
        + "(the build before it not counted%@).", codeVersion(), 
        iso.string(from: Date(timeIntervalSince1970: started)), Int(elapsed) / 60, Int(elapsed) % 60,
        alsoRan.map { "; \($0) included" } ?? "")
    try writeAtomically(sentence + "\n", to: "\(root)/reproduce-timing.txt")
}
