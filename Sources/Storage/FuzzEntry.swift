// Entry point for the fuzzer (Sources/ste-fuzz): an HDF5 file of arbitrary bytes opened and read the way every
// stage reads (attributes, every dataset, checksums). It must end in a value or a thrown error, never a trap.
import CHDF5
import Foundation

public enum HDF5Fuzzing {
    public static func run(_ bytes: [UInt8], scratch: String) {
        defer {
            precondition(shim_open_object_count() == 0, "HDF5 objects left open: \(shim_open_object_count())")
            // Each input starts from a fresh library: HDF5 1.10's caches, after a damaged file, can make a later
            // one crash inside the library (reproduced only in sequence), which is not what this target tests.
            H5close()
        }
        guard FileManager.default.createFile(atPath: scratch, contents: Data(bytes)) else { return }
        readEverything(scratch)
    }

    private static func readEverything(_ scratch: String) {
        guard let reader = try? H5Reader(path: scratch) else { return }
        _ = try? reader.attributes(on: "/")
        _ = try? reader.verifyAllChecksums()
        _ = try? contentDigest(ofFile: scratch)
        func walk(_ group: String) {
            for (name, kind) in (try? reader.children(of: group)) ?? [] {
                let path = (group == "/" ? "" : group) + "/" + name
                if kind == .group { walk(path); continue }
                _ = try? reader.read(path, as: Float.self)
                _ = try? reader.read(path, as: Int64.self)
                _ = try? reader.readStrings(path)
                _ = try? reader.attributes(on: path)
            }
        }
        walk("/")
    }
}
