// Plain files and folders, the way every stage writes them: folders created safely when many processes
// (a Slurm array's tasks) create the same tree at once, text written under a temporary name then renamed,
// and Foundation's file errors ("NSCocoaErrorDomain Code=516") told as the path and the operating
// system's reason.
import Foundation

/// Creates `path` and its missing parents, like `mkdir -p`, one mkdir(2) per component. Another process
/// creating the same folder at the same moment is not an error; a component that exists as a file is, and
/// the error names that component (Foundation's `createDirectory` says "NSCocoaErrorDomain Code=516").
public func makeDirectories(_ path: String) throws {
    guard !path.isEmpty else { return }
    var prefix = path.hasPrefix("/") ? "/" : ""
    for component in path.split(separator: "/", omittingEmptySubsequences: true) {
        prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + component
        if mkdir(prefix, 0o755) == 0 { continue }
        let code = errno
        var s = stat()
        if stat(prefix, &s) == 0 {
            if (s.st_mode & S_IFMT) == S_IFDIR { continue }
            throw StorageError(file: prefix, "cannot create the folder \(path): \(prefix) exists and is not a folder")
        }
        throw StorageError(file: path, "cannot create the folder: " + osReason(code))
    }
}

/// Writes text to a temporary name in the same folder, then renames it into place; a failure (full disk,
/// permission, read-only filesystem) names the file and the operating system's reason and leaves nothing.
public func writeAtomically(_ text: String, to path: String) throws {
    let dir = (path as NSString).deletingLastPathComponent
    try makeDirectories(dir)
    let tmp = (dir.isEmpty ? "" : dir + "/") + "." + (path as NSString).lastPathComponent + ".tmp-\(getpid())"
    func fail(_ what: String, _ e: Int32) -> StorageError {
        unlink(tmp)
        var cause = osReason(e)
        if e == ENOSPC || e == EDQUOT, let free = freeBytes(dir.isEmpty ? "." : dir) {
            cause += "; the write needed \(text.utf8.count) bytes; \(free) bytes free in \(dir.isEmpty ? "." : dir)"
        }
        return StorageError(file: path, "\(what): \(cause)")
    }
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw fail("cannot create \(tmp)", errno) }
    let bytes = Array(text.utf8)
    var written = 0
    while written < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
        if n < 0 { if errno == EINTR { continue }; let e = errno; close(fd); throw fail("writing failed", e) }
        written += n
    }
    guard close(fd) == 0 else { throw fail("writing failed", errno) }
    guard rename(tmp, path) == 0 else { throw fail("cannot rename \(tmp) to the final name", errno) }
}

/// "no space left on device (errno 28)".
public func osReason(_ code: Int32) -> String {
    String(cString: strerror(code)).lowercased() + " (errno \(code))"
}

/// An error as a user should read it: Foundation's file errors as `fileErrorDescription` tells them, every
/// other error its own description.
public func readableError(_ error: Error) -> String { fileErrorDescription(error) ?? "\(error)" }

/// A Foundation (Cocoa or POSIX domain) file error as "<path>: <reason>" — the path from the error's user info,
/// the reason from its POSIX code when it carries one; nil for any other error.
public func fileErrorDescription(_ error: Error) -> String? {
    let ns = error as NSError
    guard ns.domain == NSCocoaErrorDomain || ns.domain == NSPOSIXErrorDomain else { return nil }
    let path = (ns.userInfo[NSFilePathErrorKey] as? String)
        ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
        ?? (ns.userInfo["NSDestinationFilePath"] as? String)
    var code: Int32? = ns.domain == NSPOSIXErrorDomain ? Int32(ns.code) : nil
    if code == nil, let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        code = Int32(underlying.code)
    }
    let reason: String
    if let code { reason = osReason(code) } else {
        switch CocoaError.Code(rawValue: ns.code) {
        case .fileWriteFileExists: reason = "a file or folder of that name already exists"
        case .fileNoSuchFile, .fileReadNoSuchFile: reason = "no such file or folder"
        case .fileWriteNoPermission, .fileReadNoPermission: reason = "permission denied"
        case .fileWriteOutOfSpace: reason = "no space left on device"
        case .fileWriteVolumeReadOnly: reason = "read-only file system"
        case .fileReadCorruptFile: reason = "the file is damaged or not in the expected format"
        case .fileReadInapplicableStringEncoding: reason = "the file is not valid UTF-8 text"
        default: reason = ns.localizedDescription
        }
    }
    return path.map { "\($0): \(reason)" } ?? reason
}
