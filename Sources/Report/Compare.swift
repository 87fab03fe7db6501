// Side-by-side comparison of this project's Table 1 with the paper's, and the paper's qualitative
// claims checked on our numbers. Shared by `ste report` (Markdown) and `ste diff` (terminal).
import Experiments
import Foundation
import Harness
import Storage

public struct ComparisonRow: Sendable {
    public var key: CellKey
    /// nil for a cell the paper does not have (a new STE, another data set): ours only, no verdict.
    public var paper: ReferenceCell?
    public var ours: CellResult?
    public var accuracyVerdict: Verdict?
    public var lossVerdict: Verdict?
}

/// Every cell of the paper (run or not) and every cell we ran that the paper does not have, in key order.
public func compare(ours: [CellKey: CellResult], reference: [CellKey: ReferenceCell]) -> [ComparisonRow] {
    Set(reference.keys).union(ours.filter { $0.value.n > 0 }.keys).sorted().map { key in
        guard let paper = reference[key] else { return ComparisonRow(key: key, paper: nil, ours: ours[key]) }
        guard let r = ours[key], r.n > 0 else { return ComparisonRow(key: key, paper: paper, ours: nil) }
        return ComparisonRow(key: key, paper: paper, ours: r, accuracyVerdict: accuracyVerdict(r, paper: paper.accuracy),
            lossVerdict: lossVerdict(r, paper: paper.trainLoss))
    }
}

/// One qualitative claim of the paper and whether it held on our numbers.
public struct ClaimResult: Sendable {
    public var id: String
    public var statement: String
    /// nil when the cells it needs were not run. Held needs the point estimates the claimed way; a reversal within
    /// the tolerance is inconclusive, not held.
    public var outcome: ClaimOutcome?
    public var evidence: String

    public init(id: String, statement: String, outcome: ClaimOutcome?, evidence: String) {
        (self.id, self.statement, self.outcome, self.evidence) = (id, statement, outcome, evidence)
    }

    public init(id: String, statement: String, held: Bool?, evidence: String) {
        self.init(id: id, statement: statement, outcome: held.map { $0 ? .held : .notHeld }, evidence: evidence)
    }

    /// true: held; false: not held or inconclusive; nil: not run.
    public var held: Bool? { outcome.map { $0 == .held } }

    public var verdictText: String { outcome.map { "**\($0.rawValue)**" } ?? "not run" }
}

/// A repel experiment's identity: started at the `from` STE's minimum of (net, bits), continued with `ste`.
public struct RepelKey: Hashable, Sendable {
    public var net: String
    public var bits: Int
    public var from: String
    public var ste: String
}

/// A repel experiment's runs, per seed and averaged.
public struct RepelOutcome: Sendable {
    public struct Seed: Sendable {
        public var seed: Int
        public var startLoss: Double, startAccuracy: Double
        public var lowLRLoss: Double, lowLRAccuracy: Double
        public var endLoss: Double, endAccuracy: Double
        public var lowLREpochs: Int, epochs: Int
    }
    public var seeds: [Seed]
    func mean(_ f: (Seed) -> Double) -> Double { seeds.map(f).reduce(0, +) / Double(seeds.count) }
}

