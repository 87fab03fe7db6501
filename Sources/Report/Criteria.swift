// Claims judged by criteria fixed before the runs (experiments/reference/yin2019-criteria.csv, whose header
// defines every quantity and test): per-seed values of the runs, paired by seed, the difference's mean and SE over
// seeds, the outcome (held, not held, inconclusive), the commit that last changed each criterion and whether it
// is in the code that trained every run it judges. The report section and the repel-against-control figures.
import Datasets
import Experiments
import Foundation
import Harness
import Kernels
import Storage
import Training

public struct Criterion: Sendable {
    public var id: String
    /// The claim this row belongs to; a claim is held when all its rows are.
    public var claim: String
    /// `paper` (a claim of the paper) or `check` (a condition of the protocol, not a claim).
    public var kind: String
    public var test: String
    public var net: String
    public var bits: Int?
    public var a: String
    public var b: String
    public var quantity: String
    public var margin: Double
    public var minSeeds: Int
    public var source: String
    /// Line of the row in the file (for its commit).
    public var line: Int
}

public func loadCriteria(_ path: String) throws -> [Criterion] {
    let tests = ["error-ratio", "repelled", "plateau"]
    let quantities = ["test_error_last5", "train_loss_phase_end", "test_error_phase_end", "train_loss_last10"]
    return try readCSV(path).map { line, row in
        func field(_ k: String) throws -> String {
            guard let v = row[k] else { throw ConfigError(file: path, key: "line \(line)", message: "no column '\(k)'") }
            return v
        }
        let test = try field("test"), quantity = try field("quantity")
        guard tests.contains(test) else {
            throw ConfigError(file: path, key: "line \(line)", message: "unknown test '\(test)' (known: \(tests.joined(separator: ", ")))")
        }
        guard quantities.contains(quantity) else {
            throw ConfigError(file: path, key: "line \(line)", message: "unknown quantity '\(quantity)' (known: \(quantities.joined(separator: ", ")))")
        }
        guard let margin = Double(try field("margin")), let minSeeds = Int(try field("min_seeds")), minSeeds >= 1 else {
            throw ConfigError(file: path, key: "line \(line)", message: "margin must be a number and min_seeds a positive integer")
        }
        let kind = try field("kind")
        guard ["paper", "check"].contains(kind) else {
            throw ConfigError(file: path, key: "line \(line)", message: "kind is 'paper' or 'check', found '\(kind)'")
        }
        return Criterion(id: try field("id"), claim: try field("claim"), kind: kind, test: test, net: try field("net"),
            bits: Int(try field("bits")), a: try field("a"), b: try field("b"), quantity: quantity, margin: margin,
            minSeeds: minSeeds, source: try field("source"), line: line)
    }
}

/// One criterion on the runs: the per-seed values, the paired differences and the outcome.
public struct CriterionResult: Sendable {
    public var criterion: Criterion
    public var seeds: [Int]
    public var aValues: [Double]
    public var bValues: [Double]
    public var differences: [Double]
    public var outcome: ClaimOutcome
    public var reason: String
    /// Repelled rows: per seed, the first epoch from which the 5-epoch mean of the loss difference stays above the
    /// margin to the end of the phase (nil: it never does).
    public var riseEpochs: [Int?] = []

    public var meanDifference: Double { meanStd(differences).0 }
    public var seDifference: Double { differences.count > 1 ? meanStd(differences).1 / Double(differences.count).squareRoot() : .nan }
}

/// The quantity of one finished run's history (nil when the history is too short for it).
func criterionQuantity(_ quantity: String, _ h: History, phaseEpochs: Int) -> Double? {
    func mean(_ xs: ArraySlice<Double>) -> Double { xs.reduce(0, +) / Double(xs.count) }
    switch quantity {
    case "test_error_last5":
        guard h.count >= 5 else { return nil }
        return 100 - mean(h.testAccuracy.suffix(5))
    case "train_loss_phase_end", "test_error_phase_end":
        guard phaseEpochs >= 5, h.count >= phaseEpochs else { return nil }
        let range = (phaseEpochs - 5)..<phaseEpochs
        return quantity == "train_loss_phase_end" ? mean(h.trainLoss[range]) : 100 - mean(h.testAccuracy[range])
    case "train_loss_last10":
        guard h.count >= 10 else { return nil }
        let last = mean(h.trainLoss.suffix(5)), before = mean(h.trainLoss.suffix(10).prefix(5))
        return (before - last) / last
    default: return nil
    }
}

