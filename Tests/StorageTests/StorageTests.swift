// Tests of the HDF5 tensor store: round trips of every dtype and rank, attributes, byte
// reproducibility, atomic writes, error messages, and a read-back by HDF5's own h5dump.
import Foundation
import TestSupport
import XCTest

@testable import Storage

final class StorageTests: XCTestCase {
    var dir: String!
    var temporary: TemporaryFolder!

    override func setUpWithError() throws {
        temporary = try TemporaryFolder("storage-tests")
        dir = temporary.path
    }

    override func tearDownWithError() throws { temporary.remove() }

    private func roundTrip<T: H5Element & Equatable>(_ type: T.Type, make: (Int) -> T) throws {
        for shape in [[], [5], [3, 4], [2, 3, 4], [2, 1, 3, 2], [1, 2, 1, 2, 3]] {
            let count = shape.reduce(1, *)
            let values = (0..<count).map(make)
            let path = dir + "/rt-\(T.dtype.rawValue)-\(shape.count).h5"
            let w = try H5Writer(path: path)
            try w.write("/g/sub/data", values, shape: shape)
            try w.write("/compressed", values, shape: shape, compress: true)
            try w.commit()
            let r = try H5Reader(path: path)
            for name in ["/g/sub/data", "/compressed"] {
                let (got, gotShape) = try r.read(name, as: T.self)
                XCTAssertEqual(got, values, "\(T.dtype) \(shape) \(name)")
                XCTAssertEqual(gotShape, shape)
                XCTAssertEqual(try r.dtype(of: name), T.dtype)
            }
        }
    }

    /// A dirty code version carries its diff's digest; the commit is what precedes the mark.
    func testCodeVersionCommitAndDirtyDigest() {
        let sha = String(repeating: "a", count: 40)
        XCTAssertEqual(commitOfCodeVersion(sha + "-dirty-0123456789ab"), sha)
        XCTAssertEqual(commitOfCodeVersion(sha + "-dirty"), sha)
        XCTAssertEqual(commitOfCodeVersion(sha), sha)
        let v = codeVersion()
        XCTAssertTrue(v == "unknown" || commitOfCodeVersion(v).count == 40, v)
        if let mark = v.range(of: "-dirty-") { XCTAssertEqual(v[mark.upperBound...].count, 12, v) }
    }

    func testRoundTripEveryDTypeAndRank() throws {
        try roundTrip(Float.self) { Float($0) * 0.25 - 3 }
        try roundTrip(Double.self) { Double($0) * 1e-3 + .pi }
        try roundTrip(UInt8.self) { UInt8($0 % 256) }
        try roundTrip(Int32.self) { Int32($0) - 100_000 }
        try roundTrip(Int64.self) { Int64($0) * 1_000_000_007 }
    }

    func testAttributesRoundTrip() throws {
        let path = dir + "/attrs.h5"
        let w = try H5Writer(path: path)
        let attrs: [String: AttributeValue] = [
            "s": .string("héllo"), "i": .int(-42), "d": .double(0.1), "ss": .strings(["a", "bcd", ""]),
            "ii": .ints([1, 2, Int64.max]), "dd": .doubles([1.5, -2.25]), "empty": .string(""),
        ]
        try w.setAttributes(attrs)
        try w.write("/x", [Float](repeating: 1, count: 4), shape: [4])
        try w.setAttribute("unit", .string("seconds"), on: "/x")
        try w.setAttribute("n", .int(3), on: "/grp")
        try w.commit()
        let r = try H5Reader(path: path)
        var root = try r.attributes()
        XCTAssertNotNil(root.removeValue(forKey: "checksums"), "every file names its checksum scheme")
        XCTAssertEqual(root, attrs)
        XCTAssertEqual(try r.attribute("unit", on: "/x"), .string("seconds"))
        XCTAssertEqual(try r.attribute("n", on: "/grp"), .int(3))
    }

    func testStringDatasetRoundTrip() throws {
        let path = dir + "/strings.h5"
        let w = try H5Writer(path: path)
        try w.writeStrings("/config", ["line one", "", "ünïcode line"])
        try w.commit()
        XCTAssertEqual(try H5Reader(path: path).readStrings("/config"), ["line one", "", "ünïcode line"])
    }

    func testTwoWritesOfSameContentAreByteIdentical() throws {
        func write(_ path: String) throws {
            let w = try H5Writer(path: path)
            try w.setAttributes(["stage": .string("test"), "seed": .int(7)])
            try w.write("/a/b", (0..<1000).map { Float($0) }, shape: [10, 100], compress: true)
            try w.write("/labels", [UInt8](repeating: 3, count: 64), shape: [64])
            try w.commit()
        }
        try write(dir + "/one.h5")
        usleep(1_100_000)  // object time stamps have a 1 s resolution: make a leak visible
        try write(dir + "/two.h5")
        XCTAssertEqual(try sha256Hex(ofFile: dir + "/one.h5"), try sha256Hex(ofFile: dir + "/two.h5"))
    }