/// Evaluates the claims file (order / much-lower / repelled) on our aggregated results.
/// `repelNetOverride`: a profile that runs the repel experiments on another net (smoke: LeNet-5) scores the
/// repel claims on that net, and says so.
public func evaluateClaims(_ path: String, ours: [CellKey: CellResult], repel: [RepelKey: RepelOutcome],
    repelNetOverride: String? = nil) throws -> [ClaimResult]
{
    var out: [ClaimResult] = []
    for (line, row) in try readCSV(path) {
        guard let id = row["id"], let kind = row["kind"], let net = row["net"], let bits = Int(row["bits"] ?? ""),
            let stes = row["stes"]
        else { throw ConfigError(file: path, key: "line \(line)", message: "expected id,kind,net,bits,stes,margin,at,source") }
        let source = row["source"] ?? ""
        func cell(_ ste: String) -> CellResult? {
            ours.first { $0.key.net == net && $0.key.bits == bits && $0.key.ste == ste && $0.value.n > 0 }?.value
        }
        switch kind {
        case "order":
            let names = stes.components(separatedBy: ">=")
            let cells = names.map(cell)
            guard cells.allSatisfy({ $0 != nil }) else {
                out.append(ClaimResult(id: id, statement: "\(net) \(bits)-bit: accuracy \(stes.replacingOccurrences(of: ">=", with: " ≥ "))", held: nil,
                    evidence: "not run")); continue
            }
            // Held: every pair in the claimed order (point estimates). Not held: a pair reversed beyond the tolerance.
            // Otherwise (reversed within the tolerance): inconclusive.
            var outcome = ClaimOutcome.held
            var parts: [String] = []
            for i in 0..<(names.count - 1) {
                let a = cells[i]!, b = cells[i + 1]!
                let tol = (a.accuracyTolerance * a.accuracyTolerance + b.accuracyTolerance * b.accuracyTolerance).squareRoot()
                if a.accuracyMean + tol < b.accuracyMean { outcome = .notHeld }
                else if a.accuracyMean < b.accuracyMean && outcome == .held { outcome = .inconclusive }
                parts.append("\(names[i]) \(fmt(a.accuracyMean, 2)) vs \(names[i + 1]) \(fmt(b.accuracyMean, 2)) (tol \(fmt(tol, 2)))")
            }
            out.append(ClaimResult(id: id, statement: "\(net) \(bits)-bit: accuracy \(stes.replacingOccurrences(of: ">=", with: " ≥ ")) — \(source)",
                outcome: outcome, evidence: parts.joined(separator: "; ")
                    + (outcome == .inconclusive ? " — reversed within the tolerance: inconclusive" : "")))
        case "much-lower":
            let names = stes.components(separatedBy: "<")
            let margin = Double(row["margin"] ?? "") ?? 0
            guard names.count == 2, let a = cell(names[0]), let b = cell(names[1]) else {
                out.append(ClaimResult(id: id, statement: "\(net) \(bits)-bit: \(stes) by ≥ \(row["margin"] ?? "?") pp", held: nil, evidence: "not run")); continue
            }
            // Held: the gap's point estimate meets the margin; not held: it misses it by more than the tolerance.
            let gap = b.accuracyMean - a.accuracyMean
            let tol = (a.accuracyTolerance * a.accuracyTolerance + b.accuracyTolerance * b.accuracyTolerance).squareRoot()
            let outcome: ClaimOutcome = gap >= margin ? .held : gap + tol < margin ? .notHeld : .inconclusive
            out.append(ClaimResult(id: id, statement: "\(net) \(bits)-bit: \(names[0]) accuracy ≪ \(names[1]) (by ≥ \(fmt(margin, 0)) pp) — \(source)",
                outcome: outcome,
                evidence: "\(names[0]) \(fmt(a.accuracyMean, 2)) vs \(names[1]) \(fmt(b.accuracyMean, 2)) (gap \(fmt(gap, 2)), tol \(fmt(tol, 2)))"))
        case "repelled":
            // stes = "<from>-><ste>"; at = low-lr (the end of the low-LR phase) or end (the end of the run).
            let pair = stes.components(separatedBy: "->")
            let at = row["at"] ?? "end"
            guard pair.count == 2, ["low-lr", "end"].contains(at) else {
                throw ConfigError(file: path, key: "line \(line)", message: "a repelled claim needs stes '<from>-><ste>' and at 'low-lr' or 'end'")
            }
            let onNet = repelNetOverride ?? net
            let phase = at == "low-lr" ? "after the low-LR phase" : "at the end of the run"
            let statement = "\(pair[1]) STE started at the \(pair[0])-STE minimum (\(onNet), \(bits)-bit): training loss up and "
                + "test accuracy down \(phase)\(onNet != net ? " (the paper's claim is on \(net))" : "") — \(source)"
            guard let r = repel[RepelKey(net: onNet, bits: bits, from: pair[0], ste: pair[1])], !r.seeds.isEmpty else {
                out.append(ClaimResult(id: id, statement: statement, held: nil, evidence: "not run")); continue
            }
            let loss: (RepelOutcome.Seed) -> Double = at == "low-lr" ? { $0.lowLRLoss } : { $0.endLoss }
            let acc: (RepelOutcome.Seed) -> Double = at == "low-lr" ? { $0.lowLRAccuracy } : { $0.endAccuracy }
            let startLoss = r.mean(\.startLoss), startAcc = r.mean(\.startAccuracy)
            let endLoss = r.mean(loss), endAcc = r.mean(acc)
            let bothPerSeed = r.seeds.filter { loss($0) > $0.startLoss && acc($0) < $0.startAccuracy }.count
            let epoch = at == "low-lr" ? "epoch \(r.seeds[0].lowLREpochs)" : "epoch \(r.seeds[0].epochs)"
            out.append(ClaimResult(id: id, statement: statement, held: endLoss > startLoss && endAcc < startAcc,
                evidence: "mean of \(r.seeds.count) seed\(r.seeds.count == 1 ? "" : "s"), start → \(epoch): training loss \(sci(startLoss)) → \(sci(endLoss)), "
                    + "test accuracy \(fmt(startAcc, 2)) → \(fmt(endAcc, 2)) %; both moved the claimed way in \(bothPerSeed) of \(r.seeds.count)"))
        default:
            throw ConfigError(file: path, key: "line \(line)", message: "unknown claim kind '\(kind)'")
        }
    }
    return out
}

extension CellResult {
    /// "mean ± std" over seeds, or the one value of a single-seed cell (its std is not defined).
    var accuracyText: String { n > 1 ? "\(fmt(accuracyMean, 2)) ± \(fmt(accuracyStd, 2))" : fmt(accuracyMean, 2) }
    var lossText: String { n > 1 ? "\(sci(lossMean)) ± \(sci(lossStd))" : sci(lossMean) }
}

/// The terminal table of `ste diff`.
public func formatDiff(_ rows: [ComparisonRow]) -> String {
    func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - text.count))
        return right ? fill + text : text + fill
    }
    let header = [pad("dataset", 8), pad("net", 9), pad("bits", 4, right: true), pad("ste", 9), "|",
        pad("paper", 6, right: true), pad("ours (acc %, n)", 22), pad("diff", 6, right: true), pad("verdict", 10), "|",
        pad("paper", 8, right: true), pad("ours (train loss)", 22), "verdict"]
    var s = header.joined(separator: " ") + "\n" + String(repeating: "-", count: 130) + "\n"
    for r in rows {
        let k = r.key
        var cols = [pad(k.dataset, 8), pad(k.net, 9), pad("\(k.bits)", 4, right: true), pad(k.ste, 9), "|"]
        guard let paper = r.paper else {
            let o = r.ours!
            cols += [pad("—", 6, right: true), pad("\(o.accuracyText) (\(o.n))", 22),
                pad("", 6), pad("not in the paper", 10), "|", pad("—", 8, right: true),
                pad(o.lossText, 22), "not in the paper"]
            s += cols.joined(separator: " ") + "\n"
            continue
        }
        cols.append(pad(fmt(paper.accuracy, 2), 6, right: true))
        if let o = r.ours {
            let d = o.accuracyMean - paper.accuracy
            cols += [pad("\(o.accuracyText) (\(o.n))", 22),
                pad((d >= 0 ? "+" : "") + fmt(d, 2), 6, right: true), pad(r.accuracyVerdict!.rawValue, 10), "|",
                pad(sci(paper.trainLoss), 8, right: true), pad(o.lossText, 22),
                r.lossVerdict!.rawValue]
        } else {
            cols += [pad("not run", 22), pad("", 6), pad("", 10), "|", pad(sci(paper.trainLoss), 8, right: true),
                pad("not run", 22), ""]
        }
        s += cols.joined(separator: " ") + "\n"
    }
    return s
}

