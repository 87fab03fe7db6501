// Reading HDF5 files with checked dtypes and shapes.
// A missing object, a dtype or a shape other than the one asked for throws a StorageError that
// names the file, the object path and expected vs found.
import CHDF5
import Foundation

public final class H5Reader {
    public let path: String
    private var file: hid_t

    public init(path: String) throws {
        _ = silenceHDF5Errors
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else {
            throw StorageError(file: path, "file does not exist")
        }
        // A file HDF5 cannot open is diagnosed from its bytes: empty, not HDF5, truncated or damaged.
        guard H5Fis_hdf5(path) > 0 else { throw StorageError(file: path, diagnoseUnreadableHDF5(path)) }
        file = H5Fopen(path, shim_H5F_ACC_RDONLY(), h5pDefault)
        guard file >= 0 else { throw StorageError(file: path, diagnoseUnreadableHDF5(path)) }
    }

    deinit { H5Fclose(file) }

    /// A failed read of a dataset: a checksum that no longer matches its bytes (the read succeeds with the
    /// check switched off), else a file damaged or cut short where that dataset's data lies.
    func readFailure(_ object: String, _ dset: hid_t) -> StorageError {
        let e = errno
        if hasChecksumFilter(dset), let shape = try? datasetShape(dset) {
            let type = H5Dget_type(dset)
            defer { H5Tclose(type) }
            let count = max(1, shape.reduce(1, *)) * max(1, H5Tget_size(type))
            guard count < 1 << 32 else { errno = e; return readFailure(object) }
            var raw = [UInt8](repeating: 0, count: count)
            let dxpl = H5Pcreate(shim_H5P_DATASET_XFER())
            defer { H5Pclose(dxpl) }
            H5Pset_edc_check(dxpl, H5Z_DISABLE_EDC)
            if raw.withUnsafeMutableBytes({ H5Dread(dset, type, h5sAll, h5sAll, dxpl, $0.baseAddress) }) >= 0 {
                return StorageError(file: path, object: object, "checksum mismatch (the file changed after it was written)")
            }
        }
        errno = e
        return readFailure(object)
    }

    func hasChecksumFilter(_ dset: hid_t) -> Bool {
        let dcpl = H5Dget_create_plist(dset)
        defer { H5Pclose(dcpl) }
        var flags: UInt32 = 0, elements = 0
        return H5Pget_filter_by_id2(dcpl, H5Z_filter_t(shim_H5Z_FILTER_FLETCHER32()), &flags, &elements, nil, 0, nil, nil) >= 0
    }

    /// A scalar's `fletcher32` attribute against its bytes (no attribute: a file from before checksums).
    func verifyScalarChecksum(_ object: String, _ dset: hid_t) throws {
        guard H5Aexists(dset, scalarChecksumAttribute) > 0 else { return }
        guard let recorded = try attribute(scalarChecksumAttribute, on: object).intValue else {
            throw StorageError(file: path, object: object, "checksum attribute malformed (the file changed after it was written)")
        }
        let type = H5Dget_type(dset)
        defer { H5Tclose(type) }
        let native = H5Tget_native_type(type, H5T_DIR_ASCEND)
        defer { H5Tclose(native) }
        var raw = [UInt8](repeating: 0, count: H5Tget_size(native))
        guard raw.withUnsafeMutableBytes({ H5Dread(dset, native, h5sAll, h5sAll, h5pDefault, $0.baseAddress) }) >= 0 else {
            throw readFailure(object)
        }
        guard raw.withUnsafeBytes({ fletcher32($0) }) == UInt32(truncatingIfNeeded: recorded) else {
            throw StorageError(file: path, object: object, "checksum mismatch (the file changed after it was written)")
        }
    }

    /// How `object`'s bytes are checked.
    public func checksum(of object: String) throws -> DatasetChecksum {
        let dset = try openDataset(object)
        defer { H5Dclose(dset) }
        if hasChecksumFilter(dset) { return .filter }
        return H5Aexists(dset, scalarChecksumAttribute) > 0 ? .attribute : .none
    }

    /// Reads `object`'s bytes once in its stored type, which verifies its checksum.
    public func verifyChecksum(of object: String) throws { _ = try rawBytes(of: object) }

    /// Metadata HDF5 cannot read back: the file is damaged there.
    func damaged(_ object: String, _ what: String) -> StorageError {
        StorageError(file: path, object: object, "\(what): the file is damaged (changed or cut short after it was written)")
    }

