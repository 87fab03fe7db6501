// fetchMNIST / fetchCIFAR10 without a network: checksums of present files, downloads through
// curl from file:// URLs (real subprocess, local files), failed downloads, and the messages.
import Datasets
import Storage
import XCTest

final class FetchTests: XCTestCase {
    var raw = ""
    let vendored = repositoryRoot() + "/data/raw/mnist"

    override func setUp() { raw = makeTemporaryFolder("fetch") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: raw) }

    private func neverDownload(_ url: String, _ to: String) throws {
        XCTFail("unexpected download of \(url)")
    }

    func testVendoredMNISTPassesWithoutDownloading() throws {
        let report = try fetchMNIST(rawDir: vendored, download: neverDownload)
        XCTAssertEqual(report.verified, mnistFileNames.map { vendored + "/" + $0 })
        XCTAssertEqual(report.downloaded, [])
    }

    func testCheckedInSHA256SUMSMatchesThePinnedSums() throws {
        let text = try String(contentsOfFile: vendored + "/SHA256SUMS", encoding: .utf8)
        XCTAssertEqual(text, mnistSHA256SumsText)
        XCTAssertEqual(
            mnistSHA256["train-images-idx3-ubyte.gz"],
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609")
    }

    func testChecksumMismatchIsReportedAndTheFileKept() throws {
        writeMNISTFixture(in: raw)  // small, valid files that are not the official ones
        assertFails(
            [
                raw + "/train-images-idx3-ubyte.gz: SHA-256 mismatch: expected 440fcabf",
                raw + "/t10k-labels-idx1-ubyte.gz: SHA-256 mismatch",
                "hint: this is not the official file",
            ],
            leaving: raw, remaining: mnistFileNames
        ) {
            try fetchMNIST(rawDir: raw, download: neverDownload)
        }
    }

    func testMissingFilesAreDownloadedWithCurlAndVerified() throws {
        try FileManager.default.copyItem(
            atPath: vendored + "/t10k-labels-idx1-ubyte.gz",
            toPath: raw + "/t10k-labels-idx1-ubyte.gz")
        let target = raw + "/nested/mnist"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let report = try fetchMNIST(rawDir: target, mirrors: ["file://\(vendored)/"])
        XCTAssertEqual(report.downloaded.count, 4)
        XCTAssertEqual(folderEntries(target), mnistFileNames.sorted())
        for name in mnistFileNames {
            XCTAssertEqual(try sha256Hex(ofFile: target + "/" + name), mnistSHA256[name])
        }
    }

    func testUnreachableMirrorsNameEachMissingFileAndWhereToPutIt() throws {
        var calls: [String] = []
        let failing: Downloader = { url, to in
            calls.append(url)
            writeFile(to, [1, 2, 3])  // a partial download must not survive
            throw DatasetError(file: url, "Could not resolve host")
        }
        try FileManager.default.copyItem(
            atPath: vendored + "/train-labels-idx1-ubyte.gz",
            toPath: raw + "/train-labels-idx1-ubyte.gz")
        assertFails(
            [
                "error: \(raw)/train-images-idx3-ubyte.gz: file is missing and could not be downloaded "
                    + "(https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz: Could not resolve host",
                "hint: on a machine with network access download "
                    + "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz and put it at "
                    + "\(raw)/t10k-images-idx3-ubyte.gz",
                "error: \(raw)/t10k-labels-idx1-ubyte.gz: file is missing",
            ], leaving: raw, remaining: ["train-labels-idx1-ubyte.gz"]
        ) {
            try fetchMNIST(rawDir: raw, download: failing)
        }
        // every mirror is tried for the first missing file, then no more waiting on the network
        XCTAssertEqual(calls, mnistMirrors.map { $0 + "train-images-idx3-ubyte.gz" })
    }

    func testCurlFailureIsReported() {
        assertFails(
            [
                "file is missing and could not be downloaded (file:///nonexistent-mirror/"
                    + "train-images-idx3-ubyte.gz: curl: (37)"
            ], leaving: raw
        ) {
            try fetchMNIST(rawDir: raw, mirrors: ["file:///nonexistent-mirror/"])
        }
    }

    func testDownloadWithTheWrongContentIsDeleted() {
        let wrong: Downloader = { _, to in writeFile(to, [9, 9, 9]) }
        assertFails(
            [
                "train-images-idx3-ubyte.gz: the file downloaded from",
                "is not the official one: SHA-256 mismatch",
            ],
            leaving: raw
        ) {
            try fetchMNIST(rawDir: raw, download: wrong)
        }
    }

    // MARK: - CIFAR-10

    func testCIFARArchiveIsVerifiedByMD5() throws {
        let bytes = gzipBytes(ustarArchive(cifarMembers(records: 2)))
        writeFile(raw + "/cifar-10-binary.tar.gz", bytes)
        let md5 = try md5Hex(ofFile: raw + "/cifar-10-binary.tar.gz")
        let report = try fetchCIFAR10(rawDir: raw, md5: md5, download: neverDownload)
        XCTAssertEqual(report.verified, [raw + "/cifar-10-binary.tar.gz"])
        assertFails(
            [
                raw
                    + "/cifar-10-binary.tar.gz: MD5 mismatch: expected c32a1d4ab5d03f1284b67883e8d87530, found \(md5)"
            ],
            leaving: raw, remaining: ["cifar-10-binary.tar.gz"]
        ) {
            try fetchCIFAR10(rawDir: raw, download: neverDownload)
        }
    }

    func testMissingCIFARArchiveSaysWhatToDo() {
        assertFails(
            [
                raw + "/cifar-10-binary.tar.gz: file is missing and could not be downloaded",
                "hint: on a machine with network access download https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz "
                    + "and put it at \(raw)/cifar-10-binary.tar.gz; without it the CIFAR-10 experiments are skipped",
            ],
            leaving: raw
        ) {
            try fetchCIFAR10(
                rawDir: raw, download: { url, _ in throw DatasetError(file: url, "no network") })
        }
    }

    func testCIFARArchiveIsDownloadedWithCurl() throws {
        let source = makeTemporaryFolder("mirror")
        defer { try? FileManager.default.removeItem(atPath: source) }
        let bytes = gzipBytes(ustarArchive(cifarMembers(records: 2)))
        writeFile(source + "/archive.tar.gz", bytes)
        let md5 = try md5Hex(ofFile: source + "/archive.tar.gz")
        let report = try fetchCIFAR10(rawDir: raw, url: "file://\(source)/archive.tar.gz", md5: md5)
        XCTAssertEqual(report.downloaded, [raw + "/cifar-10-binary.tar.gz"])
        XCTAssertEqual(readFile(raw + "/cifar-10-binary.tar.gz"), bytes)
        XCTAssertEqual(folderEntries(raw), ["cifar-10-binary.tar.gz"])
    }
}
