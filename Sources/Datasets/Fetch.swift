// `ste fetch`: make sure the raw dataset files are present and are the official ones.
// A present file is checked against its pinned checksum; a missing one is downloaded (curl, to a
// temporary name, verified, then renamed into place) when a mirror is reachable. Otherwise the
// error says which file is missing, where to get it and where to put it.
import Crypto
import Foundation
import Storage

// MARK: - Pinned checksums and mirrors

/// SHA-256 of the four official MNIST .gz files (as TensorFlow Datasets pins them; the MD5s that
/// torchvision checks match too — see data/raw/mnist/SHA256SUMS).
public let mnistSHA256: [String: String] = [
    "train-images-idx3-ubyte.gz":
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz":
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
]

/// Where the MNIST files are downloaded from, tried in order (file name appended).
public let mnistMirrors = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]

/// The published MD5 of the official cifar-10-binary.tar.gz.
public let cifar10ArchiveMD5 = "c32a1d4ab5d03f1284b67883e8d87530"
public let cifar10URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"

/// The content of data/raw/mnist/SHA256SUMS (`sha256sum --check` format).
public var mnistSHA256SumsText: String {
    mnistFileNames.map { "\(mnistSHA256[$0]!)  \($0)\n" }.joined()
}

// MARK: - Fetching

/// Downloads `url` to the file `destination`, or throws a description of why it could not.
public typealias Downloader = (_ url: String, _ destination: String) throws -> Void

/// What a fetch found: files already present and verified, and files it downloaded.
public struct FetchReport: Sendable {
    public var verified: [String] = []
    public var downloaded: [String] = []
}

/// Verifies the four MNIST files in `rawDir`, downloading missing ones from `mirrors`.
/// - Throws: `DatasetErrors`, one entry per missing or bad file.
@discardableResult
public func fetchMNIST(
    rawDir: String, mirrors: [String] = mnistMirrors,
    checksums: [String: String] = mnistSHA256, download: Downloader = curlDownload
) throws -> FetchReport {
    var report = FetchReport()
    var failures: [DatasetError] = []
    var networkFailed = false  // after one file failed on every mirror, do not wait on the others
    for name in mnistFileNames {
        let path = (rawDir as NSString).appendingPathComponent(name)
        let urls = mirrors.map { $0 + name }
        let check = { (file: String) throws in
            try verify(file, digest: sha256File(file), expected: checksums[name]!, kind: "SHA-256")
        }
        do {
            if FileManager.default.fileExists(atPath: path) {
                try check(path).throwing(path: path, presentHint: "ste fetch mnist")
                report.verified.append(path)
            } else {
                if networkFailed {
                    throw DatasetError(
                        file: path,
                        "file is missing (no download tried: the mirrors failed "
                            + "for \(failures.first.map { ($0.file as NSString).lastPathComponent } ?? "an earlier file"))",
                        hint: placeHint(urls, path))
                }
                do {
                    try downloadVerified(urls, to: path, download: download, check: check)
                } catch let e as DatasetError where e.problem.hasPrefix("file is missing") {
                    networkFailed = true
                    throw e
                }
                report.downloaded.append(path)
            }
        } catch let e as DatasetError {
            failures.append(e)
        }
    }
    if !failures.isEmpty { throw DatasetErrors(errors: failures) }
    return report
}

/// Verifies data/raw/cifar-10-binary.tar.gz (MD5), downloading it when missing and reachable.
/// - Throws: `DatasetErrors` with one entry when the archive is missing or bad.
@discardableResult
public func fetchCIFAR10(
    rawDir: String, url: String = cifar10URL, md5: String = cifar10ArchiveMD5,
    download: Downloader = curlDownload
) throws -> FetchReport {
    let path = (rawDir as NSString).appendingPathComponent(cifar10ArchiveName)
    let check = { (file: String) throws in
        try verify(file, digest: md5Hex(ofFile: file), expected: md5, kind: "MD5")
    }
    var report = FetchReport()
    do {
        if FileManager.default.fileExists(atPath: path) {
            try check(path).throwing(path: path, presentHint: "ste fetch cifar10")
            report.verified.append(path)
        } else {
            try downloadVerified(
                [url], to: path, download: download, check: check,
                extraHint: "without it the CIFAR-10 experiments are skipped")
            report.downloaded.append(path)
        }
    } catch let e as DatasetError {
        throw DatasetErrors(errors: [e])
    }
    return report
}

