// A paper's claims counted once: experiments/reference/claim-kinds.csv says what each claim row of the theory and
// Schoenbauer result files is (a claim of the paper, a control, the project's prediction, an extension, a check) and
// which rows test the same claim; the tally counts each paper claim once, by the row that decides it, and shows the
// rest apart.
import Experiments
import Foundation
import Harness
import Storage

public struct ClaimKind: Sendable {
    public var result: String
    public var index: Int
    public var kind: String
    public var claim: String
    public var decides: Bool
    /// The text the row begins with (a result file whose rows moved is refused).
    public var startsWith: String
}

public let claimKindsFile = "experiments/reference/claim-kinds.csv"

public func loadClaimKinds(_ path: String) throws -> [ClaimKind] {
    try readCSV(path).map { line, row in
        guard let result = row["result"], let index = Int(row["index"] ?? ""), let kind = row["kind"], let claim = row["claim"],
            ["paper", "control", "prediction", "extension", "check"].contains(kind), ["yes", "no"].contains(row["decides"] ?? "")
        else {
            throw ConfigError(file: path, key: "line \(line)", message: "expected result,index,starts_with,kind (paper, control, "
                + "prediction, extension, check),claim,decides (yes, no),note")
        }
        return ClaimKind(result: result, index: index, kind: kind, claim: claim, decides: row["decides"] == "yes",
            startsWith: row["starts_with"] ?? "")
    }
}

/// One line per paper, papers in first-seen order: its claims counted once (each by its deciding row), with the
/// supporting rows, controls, predictions, extensions and checks apart. Every claim row of every result file must be
/// in the kinds file, with the text it starts with; missing result files are skipped (not run).
public func paperClaimTallies(resultFiles: [String], kindsPath: String = claimKindsFile) throws -> [String] {
    guard resultFiles.contains(where: { FileManager.default.fileExists(atPath: $0) }) else { return [] }
    let kinds = try loadClaimKinds(kindsPath)
    var order: [String] = []
    var rows: [String: [(ClaimKind, ClaimOutcome)]] = [:]
    for path in resultFiles where FileManager.default.fileExists(atPath: path) {
        let relative = path.hasPrefix(repositoryPrefix(of: path)) ? String(path.dropFirst(repositoryPrefix(of: path).count)) : path
        let reader = try H5Reader(path: path)
        let texts = try reader.readStrings("/claims/text")
        let outcomes = try readClaimOutcomes(path)
        let paper = claimSource(ofResultFile: path)
        if rows[paper] == nil { order.append(paper) }
        for (i, (text, outcome)) in zip(texts, outcomes).enumerated() {
            guard let k = kinds.first(where: { $0.result == relative && $0.index == i }) else {
                throw ConfigError(file: kindsPath, key: "\(relative) claim \(i)", message: "this claim row has no kind: add it (\"\(text.prefix(60))…\")")
            }
            let expected = k.startsWith
            guard text.hasPrefix(expected) else {
                throw ConfigError(file: kindsPath, key: "\(relative) claim \(i)", message: "the row now reads \"\(text.prefix(60))…\", "
                    + "not \"\(expected)…\": the result file's claims moved; update the kinds")
            }
            rows[paper, default: []].append((k, outcome))
        }
    }
    return order.map { paper in
        let all = rows[paper]!
        func deciding(_ kind: String) -> [ClaimOutcome] { all.filter { $0.0.kind == kind && $0.0.decides }.map(\.1) }
        func nonzero(_ outcomes: [ClaimOutcome]) -> String {
            let parts = ClaimOutcome.allCases.compactMap { o in
                let n = outcomes.filter { $0 == o }.count
                return n == 0 ? nil : "\(n) \(o.rawValue)"
            }
            return parts.isEmpty ? "none" : parts.joined(separator: ", ")
        }
        let claims = deciding("paper")
        let supporting = all.filter { $0.0.kind == "paper" && !$0.0.decides }.count
        var line = "- \(paper): **\(claims.count) claim\(claims.count == 1 ? "" : "s")** — \(nonzero(claims))"
        if supporting > 0 { line += " (and \(supporting) supporting test\(supporting == 1 ? "" : "s") of them)" }
        var apart: [String] = []
        for (kind, label) in [("control", "controls"), ("prediction", "the project's predictions"), ("extension", "extensions"),
            ("check", "checks")]
        {
            let outcomes = deciding(kind)
            if !outcomes.isEmpty { apart.append("\(label) \(outcomes.count): \(nonzero(outcomes))") }
        }
        if !apart.isEmpty { line += "; apart: " + apart.joined(separator: "; ") }
        return line
    }
}

/// The repository-root prefix of an absolute result path (so `/…/repo/results/x.h5` matches `results/x.h5`).
func repositoryPrefix(of path: String) -> String {
    guard path.hasPrefix("/"), let range = path.range(of: "/results/", options: .backwards) else { return "" }
    return String(path[..<range.lowerBound]) + "/"
}
