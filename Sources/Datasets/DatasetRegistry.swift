// The data sets by name: one registry, read by every module that names one (the configs' checks, the plan's steps per
// epoch, whether a data set's runs can be planned, the report's note on what is absent, the `ste fetch` and
// `ste decode` commands). A new data set is its decoder and one entry here.
import Foundation

public struct DatasetDescriptor: Sendable {
    public let name: String
    /// How the report names it.
    public let title: String
    public let side: Int
    public let channels: Int
    public let trainImages: Int
    public let testImages: Int
    /// The decoded file `make` builds (data/<name>.h5).
    public let file: String
    /// Files that must be here before it can be built; empty when it can always be built (vendored in the repository,
    /// or installed by `make deps`).
    public let requires: [String]
    /// What to do when it is absent (the report says so beside the rows it could not run).
    public let howToGet: String
    /// The folder of its raw files (`ste fetch` checks them there, `ste decode` reads them), and their names.
    public let rawDir: String
    public let rawFiles: [String]
    /// What `ste fetch --source` names for it (where missing raw files come from), and the default.
    public let sourceHelp: String
    public let defaultSource: String
    /// Verifies the raw files in a folder, getting missing ones from a source; the test MD5 replaces the published
    /// sum of an archive for one call (the CIFAR-10 path's end-to-end test on its own small archive).
    public let fetch: @Sendable (_ rawDir: String, _ source: String, _ testFixtureMD5: String?) throws -> FetchReport
    /// Decodes the raw files of a folder into the data set file; the test record count replaces the official one.
    public let decode: @Sendable (_ rawDir: String, _ output: String, _ testFixtureRecords: Int?) throws -> DecodeSummary

    /// Whether its runs can be planned: the decoded file is here, or everything it is built from is.
    public var isPresent: Bool {
        FileManager.default.fileExists(atPath: file) || requires.allSatisfy { FileManager.default.fileExists(atPath: $0) }
    }
}

public let datasetRegistry: [DatasetDescriptor] = [
    DatasetDescriptor(name: "mnist", title: "MNIST", side: 28, channels: 1, trainImages: 60_000, testImages: 10_000,
        file: "data/mnist.h5", requires: [], howToGet: "it is vendored in data/raw/mnist/",
        rawDir: "data/raw/mnist", rawFiles: mnistFileNames,
        sourceHelp: "a base URL to download missing files from (the file name is appended)",
        defaultSource: mnistMirrors.joined(separator: " "),
        fetch: { raw, source, _ in try fetchMNIST(rawDir: raw, mirrors: source.split(separator: " ").map(String.init)) },
        decode: { raw, out, _ in try decodeMNIST(rawDir: raw, output: out) }),
    DatasetDescriptor(name: "fashion-mnist", title: "Fashion-MNIST", side: 28, channels: 1, trainImages: 60_000,
        testImages: 10_000, file: "data/fashion-mnist.h5", requires: [],
        howToGet: "make deps installs Debian's dataset-fashion-mnist",
        rawDir: "data/raw/fashion-mnist", rawFiles: mnistFileNames,
        sourceHelp: "a folder to copy missing files from (Debian's dataset-fashion-mnist installs it)",
        defaultSource: fashionMNISTSystemDir,
        fetch: { raw, source, _ in try fetchFashionMNIST(rawDir: raw, systemDir: source) },
        decode: { raw, out, _ in try decodeFashionMNIST(rawDir: raw, output: out) }),
    DatasetDescriptor(name: "cifar10", title: "CIFAR-10", side: 32, channels: 3, trainImages: 50_000, testImages: 10_000,
        file: "data/cifar10.h5", requires: ["data/raw/\(cifar10ArchiveName)"],
        howToGet: "place the official `\(cifar10ArchiveName)` (MD5 \(cifar10ArchiveMD5)) in `data/raw/` (or let `ste fetch cifar10` "
            + "download it where a network is reachable), then run `make reproduce`: its cells, Fig. 2 and Appendix C are then "
            + "part of the plan",
        rawDir: "data/raw", rawFiles: [cifar10ArchiveName],
        sourceHelp: "the URL to download the archive from when it is missing", defaultSource: cifar10URL,
        fetch: { raw, source, md5 in try fetchCIFAR10(rawDir: raw, url: source, md5: md5 ?? cifar10ArchiveMD5) },
        decode: { raw, out, records in
            try decodeCIFAR10(archive: (raw as NSString).appendingPathComponent(cifar10ArchiveName), output: out,
                recordsPerBatch: records ?? 10000)
        }),
]

public func datasetDescriptor(_ name: String) -> DatasetDescriptor? { datasetRegistry.first { $0.name == name } }
