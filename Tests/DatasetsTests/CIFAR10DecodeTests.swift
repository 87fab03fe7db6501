// decodeCIFAR10 on small archives the tests write (ustar via the test's own writer, and GNU tar via
// the system `tar`), gzip-compressed: schema, record placement, and one test per kind of bad input.
import Datasets
import Storage
import XCTest

final class CIFAR10DecodeTests: XCTestCase {
    let records = 4
    var raw = "", out = ""
    var archive: String { raw + "/cifar-10-binary.tar.gz" }

    override func setUp() {
        raw = makeTemporaryFolder("raw")
        out = makeTemporaryFolder("out")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: raw)
        try? FileManager.default.removeItem(atPath: out)
    }

    private func writeArchive(_ members: [(String, [UInt8])]) {
        writeFile(archive, gzipBytes(ustarArchive(members)))
    }

    private func decode() throws {
        try decodeCIFAR10(archive: archive, output: out + "/cifar10.h5", recordsPerBatch: records)
    }

    /// Checks the decoded file against the fixture pattern (batch b record r → train image b*records+r).
    private func checkDecoded(_ path: String, file: StaticString = #filePath, line: UInt = #line)
        throws
    {
        let reader = try H5Reader(path: path)
        XCTAssertEqual(
            try reader.shape(of: "/train/images"), [5 * records, 3, 32, 32], file: file, line: line)
        XCTAssertEqual(
            try reader.shape(of: "/test/images"), [records, 3, 32, 32], file: file, line: line)
        XCTAssertEqual(try reader.stringAttribute("layout"), "NCHW", file: file, line: line)
        XCTAssertEqual(try reader.attribute("dataset"), .string("cifar10"), file: file, line: line)
        let data = try loadDataset(path: path)
        XCTAssertEqual(
            [data.train.count, data.train.channels, data.train.height, data.train.width],
            [20, 3, 32, 32], file: file, line: line)
        for batch in 0..<6 {
            let split = batch == 5 ? data.test : data.train
            let first = batch == 5 ? 0 : batch * records
            for r in 0..<records {
                let image = Array(split.images[(first + r) * 3072..<(first + r + 1) * 3072])
                XCTAssertEqual(
                    image, (0..<3072).map { cifarPixel(batch, r, $0) },
                    "batch \(batch) record \(r)",
                    file: file, line: line)
                XCTAssertEqual(split.labels[first + r], UInt8(r % 10), file: file, line: line)
            }
        }
        // per-channel statistics over the train pixels, computed the plain way
        XCTAssertEqual(data.mean.count, 3, file: file, line: line)
        for c in 0..<3 {
            var values: [Double] = []
            for i in 0..<data.train.count {
                values += data.train.images[(i * 3 + c) * 1024..<(i * 3 + c + 1) * 1024].map {
                    Double($0) / 255
                }
            }
            let mean = values.reduce(0, +) / Double(values.count)
            let variance =
                values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
            XCTAssertEqual(data.mean[c], mean, accuracy: 1e-12, file: file, line: line)
            XCTAssertEqual(
                data.std[c], variance.squareRoot(), accuracy: 1e-12, file: file, line: line)
        }
    }

    func testUstarFixtureDecodesInBatchOrder() throws {
        // members deliberately out of order: placement must follow the batch number
        writeArchive(cifarMembers(records: records).reversed())
        try decode()
        XCTAssertEqual(folderEntries(out), ["cifar10.h5"])
        try checkDecoded(out + "/cifar10.h5")
        let reader = try H5Reader(path: out + "/cifar10.h5")
        XCTAssertEqual(try reader.attribute("input_files"), .strings([archive]))
    }

    func testArchiveMadeBySystemTarWithLongNamesDecodes() throws {
        // GNU tar writes "ustar  " headers and ././@LongLink members for names over 100 bytes.
        let folder = "cifar-10-batches-bin-" + String(repeating: "x", count: 90)
        let staging = makeTemporaryFolder("staging")
        defer { try? FileManager.default.removeItem(atPath: staging) }
        try FileManager.default.createDirectory(
            atPath: staging + "/" + folder, withIntermediateDirectories: true)
        for (i, name) in cifar10BatchNames.enumerated() {
            writeFile(staging + "/" + folder + "/" + name, cifarBatch(i, records: records))
        }
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
        tar.arguments = ["--format=gnu", "-czf", archive, "-C", staging, folder]
        try tar.run()
        tar.waitUntilExit()
        XCTAssertEqual(tar.terminationStatus, 0)
        try decode()
        try checkDecoded(out + "/cifar10.h5")
    }

    func testBatchFileOfTheWrongSizeIsRejected() {
        var members = cifarMembers(records: records)
        members[2].1.removeLast()
        writeArchive(members)
        assertFails(
            [
                "cifar-10-binary.tar.gz: member cifar-10-batches-bin/data_batch_3.bin is 12291 bytes, "
                    + "expected 12292 (4 records of 3073 bytes)"
            ], leaving: out
        ) { try decode() }
    }

    func testRealBatchSizeIsRequiredByDefault() {
        writeArchive(cifarMembers(records: records))
        assertFails(
            ["data_batch_1.bin is 12292 bytes, expected 30730000 (10000 records of 3073 bytes)"],
            leaving: out
        ) {
            try decodeCIFAR10(archive: archive, output: out + "/cifar10.h5")
        }
    }

    func testLabelOutOfRangeIsRejected() {
        var members = cifarMembers(records: records)
        members[5].1 = cifarBatch(5, records: records) { $0 == 2 ? 10 : 0 }
        writeArchive(members)
        assertFails(
            [
                "cifar-10-binary.tar.gz: member cifar-10-batches-bin/test_batch.bin: record 2 has label 10, "
                    + "labels must be 0..<10"
            ], leaving: out
        ) { try decode() }
    }

    func testArchiveMissingABatchIsRejected() {
        var members = cifarMembers(records: records)
        members.remove(at: 3)
        writeArchive(members)
        assertFails(
            ["cifar-10-binary.tar.gz: archive has no data_batch_4.bin", "hint: use the official"],
            leaving: out
        ) { try decode() }
    }

    func testDuplicateBatchIsRejected() {
        var members = cifarMembers(records: records)
        members.append(members[0])
        writeArchive(members)
        assertFails(["cifar-10-binary.tar.gz: holds data_batch_1.bin twice"], leaving: out) {
            try decode()
        }
    }

    func testCorruptGzipStreamIsRejected() {
        var gz = gzipBytes(ustarArchive(cifarMembers(records: records)))
        for i in 30..<80 { gz[i] ^= 0xA5 }
        writeFile(archive, gz)
        assertFails(["cifar-10-binary.tar.gz: corrupt gzip stream"], leaving: out) { try decode() }
    }

    func testGzipThatIsNotATarIsRejected() {
        writeFile(archive, gzipBytes((0..<4096).map { UInt8($0 % 251) }))
        assertFails(["cifar-10-binary.tar.gz: bad tar header checksum at offset 0"], leaving: out) {
            try decode()
        }
    }

    func testArchiveCutInsideAMemberIsRejected() {
        let tar = ustarArchive(cifarMembers(records: records))
        // 20000: inside data_batch_2's data; 40000: inside data_batch_3's padding; 40448 + 100:
        // inside the next header.
        for cut in [20_000, 40_000, 40_548] {
            writeFile(archive, gzipBytes(Array(tar[0..<cut])))
            assertFails(["cifar-10-binary.tar.gz: archive ends inside"], leaving: out) {
                try decode()
            }
        }
    }

    func testMissingArchiveIsNamed() {
        assertFails(
            ["cifar-10-binary.tar.gz: file is missing", "hint: place the official"], leaving: out
        ) {
            try decode()
        }
    }

    // Root ignores permission bits: "not writable" is checked with a folder that does not exist.
    func testOutputInAFolderThatDoesNotExistFails() {
        writeArchive(cifarMembers(records: records))
        assertFails(["output folder \(out)/absent does not exist"], leaving: out) {
            try decodeCIFAR10(
                archive: archive, output: out + "/absent/cifar10.h5", recordsPerBatch: records)
        }
    }
}
