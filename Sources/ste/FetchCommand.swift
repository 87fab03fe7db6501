// `ste fetch <data set>`: check (and where possible get) a data set's raw files; `ste decode <data set>`: turn them
// into its HDF5 file. Glue only: which data sets exist, where their raw files live, how they are fetched and decoded
// is the data set registry's (Datasets/DatasetRegistry.swift).
import ArgumentParser
import Datasets
import Foundation

/// The registry's entry for `name`, or a usage error listing the data sets.
private func descriptor(_ name: String) throws -> DatasetDescriptor {
    guard let d = datasetDescriptor(name) else {
        throw ValidationError("unknown data set '\(name)'; known: \(datasetRegistry.map(\.name).joined(separator: ", "))")
    }
    return d
}

private let datasetList = datasetRegistry.map { "\($0.name) (\($0.title); raw files in \($0.rawDir))" }
    .joined(separator: ", ")

struct Fetch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify a data set's raw files against their published checksums; get missing ones.",
        discussion: """
            A file that is present is checked and never replaced. A missing file is fetched from the data set's \
            source (downloaded with curl when a mirror is reachable, or copied from a system folder), to a temporary \
            name that is verified and then renamed into place. When it cannot be had, the command says which file is \
            missing and where to put it, and exits non-zero. Data sets: \(datasetList).

            Examples:
              ste fetch mnist
              ste fetch cifar10 --raw-dir data/raw
            """)

    @Argument(help: "The data set: \(datasetRegistry.map(\.name).joined(separator: ", ")).")
    var dataset: String

    @Option(help: "Folder of its raw files (default: the registry's, e.g. data/raw/mnist).")
    var rawDir: String?

    @Option(name: [.customLong("source"), .customLong("mirror"), .customLong("url"), .customLong("system-dir")],
        help: "Where missing files come from: MNIST a base URL, Fashion-MNIST a folder, CIFAR-10 the archive's URL.")
    var source: String?

    // For the end-to-end test on an archive the tests write (scripts/test-cifar-path.sh): it replaces the
    // published sum for this call only; without it the official archive's MD5 is checked, always.
    @Option(help: .hidden) var testFixtureMD5: String?

    func validate() throws { _ = try descriptor(dataset) }

    func run() throws {
        let d = try descriptor(dataset)
        do {
            let report = try d.fetch(rawDir ?? d.rawDir, source ?? d.defaultSource, testFixtureMD5)
            for path in report.verified { print("ok          \(path)") }
            for path in report.downloaded { print("fetched     \(path) (checksum ok)") }
        } catch { throw datasetStageFailure(error) }
    }
}

struct Decode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode a data set's raw files into an HDF5 dataset file (uint8 images and labels).",
        discussion: """
            Output: /train/images, /train/labels, /test/images, /test/labels (uint8, contiguous, \
            uncompressed) and root attributes dataset, layout, n_train, n_test, decoder_version, \
            mean and std (per channel, train pixels / 255) plus provenance. Every check of the format (magic \
            numbers, sizes, the official counts, labels 0...9) names the file that fails it; no output file is \
            left behind. Data sets: \(datasetList).

            Examples:
              ste decode mnist
              ste decode cifar10 --raw-dir data/raw --out data/cifar10.h5
            """)

    @Argument(help: "The data set: \(datasetRegistry.map(\.name).joined(separator: ", ")).")
    var dataset: String

    @Option(help: "Folder of its raw files (see `ste fetch`; default: the registry's).")
    var rawDir: String?

    @Option(help: "HDF5 file to write (its folder must exist; default: the registry's, e.g. data/mnist.h5).")
    var out: String?

    // Records per batch file of a small archive the tests write (scripts/test-cifar-path.sh); the official
    // archive has 10,000, which every other call checks.
    @Option(help: .hidden) var testFixtureRecords: Int?

    func validate() throws { _ = try descriptor(dataset) }

    func run() throws {
        let d = try descriptor(dataset)
        let start = Date()
        do {
            let s = try d.decode(rawDir ?? d.rawDir, out ?? d.file, testFixtureRecords)
            let stats = zip(s.mean, s.std).map { String(format: "%.4f/%.4f", $0, $1) }.joined(separator: " ")
            print("wrote \(s.output): \(s.dataset) train \(s.trainCount), test \(s.testCount), train mean/std \(stats) "
                + String(format: "(%.2f s)", Date().timeIntervalSince(start)))
        } catch { throw datasetStageFailure(error) }
    }
}

/// Prints `error: <file>: <problem>` (and `hint:`) lines on stderr; returns the failing exit code.
func datasetStageFailure(_ error: Error) -> ExitCode {
    for line in failureLines(for: error) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
    return ExitCode.failure
}