// MARK: - Two of our tables

/// One cell of two of our Table 1 files (run vs rerun, main vs ablation, two commits): B against A.
public struct TableDiffRow: Codable, Sendable {
    public var dataset: String, net: String, bits: Int, ste: String
    public var nA: Int?, nB: Int?
    public var accuracyA: Double?, accuracyB: Double?
    /// B − A in percentage points, and the tolerance: √(tol_A² + tol_B²), each max(2·SE over seeds, 2·binomial SE).
    public var difference: Double?, tolerance: Double?
    public var lossA: Double?, lossB: Double?
    /// "consistent", "lower" / "higher" (B against A), "only in A", "only in B".
    public var verdict: String
}

/// Every cell of either table, in key order.
public func compareTables(_ a: [CellKey: CellResult], _ b: [CellKey: CellResult]) -> [TableDiffRow] {
    Set(a.filter { $0.value.n > 0 }.keys).union(b.filter { $0.value.n > 0 }.keys).sorted().map { key in
        let (x, y) = (a[key].flatMap { $0.n > 0 ? $0 : nil }, b[key].flatMap { $0.n > 0 ? $0 : nil })
        var row = TableDiffRow(dataset: key.dataset, net: key.net, bits: key.bits, ste: key.ste, nA: x?.n, nB: y?.n,
            accuracyA: x?.accuracyMean, accuracyB: y?.accuracyMean, difference: nil, tolerance: nil,
            lossA: x?.lossMean, lossB: y?.lossMean, verdict: x == nil ? "only in B" : "only in A")
        if let x, let y {
            let d = y.accuracyMean - x.accuracyMean
            let tol = (x.accuracyTolerance * x.accuracyTolerance + y.accuracyTolerance * y.accuracyTolerance).squareRoot()
            row.difference = d
            row.tolerance = tol
            row.verdict = abs(d) <= tol ? "consistent" : d < 0 ? "lower" : "higher"
        }
        return row
    }
}

