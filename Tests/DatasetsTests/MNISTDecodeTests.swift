// decodeMNIST on small fixtures the tests write in the real IDX/.gz formats: the output schema and
// content, and one test per kind of bad input (each must name the file and the problem and leave
// no output or temporary file).
import Datasets
import Storage
import XCTest

final class MNISTDecodeTests: XCTestCase {
    var raw = "", out = ""

    override func setUp() {
        raw = makeTemporaryFolder("raw")
        out = makeTemporaryFolder("out")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: raw)
        try? FileManager.default.removeItem(atPath: out)
    }

    private func decode(train: Int = 20, test: Int = 10) throws {
        try decodeMNIST(
            rawDir: raw, output: out + "/mnist.h5", expectedTrainCount: train,
            expectedTestCount: test)
    }

    func testFixtureDecodesToTheDocumentedSchema() throws {
        writeMNISTFixture(in: raw)
        let summary = try decodeMNIST(
            rawDir: raw, output: out + "/mnist.h5", expectedTrainCount: 20,
            expectedTestCount: 10)
        XCTAssertEqual(folderEntries(out), ["mnist.h5"])
        XCTAssertEqual(summary.trainCount, 20)

        let reader = try H5Reader(path: out + "/mnist.h5")
        XCTAssertEqual(try reader.shape(of: "/train/images"), [20, 28, 28])
        XCTAssertEqual(try reader.dtype(of: "/train/images"), .uint8)
        XCTAssertEqual(try reader.shape(of: "/test/images"), [10, 28, 28])
        XCTAssertEqual(try reader.shape(of: "/test/labels"), [10])
        let attributes = try reader.attributes(on: "/")
        XCTAssertEqual(attributes["dataset"], .string("mnist"))
        XCTAssertEqual(attributes["layout"], .string("NHW"))
        XCTAssertEqual(attributes["n_train"], .int(20))
        XCTAssertEqual(attributes["n_test"], .int(10))
        XCTAssertEqual(attributes["decoder_version"], .int(Int64(datasetDecoderVersion)))
        XCTAssertEqual(attributes["stage"], .string("decode"))
        guard case .strings(let inputs)? = attributes["input_files"] else {
            return XCTFail("no input_files")
        }
        XCTAssertEqual(inputs, mnistFileNames.map { raw + "/" + $0 })

        let data = try loadDataset(path: out + "/mnist.h5")
        XCTAssertEqual(data.train.images, Array(idxImages(count: 20)[16...]))
        XCTAssertEqual(data.train.labels, fixtureLabels(20))
        XCTAssertEqual(data.test.images, Array(idxImages(count: 10)[16...]))
        XCTAssertEqual(data.test.labels, fixtureLabels(10, offset: 3))
        XCTAssertEqual(
            [data.train.count, data.train.channels, data.train.height, data.train.width],
            [20, 1, 28, 28])
        // mean / std of pixels/255 computed here the plain way
        let pixels = data.train.images.map { Double($0) / 255 }
        let mean = pixels.reduce(0, +) / Double(pixels.count)
        let std = (pixels.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(pixels.count))
            .squareRoot()
        XCTAssertEqual(data.mean.count, 1)
        XCTAssertEqual(data.mean[0], mean, accuracy: 1e-12)
        XCTAssertEqual(data.std[0], std, accuracy: 1e-12)
        XCTAssertEqual(attributes["mean"], .doubles(data.mean))
    }

    func testConcatenatedGzipMembersAreReadWhole() throws {
        let idx = idxImages(count: 20)
        let split = 5000
        writeMNISTFixture(
            in: raw,
            replace: [
                "train-images-idx3-ubyte.gz":
                    gzipBytes(Array(idx[..<split])) + gzipBytes(Array(idx[split...]))
            ])
        try decode()
        XCTAssertEqual(try loadDataset(path: out + "/mnist.h5").train.images, Array(idx[16...]))
    }

    func testWrongIDXMagicIsRejected() {
        writeMNISTFixture(
            in: raw,
            replace: ["train-images-idx3-ubyte.gz": gzipBytes(idxImages(count: 20, magic: 0x0801))])
        assertFails(
            ["train-images-idx3-ubyte.gz: wrong IDX magic 0x00000801, expected 0x00000803"],
            leaving: out
        ) {
            try decode()
        }
    }

    func testLabelFileWithImageMagicIsRejected() {
        let labels = idxLabels(fixtureLabels(10))
        writeMNISTFixture(
            in: raw, replace: ["t10k-labels-idx1-ubyte.gz": gzipBytes([0, 0, 8, 3] + labels[4...])])
        assertFails(
            ["t10k-labels-idx1-ubyte.gz: wrong IDX magic 0x00000803, expected 0x00000801"],
            leaving: out
        ) {
            try decode()
        }
    }

    func testTruncatedImageFileIsRejected() {
        let short = idxImages(count: 20, pixelCount: 20 * 784 - 100)
        writeMNISTFixture(in: raw, replace: ["train-images-idx3-ubyte.gz": gzipBytes(short)])
        assertFails(
            [
                "train-images-idx3-ubyte.gz: truncated: header declares 20 images of 28×28 (15696 bytes)",
                "file holds 15596 bytes",
            ], leaving: out
        ) { try decode() }
    }

    func testTruncatedLabelFileIsRejected() {
        let short = idxLabels(fixtureLabels(7), declaredCount: 10)
        writeMNISTFixture(in: raw, replace: ["t10k-labels-idx1-ubyte.gz": gzipBytes(short)])
        assertFails(
            ["t10k-labels-idx1-ubyte.gz: truncated: header declares 10 labels"], leaving: out
        ) {
            try decode()
        }
    }

    func testTrailingBytesAreRejected() {
        writeMNISTFixture(
            in: raw,
            replace: ["train-images-idx3-ubyte.gz": gzipBytes(idxImages(count: 20) + [1, 2])])
        assertFails(["train-images-idx3-ubyte.gz: 2 bytes of trailing data"], leaving: out) {
            try decode()
        }
    }

    func testImageAndLabelCountsThatDisagreeAreRejected() {
        writeMNISTFixture(
            in: raw,
            replace: ["train-labels-idx1-ubyte.gz": gzipBytes(idxLabels(fixtureLabels(19)))])
        assertFails(
            [
                "train-labels-idx1-ubyte.gz: holds 19 labels but train-images-idx3-ubyte.gz holds 20 images"
            ],
            leaving: out
        ) { try decode() }
    }

    func testCountOtherThanTheExpectedIsRejected() {
        writeMNISTFixture(in: raw)
        assertFails(["train-images-idx3-ubyte.gz: holds 20 images, expected 60000"], leaving: out) {
            try decodeMNIST(rawDir: raw, output: out + "/mnist.h5")
        }
    }

    func testCorruptGzipStreamIsRejected() {
        var gz = gzipBytes(idxImages(count: 20))
        for i in 20..<60 { gz[i] ^= 0x5A }
        writeMNISTFixture(in: raw, replace: ["train-images-idx3-ubyte.gz": gz])
        assertFails(["train-images-idx3-ubyte.gz: corrupt gzip stream"], leaving: out) {
            try decode()
        }
    }

    func testCutOffGzipFileIsRejected() {
        let gz = gzipBytes(idxImages(count: 20))
        writeMNISTFixture(
            in: raw, replace: ["t10k-images-idx3-ubyte.gz": Array(gz[0..<(gz.count / 2)])])
        assertFails(
            ["t10k-images-idx3-ubyte.gz: corrupt gzip stream: compressed data ends early"],
            leaving: out
        ) {
            try decode()
        }
    }

    func testUncompressedFileInPlaceOfGzipIsRejected() {
        writeMNISTFixture(
            in: raw, replace: ["train-labels-idx1-ubyte.gz": idxLabels(fixtureLabels(20))])
        assertFails(
            ["train-labels-idx1-ubyte.gz: corrupt gzip stream: incorrect header check"],
            leaving: out
        ) {
            try decode()
        }
    }

    func testLabelOutOfRangeIsRejected() {
        var labels = fixtureLabels(20)
        labels[13] = 10
        writeMNISTFixture(
            in: raw, replace: ["train-labels-idx1-ubyte.gz": gzipBytes(idxLabels(labels))])
        assertFails(
            ["train-labels-idx1-ubyte.gz: label 13 is 10, labels must be 0..<10"], leaving: out
        ) {
            try decode()
        }
    }

    func testMissingFileIsNamed() throws {
        writeMNISTFixture(in: raw)
        try FileManager.default.removeItem(atPath: raw + "/t10k-labels-idx1-ubyte.gz")
        assertFails(
            ["t10k-labels-idx1-ubyte.gz: file is missing", "hint: run `ste fetch mnist"],
            leaving: out
        ) {
            try decode()
        }
    }

    // Tests run as root, which ignores permission bits, so "not writable" is checked with folders
    // that cannot hold a file at all: one that does not exist, and a regular file used as a folder.
    func testOutputInAFolderThatDoesNotExistFails() {
        writeMNISTFixture(in: raw)
        assertFails(
            ["\(out)/absent/mnist.h5: output folder \(out)/absent does not exist", "hint: create"],
            leaving: out
        ) {
            try decodeMNIST(
                rawDir: raw, output: out + "/absent/mnist.h5", expectedTrainCount: 20,
                expectedTestCount: 10)
        }
    }

    func testOutputUnderARegularFileFails() {
        writeMNISTFixture(in: raw)
        writeFile(out + "/plain-file", [1, 2, 3])
        assertFails(
            ["\(out)/plain-file/mnist.h5: output folder \(out)/plain-file does not exist"],
            leaving: out, remaining: ["plain-file"]
        ) {
            try decodeMNIST(
                rawDir: raw, output: out + "/plain-file/mnist.h5", expectedTrainCount: 20,
                expectedTestCount: 10)
        }
        XCTAssertEqual(readFile(out + "/plain-file"), [1, 2, 3])
    }

    func testFailedDecodeKeepsAnEarlierOutputUntouched() throws {
        writeMNISTFixture(in: raw)
        try decode()
        let before = try sha256Hex(ofFile: out + "/mnist.h5")
        writeMNISTFixture(
            in: raw,
            replace: ["train-labels-idx1-ubyte.gz": gzipBytes(idxLabels(fixtureLabels(19)))])
        assertFails(["holds 19 labels"], leaving: out, remaining: ["mnist.h5"]) { try decode() }
        XCTAssertEqual(try sha256Hex(ofFile: out + "/mnist.h5"), before)
    }

    func testLoadDatasetRejectsAFileThatIsNotADatasetFile() throws {
        let writer = try H5Writer(path: out + "/other.h5")
        try writer.write("/x", [Float(1)], shape: [1])
        try writer.commit()
        assertFails(
            ["other.h5: not a dataset file", "hint: decode it"], leaving: out,
            remaining: ["other.h5"]
        ) {
            _ = try loadDataset(path: out + "/other.h5")
        }
        assertFails(["absent.h5: file does not exist"], leaving: out, remaining: ["other.h5"]) {
            _ = try loadDataset(path: out + "/absent.h5")
        }
    }

    func testLoadDatasetRejectsMismatchedLabels() throws {
        let writer = try H5Writer(path: out + "/bad.h5")
        try writer.write("/train/images", [UInt8](repeating: 0, count: 2 * 4), shape: [2, 2, 2])
        try writer.write("/train/labels", [UInt8]([1, 2, 3]), shape: [3])
        try writer.setAttribute("layout", .string("NHW"))
        try writer.commit()
        assertFails(
            ["bad.h5: /train/labels: expected shape [2], found [3]"], leaving: out,
            remaining: ["bad.h5"]
        ) {
            _ = try loadDataset(path: out + "/bad.h5")
        }
    }
}