/// Several problems found in one go (a fetch reports every missing or bad file).
public struct DatasetErrors: Error, CustomStringConvertible {
    public let errors: [DatasetError]
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

/// Runs `curl -fsSL --retry 2` (no progress output; HTTP errors fail; the partial file is removed).
public func curlDownload(url: String, to destination: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    process.arguments = [
        "-fsSL", "--retry", "2", "--connect-timeout", "20", "-o", destination, url,
    ]
    let errors = Pipe()
    process.standardError = errors
    do { try process.run() } catch {
        throw DatasetError(file: url, "cannot run /usr/bin/curl: \(error.localizedDescription)")
    }
    let message = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        try? FileManager.default.removeItem(atPath: destination)
        let lines = String(decoding: message, as: UTF8.self).split(separator: "\n")
        throw DatasetError(
            file: url, String(lines.last ?? "curl exit status \(process.terminationStatus)"))
    }
}

// MARK: - Helpers

/// nil when the digest matches, else the problem.
private func verify(_ file: String, digest: String, expected: String, kind: String) -> String? {
    digest == expected ? nil : "\(kind) mismatch: expected \(expected), found \(digest)"
}

extension Optional where Wrapped == String {
    /// A checksum problem of a file that was already there.
    fileprivate func throwing(path: String, presentHint command: String) throws {
        if let problem = self {
            throw DatasetError(
                file: path, problem,
                hint: "this is not the official file: delete it and run `\(command)` again, "
                    + "or put the official file there")
        }
    }
}

/// Downloads from the first working URL to a temporary name beside `path`, verifies the
/// checksum, then renames it into place; a bad or failed download leaves nothing behind.
private func downloadVerified(
    _ urls: [String], to path: String, download: Downloader,
    check: (String) throws -> String?, extraHint: String? = nil
) throws {
    let folder = (path as NSString).deletingLastPathComponent
    do {
        try makeDirectories(folder)
    } catch {
        throw DatasetError(
            file: path, "cannot create the folder \(folder): \(error.localizedDescription)")
    }
    let temporary = (folder as NSString).appendingPathComponent(
        ".\((path as NSString).lastPathComponent).part-\(getpid())")
    var reasons: [String] = []
    for url in urls {
        do {
            try download(url, temporary)
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            reasons.append("\(url): \((error as? DatasetError)?.problem ?? "\(error)")")
            continue
        }
        if let problem = try check(temporary) {
            try? FileManager.default.removeItem(atPath: temporary)
            throw DatasetError(
                file: path, "the file downloaded from \(url) is not the official one: \(problem)")
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: temporary)
            throw DatasetError(file: path, "cannot rename the download into place: \(reason)")
        }
        return
    }
    throw DatasetError(
        file: path,
        "file is missing and could not be downloaded (\(reasons.joined(separator: "; ")))",
        hint: placeHint(urls, path) + (extraHint.map { "; \($0)" } ?? ""))
}

private func placeHint(_ urls: [String], _ path: String) -> String {
    "on a machine with network access download \(urls.first ?? "the official file") and put it at \(path)"
}

private func sha256File(_ path: String) throws -> String { try digestFile(path, SHA256.self) }
/// MD5 of a file's bytes, lower-case hex (only to compare with published sums).
public func md5Hex(ofFile path: String) throws -> String { try digestFile(path, Insecure.MD5.self) }

/// Lower-case hex digest of a file, read in 4 MiB pieces.
private func digestFile<H: HashFunction>(_ path: String, _: H.Type) throws -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else {
        throw DatasetError(file: path, "cannot read the file")
    }
    defer { try? handle.close() }
    var hasher = H()
    while let chunk = try handle.read(upToCount: 4 << 20), !chunk.isEmpty {
        hasher.update(data: chunk)
    }
    return hasher.finalize().map { String(format: "%02x", $0) }.joined()
}
