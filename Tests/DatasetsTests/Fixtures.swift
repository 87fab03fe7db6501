// Small fixtures in the real formats, written by the tests themselves: gzip (zlib deflate),
// IDX image/label files, CIFAR-10 binary batches and ustar tar archives; plus temp folders and an
// assertion that a failed decode names the file and problem and leaves nothing behind.
import CZlib
import Datasets
import Foundation
import Storage
import TestSupport
import XCTest

/// gzip-compresses `bytes` in memory with zlib (level 6, gzip wrapper).
func gzipBytes(_ bytes: [UInt8]) -> [UInt8] {
    var stream = z_stream()
    precondition(shim_deflateInit2(&stream, 6, 16 + MAX_WBITS) == Z_OK)
    defer { deflateEnd(&stream) }
    var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))) + 64)
    var input = bytes
    let written = input.withUnsafeMutableBufferPointer { inp in
        output.withUnsafeMutableBufferPointer { out -> Int in
            stream.next_in = inp.baseAddress
            stream.avail_in = UInt32(inp.count)
            stream.next_out = out.baseAddress
            stream.avail_out = UInt32(out.count)
            precondition(deflate(&stream, Z_FINISH) == Z_STREAM_END)
            return out.count - Int(stream.avail_out)
        }
    }
    return Array(output[0..<written])
}

func bigEndian32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8((v >> (24 - 8 * $0)) & 0xFF) } }

/// Pixel j of fixture image i: a fixed pattern so decoded content can be compared exactly.
func fixturePixel(_ i: Int, _ j: Int) -> UInt8 { UInt8((i * 31 + j * 7 + (j / 28) * 3) & 0xFF) }

/// An IDX image file: magic 0x00000803, count, 28, 28, then `pixelCount ?? count*784` pixel bytes.
func idxImages(
    count: Int, magic: Int = 0x0803, rows: Int = 28, cols: Int = 28, pixelCount: Int? = nil
)
    -> [UInt8]
{
    var bytes = bigEndian32(magic) + bigEndian32(count) + bigEndian32(rows) + bigEndian32(cols)
    let n = pixelCount ?? count * rows * cols
    bytes += (0..<n).map { fixturePixel($0 / (rows * cols), $0 % (rows * cols)) }
    return bytes
}

/// An IDX label file: magic 0x00000801, count, labels.
func idxLabels(_ labels: [UInt8], declaredCount: Int? = nil) -> [UInt8] {
    bigEndian32(0x0801) + bigEndian32(declaredCount ?? labels.count) + labels
}

func fixtureLabels(_ count: Int, offset: Int = 0) -> [UInt8] {
    (0..<count).map { UInt8(($0 + offset) % 10) }
}

/// Writes the four MNIST .gz files (train 20, test 10 by default); `replace` swaps in the given
/// file content (already compressed or not, as the test wants) for a file name.
func writeMNISTFixture(
    in dir: String, train: Int = 20, test: Int = 10, replace: [String: [UInt8]] = [:]
) {
    let contents: [String: [UInt8]] = [
        "train-images-idx3-ubyte.gz": gzipBytes(idxImages(count: train)),
        "train-labels-idx1-ubyte.gz": gzipBytes(idxLabels(fixtureLabels(train))),
        "t10k-images-idx3-ubyte.gz": gzipBytes(idxImages(count: test)),
        "t10k-labels-idx1-ubyte.gz": gzipBytes(idxLabels(fixtureLabels(test, offset: 3))),
    ].merging(replace) { $1 }
    for (name, bytes) in contents { writeFile(dir + "/" + name, bytes) }
}

// MARK: - CIFAR-10

/// One CIFAR-10 binary batch: `records` records of label + 3072 pixels; pixel value depends on
/// (batch, record, position) so order and placement can be checked.
func cifarBatch(_ batch: Int, records: Int, label: (Int) -> UInt8 = { UInt8($0 % 10) }) -> [UInt8] {
    var bytes: [UInt8] = []
    for r in 0..<records {
        bytes.append(label(r))
        bytes += (0..<3072).map { cifarPixel(batch, r, $0) }
    }
    return bytes
}

