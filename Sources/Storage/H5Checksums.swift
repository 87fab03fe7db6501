// Per-dataset checksums, so that a flipped bit in a checkpoint, a history or a data set is an error naming the
// file and the dataset instead of a silently different number. HDF5's Fletcher32 filter does the work for every
// chunked dataset and is verified by any HDF5 reader (h5py included); scalars cannot be chunked, so they carry
// the same checksum, computed here, in the attribute `fletcher32`. Files written before checksums existed
// have no root attribute `checksums` and still load (`ste inspect` says they carry none).
import CHDF5

/// Root attribute naming the scheme; absent in files written before checksums.
let checksumsAttribute = "checksums"
let checksumScheme = "fletcher32 (HDF5 filter per chunked dataset; attribute fletcher32 on scalars)"
/// A scalar dataset's own checksum.
let scalarChecksumAttribute = "fletcher32"

/// Fletcher-32 as HDF5 computes it (H5_checksum_fletcher32): 16-bit big-endian words, a trailing odd byte as the
/// high byte of a last word, the sums folded to 16 bits every 360 words and at the end — the filter's checksum,
/// here for the few bytes of a scalar.
func fletcher32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
    var sum1: UInt32 = 0, sum2: UInt32 = 0
    var i = 0, words = bytes.count / 2
    while words > 0 {
        let run = min(words, 360)
        words -= run
        for _ in 0..<run {
            sum1 &+= UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
            sum2 &+= sum1
            i += 2
        }
        sum1 = (sum1 & 0xFFFF) + (sum1 >> 16)
        sum2 = (sum2 & 0xFFFF) + (sum2 >> 16)
    }
    if bytes.count % 2 == 1 {
        sum1 &+= UInt32(bytes[i]) << 8
        sum2 &+= sum1
        sum1 = (sum1 & 0xFFFF) + (sum1 >> 16)
        sum2 = (sum2 & 0xFFFF) + (sum2 >> 16)
    }
    sum1 = (sum1 & 0xFFFF) + (sum1 >> 16)
    sum2 = (sum2 & 0xFFFF) + (sum2 >> 16)
    return sum2 << 16 | sum1
}

/// How a dataset's bytes are checked.
public enum DatasetChecksum: String, Sendable {
    case filter = "fletcher32 filter"
    case attribute = "fletcher32 attribute"
    case none
}

extension H5Reader {
    /// Whether the file was written with per-dataset checksums (its root attribute says so).
    public var carriesChecksums: Bool { (try? attributeNames(on: "/"))?.contains(checksumsAttribute) ?? false }

    /// Reads every dataset of the file once, so that each checksum is verified; returns how many were checked
    /// (by filter or attribute) and how many carry none. Throws at the first mismatch.
    public func verifyAllChecksums() throws -> (checked: Int, unchecked: Int) {
        var checked = 0, unchecked = 0
        func walk(_ group: String) throws {
            for (name, kind) in try children(of: group) {
                let path = (group == "/" ? "" : group) + "/" + name
                switch kind {
                case .group: try walk(path)
                case .dataset:
                    try verifyChecksum(of: path)
                    if try checksum(of: path) == .none { unchecked += 1 } else { checked += 1 }
                case .other: break
                }
            }
        }
        try walk("/")
        return (checked, unchecked)
    }
}
