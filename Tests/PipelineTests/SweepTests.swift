// A sweep gathered into one table and figure (Sources/Report/Sweep.swift): every value's cells, a missing value named.
import Foundation
import TestSupport
import XCTest

@testable import Report

final class SweepTests: XCTestCase {
    func testSweepTableAndFigure() throws {
        let temporary = try TemporaryFolder("sweep-tests")
        defer { temporary.remove() }
        let table = try String(contentsOfFile: repositoryRoot + "/results/table1.csv", encoding: .utf8)
        for v in ["0.02", "0.2"] {
            try FileManager.default.createDirectory(atPath: "\(temporary.path)/set-lr-\(v)", withIntermediateDirectories: true)
            try table.write(toFile: "\(temporary.path)/set-lr-\(v)/table1.csv", atomically: true, encoding: .utf8)
        }
        let folders = ["0.02", "0.2", "2"].map { ($0, "\(temporary.path)/set-lr-\($0)") }
        let (rows, missing) = try collectSweep(folders)
        XCTAssertEqual(rows.count, 12)
        XCTAssertEqual(missing, ["\(temporary.path)/set-lr-2/table1.csv"])
        let md = try writeSweep(key: "nets.lenet5.train.lr", rows: rows, values: ["0.02", "0.2"], root: temporary.path)
        XCTAssertTrue(md.contains("| 0.2 | lenet5 | 4 | clipped |"), md)
        let csv = try String(contentsOfFile: "\(temporary.path)/sweep-nets.lenet5.train.lr.csv", encoding: .utf8)
        XCTAssertEqual(csv.split(separator: "\n").count, 13)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(temporary.path)/sweep-nets.lenet5.train.lr.svg"))
    }
}
