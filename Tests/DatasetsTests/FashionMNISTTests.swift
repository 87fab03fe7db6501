// Fashion-MNIST: the copy from the system folder verified by content digest (fixtures standing in for Debian's
// files, with their own digests), the messages for a wrong or missing file, the decode through MNIST's reader,
// and — where Debian's package is installed — the real files against the pinned sums.
import Crypto
import Datasets
import Storage
import XCTest

final class FashionMNISTTests: XCTestCase {
    var system = "", raw = "", out = ""

    override func setUp() {
        system = makeTemporaryFolder("fashion-system")
        raw = makeTemporaryFolder("fashion-raw")
        out = makeTemporaryFolder("fashion-out")
    }

    override func tearDown() {
        for folder in [system, raw, out] { try? FileManager.default.removeItem(atPath: folder) }
    }

    /// The fixture files' content digests, as the pinned sums are for the real files.
    private func fixtureDigests() throws -> [String: String] {
        var digests: [String: String] = [:]
        for name in mnistFileNames {
            let bytes = try gunzip(file: system + "/" + name)
            digests[name] = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        }
        return digests
    }

    func testMissingFilesAreCopiedFromTheSystemFolderAndVerified() throws {
        writeMNISTFixture(in: system)
        let digests = try fixtureDigests()
        let report = try fetchFashionMNIST(rawDir: raw + "/nested", systemDir: system, contentSHA256: digests)
        XCTAssertEqual(report.downloaded.count, 4)
        XCTAssertEqual(folderEntries(raw + "/nested"), mnistFileNames.sorted())
        // A second fetch verifies what is there and copies nothing.
        let again = try fetchFashionMNIST(rawDir: raw + "/nested", systemDir: "/nonexistent", contentSHA256: digests)
        XCTAssertEqual(again.verified.count, 4)
        XCTAssertEqual(again.downloaded, [])
    }

    func testTheSameContentRecompressedStillPasses() throws {
        writeMNISTFixture(in: system)
        let digests = try fixtureDigests()
        // Another gzip stream of the same bytes (an extra empty member): the .gz differs, the content does not.
        let name = "train-labels-idx1-ubyte.gz"
        writeFile(raw + "/" + name, readFile(system + "/" + name) + gzipBytes([]))
        XCTAssertNotEqual(readFile(raw + "/" + name), readFile(system + "/" + name))
        let report = try fetchFashionMNIST(rawDir: raw, systemDir: system, contentSHA256: digests)
        XCTAssertEqual(report.verified, [raw + "/" + name])
    }

    func testAWrongFileIsNamedAndKept() throws {
        writeMNISTFixture(in: system)
        let digests = try fixtureDigests()
        writeMNISTFixture(in: raw, train: 21)  // valid IDX files, other content
        assertFails(
            [raw + "/train-images-idx3-ubyte.gz: SHA-256 of the decompressed content is",
             "hint: this is not the official file"],
            leaving: raw, remaining: mnistFileNames
        ) { try fetchFashionMNIST(rawDir: raw, systemDir: system, contentSHA256: digests) }
    }

    func testNoFilesAnywhereSaysHowToGetThem() {
        assertFails(
            [raw + "/train-images-idx3-ubyte.gz: file is missing (and /nonexistent/train-images-idx3-ubyte.gz",
             "apt-get install dataset-fashion-mnist"],
            leaving: raw
        ) { try fetchFashionMNIST(rawDir: raw, systemDir: "/nonexistent") }
    }

    func testADamagedSystemFileIsNotCopied() throws {
        writeMNISTFixture(in: system)
        var digests = try fixtureDigests()
        digests["t10k-labels-idx1-ubyte.gz"] = String(repeating: "0", count: 64)
        assertFails(
            [system + "/t10k-labels-idx1-ubyte.gz: not the official file", "--reinstall dataset-fashion-mnist"],
            leaving: raw, remaining: mnistFileNames.filter { $0 != "t10k-labels-idx1-ubyte.gz" }
        ) { try fetchFashionMNIST(rawDir: raw, systemDir: system, contentSHA256: digests) }
    }

    func testDecodesThroughTheMNISTReaderAsFashionMNIST() throws {
        writeMNISTFixture(in: raw)
        try decodeFashionMNIST(rawDir: raw, output: out + "/f.h5", expectedTrainCount: 20, expectedTestCount: 10)
        let reader = try H5Reader(path: out + "/f.h5")
        XCTAssertEqual(try reader.shape(of: "/train/images"), [20, 28, 28])
        XCTAssertEqual(try reader.attributes(on: "/")["dataset"], .string("fashion-mnist"))
        // Bad input gets MNIST's checks and a Fashion-MNIST hint.
        try FileManager.default.removeItem(atPath: raw + "/t10k-images-idx3-ubyte.gz")
        assertFails([raw + "/t10k-images-idx3-ubyte.gz: file is missing", "ste fetch fashion-mnist"],
                    leaving: out, remaining: ["f.h5"]) {
            try decodeFashionMNIST(rawDir: raw, output: out + "/g.h5", expectedTrainCount: 20, expectedTestCount: 10)
        }
    }

    func testCommittedSumsFileHoldsThePinnedSums() throws {
        let text = try String(contentsOfFile: repositoryRoot() + "/data/raw/fashion-mnist/SHA256SUMS", encoding: .utf8)
        let lines = text.split(separator: "\n").filter { !$0.hasPrefix("#") }
        XCTAssertEqual(lines, mnistFileNames.map { Substring("\(fashionMNISTContentSHA256[$0]!)  \($0)") })
    }

    func testDebiansPackageMatchesThePinnedSums() throws {
        guard FileManager.default.fileExists(atPath: fashionMNISTSystemDir + "/train-images-idx3-ubyte.gz") else {
            throw XCTSkip("Debian's dataset-fashion-mnist is not installed (make deps installs it)")
        }
        let report = try fetchFashionMNIST(rawDir: raw)
        XCTAssertEqual(report.downloaded.count, 4)
    }
}