/// The run an operand names for a seed: `ste` a Table 1 cell, `from->ste` a repel run (or, with from = ste, its control).
func criterionRun(_ operand: String, _ c: Criterion, seed: Int) -> RunID? {
    guard let bits = c.bits else { return nil }
    let parts = operand.components(separatedBy: "->")
    if parts.count == 2, let from = STE(rawValue: parts[0]), let ste = STE(rawValue: parts[1]) {
        return .repel(net: c.net, bits: bits, ste: ste, from: from, seed: seed)
    }
    guard parts.count == 1, let ste = STE(rawValue: operand) else { return nil }
    return .train(net: c.net, bits: bits, ste: ste, seed: seed)
}

/// Judges every criterion on the runs (`pretrains`: the float nets' histories by seed, for plateau checks).
public func evaluateCriteria(_ criteria: [Criterion], runs: [RunID: RunRecord], pretrains: [Int: History]) -> [CriterionResult] {
    criteria.map { c in
        var r = CriterionResult(criterion: c, seeds: [], aValues: [], bValues: [], differences: [], outcome: .inconclusive,
            reason: "not run")
        func value(_ id: RunID, _ quantity: String) -> Double? {
            guard let run = runs[id], !run.diverged else { return nil }
            return criterionQuantity(quantity, run.history, phaseEpochs: run.config.phases[0].epochs)
        }
        if c.test == "plateau" {
            var named: [(String, Double)] = []
            if c.a == "pretrain" {
                for (seed, h) in pretrains.sorted(by: { $0.key < $1.key }) {
                    if let v = criterionQuantity(c.quantity, h, phaseEpochs: h.count) { named.append(("\(c.net)-s\(seed)", v)) }
                }
            } else {
                for (id, run) in runs.sorted(by: { "\($0.key)" < "\($1.key)" }) where id.kind == .train && id.net == c.net && !run.diverged {
                    if let v = criterionQuantity(c.quantity, run.history, phaseEpochs: run.history.count) { named.append(("\(id)", v)) }
                }
            }
            guard !named.isEmpty else { return r }
            r.aValues = named.map(\.1)
            let failing = named.filter { $0.1 >= c.margin }
            r.outcome = failing.isEmpty ? .held : .notHeld
            // The check asks only that no run is still falling; a loss that rose by more than the margin passes it
            // but is no minimum either, so the reader is told which runs did.
            let rising = named.filter { $0.1 <= -c.margin }
            let rose = rising.isEmpty ? ""
                : "; rose instead: " + rising.map { "\($0.0) (loss up \(fmt(-100 * $0.1, 1)) %)" }.joined(separator: ", ")
            r.reason = failing.isEmpty
                ? "\(named.count) runs, the largest drop \(fmt(100 * named.map(\.1).max()!, 1)) %" + rose
                : "still falling: " + failing.map { "\($0.0) (\(fmt(100 * $0.1, 1)) %)" }.joined(separator: ", ") + rose
            return r
        }
        let seeds = Set(runs.keys.map(\.seed)).sorted()
        var aTests: [Double] = [], bTests: [Double] = []
        for seed in seeds {
            guard let ia = criterionRun(c.a, c, seed: seed), let ib = criterionRun(c.b, c, seed: seed),
                let va = value(ia, c.quantity), let vb = value(ib, c.quantity)
            else { continue }
            r.seeds.append(seed)
            r.aValues.append(va)
            r.bValues.append(vb)
            switch c.test {
            case "error-ratio": r.differences.append(va - c.margin * vb)
            default:
                r.differences.append(va - vb)
                aTests.append(value(ia, "test_error_phase_end") ?? .nan)
                bTests.append(value(ib, "test_error_phase_end") ?? .nan)
                r.riseEpochs.append(riseEpoch(runs[ia]!.history, runs[ib]!.history, margin: c.margin * vb,
                    phaseEpochs: runs[ib]!.config.phases[0].epochs))
            }
        }
        let n = r.differences.count
        guard n > 0 else {
            if c.test == "repelled", !seeds.contains(where: { criterionRun(c.b, c, seed: $0).map { runs[$0] != nil } ?? false }) {
                r.reason = "not run (no control run in this profile)"
            }
            return r
        }
        let mean = r.meanDifference, se = n > 1 ? r.seDifference : .infinity
        let bar = c.test == "error-ratio" ? 0 : c.margin * meanStd(r.bValues).0
        let testUp = meanStd(zip(aTests, bTests).map { $0 - $1 }).0 > 0
        // With too few seeds no verdict, but the reader is told where the point estimate stands so far.
        let direction = meanStd(r.aValues).0 > meanStd(r.bValues).0
        let marginMet = mean > bar && (c.test == "error-ratio" || testUp)
        let soFar = !direction ? "against the claimed direction"
            : marginMet ? "in the claimed direction, margin met" : "in the claimed direction, short of the margin"
        let seedsNote = n < c.minSeeds ? "\(n) of the \(c.minSeeds) seeds the criterion needs (the point estimate so far: \(soFar))" : ""
        switch c.test {
        case "error-ratio":
            if n >= c.minSeeds && mean > 2 * se { r.outcome = .held; r.reason = "" }
            else if n >= c.minSeeds && mean < -2 * se { r.outcome = .notHeld; r.reason = "" }
            else { r.reason = seedsNote.isEmpty ? "the difference is within 2 SE of 0" : seedsNote }
        default:
            if n >= c.minSeeds && mean > 2 * se && mean > bar && testUp { r.outcome = .held; r.reason = "" }
            else if n >= c.minSeeds && mean + 2 * se < bar { r.outcome = .notHeld; r.reason = "" }
            else {
                r.reason = !seedsNote.isEmpty ? seedsNote
                    : mean > 2 * se && mean > bar ? "the loss rises but the test error does not"
                    : "the rise is not distinguishable from the margin at 2 SE"
            }
        }
        return r
    }
}