    /// A failed read of an object: the file is damaged or cut short where that object's data lies.
    private func readFailure(_ object: String) -> StorageError {
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        let cause = failureCause(folder: URL(fileURLWithPath: path).deletingLastPathComponent().path, errno: errno)
        return StorageError(file: path, object: object, "reading the data failed: "
            + (cause ?? "the file (\(bytes(size))) is damaged or truncated where this object's data lies"))
    }

    /// Whether a group or dataset exists at `object`.
    public func contains(_ object: String) -> Bool {
        if object == "/" { return true }
        var current = ""
        for part in object.split(separator: "/") {
            current += "/" + part
            if H5Lexists(file, current, h5pDefault) <= 0 { return false }
        }
        return true
    }

    /// Children of a group, sorted by name, with their kind.
    public func children(of group: String = "/") throws -> [(name: String, kind: H5ObjectKind)] {
        guard contains(group) else { throw StorageError(file: path, object: group, "no such group") }
        let g = H5Gopen2(file, group, h5pDefault)
        guard g >= 0 else { throw StorageError(file: path, object: group, "not a group") }
        defer { H5Gclose(g) }
        var info = H5G_info_t()
        guard H5Gget_info(g, &info) >= 0 else { throw damaged(group, "its member list cannot be read") }
        var result: [(String, H5ObjectKind)] = []
        for i in 0..<info.nlinks {
            let size = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, h5pDefault)
            guard size >= 0 else { throw damaged(group, "the name of member \(i) cannot be read") }
            var name = [CChar](repeating: 0, count: Int(size) + 1)
            guard H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, &name, Int(size) + 1, h5pDefault) >= 0 else {
                throw damaged(group, "the name of member \(i) cannot be read")
            }
            let childName = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let childPath = (group == "/" ? "" : group) + "/" + childName
            var oinfo = H5O_info_t()
            guard H5Oget_info_by_name2(file, childPath, &oinfo, UInt32(H5O_INFO_BASIC), h5pDefault) >= 0 else {
                throw damaged(childPath, "its header cannot be read")
            }
            let kind: H5ObjectKind =
                oinfo.type == H5O_TYPE_GROUP ? .group : oinfo.type == H5O_TYPE_DATASET ? .dataset : .other
            result.append((childName, kind))
        }
        return result
    }

    /// Shape of a dataset ([] for a scalar).
    public func shape(of object: String) throws -> [Int] {
        let dset = try openDataset(object)
        defer { H5Dclose(dset) }
        return try datasetShape(dset)
    }

    /// Element type of a dataset, or nil for a type outside the store's five (e.g. strings).
    public func dtype(of object: String) throws -> DType? {
        let dset = try openDataset(object)
        defer { H5Dclose(dset) }
        return datasetDType(dset)
    }

    /// Reads a whole tensor. `shape`, when given, is checked; -1 in it matches any extent.
    public func read<T: H5Element>(_ object: String, as type: T.Type = T.self, shape expected: [Int]? = nil)
        throws -> (values: [T], shape: [Int])
    {
        let dset = try openDataset(object)
        defer { H5Dclose(dset) }
        let found = datasetDType(dset)
        guard found == T.dtype else {
            throw StorageError(file: path, object: object,
                "expected dtype \(T.dtype.rawValue), found \(found?.rawValue ?? describeType(dset))")
        }
        let shape = try datasetShape(dset)
        if let expected {
            let matches = expected.count == shape.count
                && zip(expected, shape).allSatisfy { $0.0 == -1 || $0.0 == $0.1 }
            guard matches else {
                throw StorageError(file: path, object: object, "expected shape \(expected), found \(shape)")
            }
        }
        let count = shape.reduce(1, *)
        var values = [T](repeating: 0, count: count)
        if count > 0 {
            let status = values.withUnsafeMutableBytes {
                H5Dread(dset, T.dtype.memoryType, h5sAll, h5sAll, h5pDefault, $0.baseAddress)
            }
            guard status >= 0 else { throw readFailure(object, dset) }
        }
        if shape.isEmpty { try verifyScalarChecksum(object, dset) }
        return (values, shape)
    }

    /// Reads a tensor into caller-owned memory (for large tensors); the element count must match.
    public func read<T: H5Element>(_ object: String, into buffer: UnsafeMutableBufferPointer<T>, shape expected: [Int])
        throws
    {
        let dset = try openDataset(object)
        defer { H5Dclose(dset) }
        let found = datasetDType(dset)
        guard found == T.dtype else {
            throw StorageError(file: path, object: object,
                "expected dtype \(T.dtype.rawValue), found \(found?.rawValue ?? describeType(dset))")
        }
        let shape = try datasetShape(dset)
        guard shape == expected, buffer.count == shape.reduce(1, *) else {
            throw StorageError(file: path, object: object, "expected shape \(expected), found \(shape)")
        }
        if buffer.count > 0 {
            guard H5Dread(dset, T.dtype.memoryType, h5sAll, h5sAll, h5pDefault, buffer.baseAddress) >= 0
            else { throw readFailure(object, dset) }
        }
        if shape.isEmpty { try verifyScalarChecksum(object, dset) }
    }

    /// Reads a 1-D fixed-length string dataset written by `H5Writer.writeStrings`.
    public func readStrings(_ object: String) throws -> [String] {
        let dset = try openDataset(object)
        defer { H5Dclose(dset) }
        let type = H5Dget_type(dset)
        defer { H5Tclose(type) }
        guard H5Tget_class(type) == H5T_STRING, H5Tis_variable_str(type) <= 0 else {
            throw StorageError(file: path, object: object, "expected a fixed-length string dataset, found "
                + describeType(dset))
        }
        let width = H5Tget_size(type)
        let n = try datasetShape(dset).reduce(1, *)
        var buffer = [UInt8](repeating: 0, count: max(1, n * width))
        if n > 0 { guard H5Dread(dset, type, h5sAll, h5sAll, h5pDefault, &buffer) >= 0 else { throw readFailure(object, dset) } }
        return unpackStrings(buffer, count: n, width: width)
    }

    // MARK: - Attributes

    /// Names of the attributes on `object`, sorted.
    public func attributeNames(on object: String = "/") throws -> [String] {
        let target = try openObject(object)
        defer { H5Oclose(target) }
        var info = H5O_info_t()
        guard H5Oget_info2(target, &info, UInt32(H5O_INFO_NUM_ATTRS)) >= 0 else {
            throw damaged(object, "its attribute list cannot be read")
        }
        var names: [String] = []
        for i in 0..<info.num_attrs {
            let size = H5Aget_name_by_idx(target, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, h5pDefault)
            guard size >= 0 else { throw damaged(object, "the name of attribute \(i) cannot be read") }
            var name = [CChar](repeating: 0, count: Int(size) + 1)
            guard H5Aget_name_by_idx(target, ".", H5_INDEX_NAME, H5_ITER_INC, i, &name, Int(size) + 1, h5pDefault) >= 0 else {
                throw damaged(object, "the name of attribute \(i) cannot be read")
            }
            names.append(String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return names.sorted()
    }

    /// All attributes on `object`.
    public func attributes(on object: String = "/") throws -> [String: AttributeValue] {
        var result: [String: AttributeValue] = [:]
        for name in try attributeNames(on: object) { result[name] = try attribute(name, on: object) }
        return result
    }

    /// One attribute; throws naming the file and object when it is missing or of an unknown kind.
    public func attribute(_ name: String, on object: String = "/") throws -> AttributeValue {
        let target = try openObject(object)
        defer { H5Oclose(target) }
        guard H5Aexists(target, name) > 0 else {
            throw StorageError(file: path, object: object, "missing attribute '\(name)'")
        }
        let attr = H5Aopen(target, name, h5pDefault)
        guard attr >= 0 else { throw damaged(object, "attribute '\(name)' cannot be opened") }
        defer { H5Aclose(attr) }
        let type = H5Aget_type(attr)
        guard type >= 0 else { throw damaged(object, "the type of attribute '\(name)' cannot be read") }
        defer { H5Tclose(type) }
        let space = H5Aget_space(attr)
        guard space >= 0 else { throw damaged(object, "the shape of attribute '\(name)' cannot be read") }
        defer { H5Sclose(space) }
        let scalar = H5Sget_simple_extent_type(space) == H5S_SCALAR
        let n = Int(H5Sget_simple_extent_npoints(space))
        guard n >= (scalar ? 1 : 0), n < 1 << 28 else { throw damaged(object, "attribute '\(name)' has \(n) elements") }
        func read(_ memoryType: hid_t, _ buffer: UnsafeMutableRawPointer) throws {
            guard H5Aread(attr, memoryType, buffer) >= 0 else { throw damaged(object, "attribute '\(name)' cannot be read") }
        }
        switch H5Tget_class(type) {
        case H5T_STRING:
            guard H5Tis_variable_str(type) <= 0 else {
                throw StorageError(file: path, object: object, "attribute '\(name)' is a variable-length string")
            }
            let width = H5Tget_size(type)
            guard width > 0, width < 1 << 24 else { throw damaged(object, "attribute '\(name)' has strings of \(width) bytes") }
            var buffer = [UInt8](repeating: 0, count: max(1, n * width))
            try buffer.withUnsafeMutableBytes { try read(type, $0.baseAddress!) }
            let list = unpackStrings(buffer, count: n, width: width)
            return scalar ? .string(list.first ?? "") : .strings(list)
        case H5T_INTEGER:
            var values = [Int64](repeating: 0, count: max(1, n))
            try values.withUnsafeMutableBytes { try read(shim_H5T_NATIVE_INT64(), $0.baseAddress!) }
            return scalar ? .int(values[0]) : .ints(Array(values.prefix(n)))
        case H5T_FLOAT:
            var values = [Double](repeating: 0, count: max(1, n))
            try values.withUnsafeMutableBytes { try read(shim_H5T_NATIVE_DOUBLE(), $0.baseAddress!) }
            return scalar ? .double(values[0]) : .doubles(Array(values.prefix(n)))
        default:
            throw StorageError(file: path, object: object, "attribute '\(name)' has an unsupported type")
        }
    }

    /// A string attribute; throws if missing or not a string.
    public func stringAttribute(_ name: String, on object: String = "/") throws -> String {
        guard let s = try attribute(name, on: object).stringValue else {
            throw StorageError(file: path, object: object, "attribute '\(name)' is not a string")
        }
        return s
    }

    // MARK: - Helpers

    private func openObject(_ object: String) throws -> hid_t {
        guard contains(object) else { throw StorageError(file: path, object: object, "no such object") }
        let target = H5Oopen(file, object, h5pDefault)
        guard target >= 0 else { throw StorageError(file: path, object: object, "cannot open object") }
        return target
    }

    func openDataset(_ object: String) throws -> hid_t {
        guard contains(object) else { throw StorageError(file: path, object: object, "missing dataset") }
        let dset = H5Dopen2(file, object, h5pDefault)
        guard dset >= 0 else { throw StorageError(file: path, object: object, "not a dataset") }
        return dset
    }

    /// A dataset's shape; a damaged dataspace (negative rank, extents whose product overflows memory) is an error.
    func datasetShape(_ dset: hid_t) throws -> [Int] {
        let space = H5Dget_space(dset)
        guard space >= 0 else { throw damaged(objectName(dset), "its shape cannot be read") }
        defer { H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard (0...32).contains(rank) else { throw damaged(objectName(dset), "its rank reads \(rank)") }
        var dims = [hsize_t](repeating: 0, count: rank)
        if rank > 0 && H5Sget_simple_extent_dims(space, &dims, nil) < 0 { throw damaged(objectName(dset), "its shape cannot be read") }
        var total: UInt64 = 1
        for d in dims {
            let (product, overflow) = total.multipliedReportingOverflow(by: UInt64(d))
            guard !overflow, product <= 1 << 40 else { throw damaged(objectName(dset), "its shape \(dims) is implausible") }
            total = product
        }
        return dims.map { Int($0) }
    }

    private func objectName(_ id: hid_t) -> String {
        let size = H5Iget_name(id, nil, 0)
        guard size > 0 else { return "?" }
        var name = [CChar](repeating: 0, count: Int(size) + 1)
        H5Iget_name(id, &name, Int(size) + 1)
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func datasetDType(_ dset: hid_t) -> DType? {
        let type = H5Dget_type(dset)
        defer { H5Tclose(type) }
        let size = H5Tget_size(type)
        switch H5Tget_class(type) {
        case H5T_FLOAT: return size == 4 ? .float32 : size == 8 ? .float64 : nil
        case H5T_INTEGER:
            let signed = H5Tget_sign(type) == H5T_SGN_2
            switch (size, signed) {
            case (1, false): return .uint8
            case (4, true): return .int32
            case (8, true): return .int64
            default: return nil
            }
        default: return nil
        }
    }

    private func describeType(_ dset: hid_t) -> String {
        let type = H5Dget_type(dset)
        defer { H5Tclose(type) }
        let size = H5Tget_size(type)
        switch H5Tget_class(type) {
        case H5T_FLOAT: return "float\(size * 8)"
        case H5T_INTEGER: return (H5Tget_sign(type) == H5T_SGN_2 ? "int" : "uint") + "\(size * 8)"
        case H5T_STRING: return "string"
        default: return "an unsupported type"
        }
    }
}

func unpackStrings(_ buffer: [UInt8], count: Int, width: Int) -> [String] {
    (0..<count).map { i in
        let slice = buffer[(i * width)..<((i + 1) * width)]
        let end = slice.firstIndex(of: 0) ?? slice.endIndex
        return String(decoding: slice[slice.startIndex..<end], as: UTF8.self)
    }
}
