// The numbers a person reads outside the generated report must match the run files: the README's Table 1
// rows are checked against results/table1.csv (written by `ste report` from the committed eval files).
import Foundation
import XCTest

@testable import Experiments

final class CommittedResultsTests: XCTestCase {
    /// Each row of the README's "Results at a glance" table — `| bits | STE | paper % | ours % | verdict | …` —
    /// quotes results/table1.csv (mean ± std to 2 decimals) and the verdict computed from it.
    func testReadmeTable1QuotesTheCommittedResults() throws {
        let readme = try String(contentsOfFile: repoRoot + "/README.md", encoding: .utf8)
        let ours = try loadTable1(repoRoot + "/results/table1.csv")
        let reference = try loadReference(repoRoot + "/experiments/reference/yin2019-table1.csv")
        var checked = 0
        for line in readme.split(separator: "\n") where line.hasPrefix("| 2 |") || line.hasPrefix("| 4 |") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 5, let bits = Int(cells[0]) else { continue }
            let key = CellKey(dataset: "mnist", net: "lenet5", bits: bits, ste: cells[1])
            let r = try XCTUnwrap(ours[key], "\(key) not in results/table1.csv")
            let paper = try XCTUnwrap(reference[key])
            XCTAssertEqual(cells[2], String(format: "%.2f", paper.accuracy), "\(key): paper")
            XCTAssertEqual(cells[3], String(format: "%.2f ± %.2f", r.accuracyMean, r.accuracyStd), "\(key): ours")
            XCTAssertTrue(cells[4].hasPrefix(accuracyVerdict(r, paper: paper.accuracy).rawValue), "\(key): verdict \(cells[4])")
            checked += 1
        }
        XCTAssertEqual(checked, 6, "the README's Table 1 has the six MNIST cells")
    }
}