func cifarPixel(_ batch: Int, _ record: Int, _ j: Int) -> UInt8 {
    UInt8((batch * 53 + record * 17 + j * 5 + (j / 1024) * 11) & 0xFF)
}

/// The six batch members under cifar-10-batches-bin/, as in the official archive.
func cifarMembers(records: Int) -> [(String, [UInt8])] {
    cifar10BatchNames.enumerated().map {
        ("cifar-10-batches-bin/" + $0.element, cifarBatch($0.offset, records: records))
    }
        + [("cifar-10-batches-bin/batches.meta.txt", Array("airplane\nautomobile\n".utf8))]
}

/// A POSIX ustar archive (names up to 100 bytes) with a folder entry and end-of-archive blocks.
func ustarArchive(_ members: [(String, [UInt8])]) -> [UInt8] {
    var out = ustarHeader(name: "cifar-10-batches-bin/", size: 0, type: "5")
    for (name, data) in members {
        out += ustarHeader(name: name, size: data.count, type: "0") + data
        out += [UInt8](repeating: 0, count: (512 - data.count % 512) % 512)
    }
    return out + [UInt8](repeating: 0, count: 1024)
}

private func ustarHeader(name: String, size: Int, type: Character) -> [UInt8] {
    var h = [UInt8](repeating: 0, count: 512)
    func put(_ s: String, at offset: Int) {
        for (i, b) in s.utf8.enumerated() { h[offset + i] = b }
    }
    func octal(_ v: Int, width: Int) -> String {
        let digits = String(v, radix: 8)
        return String(repeating: "0", count: width - 1 - digits.count) + digits
    }
    put(name, at: 0)
    put(octal(0o644, width: 8), at: 100)
    put(octal(0, width: 8), at: 108)
    put(octal(0, width: 8), at: 116)
    put(octal(size, width: 12), at: 124)
    put(octal(1_256_000_000, width: 12), at: 136)
    put("        ", at: 148)
    h[156] = type.asciiValue!
    put("ustar", at: 257)
    put("00", at: 263)
    let sum = h.reduce(0) { $0 + Int($1) }
    put(octal(sum, width: 7), at: 148)
    h[155] = 32
    return h
}

// MARK: - Files and folders

func writeFile(_ path: String, _ bytes: [UInt8]) {
    precondition(
        FileManager.default.createFile(atPath: path, contents: Data(bytes)), "cannot write \(path)")
}

func readFile(_ path: String) -> [UInt8] {
    [UInt8](FileManager.default.contents(atPath: path) ?? Data())
}

/// A fresh folder under the system temp folder (removed by the test that made it).
func makeTemporaryFolder(_ label: String) -> String { try! TemporaryFolder("datasets-\(label)").path }

func folderEntries(_ path: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
}

/// The repository root, found from this file's location (Tests/DatasetsTests/Fixtures.swift).
func repositoryRoot(_ file: String = #filePath) -> String {
    URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
}

/// Runs `body`, which must throw an error whose printed form contains every fragment; then checks
/// that `outputFolder` holds exactly `remaining` (no output, no temporary file).
func assertFails(
    _ fragments: [String], leaving outputFolder: String, remaining: [String] = [],
    file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void
) {
    do {
        try body()
        XCTFail("expected an error containing \(fragments)", file: file, line: line)
    } catch {
        let text = failureLines(for: error).joined(separator: "\n")
        XCTAssertTrue(
            error is DatasetError || error is DatasetErrors || error is StorageError,
            "unexpected error type \(type(of: error)): \(text)", file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(
                text.contains(fragment), "error \"\(text)\" lacks \"\(fragment)\"", file: file,
                line: line)
        }
        XCTAssertTrue(text.hasPrefix("error: "), file: file, line: line)
    }
    XCTAssertEqual(
        folderEntries(outputFolder), remaining.sorted(), "files left behind", file: file, line: line
    )
}
