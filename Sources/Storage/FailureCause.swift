// Why a file operation failed, in the operating system's words, and what a damaged HDF5 file looks like.
// HDF5 reports a failed write(2) of its file driver on its error stack ("file write failed: … errno = 28,
// error message = 'No space left on device', … total write size = 4800, …"); the storage errors quote that
// reason with the path, and for a full disk how much the write needed and how much space is left.
import CHDF5
import Foundation

/// The descriptions on the current HDF5 error stack, outermost call first.
func hdf5ErrorStack() -> [String] {
    final class Lines { var all: [String] = [] }
    let lines = Lines()
    withExtendedLifetime(lines) {
        _ = H5Ewalk2(hid_t(H5E_DEFAULT), H5E_WALK_DOWNWARD, { _, description, context in
            let lines = Unmanaged<Lines>.fromOpaque(context!).takeUnretainedValue()
            if let text = description?.pointee.desc { lines.all.append(String(cString: text)) }
            return 0
        }, Unmanaged.passUnretained(lines).toOpaque())
    }
    return lines.all
}

/// The errno values that mean the storage, not the program, failed; only these are quoted from a
/// fallback errno (a stale errno from an unrelated call would mislead).
private let storageErrnos: Set<Int32> = [ENOSPC, EDQUOT, EROFS, EACCES, EPERM, EIO, EFBIG, ENOENT, ENOTDIR, EISDIR]

/// The operating system's reason for the last failure: from the HDF5 error stack when it holds one, else
/// from `errno` read right after the failing call. For a full disk or quota the text adds the size of the
/// write that failed (when HDF5 says it) and the space left in `folder`. nil when no reason is known.
public func failureCause(folder: String, errno fallback: Int32) -> String? {
    let stack = hdf5ErrorStack().joined(separator: "\n")
    var code = fallback
    if let n = firstInteger(after: "errno = ", in: stack) { code = Int32(n) } else if !storageErrnos.contains(fallback) { return nil }
    var text = osReason(code)
    if code == ENOSPC || code == EDQUOT {
        if let needed = firstInteger(after: "total write size = ", in: stack) { text += "; the write needed \(bytes(needed))" }
        if let free = freeBytes(folder) { text += "; \(bytes(free)) free in \(folder)" }
    }
    return text
}

/// Free bytes for an unprivileged writer in the filesystem holding `folder`.
public func freeBytes(_ folder: String) -> Int? {
    var s = statvfs()
    guard statvfs(folder.isEmpty ? "." : folder, &s) == 0 else { return nil }
    return Int(s.f_bavail) * Int(s.f_frsize)
}

/// "4800 bytes" / "12.3 MiB" / "73.3 GiB".
func bytes(_ n: Int) -> String {
    n < 1 << 20 ? "\(n) bytes" : n < 1 << 30 ? String(format: "%.1f MiB", Double(n) / 1_048_576)
        : String(format: "%.1f GiB", Double(n) / 1_073_741_824)
}

private func firstInteger(after marker: String, in text: String) -> Int? {
    guard let r = text.range(of: marker) else { return nil }
    return Int(text[r.upperBound...].prefix { $0.isNumber })
}

/// What is wrong with a file that HDF5 cannot open: missing, empty, not HDF5 (no signature), truncated
/// (shorter than the end-of-file address its superblock declares), or damaged. Reads the superblock
/// (versions 0–3) itself, so the message does not depend on HDF5's.
func diagnoseUnreadableHDF5(_ path: String) -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else {
        return "cannot be read: " + String(cString: strerror(errno)).lowercased()
    }
    defer { try? handle.close() }
    let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    let head = [UInt8](handle.readData(ofLength: 64))
    let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]
    guard size > 0 else { return "empty file (0 bytes): it was cut off before anything was written" }
    guard head.count >= 8, Array(head[0..<8]) == signature else {
        return "not an HDF5 file (\(bytes(size)), no HDF5 signature at its start)"
    }
    // End-of-file address: superblock v0/1 at byte 40 (v1: 44), v2/3 at byte 28, little-endian, 8-byte offsets.
    let version = head.count > 8 ? head[8] : 255
    let offset: Int? = version == 0 ? 40 : version == 1 ? 44 : (version == 2 || version == 3) ? 28 : nil
    if let o = offset, head.count >= o + 8 {
        let declared = (0..<8).reduce(0) { $0 | (Int(head[o + $1]) << (8 * $1)) }
        if declared > size {
            return "truncated HDF5 file: \(bytes(size)) of the \(bytes(declared)) it declares (an interrupted copy or a full disk)"
        }
    } else if head.count < 48 {
        return "truncated HDF5 file: \(bytes(size)), shorter than its superblock"
    }
    return "damaged HDF5 file (\(bytes(size))): it has an HDF5 signature but its structure cannot be read"
}