/// First epoch of the low-LR phase from which the 5-epoch running mean of (repel − control) training loss stays
/// above `margin` to the end of the phase.
func riseEpoch(_ repel: History, _ control: History, margin: Double, phaseEpochs: Int) -> Int? {
    let n = min(phaseEpochs, repel.count, control.count)
    guard n >= 5 else { return nil }
    let d = (0..<n).map { repel.trainLoss[$0] - control.trainLoss[$0] }
    var first: Int? = nil
    for e in 4..<n {
        let m = d[(e - 4)...e].reduce(0, +) / 5
        if m > margin { first = first ?? (e + 1) } else { first = nil }
    }
    return first
}

/// Aggregates the rows of each claim: held when every row is held, not held when one is, otherwise inconclusive.
public func claimOutcome(_ rows: [CriterionResult]) -> ClaimOutcome {
    if rows.contains(where: { $0.outcome == .notHeld }) { return .notHeld }
    if rows.allSatisfy({ $0.outcome == .held }) { return .held }
    return .inconclusive
}

// MARK: - The commit that fixed each criterion

/// Per line of `path`, the commit that last changed it (git blame), nil where git cannot tell (no repository, or
/// the line is not committed).
func blameCommits(_ path: String) -> [Int: String] {
    guard let text = runGit(["blame", "--porcelain", "--", path]) else { return [:] }
    var out: [Int: String] = [:]
    for line in text.split(separator: "\n") {
        let fields = line.split(separator: " ")
        guard fields.count >= 3, fields[0].count == 40, fields[0].allSatisfy(\.isHexDigit), let final = Int(fields[2]) else { continue }
        out[final] = fields[0].allSatisfy({ $0 == "0" }) ? nil : String(fields[0])
    }
    return out
}

/// Whether commit `a` is `b` or an ancestor of it (nil: git cannot tell).
func isAncestor(_ a: String, of b: String) -> Bool? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["git", "merge-base", "--is-ancestor", a, b]
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return nil }
    p.waitUntilExit()
    switch p.terminationStatus {
    case 0: return true
    case 1: return false
    default: return nil
    }
}

func runGit(_ arguments: [String]) -> String? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["git"] + arguments
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return nil }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return p.terminationStatus == 0 ? String(decoding: data, as: UTF8.self) : nil
}

// MARK: - Report section

