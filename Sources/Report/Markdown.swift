// Markdown helpers for generated reports: tables, number formatting, and claim verdicts computed from
// measured numbers (a verdict is never typed by hand: `Claim.held` comes from a comparison in code).
import Foundation

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

/// One claim of a paper, whether the measurement supports it, and the numbers that decided it.
public struct Claim: Sendable {
    public var text: String
    public var held: Bool
    public var evidence: String
    public init(_ text: String, held: Bool, evidence: String) {
        self.text = text
        self.held = held
        self.evidence = evidence
    }

    public var verdict: String { held ? "**held**" : "**not held**" }
}

/// Claims as a Markdown table (claim, verdict, evidence).
public func claimsTable(_ claims: [Claim]) -> String {
    markdownTable(
        header: ["claim", "verdict", "measured"], rows: claims.map { [$0.text, $0.verdict, $0.evidence] })
}
