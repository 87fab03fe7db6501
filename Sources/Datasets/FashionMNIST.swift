// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 70,000 28×28 grey images of clothes in 10 classes, in the four
// IDX .gz files of MNIST's format and names. It stands in for CIFAR-10 where CIFAR-10 cannot be obtained: Debian
// ships it (package dataset-fashion-mnist, files in /usr/share/datasets/fashion-mnist/).
//
// The files are verified by the SHA-256 of their *decompressed* bytes: Debian recompresses the upstream .gz files
// (so the .gz MD5s of the upstream README do not match the package's), while the IDX content is the same — the
// content MD5s below are those the usual loaders publish for the upstream files, and the package's content
// matches them. Decoding goes through MNIST's validated IDX reader (`MNIST.swift`).
import Crypto
import Foundation
import Storage

/// Where Debian's dataset-fashion-mnist package installs the four files.
public let fashionMNISTSystemDir = "/usr/share/datasets/fashion-mnist"

/// SHA-256 of each file's decompressed IDX bytes (measured on dataset-fashion-mnist 0.0~git20200523.55506a9-1;
/// data/raw/fashion-mnist/SHA256SUMS records them with their source).
public let fashionMNISTContentSHA256: [String: String] = [
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
]

/// What to tell a user who has none of the files.
let fashionMNISTSourceHint =
    "install Debian's package (`apt-get install dataset-fashion-mnist`, which `make deps` does) or put the four "
    + "official .gz files of https://github.com/zalandoresearch/fashion-mnist there"

/// Makes sure the four Fashion-MNIST files are in `rawDir` and are the official ones: a file already there is
/// verified; a missing one is copied from `systemDir` (verified under a temporary name, then renamed into place).
/// - Throws: `DatasetErrors`, one entry per missing or bad file.
@discardableResult
public func fetchFashionMNIST(
    rawDir: String, systemDir: String = fashionMNISTSystemDir,
    contentSHA256: [String: String] = fashionMNISTContentSHA256
) throws -> FetchReport {
    var report = FetchReport()
    var failures: [DatasetError] = []
    for name in mnistFileNames {
        let path = (rawDir as NSString).appendingPathComponent(name)
        let source = (systemDir as NSString).appendingPathComponent(name)
        do {
            if FileManager.default.fileExists(atPath: path) {
                if let problem = try contentProblem(path, expected: contentSHA256[name]!) {
                    throw DatasetError(
                        file: path, problem,
                        hint: "this is not the official file: delete it and run `ste fetch fashion-mnist` again")
                }
                report.verified.append(path)
            } else if FileManager.default.fileExists(atPath: source) {
                try copyVerified(source, to: path, expected: contentSHA256[name]!)
                report.downloaded.append(path)
            } else {
                throw DatasetError(file: path, "file is missing (and \(source) does not exist)",
                                   hint: fashionMNISTSourceHint)
            }
        } catch let e as DatasetError {
            failures.append(e)
        }
    }
    if !failures.isEmpty { throw DatasetErrors(errors: failures) }
    return report
}

/// Decodes the four Fashion-MNIST .gz files in `rawDir` into `output` (layout NHW, as MNIST).
@discardableResult
public func decodeFashionMNIST(
    rawDir: String, output: String, expectedTrainCount: Int = 60000, expectedTestCount: Int = 10000
) throws -> DecodeSummary {
    try decodeIDXDataset(
        "fashion-mnist", rawDir: rawDir, output: output, expectedTrainCount: expectedTrainCount,
        expectedTestCount: expectedTestCount, missingHint: "run `ste fetch fashion-mnist --raw-dir \(rawDir)`; "
            + fashionMNISTSourceHint)
}

/// The content digest's mismatch, or nil when the decompressed bytes are the official ones.
private func contentProblem(_ path: String, expected: String) throws -> String? {
    let bytes = try gunzip(file: path)
    let digest = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    return digest == expected ? nil : "SHA-256 of the decompressed content is \(digest), expected \(expected)"
}

/// Copies `source` to a temporary name beside `path`, verifies it, renames it into place.
private func copyVerified(_ source: String, to path: String, expected: String) throws {
    let folder = (path as NSString).deletingLastPathComponent
    do {
        try makeDirectories(folder)
    } catch {
        throw DatasetError(file: path, "cannot create the folder \(folder): \(error.localizedDescription)")
    }
    let temporary = (folder as NSString).appendingPathComponent(
        ".\((path as NSString).lastPathComponent).part-\(getpid())")
    defer { unlink(temporary) }
    guard let data = FileManager.default.contents(atPath: source) else {
        throw DatasetError(file: source, "cannot read the file")
    }
    do {
        try data.write(to: URL(fileURLWithPath: temporary))
    } catch {
        throw DatasetError(file: path, "cannot write \(temporary): \(error.localizedDescription)")
    }
    if let problem = try contentProblem(temporary, expected: expected) {
        throw DatasetError(file: source, "not the official file: \(problem)",
                           hint: "reinstall the package (`apt-get install --reinstall dataset-fashion-mnist`)")
    }
    guard rename(temporary, path) == 0 else {
        throw DatasetError(file: path, "cannot rename the copy into place: \(String(cString: strerror(errno)))")
    }
}
