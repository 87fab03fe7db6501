// The numbers a person reads outside the generated report must match the run files: the README's Table 1
// rows are checked against results/table1.csv (written by `ste report` from the committed eval files), the
// Fashion-MNIST LeNet-5 table against results/fashion/lenet5/table1.csv.
import Foundation
import TestSupport
import XCTest

@testable import Cluster
@testable import Experiments
@testable import Report
import Harness

final class CommittedResultsTests: XCTestCase {
    /// The README's claim tallies (between its "claim tallies" markers) are those of the committed theory and
    /// Schoenbauer result files, each paper's claims counted once (experiments/reference/claim-kinds.csv), line for line.
    func testReadmeClaimTalliesQuoteTheResultFiles() throws {
        let readme = try String(contentsOfFile: repositoryRoot + "/README.md", encoding: .utf8)
        guard let start = readme.range(of: "<!-- claim tallies"), let end = readme.range(of: "<!-- end of claim tallies -->")
        else { return XCTFail("the README has no claim tallies") }
        let quoted = readme[start.upperBound..<end.lowerBound].split(separator: "\n").filter { $0.hasPrefix("- ") }.map(String.init)
        let theory = ["yin-fig1", "yin-cgd", "yin-spurious", "long-synthetic", "long-mnist", "gongyo-scale", "gongyo-misspecified"]
            .map { repositoryRoot + "/results/theory/\($0).h5" }
        let schoenbauer = ["simulation", "mnist", "mnist-full", "mnist-small-steps"].map { repositoryRoot + "/results/schoenbauer/\($0).h5" }
        XCTAssertEqual(quoted, try paperClaimTallies(resultFiles: theory + schoenbauer,
            kindsPath: repositoryRoot + "/" + claimKindsFile))
    }

    /// Each row of the README's "Results at a glance" table — `| bits | STE | paper % | ours % | verdict | …` —
    /// quotes results/table1.csv (mean ± std to 2 decimals) and the verdict computed from it.
    func testReadmeTable1QuotesTheCommittedResults() throws {
        let readme = try String(contentsOfFile: repositoryRoot + "/README.md", encoding: .utf8)
        let ours = try loadTable1(repositoryRoot + "/results/table1.csv")
        let reference = try loadReference(repositoryRoot + "/experiments/reference/yin2019-table1.csv")
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

    /// The README's Fashion-MNIST LeNet-5 table — `| bits | identity | relu | clipped |` — quotes
    /// results/fashion/lenet5/table1.csv.
    func testReadmeFashionTableQuotesTheCommittedResults() throws {
        let readme = try String(contentsOfFile: repositoryRoot + "/README.md", encoding: .utf8)
        let ours = try loadTable1(repositoryRoot + "/results/fashion/lenet5/table1.csv")
        guard let header = readme.range(of: "| bits | identity | relu | clipped |") else {
            return XCTFail("the README has no Fashion-MNIST table")
        }
        var checked = 0
        for line in readme[header.upperBound...].split(separator: "\n").dropFirst().prefix(2) {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            let bits = try XCTUnwrap(Int(cells[0]), String(line))
            for (i, ste) in ["identity", "relu", "clipped"].enumerated() {
                let r = try XCTUnwrap(ours[CellKey(dataset: "fashion-mnist", net: "lenet5", bits: bits, ste: ste)])
                XCTAssertEqual(cells[i + 1], String(format: "%.2f ± %.2f", r.accuracyMean, r.accuracyStd), "\(bits)-bit \(ste)")
                checked += 1
            }
        }
        XCTAssertEqual(checked, 6)
    }
}
