// Writing HDF5 files atomically and byte-reproducibly.
// The file is built under a temporary name in the destination folder and renamed on `commit()`,
// so a reader never sees a half-written file and a crash leaves nothing at the final path.
// Object time tracking is off for the root group, groups and datasets, and library-version bounds
// are fixed at the 1.8 format (metadata checksums), so equal content gives equal bytes and 1.8+ readers open it.
// Every dataset checks itself (H5Checksums.swift): chunked with HDF5's Fletcher32 filter, which every HDF5
// reader (h5py too) verifies on read; a scalar, which cannot be chunked, carries its Fletcher-32 as an attribute.
import CHDF5
import Foundation

public final class H5Writer {
    /// Final path of the file.
    public let path: String
    /// Temporary path the content is written to until `commit()`.
    public let temporaryPath: String
    private var file: hid_t = -1
    private var committed = false

    /// Starts a new file that will appear at `path` on `commit()`.
    public init(path: String) throws {
        _ = silenceHDF5Errors
        self.path = path
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        temporaryPath = dir + "/." + url.lastPathComponent + ".tmp-\(getpid())"
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw StorageError(file: path, "output folder \(dir) does not exist")
        }
        guard access(dir, W_OK) == 0 else {
            throw StorageError(file: path, "output folder \(dir) is not writable: " + String(cString: strerror(errno)).lowercased())
        }
        let fcpl = H5Pcreate(shim_H5P_FILE_CREATE())
        defer { H5Pclose(fcpl) }
        H5Pset_obj_track_times(fcpl, false)
        // The 1.8 file format: its object headers, B-trees and heaps carry HDF5's own metadata checksums, so a
        // damaged header is refused by the library instead of being parsed (HDF5 1.10 can crash on a damaged
        // header of the earliest format); HDF5 1.8 and later, h5py included, read it.
        let fapl = H5Pcreate(shim_H5P_FILE_ACCESS())
        defer { H5Pclose(fapl) }
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18)
        file = H5Fcreate(temporaryPath, shim_H5F_ACC_TRUNC(), fcpl, fapl)
        guard file >= 0 else {
            let e = errno
            unlink(temporaryPath)
            throw failure(nil, "cannot create temporary file \(temporaryPath)", errno: e)
        }
        try setAttribute(checksumsAttribute, .string(checksumScheme))
    }

    deinit { if !committed { discard() } }

    /// Closes the file and moves it to its final path (replacing any file there).
    public func commit() throws {
        precondition(!committed, "H5Writer.commit() called twice")
        guard H5Fclose(file) >= 0 else {
            let error = failure(nil, "writing the file failed (while flushing it to \(temporaryPath))", errno: errno)
            file = -1
            discard()
            throw error
        }
        file = -1
        guard rename(temporaryPath, path) == 0 else {
            let e = errno
            unlink(temporaryPath)
            throw StorageError(file: path, "cannot rename \(temporaryPath) to the final name: " + osReason(e))
        }
        committed = true
    }

    /// Abandons the file: nothing is left on disk.
    public func discard() {
        if file >= 0 { H5Fclose(file); file = -1 }
        unlink(temporaryPath)
        committed = true
    }

    // MARK: - Groups

    /// Creates `group` and any missing parents ("/a/b/c").
    @discardableResult
    public func createGroup(_ group: String) throws -> String {
        var current = ""
        for part in group.split(separator: "/") {
            current += "/" + part
            if H5Lexists(file, current, h5pDefault) > 0 { continue }
            let gcpl = H5Pcreate(shim_H5P_GROUP_CREATE())
            H5Pset_obj_track_times(gcpl, false)
            let g = H5Gcreate2(file, current, h5pDefault, gcpl, h5pDefault)
            H5Pclose(gcpl)
            guard g >= 0 else { throw failure(current, "cannot create group", errno: errno) }
            H5Gclose(g)
        }
        return current.isEmpty ? "/" : current
    }

    // MARK: - Datasets

    /// Writes a tensor of any rank (shape [] is a scalar). `compress` chunks the data and applies
    /// shuffle + deflate (use for large float tensors; images stay contiguous and hashable).
    public func write<T: H5Element>(
        _ object: String, _ values: UnsafeBufferPointer<T>, shape: [Int], compress: Bool = false
    ) throws {
        let count = shape.reduce(1, *)
        guard count == values.count else {
            throw StorageError(file: path, object: object,
                "shape \(shape) holds \(count) elements but \(values.count) were given")
        }
        let parent = parentGroup(of: object)
        if parent != "/" { try createGroup(parent) }
        if H5Lexists(file, object, h5pDefault) > 0 {
            throw StorageError(file: path, object: object, "already exists")
        }
        let dims = shape.map { hsize_t($0) }
        let space = shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(shape.count), dims, nil)
        defer { H5Sclose(space) }
        let dcpl = H5Pcreate(shim_H5P_DATASET_CREATE())
        defer { H5Pclose(dcpl) }
        H5Pset_obj_track_times(dcpl, false)
        if count > 0 && !shape.isEmpty {
            H5Pset_chunk(dcpl, Int32(shape.count), chunkShape(shape, elementSize: MemoryLayout<T>.size))
            if compress {
                H5Pset_shuffle(dcpl)
                H5Pset_deflate(dcpl, 4)
            }
            H5Pset_fletcher32(dcpl)  // last in the pipeline: the checksum of the bytes as stored
        }
        let dset = H5Dcreate2(file, object, T.dtype.fileType, space, h5pDefault, dcpl, h5pDefault)
        guard dset >= 0 else { throw failure(object, "cannot create dataset", errno: errno) }
        defer { H5Dclose(dset) }
        if count > 0 {
            guard H5Dwrite(dset, T.dtype.memoryType, h5sAll, h5sAll, h5pDefault, values.baseAddress) >= 0
            else { throw failure(object, "writing the data failed", errno: errno) }
        }
        if shape.isEmpty {  // a scalar cannot be chunked: its checksum is an attribute of its own
            try setAttribute(scalarChecksumAttribute, .int(Int64(fletcher32(UnsafeRawBufferPointer(values)))), on: object)
        }
    }

    /// Array convenience for `write(_:_:shape:compress:)`.
    public func write<T: H5Element>(_ object: String, _ values: [T], shape: [Int], compress: Bool = false)
        throws
    {
        try values.withUnsafeBufferPointer { try write(object, $0, shape: shape, compress: compress) }
    }

    /// Writes a 1-D list of strings as a fixed-length string dataset (for configs too large for an attribute).
    public func writeStrings(_ object: String, _ values: [String]) throws {
        let parent = parentGroup(of: object)
        if parent != "/" { try createGroup(parent) }
        let width = max(1, values.map { $0.utf8.count }.max() ?? 1) + 1
        let type = stringType(width: width)
        defer { H5Tclose(type) }
        var dims = [hsize_t(values.count)]
        let space = H5Screate_simple(1, &dims, nil)
        defer { H5Sclose(space) }
        let dcpl = H5Pcreate(shim_H5P_DATASET_CREATE())
        defer { H5Pclose(dcpl) }
        H5Pset_obj_track_times(dcpl, false)
        if !values.isEmpty {
            var chunk = [hsize_t(values.count)]
            H5Pset_chunk(dcpl, 1, &chunk)
            H5Pset_fletcher32(dcpl)
        }
        let dset = H5Dcreate2(file, object, type, space, h5pDefault, dcpl, h5pDefault)
        guard dset >= 0 else { throw failure(object, "cannot create dataset", errno: errno) }
        defer { H5Dclose(dset) }
        let buffer = packStrings(values, width: width)
        guard H5Dwrite(dset, type, h5sAll, h5sAll, h5pDefault, buffer) >= 0 else {
            throw failure(object, "writing the strings failed", errno: errno)
        }
    }

    // MARK: - Attributes

    /// Sets attribute `name` on the group or dataset `object` ("/" is the root group).
    public func setAttribute(_ name: String, _ value: AttributeValue, on object: String = "/") throws {
        if object != "/" && H5Lexists(file, object, h5pDefault) <= 0 { try createGroup(object) }
        let target = H5Oopen(file, object, h5pDefault)
        guard target >= 0 else { throw StorageError(file: path, object: object, "no such object") }
        defer { H5Oclose(target) }
        if H5Aexists(target, name) > 0 { H5Adelete(target, name) }
        func create(_ fileType: hid_t, _ memType: hid_t, _ count: Int?, _ data: UnsafeRawPointer) throws {
            var dims = [hsize_t(count ?? 1)]
            let space = count == nil ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dims, nil)
            defer { H5Sclose(space) }
            let attr = H5Acreate2(target, name, fileType, space, h5pDefault, h5pDefault)
            guard attr >= 0 else { throw failure(object, "cannot create attribute '\(name)'", errno: errno) }
            defer { H5Aclose(attr) }
            guard H5Awrite(attr, memType, data) >= 0 else {
                throw failure(object, "cannot write attribute '\(name)'", errno: errno)
            }
        }
        switch value {
        case .string(let s):
            let width = s.utf8.count + 1
            let type = stringType(width: width)
            defer { H5Tclose(type) }
            try packStrings([s], width: width).withUnsafeBytes { try create(type, type, nil, $0.baseAddress!) }
        case .strings(let list):
            let width = max(1, list.map { $0.utf8.count }.max() ?? 1) + 1
            let type = stringType(width: width)
            defer { H5Tclose(type) }
            try packStrings(list, width: width).withUnsafeBytes {
                try create(type, type, list.count, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!)
            }
        case .int(let v):
            try withUnsafeBytes(of: v) {
                try create(shim_H5T_STD_I64LE(), shim_H5T_NATIVE_INT64(), nil, $0.baseAddress!)
            }
        case .double(let v):
            try withUnsafeBytes(of: v) {
                try create(shim_H5T_IEEE_F64LE(), shim_H5T_NATIVE_DOUBLE(), nil, $0.baseAddress!)
            }
        case .ints(let v):
            try v.withUnsafeBytes {
                try create(shim_H5T_STD_I64LE(), shim_H5T_NATIVE_INT64(), v.count,
                    $0.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!)
            }
        case .doubles(let v):
            try v.withUnsafeBytes {
                try create(shim_H5T_IEEE_F64LE(), shim_H5T_NATIVE_DOUBLE(), v.count,
                    $0.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!)
            }
        }
    }

    /// Sets several attributes at once, in sorted key order (so files do not depend on dictionary order).
    public func setAttributes(_ attributes: [String: AttributeValue], on object: String = "/") throws {
        for key in attributes.keys.sorted() { try setAttribute(key, attributes[key]!, on: object) }
    }

    // MARK: - Helpers

    /// A storage error for this file with the operating system's reason appended when one is known
    /// (no space left on device, permission denied, read-only file system, disk quota exceeded, …).
    private func failure(_ object: String?, _ what: String, errno e: Int32) -> StorageError {
        let dir = (path as NSString).deletingLastPathComponent, folder = dir.isEmpty ? "." : dir
        guard let cause = failureCause(folder: folder, errno: e) else { return StorageError(file: path, object: object, what) }
        return StorageError(file: path, object: object, what + ": " + cause)
    }

    private func parentGroup(of object: String) -> String {
        guard let slash = object.lastIndex(of: "/"), slash != object.startIndex else { return "/" }
        return String(object[..<slash])
    }

    /// Chunks of whole trailing rows, about 256 KiB each (h5py's advice: 10 KiB–1 MiB).
    private func chunkShape(_ shape: [Int], elementSize: Int) -> [hsize_t] {
        let rowElements = shape.dropFirst().reduce(1, *)
        let rows = max(1, min(shape[0], (256 * 1024) / max(1, rowElements * elementSize)))
        return [hsize_t(rows)] + shape.dropFirst().map { hsize_t($0) }
    }
}

func stringType(width: Int) -> hid_t {
    let type = H5Tcopy(shim_H5T_C_S1())
    H5Tset_size(type, width)
    H5Tset_strpad(type, H5T_STR_NULLTERM)
    H5Tset_cset(type, H5T_CSET_UTF8)
    return type
}

func packStrings(_ values: [String], width: Int) -> [UInt8] {
    var buffer = [UInt8](repeating: 0, count: max(1, values.count * width))
    for (i, s) in values.enumerated() {
        for (j, byte) in s.utf8.prefix(width - 1).enumerated() { buffer[i * width + j] = byte }
    }
    return buffer
}