    func testWriteIsAtomic() throws {
        let path = dir + "/atomic.h5"
        let w = try H5Writer(path: path)
        try w.write("/x", [Float(1)], shape: [1])
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "final file must not exist before commit")
        XCTAssertTrue(FileManager.default.fileExists(atPath: w.temporaryPath))
        w.discard()
        XCTAssertFalse(FileManager.default.fileExists(atPath: w.temporaryPath), "discard leaves nothing")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }

    func testUncommittedWriterLeavesNothing() throws {
        do {
            let w = try H5Writer(path: dir + "/dropped.h5")
            try w.write("/x", [Float(1)], shape: [1])
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }

    func testErrorsNameFilePathAndExpectation() throws {
        let path = dir + "/err.h5"
        let w = try H5Writer(path: path)
        try w.write("/x", [Float](repeating: 0, count: 6), shape: [2, 3])
        try w.commit()
        let r = try H5Reader(path: path)
        XCTAssertThrowsError(try r.read("/missing", as: Float.self)) { error in
            XCTAssertEqual("\(error)", "\(path): /missing: missing dataset")
        }
        XCTAssertThrowsError(try r.read("/x", as: Int64.self)) { error in
            XCTAssertEqual("\(error)", "\(path): /x: expected dtype int64, found float32")
        }
        XCTAssertThrowsError(try r.read("/x", as: Float.self, shape: [3, 2])) { error in
            XCTAssertEqual("\(error)", "\(path): /x: expected shape [3, 2], found [2, 3]")
        }
        XCTAssertNoThrow(try r.read("/x", as: Float.self, shape: [-1, 3]))
        XCTAssertThrowsError(try r.attribute("nope")) { error in
            XCTAssertEqual("\(error)", "\(path): /: missing attribute 'nope'")
        }
        XCTAssertThrowsError(try H5Reader(path: dir + "/absent.h5")) { error in
            XCTAssertEqual("\(error)", "\(dir!)/absent.h5: file does not exist")
        }
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/text.h5", contents: Data("not hdf5".utf8)))
        XCTAssertThrowsError(try H5Reader(path: dir + "/text.h5")) { error in
            XCTAssertEqual("\(error)", "\(dir!)/text.h5: not an HDF5 file (8 bytes, no HDF5 signature at its start)")
        }
        XCTAssertThrowsError(try H5Writer(path: dir + "/no/such/folder/out.h5")) { error in
            XCTAssertTrue("\(error)".contains("does not exist"), "\(error)")
        }
        let w2 = try H5Writer(path: dir + "/shape.h5")
        XCTAssertThrowsError(try w2.write("/y", [Float(1), 2, 3], shape: [2, 2]))
        w2.discard()
    }

    /// created_utc is the time of writing, or SOURCE_DATE_EPOCH's when it is set (reproducible files).
    func testCreationTimeFollowsSourceDateEpoch() throws {
        setenv("SOURCE_DATE_EPOCH", "0", 1)
        defer { unsetenv("SOURCE_DATE_EPOCH") }
        let p = try Provenance(stage: "test", configuration: "{}")
        guard case .string(let created) = p.attributes["created_utc"] else { return XCTFail("no created_utc") }
        XCTAssertEqual(created, "1970-01-01T00:00:00Z")
        unsetenv("SOURCE_DATE_EPOCH")
        guard case .string(let now) = try Provenance(stage: "test", configuration: "{}").attributes["created_utc"] else {
            return XCTFail("no created_utc")
        }
        XCTAssertNotEqual(now, created)
    }

    func testProvenanceIsRecorded() throws {
        let input = dir + "/input.bin"
        XCTAssertTrue(FileManager.default.createFile(atPath: input, contents: Data("abc".utf8)))
        let path = dir + "/prov.h5"
        let w = try H5Writer(path: path)
        try Provenance(stage: "unit-test", configuration: "{\"k\": 1}", inputs: [input],
            libraries: ["onednn": "2.6.3"]).write(to: w)
        try w.commit()
        let attrs = try H5Reader(path: path).attributes()
        XCTAssertEqual(attrs["stage"], .string("unit-test"))
        XCTAssertEqual(attrs["schema_version"], .int(1))
        XCTAssertEqual(attrs["input_files"], .strings([input]))
        // SHA-256("abc"), FIPS 180-2 example.
        XCTAssertEqual(attrs["input_sha256"],
            .strings(["ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"]))
        XCTAssertNotNil(attrs["code_version"]?.stringValue)
        guard case .strings(let libs) = attrs["library_versions"] else { return XCTFail("library_versions") }
        XCTAssertTrue(libs.contains("onednn=2.6.3"))
        XCTAssertTrue(libs.contains { $0.hasPrefix("hdf5=1.") }, "\(libs)")
    }

    /// Other programs can read the files: HDF5's own h5dump prints our data and attributes.
    func testH5DumpReadsTheFile() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/h5dump") else {
            throw XCTSkip("h5dump (Debian hdf5-tools) is not installed; `make deps` installs it")
        }
        let path = dir + "/dump.h5"
        let w = try H5Writer(path: path)
        try w.write("/train/labels", [UInt8]([5, 0, 4]), shape: [3])
        try w.write("/w", [Float](arrayLiteral: 0.5, -1.25), shape: [2], compress: true)
        try w.setAttribute("stage", .string("decode"))
        try w.setAttribute("mean", .doubles([0.25]))
        try w.commit()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/h5dump")
        process.arguments = [path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertTrue(out.contains("(0): 5, 0, 4"), out)
        XCTAssertTrue(out.contains("(0): 0.5, -1.25"), out)
        XCTAssertTrue(out.contains("\"decode\""), out)
        XCTAssertTrue(out.contains("H5T_STD_U8LE"), out)
    }
}
