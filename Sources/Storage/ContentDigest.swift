// The digest an output file records for each of its inputs: of the content, not of the file's bytes, so that
// equal data have equal digests across commits and machines (a fresh decode of the same MNIST files records
// another code version and wall time, and so has other bytes, but the same images). For an HDF5 file: SHA-256
// over its datasets in path order — path, dtype, shape, values — leaving out the timings a rerun changes
// (wall_seconds, images_per_second, resident_mib, seconds); attributes (provenance, times) are left out too.
// For any other file (raw archives, YAML configs): SHA-256 of its bytes.
import CHDF5
import Crypto
import Foundation

/// Datasets whose values are timings of the run that wrote them, not results.
let timingDatasets: Set<String> = ["wall_seconds", "images_per_second", "resident_mib", "seconds"]

/// Names the scheme in each output file's `input_digest` attribute; files without it recorded file bytes.
public let contentDigestScheme = "sha256 of content (HDF5: datasets in path order without timings; other files: bytes)"

/// SHA-256 (hex) of a file's content as described above; verifies the HDF5 checksums on the way.
public func contentDigest(ofFile path: String) throws -> String {
    guard H5Fis_hdf5(path) > 0 else { return try sha256Hex(ofFile: path) }
    let r = try H5Reader(path: path)
    var hasher = SHA256()
    func walk(_ group: String) throws {
        for (name, kind) in try r.children(of: group) {
            let child = (group == "/" ? "" : group) + "/" + name
            switch kind {
            case .group: try walk(child)
            case .dataset where !timingDatasets.contains(name):
                let bytes = try r.rawBytes(of: child)
                hasher.update(data: Array("\(child) \(bytes.type) \(try r.shape(of: child))\n".utf8))
                hasher.update(data: bytes.values)
            default: break
            }
        }
    }
    try walk("/")
    return hasher.finalize().map { String(format: "%02x", $0) }.joined()
}

extension H5Reader {
    /// A dataset's values as native bytes and a name of their type (checksums verified).
    func rawBytes(of object: String) throws -> (type: String, values: [UInt8]) {
        let dset = try openDataset(object)
        defer { H5Dclose(dset) }
        let type = H5Dget_type(dset)
        defer { H5Tclose(type) }
        let isString = H5Tget_class(type) == H5T_STRING
        let native = isString ? H5Tcopy(type) : H5Tget_native_type(type, H5T_DIR_ASCEND)
        defer { H5Tclose(native) }
        let count = try datasetShape(dset).reduce(1, *)
        var raw = [UInt8](repeating: 0, count: count * H5Tget_size(native))
        if count > 0 {
            guard raw.withUnsafeMutableBytes({ H5Dread(dset, native, h5sAll, h5sAll, h5pDefault, $0.baseAddress) }) >= 0 else {
                throw readFailure(object, dset)
            }
        }
        if try datasetShape(dset).isEmpty { try verifyScalarChecksum(object, dset) }
        let name = isString ? "string\(H5Tget_size(native))" : (H5Tget_class(type) == H5T_FLOAT ? "float" : "int") + "\(H5Tget_size(native) * 8)"
        return (name, raw)
    }
}
