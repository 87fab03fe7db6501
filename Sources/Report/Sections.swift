// The report's Markdown sections besides the tables: the summary, the ablations, the protocol, the project's choices,
// the runs and their provenance, the other experiments' reports.
import Datasets
import Experiments
import Foundation
import Harness
import NN
import Storage
import Training

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
func summarySection(rows: [ComparisonRow], claims: [ClaimResult], runs: [RunID: RunRecord], absentDatasets: Set<String>,
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
        let absent = notRun.filter { absentDatasets.contains($0.key.dataset) }
        let names = Set(absent.map(\.key.dataset)).sorted().map { datasetDescriptor($0)?.title ?? $0 }.joined(separator: ", ")
        s += "- Not run: \(notRun.count) cells" + (!absent.isEmpty
            ? " (\(absent.count) need \(names), which is absent: see the note under the table), with the claims that depend on them.\n"
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
    // One epoch's test accuracy is a noisy draw (points, for a 4-bit ResNet-20: docs/resnet20-4bit-parity.md): the
    // best epoch and the last five epochs' mean ± sample sd stand beside the final one.
    s += "Test accuracy: *final* is the evaluation after the last epoch; *best* the highest over the epochs (with its "
    s += "epoch); *last 5* the mean ± sample sd of the last five epochs' test accuracies.\n\n"
    s += markdownTable(header: ["run", "trained by", "epochs", "threads", "wall time", "img/s (last epoch)", "test % final",
        "best (epoch)", "last 5", "train loss", "state"],
        rows: ids.map { id in
            let r = runs[id]!
            let e = EpochSummary(r.history)
            let best = e.map { fmt($0.best, 2) + " (\($0.bestEpoch))" } ?? ""
            let last5 = e.map { fmt($0.lastFiveMean, 2) + " ± " + fmt($0.lastFiveSD, 2) } ?? ""
            return ["\(id)", "`\(shortVersion(r.trainedBy))`", "\(r.history.count)", "\(r.threads)", String(format: "%.1f s", r.wallSeconds),
                String(format: "%.0f", r.history.imagesPerSecond.last ?? 0), fmt(r.eval["test_accuracy"] ?? .nan, 2),
                best, last5, sci(r.eval["train_loss_last_epoch"] ?? .nan), r.diverged ? "diverged" : "done"]
        }, align: ["l", "l", "r", "r", "r", "r", "r", "r", "r", "r", "l"])
    // A run resumed with --resume-anyway across a change of threads, device or code is not one setting's run.
    let mixed = ids.filter { runs[$0]!.history.segments.count > 1 }
    if !mixed.isEmpty {
        s += "\n**Runs trained in several settings** (resumed with `--resume-anyway`; their numbers are no single setting's):\n\n"
        for id in mixed { s += "- `\(id)`: " + runs[id]!.history.segments.map(\.description).joined(separator: "; ") + "\n" }
    }
    return s
}

/// A commit hash shortened to 10 characters, keeping a "-dirty" mark and its diff digest ("-dirty" alone in files
/// written before the digest was recorded).
func shortVersion(_ v: String) -> String {
    guard v.count >= 40 else { return v }
    return String(v.prefix(10)) + (v.range(of: "-dirty").map { String(v[$0.lowerBound...]) } ?? "")
}