/// The section: every criterion with its numbers, commit and flag; the claims' outcomes counted once each, checks apart.
func criteriaSection(path: String, results: [CriterionResult], runs: [RunID: RunRecord]) -> String {
    let commits = blameCommits(path)
    var ancestry: [String: Bool?] = [:]
    func fixedBefore(_ commit: String, _ trainedBy: String) -> Bool? {
        let run = commitOfCodeVersion(trainedBy)
        let key = commit + run
        if let known = ancestry[key] { return known }
        let v = isAncestor(commit, of: run)
        ancestry[key] = v
        return v
    }
    func list(_ xs: [Double], _ digits: Int) -> String { xs.map { fmt($0, digits) }.joined(separator: ", ") }
    var md = "\n## The paper's deep-net claims, judged by criteria fixed before the runs\n\n"
    md += "Criteria: `\(path)` (its header defines each quantity and test). Per seed, the value of run *a* and run *b* "
    md += "and their difference d (error-ratio: err(a) − margin·err(b); repelled: loss(a) − loss(b)); mean ± SE over "
    md += "seeds. *Held* needs the point estimate in the claimed direction beyond 2 SE (and, for repelled, beyond the "
    md += "margin with the test error also higher); *not held* the opposite; otherwise *inconclusive* (with fewer "
    md += "seeds than it needs, it says where the point estimate stands so far). *Fixed by*: "
    md += "the commit that last changed the criterion's line; ⚠ marks a criterion that is not in the code that trained "
    md += "a run it judges (fixed or changed after that run).\n\n"
    var rows: [[String]] = []
    var anyLate = false
    for r in results {
        let c = r.criterion
        let commit = commits[c.line]
        var judged: [RunID] = []
        for seed in Set(runs.keys.map(\.seed)) {
            for operand in [c.a, c.b] { if let id = criterionRun(operand, c, seed: seed), runs[id] != nil { judged.append(id) } }
        }
        // A plateau check of the cells judges the cells; the pretrains' code versions are not among the runs read here.
        if c.test == "plateau" { judged = c.a == "cells" ? runs.keys.filter { $0.kind == .train && $0.net == c.net } : [] }
        let late = commit.map { sha in judged.filter { fixedBefore(sha, runs[$0]!.trainedBy) == false } } ?? []
        if !late.isEmpty || commit == nil { anyLate = true }
        let fixed = commit.map { String($0.prefix(7)) + (late.isEmpty ? "" : " ⚠ after \(late.count) of its runs") } ?? "not committed ⚠"
        let numbers: String
        if c.test == "plateau" {
            numbers = r.aValues.isEmpty ? "—" : "drop over the last 10 epochs: " + r.aValues.map { fmt(100 * $0, 1) + " %" }.joined(separator: ", ")
        } else if r.differences.isEmpty {
            numbers = "—"
        } else {
            let digits = c.quantity.hasPrefix("train_loss") ? 4 : 2
            numbers = "seeds \(r.seeds.map(String.init).joined(separator: ", ")): a \(list(r.aValues, digits)); b \(list(r.bValues, digits)); "
                + "d = \(fmt(r.meanDifference, digits)) ± \(r.differences.count > 1 ? fmt(r.seDifference, digits) : "—")"
                + (r.riseEpochs.isEmpty ? "" : "; rise from epoch " + r.riseEpochs.map { $0.map(String.init) ?? "—" }.joined(separator: ", "))
        }
        let outcome = c.kind == "check" ? (r.outcome == .held ? "passed" : r.outcome == .notHeld ? "**failed**" : "not run")
            : "**\(r.outcome.rawValue)**"
        rows.append([c.id, c.kind, "\(c.test) \(c.a)" + (c.b.isEmpty ? "" : " vs \(c.b)") + ", \(c.quantity), margin \(fmt(c.margin, 2))",
            numbers, outcome + (r.reason.isEmpty ? "" : ": " + r.reason), fixed])
    }
    if anyLate {
        md += "⚠ Some criteria were fixed after runs they judge (or are not committed): for those runs this is a rescoring "
        md += "with criteria chosen later, not a test fixed in advance.\n\n"
    }
    md += markdownTable(header: ["criterion", "kind", "test", "measured", "outcome", "fixed by"], rows: rows)
    // Each claim once: its rows decide it together; checks apart.
    let claims = Dictionary(grouping: results.filter { $0.criterion.kind == "paper" }, by: \.criterion.claim)
    let checks = results.filter { $0.criterion.kind == "check" }
    md += "\nThe paper's claims, each counted once: " + outcomeTally(claims.values.map(claimOutcome), only: [.held, .notHeld, .inconclusive]) + ". "
    md += "Checks of the protocol (not claims): " + checks.map { "\($0.criterion.id) \($0.outcome == .held ? "passed" : $0.outcome == .notHeld ? "failed" : "not run")" }.joined(separator: ", ") + ".\n"
    return md
}

