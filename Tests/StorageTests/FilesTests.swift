// Tests of the plain-file helpers: folders created by many writers at once (a Slurm array's tasks),
// a folder path blocked by a file, and Foundation's file errors told as path and reason.
import Foundation
import TestSupport
import XCTest

@testable import Storage

final class FilesTests: XCTestCase {
    var dir: String!
    var temporary: TemporaryFolder!

    override func setUpWithError() throws {
        temporary = try TemporaryFolder("files-tests")
        dir = temporary.path
    }

    override func tearDownWithError() throws { temporary.remove() }

    /// Sixteen threads create the same deep tree at once, many times over; none may fail.
    func testConcurrentCreationOfOneTreeNeverFails() throws {
        for round in 0..<20 {
            let path = "\(dir!)/r\(round)/a/b/c/d"
            let failures = LockedCounter()
            DispatchQueue.concurrentPerform(iterations: 16) { _ in
                do { try makeDirectories(path) } catch { failures.add() }
            }
            XCTAssertEqual(failures.value, 0, "round \(round)")
            var isDir: ObjCBool = false
            XCTAssertTrue(FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue)
        }
        XCTAssertNoThrow(try makeDirectories("\(dir!)/r0/a/b/c/d"), "an existing folder is not an error")
    }

    func testAFileInTheWayIsNamed() throws {
        try writeAtomically("x", to: "\(dir!)/blocker")
        XCTAssertThrowsError(try makeDirectories("\(dir!)/blocker/runs/x")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("\(dir!)/blocker"), text)
            XCTAssertTrue(text.contains("exists and is not a folder"), text)
        }
    }

    /// The error a failed Slurm task once printed raw ("NSCocoaErrorDomain Code=516") reads as path + reason.
    func testFoundationFileErrorsReadAsPathAndReason() throws {
        try writeAtomically("x", to: "\(dir!)/taken")
        XCTAssertThrowsError(try FileManager.default.copyItem(atPath: "\(dir!)/taken", toPath: "\(dir!)/taken")) { error in
            let text = readableError(error)
            XCTAssertFalse(text.contains("NSCocoaErrorDomain"), text)
            XCTAssertTrue(text.hasPrefix("\(dir!)/taken: "), text)
        }
        let exists = CocoaError(.fileWriteFileExists, userInfo: [NSFilePathErrorKey: "/results/runs"])
        XCTAssertEqual(readableError(exists), "/results/runs: a file or folder of that name already exists")
        XCTAssertThrowsError(try String(contentsOfFile: "\(dir!)/absent", encoding: .utf8)) { error in
            let text = readableError(error)
            XCTAssertTrue(text.hasPrefix("\(dir!)/absent: "), text)
            XCTAssertTrue(text.contains("no such file"), text)
        }
        XCTAssertEqual(readableError(StorageError(file: "f.h5", "bad")), "f.h5: bad", "other errors keep their text")
    }
}

private final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