/// The terminal table of `ste diff A B` for two of our tables.
public func formatTableDiff(_ rows: [TableDiffRow], a: String, b: String) -> String {
    func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - text.count))
        return right ? fill + text : text + fill
    }
    func acc(_ v: Double?, _ n: Int?) -> String { v.map { "\(fmt($0, 2)) (\(n!))" } ?? "—" }
    var s = "A = \(a)\nB = \(b)\n"
    s += [pad("dataset", 13), pad("net", 9), pad("bits", 4, right: true), pad("ste", 10), "|", pad("A acc % (n)", 13, right: true),
        pad("B acc % (n)", 13, right: true), pad("B − A", 7, right: true), pad("tol", 6, right: true), pad("verdict", 11), "|",
        pad("A loss", 10, right: true), pad("B loss", 10, right: true)].joined(separator: " ") + "\n"
    s += String(repeating: "-", count: 122) + "\n"
    for r in rows {
        s += [pad(r.dataset, 13), pad(r.net, 9), pad("\(r.bits)", 4, right: true), pad(r.ste, 10), "|",
            pad(acc(r.accuracyA, r.nA), 13, right: true), pad(acc(r.accuracyB, r.nB), 13, right: true),
            pad(r.difference.map { ($0 >= 0 ? "+" : "") + fmt($0, 2) } ?? "", 7, right: true),
            pad(r.tolerance.map { fmt($0, 2) } ?? "", 6, right: true), pad(r.verdict, 11), "|",
            pad(r.lossA.map(sci) ?? "—", 10, right: true), pad(r.lossB.map(sci) ?? "—", 10, right: true)]
            .joined(separator: " ") + "\n"
    }
    return s
}

/// Whether a CSV file is one of our Table 1 files (written by `ste report`) rather than a paper's reference table.
public func isOurTable1(_ path: String) -> Bool {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return false }
    return text.split(separator: "\n").first { !$0.hasPrefix("#") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        .map { String($0).trimmingCharacters(in: .whitespaces).hasPrefix(table1Header) } ?? false
}

// MARK: - What differs between two results folders' settings

/// The settings of the runs.csv beside a table1.csv that differ between two folders ("key: A's values | B's values"),
/// from the columns that describe a run's configuration; empty when both agree (or a runs.csv is missing).
public func settingDifferences(tableA: String, tableB: String) -> [String] {
    let keys = ["profile", "experiment", "epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "schedule",
        "phases", "alpha", "rounding", "train_subset", "train_subset_balanced", "test_subset", "augment", "pad_to", "threads",
        "trained_by"]
    func values(_ table: String) -> [String: Set<String>]? {
        let runs = URL(fileURLWithPath: table).deletingLastPathComponent().appendingPathComponent("runs.csv").path
        guard let rows = try? readCSV(runs), !rows.isEmpty else { return nil }
        var out: [String: Set<String>] = [:]
        for (_, row) in rows where row["kind"] == "train" {
            for k in keys { if let v = row[k] { out[k, default: []].insert(v) } }
        }
        return out
    }
    guard let a = values(tableA), let b = values(tableB) else { return [] }
    return keys.compactMap { k in
        let va = a[k] ?? [], vb = b[k] ?? []
        guard va != vb else { return nil }
        func show(_ s: Set<String>) -> String { s.isEmpty ? "—" : s.sorted().joined(separator: " / ") }
        return "\(k): \(show(va)) | \(show(vb))"
    }
}
