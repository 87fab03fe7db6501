// The IDX format of the MNIST files (http://yann.lecun.com/exdb/mnist/): a 4-byte magic
// (0x00 0x00, type 0x08 = unsigned byte, number of dimensions), one big-endian UInt32 per
// dimension, then the items. Header, dimension count and exact file length are checked before any
// pixel is read.

/// The dimensions of an unsigned-byte IDX file whose magic and length have been checked.
struct IDXFile {
    /// [count] for labels, [count, rows, cols] for images.
    let dims: [Int]
    /// Offset of the first item byte.
    let dataOffset: Int
    var count: Int { dims[0] }
}

/// Magic number of an unsigned-byte IDX file with `rank` dimensions (0x00000801 labels, 0x00000803 images).
func idxMagic(rank: Int) -> UInt32 { 0x0000_0800 | UInt32(rank) }

/// Checks the magic, the header and that the file holds exactly the items its header declares.
func parseIDX(_ bytes: [UInt8], file: String, rank: Int, itemName: String) throws -> IDXFile {
    let headerSize = 4 + 4 * rank
    guard bytes.count >= headerSize else {
        throw DatasetError(
            file: file,
            "file is \(bytes.count) bytes, too short for an IDX header (\(headerSize) bytes)")
    }
    func word(_ i: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(bytes[i + $1]) }
    }
    let magic = word(0)
    guard magic == idxMagic(rank: rank) else {
        throw DatasetError(
            file: file,
            "wrong IDX magic \(hex32(magic)), expected \(hex32(idxMagic(rank: rank))) "
                + "(unsigned bytes, \(rank) dimension\(rank == 1 ? "" : "s"))")
    }
    let dims = (0..<rank).map { Int(word(4 + 4 * $0)) }
    // Each extent is a 32-bit word: their product can overflow even 64 bits (a damaged header), so it is checked.
    var items = 1
    for d in dims {
        let (product, overflow) = items.multipliedReportingOverflow(by: d)
        guard !overflow, product <= 1 << 40 else {
            throw DatasetError(file: file, "header declares \(dims.map(String.init).joined(separator: " × ")) \(itemName): "
                + "more than any file holds (a damaged header)")
        }
        items = product
    }
    let expected = headerSize + items
    let shape = dims.dropFirst().map(String.init).joined(separator: "×")
    let declared = "header declares \(dims[0]) \(itemName)" + (shape.isEmpty ? "" : " of \(shape)")
    if bytes.count < expected {
        throw DatasetError(
            file: file,
            "truncated: \(declared) (\(expected) bytes), file holds \(bytes.count) bytes")
    }
    if bytes.count > expected {
        throw DatasetError(
            file: file,
            "\(bytes.count - expected) bytes of trailing data: \(declared) (\(expected) bytes)")
    }
    return IDXFile(dims: dims, dataOffset: headerSize)
}

func hex32(_ v: UInt32) -> String {
    let digits = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}
