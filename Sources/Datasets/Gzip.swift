// Streaming gzip decompression with the system zlib (no subprocess).
// `GzipReader` hands out the decompressed bytes of a .gz file piece by piece (1 MiB of compressed
// input read at a time); `gunzip(file:)` collects a whole file. A damaged or cut-off stream throws
// a DatasetError naming the file; multi-member files (concatenated gzip streams) are read whole.
import CZlib
import Foundation

public final class GzipReader {
    public let path: String
    private let file: UnsafeMutablePointer<FILE>
    // zlib keeps a back-pointer to its z_stream, so the stream lives at a fixed address.
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private let inputCapacity = 1 << 20
    private let input: UnsafeMutablePointer<UInt8>
    private var finished = false
    /// Decompressed bytes handed out so far.
    public private(set) var position = 0

    public init(path: String) throws {
        self.path = path
        guard let f = fopen(path, "rb") else {
            throw DatasetError(file: path, "cannot open: " + String(cString: strerror(errno)))
        }
        file = f
        input = .allocate(capacity: inputCapacity)
        stream.initialize(to: z_stream())
        guard shim_inflateInit2(stream, 16 + MAX_WBITS) == Z_OK else {
            fclose(f)
            input.deallocate()
            stream.deallocate()
            throw DatasetError(file: path, "zlib could not start a gzip decoder")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
        input.deallocate()
        fclose(file)
    }

    /// Fills `buffer` completely unless the data ends first; returns the number of bytes written
    /// (less than `buffer.count` only at the end of the data).
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return 0 }
        var produced = 0
        while produced < buffer.count && !finished {
            if stream.pointee.avail_in == 0 {
                let n = fread(input, 1, inputCapacity, file)
                if n == 0 {
                    if ferror(file) != 0 { throw DatasetError(file: path, "read error") }
                    throw DatasetError(
                        file: path,
                        "corrupt gzip stream: compressed data ends early (truncated file?)")
                }
                stream.pointee.next_in = input
                stream.pointee.avail_in = UInt32(n)
            }
            let room = min(buffer.count - produced, Int(UInt32.max))
            stream.pointee.next_out = base + produced
            stream.pointee.avail_out = UInt32(room)
            let status = inflate(stream, Z_NO_FLUSH)
            produced += room - Int(stream.pointee.avail_out)
            switch status {
            case Z_OK, Z_BUF_ERROR:
                continue
            case Z_STREAM_END:
                try startNextMemberOrFinish()
            default:
                let reason =
                    stream.pointee.msg.map { String(cString: $0) } ?? "zlib status \(status)"
                throw DatasetError(file: path, "corrupt gzip stream: \(reason)")
            }
        }
        position += produced
        return produced
    }

    /// After one gzip member ends: stop at end of file, else decode the next member.
    private func startNextMemberOrFinish() throws {
        if stream.pointee.avail_in == 0 {
            let n = fread(input, 1, inputCapacity, file)
            if n == 0 {
                finished = true
                return
            }
            stream.pointee.next_in = input
            stream.pointee.avail_in = UInt32(n)
        }
        guard inflateReset(stream) == Z_OK else {
            throw DatasetError(file: path, "corrupt gzip stream: cannot restart after a member")
        }
    }

    /// Skips up to `count` decompressed bytes; returns how many were skipped (fewer only at the end).
    public func skip(_ count: Int) throws -> Int {
        var left = count
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { scratch.deallocate() }
        while left > 0 {
            let piece = UnsafeMutableRawBufferPointer(
                rebasing: scratch[0..<min(left, scratch.count)])
            let n = try read(into: piece)
            left -= n
            if n < piece.count { break }
        }
        return count - left
    }
}

/// The whole decompressed content of a gzip file.
public func gunzip(file path: String) throws -> [UInt8] {
    let reader = try GzipReader(path: path)
    var result: [UInt8] = []
    if let hint = gzipSizeHint(path) { result.reserveCapacity(hint) }
    let piece = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 16)
    defer { piece.deallocate() }
    while true {
        let n = try reader.read(into: piece)
        result.append(contentsOf: UnsafeRawBufferPointer(rebasing: piece[0..<n]))
        if n < piece.count { return result }
    }
}

/// The uncompressed size stored in a gzip trailer (modulo 2^32), used only to reserve memory.
private func gzipSizeHint(_ path: String) -> Int? {
    guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
    defer { try? handle.close() }
    guard let end = try? handle.seekToEnd(), end >= 18 else { return nil }
    try? handle.seek(toOffset: end - 4)
    guard let tail = try? handle.read(upToCount: 4), tail.count == 4 else { return nil }
    let size = tail.reversed().reduce(0) { $0 << 8 | Int($1) }
    return size + 1
}

/// Version of the linked zlib, recorded in the provenance of decoded files.
public var zlibVersionString: String { String(cString: zlibVersion()) }
