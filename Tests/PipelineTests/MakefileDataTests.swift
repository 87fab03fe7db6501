// The Makefile's data rules against the data set registry (Datasets/DatasetRegistry.swift): make's database (`make -pq`)
// gives each registry data set's file, data/<name>.h5, exactly the registry's raw files as prerequisites, and names no
// data set the registry does not have. The registry is the truth; the Makefile's prerequisite lines only let make see
// when a raw file changed.
import Foundation
import TestSupport
import XCTest

@testable import Datasets

final class MakefileDataTests: XCTestCase {
    func testEveryDataSetsRawFilesAreItsFilesPrerequisites() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/make") else { throw XCTSkip("no make here") }
        let make = Process()
        make.executableURL = URL(fileURLWithPath: "/usr/bin/make")
        make.arguments = ["-pq", "--no-print-directory", "-C", repositoryRoot, "help"]
        let pipe = Pipe()
        make.standardOutput = pipe
        make.standardError = FileHandle.nullDevice
        try make.run()
        let database = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        make.waitUntilExit()
        // "data/mnist.h5: data/raw/mnist/a.gz data/raw/mnist/b.gz" (order-only prerequisites after " | " dropped).
        var rules: [String: Set<String>] = [:]
        for line in database.split(separator: "\n") where line.hasPrefix("data/") && !line.hasPrefix("data/raw/")
            && !line.hasPrefix("data/%")
        {
            guard let colon = line.firstIndex(of: ":"), line[..<colon].hasSuffix(".h5") else { continue }
            let prerequisites = line[line.index(after: colon)...].split(separator: "|")[0].split(separator: " ").map(String.init)
            rules[String(line[..<colon]), default: []].formUnion(prerequisites)
        }
        for d in datasetRegistry {
            XCTAssertEqual(rules[d.file], Set(d.rawFiles.map { d.rawDir + "/" + $0 }),
                "the Makefile's prerequisites of \(d.file) are not \(d.name)'s raw files in the registry")
        }
        XCTAssertEqual(Set(rules.keys), Set(datasetRegistry.map(\.file)), "a data file rule for a data set the registry lacks")
    }
}
