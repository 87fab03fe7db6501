// A small tar reader for the CIFAR-10 archive: walks the members of a ustar / GNU tar stream
// (here coming out of a GzipReader) one header at a time, reading or skipping each member's data.
// Header checksums are verified; GNU long names ('L') and pax 'path'/'size' records ('x') are
// honoured; sizes in octal or GNU base-256.

/// One member of a tar archive.
struct TarEntry {
    let name: String
    let size: Int
    /// Type flag: "0" or NUL for a regular file, "5" for a folder, ...
    let type: UInt8
    var isRegularFile: Bool { type == UInt8(ascii: "0") || type == 0 }
}

final class TarReader {
    private let source: GzipReader
    private let archive: String
    /// Bytes of the current member (data + padding) not yet consumed.
    private var unread = 0
    private var headerOffset = 0

    init(_ source: GzipReader, archive: String) {
        self.source = source
        self.archive = archive
    }

    /// The next member, or nil at the end of the archive.
    func next() throws -> TarEntry? {
        try skip(unread)
        unread = 0
        var longName: String?
        var paxSize: Int?
        while true {
            headerOffset = source.position
            var header = [UInt8](repeating: 0, count: 512)
            let n = try header.withUnsafeMutableBytes { try source.read(into: $0) }
            if n == 0 { return nil }  // no end-of-archive blocks: accept the end of data
            guard n == 512 else { throw error("archive ends inside a member header") }
            if header.allSatisfy({ $0 == 0 }) { return nil }
            try checkChecksum(header)
            let size = try parseSize(header)
            let type = header[156]
            switch type {
            case UInt8(ascii: "L"):  // GNU: the data is the next member's long name
                longName = cString(try readPadded(size))
            case UInt8(ascii: "x"):  // pax extended header for the next member
                let records = parsePax(try readPadded(size))
                if let path = records["path"] { longName = path }
                if let s = records["size"].flatMap({ Int($0) }) { paxSize = s }
            case UInt8(ascii: "g"):
                _ = try readPadded(size)
            default:
                let entrySize = paxSize ?? size
                unread = padded(entrySize)
                return TarEntry(name: longName ?? headerName(header), size: entrySize, type: type)
            }
        }
    }

    /// The data of the member `next()` just returned (call at most once per member).
    func readData(_ entry: TarEntry) throws -> [UInt8] {
        precondition(unread == padded(entry.size), "TarReader.readData: data already consumed")
        let data = try readPadded(entry.size)
        unread = 0
        return data
    }

    // MARK: - Header fields

    private func readPadded(_ size: Int) throws -> [UInt8] {
        var data = [UInt8](repeating: 0, count: size)
        let n = try data.withUnsafeMutableBytes { try source.read(into: $0) }
        guard n == size else { throw error("archive ends inside a member's data") }
        try skip(padded(size) - size)
        return data
    }

    private func skip(_ count: Int) throws {
        guard try source.skip(count) == count else {
            throw error("archive ends inside a member's data")
        }
    }

    private func padded(_ size: Int) -> Int { (size + 511) / 512 * 512 }

    private func checkChecksum(_ header: [UInt8]) throws {
        let stored = parseOctal(header[148..<156])
        var sum = 0
        for (i, b) in header.enumerated() { sum += (148..<156).contains(i) ? 32 : Int(b) }
        guard stored == sum else {
            throw error(
                "bad tar header checksum at offset \(headerOffset) (not a tar archive, or damaged)")
        }
    }

    private func parseSize(_ header: [UInt8]) throws -> Int {
        let field = header[124..<136]
        if field.first! & 0x80 != 0 {  // GNU base-256 for sizes of 8 GiB and more
            return field.dropFirst().reduce(0) { $0 << 8 | Int($1) }
        }
        guard let size = parseOctal(field) else {
            throw error("bad size field in tar header at offset \(headerOffset)")
        }
        return size
    }

    private func headerName(_ header: [UInt8]) -> String {
        let name = cString(header[0..<100])
        // POSIX ustar ("ustar\0") keeps a path prefix; GNU ("ustar  ") uses those bytes otherwise.
        if Array(header[257..<263]) == Array("ustar\0".utf8) {
            let prefix = cString(header[345..<500])
            if !prefix.isEmpty { return prefix + "/" + name }
        }
        return name
    }

    private func error(_ problem: String) -> DatasetError { DatasetError(file: archive, problem) }
}

/// Octal digits, optionally surrounded by spaces and ended by NUL/space; nil if malformed.
private func parseOctal(_ field: ArraySlice<UInt8>) -> Int? {
    var value = 0
    var digits = 0
    for b in field {
        if b == 0 || (b == 32 && digits > 0) { break }
        if b == 32 { continue }
        guard (48...55).contains(b) else { return nil }
        value = value * 8 + Int(b - 48)
        digits += 1
    }
    return digits > 0 ? value : nil
}

private func cString<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
}

/// pax records: "<length> <key>=<value>\n" repeated.
private func parsePax(_ data: [UInt8]) -> [String: String] {
    var result: [String: String] = [:]
    for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
        guard let space = line.firstIndex(of: " ") else { continue }
        let record = line[line.index(after: space)...]
        guard let eq = record.firstIndex(of: "=") else { continue }
        result[String(record[..<eq])] = String(record[record.index(after: eq)...])
    }
    return result
}
