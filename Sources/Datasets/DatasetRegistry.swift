// The data sets by name: one registry, read by every module that names one (the configs' checks, the plan's steps per
// epoch, whether a data set's runs can be planned, the report's note on what is absent). A new data set is its decoder
// and one entry here.
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

    /// Whether its runs can be planned: the decoded file is here, or everything it is built from is.
    public var isPresent: Bool {
        FileManager.default.fileExists(atPath: file) || requires.allSatisfy { FileManager.default.fileExists(atPath: $0) }
    }
}

public let datasetRegistry: [DatasetDescriptor] = [
    DatasetDescriptor(name: "mnist", title: "MNIST", side: 28, channels: 1, trainImages: 60_000, testImages: 10_000,
        file: "data/mnist.h5", requires: [], howToGet: "it is vendored in data/raw/mnist/"),
    DatasetDescriptor(name: "fashion-mnist", title: "Fashion-MNIST", side: 28, channels: 1, trainImages: 60_000,
        testImages: 10_000, file: "data/fashion-mnist.h5", requires: [],
        howToGet: "make deps installs Debian's dataset-fashion-mnist"),
    DatasetDescriptor(name: "cifar10", title: "CIFAR-10", side: 32, channels: 3, trainImages: 50_000, testImages: 10_000,
        file: "data/cifar10.h5", requires: ["data/raw/\(cifar10ArchiveName)"],
        howToGet: "place the official `\(cifar10ArchiveName)` (MD5 \(cifar10ArchiveMD5)) in `data/raw/` (or let `ste fetch cifar10` "
            + "download it where a network is reachable), then run `make reproduce`: its cells, Fig. 2 and Appendix C are then "
            + "part of the plan"),
]

public func datasetDescriptor(_ name: String) -> DatasetDescriptor? { datasetRegistry.first { $0.name == name } }