/// One figure per repelled criterion: the repel run against its control over the steps of the run (training loss
/// and test accuracy; each seed thin, the mean thick; the end of the lr 1e-5 phase marked).
func repelControlFigures(_ results: [CriterionResult], runs: [RunID: RunRecord], root: String) throws -> [(String, String)] {
    var out: [(String, String)] = []
    for r in results where r.criterion.test == "repelled" && !r.seeds.isEmpty {
        let c = r.criterion
        var loss: [Series] = [], acc: [Series] = []
        var phaseEnd = 0.0, stepsPerEpoch = 1.0
        for (i, operand) in [c.a, c.b].enumerated() {
            let color = Figure.palette[i == 0 ? 1 : 0]
            let members = r.seeds.compactMap { criterionRun(operand, c, seed: $0).flatMap { runs[$0] } }
            guard let first = members.first else { continue }
            let images = first.config.trainSubset ?? datasetDescriptor(first.config.dataset)?.trainImages ?? 1
            stepsPerEpoch = Double((images + first.config.phases[0].batchSize - 1) / first.config.phases[0].batchSize)
            phaseEnd = Double(first.config.phases[0].epochs) * stepsPerEpoch
            let n = members.map(\.history.count).min()!
            let x = (1...n).map { Double($0) * stepsPerEpoch }
            for m in members {
                loss.append(Series("", x: x, y: Array(m.history.trainLoss.prefix(n)), color: color, lineWidth: 0.7, opacity: 0.45))
                acc.append(Series("", x: x, y: Array(m.history.testAccuracy.prefix(n)), color: color, lineWidth: 0.7, opacity: 0.45))
            }
            let label = i == 0 ? "\(operand.replacingOccurrences(of: "->", with: " → ")) (repel run)" : "\(operand.replacingOccurrences(of: "->", with: " → ")) (control)"
            func mean(_ f: (History) -> [Double]) -> [Double] { (0..<n).map { e in members.map { f($0.history)[e] }.reduce(0, +) / Double(members.count) } }
            loss.append(Series(label, x: x, y: mean(\.trainLoss), color: color, lineWidth: 2))
            acc.append(Series(label, x: x, y: mean(\.testAccuracy), color: color, lineWidth: 2))
        }
        func boundary(_ series: [Series]) -> Series {
            let ys = series.flatMap(\.y).filter(\.isFinite)
            return Series("end of lr 1e-5 (step \(Int(phaseEnd)))", x: [phaseEnd, phaseEnd], y: [ys.min() ?? 0, ys.max() ?? 1],
                color: "#777", dashed: true)
        }
        loss.append(boundary(loss))
        acc.append(boundary(acc))
        let figure = Figure(title: "\(c.id): \(c.net) \(c.bits.map { "\($0)-bit" } ?? ""), repel run against its control, "
            + "\(r.seeds.count) seed\(r.seeds.count == 1 ? "" : "s") (thick: mean, thin: each seed)", panels: [
            Panel(title: "training loss", xLabel: "optimizer step", yLabel: "training loss (cross-entropy)", series: loss),
            Panel(title: "test accuracy", xLabel: "optimizer step", yLabel: "test accuracy (%)", series: acc),
        ], columns: 2, panelWidth: 520)
        let file = "figures/criterion-\(c.id).svg"
        try writeFigure(figure, to: "\(root)/\(file)")
        out.append(("\(c.id): repel run against its control", file))
    }
    return out
}

/// For each theory and Schoenbauer result file: the config that holds its claims' thresholds, the commit that last
/// changed it, the code version that wrote the result, and whether the thresholds were in that code (⚠ when not: the
/// config changed after the result it judges). A result rescored from recorded measurements is judged by its rescore.
func otherCriteriaSection(_ resultFiles: [String]) -> String {
    var rows: [[String]] = []
    for file in resultFiles where FileManager.default.fileExists(atPath: file) {
        guard let reader = try? H5Reader(path: file), let inputs = try? reader.attribute("input_files").stringsValue,
            let config = inputs.first
        else { continue }
        let made = ((try? reader.stringAttribute("code_version")) ?? "unknown")
        let commit = runGit(["log", "-1", "--format=%H", "--", config])?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        let before = commit.isEmpty ? nil : isAncestor(commit, of: commitOfCodeVersion(made))
        rows.append([file, config, commit.isEmpty ? "not committed" : String(commit.prefix(7)), shortVersion(made), before == true ? "yes" : before == false ? "**⚠ no**" : "unknown"])
    }
    guard !rows.isEmpty else { return "" }
    var md = "\n## The other experiments' criteria: fixed before their results?\n\n"
    md += "Each experiment's thresholds live in its config (the first input its result file records). *Fixed before*: the "
    md += "commit that last changed the config is in the code that wrote the result (⚠ no: the config changed after; "
    md += "the report of that experiment says why where it matters).\n\n"
    md += markdownTable(header: ["result", "config", "config last changed", "result written by", "fixed before"], rows: rows)
    return md
}
