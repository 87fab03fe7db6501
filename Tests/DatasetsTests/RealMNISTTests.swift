// The real, vendored MNIST (data/raw/mnist, found from this file's path): decoded counts, labels
// and statistics match the published values, and decoding is byte-reproducible (at a fixed SOURCE_DATE_EPOCH).
import Datasets
import Storage
import XCTest

final class RealMNISTTests: XCTestCase {
    func testVendoredMNISTDecodesToThePublishedValues() throws {
        let raw = repositoryRoot() + "/data/raw/mnist"
        let out = makeTemporaryFolder("real")
        defer { try? FileManager.default.removeItem(atPath: out) }
        // The files record when they were made (provenance created_utc): one fixed time, so that two decodes that
        // straddle a second are still the same bytes.
        setenv("SOURCE_DATE_EPOCH", "1765000000", 1)
        defer { unsetenv("SOURCE_DATE_EPOCH") }
        try decodeMNIST(rawDir: raw, output: out + "/a.h5")
        try decodeMNIST(rawDir: raw, output: out + "/b.h5")
        XCTAssertEqual(try sha256Hex(ofFile: out + "/a.h5"), try sha256Hex(ofFile: out + "/b.h5"))
        XCTAssertEqual(folderEntries(out), ["a.h5", "b.h5"])

        let data = try loadDataset(path: out + "/a.h5")
        func classCounts(_ labels: [UInt8]) -> [Int] {
            labels.reduce(into: [Int](repeating: 0, count: 10)) { $0[Int($1)] += 1 }
        }
        XCTAssertEqual(data.train.count, 60000)
        XCTAssertEqual(data.test.count, 10000)
        XCTAssertEqual(
            classCounts(data.train.labels),
            [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
        XCTAssertEqual(
            classCounts(data.test.labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
        XCTAssertEqual(Array(data.train.labels.prefix(10)), [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
        XCTAssertEqual(Array(data.test.labels.prefix(10)), [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
        XCTAssertEqual(data.mean[0], 0.1307, accuracy: 0.00005)
        XCTAssertEqual(data.std[0], 0.3081, accuracy: 0.00005)
        XCTAssertEqual(data.train.images.count, 60000 * 784)

        let reader = try H5Reader(path: out + "/a.h5")
        guard case .strings(let sums) = try reader.attribute("input_sha256") else {
            return XCTFail("no input_sha256")
        }
        XCTAssertEqual(sums, mnistFileNames.map { mnistSHA256[$0]! })
    }
}
