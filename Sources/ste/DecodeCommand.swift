// `ste decode mnist|fashion-mnist|cifar10`: raw dataset files → one HDF5 dataset file (see Datasets/DatasetFile.swift).
// Glue only: the work is `decodeMNIST` / `decodeCIFAR10` in Datasets.
import ArgumentParser
import Datasets
import Foundation

struct Decode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode a raw dataset into an HDF5 dataset file (uint8 images and labels).",
        discussion: """
            Output: /train/images, /train/labels, /test/images, /test/labels (uint8, contiguous, \
            uncompressed) and root attributes dataset, layout, n_train, n_test, decoder_version, \
            mean and std (per channel, train pixels / 255) plus provenance. Any problem with the input \
            stops the decode with an error naming the file; no output file is left behind.

            Examples:
              ste decode mnist
              ste decode cifar10 --archive data/raw/cifar-10-binary.tar.gz --out data/cifar10.h5
            """,
        subcommands: [DecodeMNIST.self, DecodeFashionMNIST.self, DecodeCIFAR10.self])
}

struct DecodeMNIST: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mnist",
        abstract:
            "Decode the four MNIST IDX .gz files into an HDF5 file (layout NHW, 60000 + 10000 images).",
        discussion: """
            The .gz files are decompressed in-process; the IDX magic (0x00000803 images, 0x00000801 \
            labels), dimensions, exact lengths, the official counts and labels 0...9 are checked.

            Example:
              ste decode mnist --raw-dir data/raw/mnist --out data/mnist.h5
            """)

    @Option(help: "Folder holding the four official .gz files (see `ste fetch mnist`).")
    var rawDir = "data/raw/mnist"

    @Option(help: "HDF5 file to write (its folder must exist).")
    var out = "data/mnist.h5"

    func run() throws {
        let start = Date()
        do {
            printSummary(try decodeMNIST(rawDir: rawDir, output: out), since: start)
        } catch { throw datasetStageFailure(error) }
    }
}

struct DecodeFashionMNIST: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fashion-mnist",
        abstract:
            "Decode the four Fashion-MNIST IDX .gz files into an HDF5 file (layout NHW, 60000 + 10000 images).",
        discussion: """
            The same decoder and checks as `ste decode mnist`; the file records dataset "fashion-mnist".

            Example:
              ste decode fashion-mnist --raw-dir data/raw/fashion-mnist --out data/fashion-mnist.h5
            """)

    @Option(help: "Folder holding the four .gz files (see `ste fetch fashion-mnist`).")
    var rawDir = "data/raw/fashion-mnist"

    @Option(help: "HDF5 file to write (its folder must exist).")
    var out = "data/fashion-mnist.h5"

    func run() throws {
        let start = Date()
        do {
            printSummary(try decodeFashionMNIST(rawDir: rawDir, output: out), since: start)
        } catch { throw datasetStageFailure(error) }
    }
}

struct DecodeCIFAR10: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cifar10",
        abstract:
            "Decode cifar-10-binary.tar.gz into an HDF5 file (layout NCHW, 50000 + 10000 images).",
        discussion: """
            The archive is gunzipped and read in-process. data_batch_1..5.bin become the train split \
            in that order, test_batch.bin the test split; each must be exactly 30,730,000 bytes \
            (10000 records of 1 label byte + 3072 pixel bytes, kept in their CHW order), labels 0...9.

            Example:
              ste decode cifar10 --archive data/raw/cifar-10-binary.tar.gz --out data/cifar10.h5
            """)

    @Option(help: "The official CIFAR-10 binary archive (see `ste fetch cifar10`).")
    var archive = "data/raw/cifar-10-binary.tar.gz"

    @Option(help: "HDF5 file to write (its folder must exist).")
    var out = "data/cifar10.h5"

    // Records per batch file of a small archive the tests write (scripts/test-cifar-path.sh); the official
    // archive has 10,000, which every other call checks.
    @Option(help: .hidden) var testFixtureRecords: Int?

    func run() throws {
        let start = Date()
        do {
            printSummary(try decodeCIFAR10(archive: archive, output: out, recordsPerBatch: testFixtureRecords ?? 10000),
                since: start)
        } catch { throw datasetStageFailure(error) }
    }
}

private func printSummary(_ s: DecodeSummary, since start: Date) {
    let stats = zip(s.mean, s.std).map { String(format: "%.4f/%.4f", $0, $1) }.joined(
        separator: " ")
    print(
        "wrote \(s.output): \(s.dataset) train \(s.trainCount), test \(s.testCount), "
            + "train mean/std \(stats) "
            + String(format: "(%.2f s)", Date().timeIntervalSince(start)))
}
