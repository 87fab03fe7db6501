// `ste verify` (Report/Verify.swift): intact results pass; a flipped bit, an input replaced after its downstream
// file was written, and a table whose run holds another number are each found; an input rewritten with the same
// content (another code version, another time) keeps its digest and its downstream files stay intact.
import Foundation
import Storage
import TestSupport
import XCTest

@testable import Report

final class VerifyTests: XCTestCase {
    var temporary: TemporaryFolder!
    override func setUpWithError() throws { temporary = try TemporaryFolder("verify-tests") }
    override func tearDownWithError() throws { temporary.remove() }

    private func writeData(_ path: String, images: [UInt8], stamp: String) throws {
        let w = try H5Writer(path: path)
        try w.write("/train/images", images, shape: [images.count])
        try w.write("/wall_seconds", [Double(stamp.count)], shape: [1])  // a timing: not content
        try w.setAttribute("code_version", .string(stamp))
        try w.commit()
    }

    /// data.h5 → results/runs/lenet5-a2-clipped-s0/eval.h5 (recording data.h5) → results/runs.csv.
    private func makeResults(accuracy: Double = 91.5) throws -> (root: String, data: String, eval: String) {
        let root = temporary.path + "/results", data = temporary.path + "/data.h5"
        try FileManager.default.createDirectory(atPath: root + "/runs/lenet5-a2-clipped-s0", withIntermediateDirectories: true)
        try writeData(data, images: Array(0..<200), stamp: "first")
        let eval = root + "/runs/lenet5-a2-clipped-s0/eval.h5"
        let w = try H5Writer(path: eval)
        try w.write("/test_accuracy", [accuracy], shape: [])
        try w.write("/logits", (0..<40).map { Float($0) / 3 }, shape: [4, 10])
        try Provenance(stage: "eval", configuration: "{}", inputs: [data]).write(to: w)
        try w.commit()
        try "run_id,test_accuracy\nlenet5-a2-clipped-s0,91.5\n".write(toFile: root + "/runs.csv", atomically: true, encoding: .utf8)
        return (root, data, eval)
    }

    func testIntactResultsPassAndEqualContentKeepsItsDigest() throws {
        let (root, data, _) = try makeResults()
        var report = verifyResults([root])
        XCTAssertFalse(report.failed, "\(report.findings)")
        XCTAssertEqual(report.intact.count, 2)
        try writeData(data, images: Array(0..<200), stamp: "a later commit, another wall time")
        report = verifyResults([root])
        XCTAssertFalse(report.failed, "same images, other bytes: \(report.findings)")
    }

    func testAFlippedBitIsBroken() throws {
        let (root, _, eval) = try makeResults()
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: eval)))
        let logits = (0..<40).map { Float($0) / 3 }.withUnsafeBytes { Array($0) }
        let at = (0...(bytes.count - logits.count)).first { bytes[$0..<($0 + logits.count)].elementsEqual(logits) }!
        bytes[at + 17] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: eval))
        let report = verifyResults([root])
        XCTAssertTrue(report.failed)
        XCTAssertTrue(report.findings.contains { $0.kind == .broken && $0.message.contains("/logits: checksum mismatch") },
                      "\(report.findings)")
    }

    func testAReplacedInputMakesItsDownstreamStale() throws {
        let (root, data, eval) = try makeResults()
        try writeData(data, images: Array(1..<201), stamp: "first")
        let report = verifyResults([root])
        XCTAssertTrue(report.failed)
        XCTAssertEqual(report.findings.map(\.kind), [.stale])
        XCTAssertEqual(report.findings.first?.file, eval)
        XCTAssertTrue(report.findings.first?.message.contains("\(data) changed after it was written") ?? false)
    }

    func testATableWhoseRunHoldsAnotherNumberIsStale() throws {
        let (root, _, _) = try makeResults(accuracy: 90.25)
        let report = verifyResults([root])
        XCTAssertTrue(report.failed)
        XCTAssertTrue(report.findings.contains { $0.kind == .stale && $0.file.hasSuffix("runs.csv") && $0.message.contains("90.25") },
                      "\(report.findings)")
    }
}
