// Per-dataset checksums (Storage/H5Checksums.swift): a flipped bit in any dataset — chunked or scalar, data or
// strings — is an error naming the file and the dataset; files from before checksums still load and say so.
import Foundation
import TestSupport
import XCTest

@testable import Storage

final class ChecksumTests: XCTestCase {
    var temporary: TemporaryFolder!
    override func setUpWithError() throws { temporary = try TemporaryFolder("checksum-tests") }
    override func tearDownWithError() throws { temporary.remove() }

    /// Offsets in `path` of every occurrence of `pattern` (the bytes of a dataset as stored).
    private func offsets(of pattern: [UInt8], in path: String) throws -> [Int] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        return (0...(bytes.count - pattern.count)).filter { i in bytes[i..<(i + pattern.count)].elementsEqual(pattern) }
    }

    private func flip(_ path: String, at offset: Int, mask: UInt8 = 0x10) throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[offset] ^= mask
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    private func writeSample(_ path: String) throws {
        let w = try H5Writer(path: path)
        try w.write("/params/fc/weight", (0..<64).map { Float($0) + 0.123_456 }, shape: [8, 8])
        try w.write("/packed", (0..<64).map { Float($0) * 7.25 }, shape: [64], compress: true)
        try w.write("/epoch", [Int64(0x0102_0304_0506_0708)], shape: [])
        try w.writeStrings("/names", ["alpha-unique-marker", "beta"])
        try w.commit()
    }

    func testEveryDatasetCarriesAChecksumAndVerifies() throws {
        let path = temporary.path + "/ok.h5"
        try writeSample(path)
        let r = try H5Reader(path: path)
        XCTAssertTrue(r.carriesChecksums)
        XCTAssertEqual(try r.checksum(of: "/params/fc/weight"), .filter)
        XCTAssertEqual(try r.checksum(of: "/packed"), .filter)
        XCTAssertEqual(try r.checksum(of: "/names"), .filter)
        XCTAssertEqual(try r.checksum(of: "/epoch"), .attribute)
        XCTAssertEqual(try r.verifyAllChecksums().checked, 4)
    }

    func testAFlippedBitInAWeightIsNamed() throws {
        let path = temporary.path + "/w.h5"
        try writeSample(path)
        let weightBytes = (0..<4).flatMap { withUnsafeBytes(of: Float($0) + 0.123_456) { Array($0) } }
        let at = try offsets(of: weightBytes, in: path)
        XCTAssertEqual(at.count, 1, "the weights are stored once, uncompressed")
        try flip(path, at: at[0] + 5)
        let r = try H5Reader(path: path)
        XCTAssertThrowsError(try r.read("/params/fc/weight", as: Float.self)) { error in
            XCTAssertEqual("\(error)", "\(path): /params/fc/weight: checksum mismatch (the file changed after it was written)")
        }
        XCTAssertThrowsError(try r.verifyAllChecksums())
        XCTAssertEqual(try r.read("/packed", as: Float.self).values.count, 64, "other datasets still read")
    }

    func testAFlippedBitInAScalarOrAStringIsNamed() throws {
        let scalar = temporary.path + "/s.h5"
        try writeSample(scalar)
        let at = try offsets(of: withUnsafeBytes(of: Int64(0x0102_0304_0506_0708)) { Array($0) }, in: scalar)
        XCTAssertEqual(at.count, 1)
        try flip(scalar, at: at[0] + 2)
        XCTAssertThrowsError(try H5Reader(path: scalar).read("/epoch", as: Int64.self)) { error in
            XCTAssertTrue("\(error)".hasSuffix("/epoch: checksum mismatch (the file changed after it was written)"), "\(error)")
        }
        let strings = temporary.path + "/t.h5"
        try writeSample(strings)
        let marker = try offsets(of: Array("alpha-unique-marker".utf8), in: strings)
        XCTAssertEqual(marker.count, 1)
        try flip(strings, at: marker[0] + 3)
        XCTAssertThrowsError(try H5Reader(path: strings).readStrings("/names")) { error in
            XCTAssertTrue("\(error)".contains("/names: checksum mismatch"), "\(error)")
        }
    }

    func testFletcher32MatchesHDF5sFilter() throws {
        // The filter's checksum of a chunk is stored after the chunk's bytes: the same function over the same
        // bytes must give it, or scalars would be checked by another rule than everything else.
        let path = temporary.path + "/f.h5"
        let values: [Float] = [1.5, -2.25, 3.125]
        let w = try H5Writer(path: path)
        try w.write("/v", values, shape: [3])
        try w.commit()
        let raw = values.withUnsafeBytes { Array($0) }
        let at = try offsets(of: raw, in: path)
        XCTAssertEqual(at.count, 1)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let stored = bytes[(at[0] + raw.count)..<(at[0] + raw.count + 4)]
        let sum = raw.withUnsafeBytes { fletcher32($0) }
        // The filter appends it little-endian (UINT32ENCODE).
        XCTAssertEqual(Array(stored), [UInt8(sum & 0xFF), UInt8(sum >> 8 & 0xFF), UInt8(sum >> 16 & 0xFF), UInt8(sum >> 24)])
    }
}
