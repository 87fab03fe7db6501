// `ste verify [PATH…]`: every file's checksums, every recorded input's content digest, every table's runs
// (Report/Verify.swift); exit 1 when anything is broken, stale or missing.
import ArgumentParser
import Foundation
import Report

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check results: file checksums, that recorded inputs are unchanged, that tables match their runs.",
        discussion: """
            Walks the given files and folders (default: results). Prints what is intact, what is broken (a checksum \
            mismatch), stale (an input changed after the file that used it was written; a table whose runs hold \
            other numbers) or missing; files written before checksums or content digests are listed as \
            unverifiable. Exits 1 when anything is broken, stale or missing.

            Example:
              ste verify results/fashion/cpu-budget
            """)

    @Argument(help: "Files or folders (default: results).")
    var paths: [String] = []

    @Flag(help: "Also list every intact file.")
    var verbose = false

    func run() throws {
        let report = verifyResults(paths.isEmpty ? ["results"] : paths)
        if verbose { for f in report.intact { print("intact        \(f)") } }
        for f in report.findings { print("\(f.kind.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0)) \(f.file): \(f.message)") }
        let counts = Dictionary(grouping: report.findings, by: \.kind).mapValues(\.count)
        print("verify: \(report.intact.count) intact, \(counts[.broken] ?? 0) broken, \(counts[.stale] ?? 0) stale, "
              + "\(counts[.missing] ?? 0) missing, \(counts[.unverifiable] ?? 0) unverifiable")
        if report.failed {
            throw VerifyFailed(description: "\(report.findings.filter { $0.kind != .unverifiable }.count) findings: "
                + "results are broken, stale or missing (listed above)")
        }
    }
}

struct VerifyFailed: Error, CustomStringConvertible {
    let description: String
}
