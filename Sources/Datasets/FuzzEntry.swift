// Entry points for the fuzzer (Sources/ste-fuzz): every decoder a user's file reaches, fed arbitrary bytes. Each
// must end in a value or a thrown error, never a trap; the fuzzer and its committed corpus check that.
import Foundation

public enum DecoderFuzzing {
    /// The bytes as an IDX file of rank 1 and 3, as a gzip stream, and as a gzipped tar archive of CIFAR-10
    /// batches (small batches, so a valid archive is reachable); `scratch` is a file the bytes may be written to.
    public static func run(_ bytes: [UInt8], scratch: String) {
        _ = try? parseIDX(bytes, file: "fuzz", rank: 1, itemName: "labels")
        _ = try? parseIDX(bytes, file: "fuzz", rank: 3, itemName: "images")
        guard FileManager.default.createFile(atPath: scratch, contents: Data(bytes)) else { return }
        _ = try? gunzip(file: scratch)
        _ = try? readCIFAR10Archive(scratch, recordsPerBatch: 2)
    }
}
