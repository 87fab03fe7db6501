// Element types, attribute values and errors of the HDF5 tensor store.
// The store speaks five element types (float32/64, uint8, int32/64) and a small set of attribute
// kinds; every error names the file, the object path inside it and what was expected vs found.
import CHDF5

/// Element type of a stored tensor, named as in the file-format docs (little-endian on disk).
public enum DType: String, Sendable, CaseIterable {
    case float32, float64, uint8, int32, int64

    var fileType: hid_t {
        switch self {
        case .float32: return shim_H5T_IEEE_F32LE()
        case .float64: return shim_H5T_IEEE_F64LE()
        case .uint8: return shim_H5T_STD_U8LE()
        case .int32: return shim_H5T_STD_I32LE()
        case .int64: return shim_H5T_STD_I64LE()
        }
    }
    var memoryType: hid_t {
        switch self {
        case .float32: return shim_H5T_NATIVE_FLOAT()
        case .float64: return shim_H5T_NATIVE_DOUBLE()
        case .uint8: return shim_H5T_NATIVE_UINT8()
        case .int32: return shim_H5T_NATIVE_INT32()
        case .int64: return shim_H5T_NATIVE_INT64()
        }
    }
}

/// A Swift scalar type that maps one-to-one onto a stored element type.
public protocol H5Element: Numeric, Sendable { static var dtype: DType { get } }
extension Float: H5Element { public static var dtype: DType { .float32 } }
extension Double: H5Element { public static var dtype: DType { .float64 } }
extension UInt8: H5Element { public static var dtype: DType { .uint8 } }
extension Int32: H5Element { public static var dtype: DType { .int32 } }
extension Int64: H5Element { public static var dtype: DType { .int64 } }

/// A typed attribute value. Integers are stored as int64, floats as float64.
public enum AttributeValue: Equatable, Sendable, CustomStringConvertible {
    case string(String)
    case int(Int64)
    case double(Double)
    case strings([String])
    case ints([Int64])
    case doubles([Double])

    public var description: String {
        switch self {
        case .string(let s): return "\"\(s)\""
        case .int(let v): return "\(v)"
        case .double(let v): return "\(v)"
        case .strings(let v): return "[" + v.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
        case .ints(let v): return "\(v)"
        case .doubles(let v): return "\(v)"
        }
    }
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var intValue: Int64? { if case .int(let v) = self { return v } else { return nil } }
    /// A list of strings (one string reads as a list of one).
    public var stringsValue: [String]? {
        switch self {
        case .strings(let v): return v
        case .string(let s): return [s]
        default: return nil
        }
    }
    public var doubleValue: Double? {
        switch self {
        case .double(let v): return v
        case .int(let v): return Double(v)
        default: return nil
        }
    }
}

/// Every failure of the store: which file, which object inside it, and what went wrong.
public struct StorageError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let object: String?
    public let message: String
    public init(file: String, object: String? = nil, _ message: String) {
        self.file = file
        self.object = object
        self.message = message
    }
    public var description: String {
        if let object { return "\(file): \(object): \(message)" }
        return "\(file): \(message)"
    }
}

/// Kind of a child link in a group listing.
public enum H5ObjectKind: String, Sendable { case group, dataset, other }

/// Version string of the linked HDF5 library, e.g. "1.10.8".
public func hdf5LibraryVersion() -> String {
    var major: UInt32 = 0, minor: UInt32 = 0, release: UInt32 = 0
    H5get_libversion(&major, &minor, &release)
    return "\(major).\(minor).\(release)"
}

/// Silences HDF5's own error-stack printing: the store reports errors itself.
let silenceHDF5Errors: Void = {
    prepareHDF5ForProcess()
    H5Eset_auto2(hid_t(H5E_DEFAULT), nil, nil)
    return ()
}()

/// Keeps HDF5 from installing its exit-time cleanup. HDF5 1.10 leaves a file whose close failed (a full disk
/// while flushing) in its table of open files, and its exit handler then dereferences a freed pointer: the
/// process died with SIGSEGV after printing the right error. Every file this store opens is closed
/// explicitly (writers commit or discard; readers close when released), so the handler has nothing to do.
/// Effective only before HDF5's first call: `ste` calls it first thing, the store again on first use.
public func prepareHDF5ForProcess() {
    _ = H5dont_atexit()
}

/// H5P_DEFAULT and H5S_ALL import as Int32 literals; the API takes hid_t.
let h5pDefault = hid_t(H5P_DEFAULT)
let h5sAll = hid_t(H5S_ALL)
