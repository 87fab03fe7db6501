// Markdown helpers for generated reports: tables, number formatting, and claim verdicts computed from
// measured numbers (an outcome is never typed by hand: it comes from a comparison in code, or from a stated
// hypothesis the test violates).
import Foundation
import Storage

/// A GitHub-flavoured Markdown table. `align` per column: "l", "r" or "c" (default left).
public func markdownTable(header: [String], rows: [[String]], align: [Character]? = nil) -> String {
    func cell(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|") }
    var out = "| " + header.map(cell).joined(separator: " | ") + " |\n"
    let marks = (0..<header.count).map { i -> String in
        switch align.flatMap({ i < $0.count ? $0[i] : nil }) ?? "l" {
        case "r": return "---:"
        case "c": return ":---:"
        default: return "---"
        }
    }
    out += "|" + marks.joined(separator: "|") + "|\n"
    for row in rows {
        precondition(row.count == header.count, "markdown row has \(row.count) cells, header \(header.count)")
        out += "| " + row.map(cell).joined(separator: " | ") + " |\n"
    }
    return out
}

/// Compact number: 4 significant digits, scientific outside [1e-3, 1e5).
public func fmt(_ x: Double, digits: Int = 4) -> String {
    if x.isNaN { return "NaN" }
    if x.isInfinite { return x > 0 ? "inf" : "-inf" }
    if x == 0 { return "0" }
    let a = abs(x)
    if a >= 1e5 || a < 1e-3 { return String(format: "%.\(max(0, digits - 1))e", x) }
    var s = String(format: "%.\(digits)g", x)
    if s.contains("e") { s = String(format: "%.\(max(0, digits - 1))e", x) }
    return s
}

/// A fraction as "k/n (p %)".
public func fmtFraction(_ k: Int, _ n: Int) -> String {
    n == 0 ? "0/0" : "\(k)/\(n) (\(String(format: "%.1f", 100 * Double(k) / Double(n))) %)"
}

/// How a paper's claim fared: five outcomes, not two. "Outside the paper's hypotheses": the test violates an
/// assumption the claim states (it neither supports nor contradicts it). "Unverifiable reconstruction": the setup
/// reconstructs a paper whose text could not be read, and differs from it in ways that decide the outcome.
/// "Inconclusive": the evidence cannot tell held from not held (too few seeds, or a difference within its noise).
public enum ClaimOutcome: String, Sendable, CaseIterable, Codable {
    case held = "held"
    case notHeld = "not held"
    case outsideHypotheses = "outside the paper's hypotheses"
    case unverifiable = "unverifiable reconstruction"
    case inconclusive = "inconclusive"

    /// The outcomes that need a stated reason.
    public var needsReason: Bool { self == .outsideHypotheses || self == .unverifiable || self == .inconclusive }
}

/// One claim of a paper, its outcome on our measurements, the numbers that decided it, and (for the last two
/// outcomes) why it could not be scored held or not held.
public struct Claim: Sendable {
    public var text: String
    public var outcome: ClaimOutcome
    public var evidence: String
    /// Why the claim is outside the paper's hypotheses or unverifiable; empty otherwise.
    public var reason: String

    /// A claim scored by a measured comparison: held or not held.
    public init(_ text: String, held: Bool, evidence: String) {
        self.init(text, outcome: held ? .held : .notHeld, evidence: evidence)
    }

    public init(_ text: String, outcome: ClaimOutcome, evidence: String, reason: String = "") {
        precondition(!outcome.needsReason || !reason.isEmpty, "claim '\(text)': outcome \(outcome.rawValue) needs a reason")
        self.text = text
        self.outcome = outcome
        self.evidence = evidence
        self.reason = reason
    }

    public var held: Bool { outcome == .held }

    public var verdict: String { "**\(outcome.rawValue)**" + (reason.isEmpty ? "" : ": " + reason) }
}

/// "3 held, 1 not held, 2 outside the paper's hypotheses, 0 unverifiable reconstruction".
public func outcomeTally(_ outcomes: [ClaimOutcome], only: [ClaimOutcome] = ClaimOutcome.allCases) -> String {
    only.map { o in "\(outcomes.filter { $0 == o }.count) \(o.rawValue)" }.joined(separator: ", ")
}

/// Claims as a Markdown table (claim, verdict, evidence).
public func claimsTable(_ claims: [Claim]) -> String {
    markdownTable(
        header: ["claim", "verdict", "measured"], rows: claims.map { [$0.text, $0.verdict, $0.evidence] })
}

/// The claims as /claims/{text,outcome,reason,evidence} (string datasets, one entry per claim) of a result file.
public func writeClaims(_ claims: [Claim], to writer: H5Writer) throws {
    try writer.writeStrings("/claims/text", claims.map(\.text))
    try writer.writeStrings("/claims/outcome", claims.map(\.outcome.rawValue))
    try writer.writeStrings("/claims/reason", claims.map(\.reason))
    try writer.writeStrings("/claims/evidence", claims.map(\.evidence))
}

/// The claim outcomes of a result file written by `writeClaims`; an unknown outcome string is an error naming it.
public func readClaimOutcomes(_ path: String) throws -> [ClaimOutcome] {
    let reader = try H5Reader(path: path)
    return try reader.readStrings("/claims/outcome").map { text in
        guard let o = ClaimOutcome(rawValue: text) else {
            throw ReportError("\(path): /claims/outcome holds \"\(text)\", not one of "
                + ClaimOutcome.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))
        }
        return o
    }
}

/// The paper a theory or Schoenbauer result file scores, from its name: results/theory/yin-*.h5 → Yin 2019, ….
public func claimSource(ofResultFile path: String) -> String {
    let name = URL(fileURLWithPath: path).lastPathComponent
    if path.contains("schoenbauer") { return "Schoenbauer et al. 2024" }
    if name.hasPrefix("yin") { return "Yin et al. 2019 (theory)" }
    if name.hasPrefix("long") { return "Long, Yin & Xin 2021" }
    if name.hasPrefix("gongyo") { return "Gongyo & Ishikawa 2021" }
    return name
}

/// One line per paper: "- Long, Yin & Xin 2021: 2 held, 1 not held, …", from the result files' /claims/outcome,
/// papers in first-seen order. Missing files are skipped (the experiment was not run).
public func claimTallyLines(resultFiles: [String]) throws -> [String] {
    var order: [String] = [], outcomes: [String: [ClaimOutcome]] = [:]
    for path in resultFiles where FileManager.default.fileExists(atPath: path) {
        let source = claimSource(ofResultFile: path)
        if outcomes[source] == nil { order.append(source) }
        outcomes[source, default: []] += try readClaimOutcomes(path)
    }
    return order.map { "- \($0): \(outcomeTally(outcomes[$0]!))" }
}
