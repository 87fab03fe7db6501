// `ste fetch mnist|fashion-mnist|cifar10`: check (and where possible download) the raw dataset files.
// Glue only: the work is `fetchMNIST` / `fetchCIFAR10` in Datasets.
import ArgumentParser
import Datasets
import Foundation

struct Fetch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Verify the raw dataset files against their published checksums; download missing ones.",
        discussion: """
            A file that is present is checked (MNIST: SHA-256, CIFAR-10: MD5) and never replaced. A \
            missing file is downloaded with curl when a mirror is reachable, to a temporary name that is \
            verified and then renamed into place. Without a network the command says which file is \
            missing and where to put it, and exits non-zero.

            Examples:
              ste fetch mnist
              ste fetch cifar10 --raw-dir data/raw
            """,
        subcommands: [FetchMNIST.self, FetchFashionMNIST.self, FetchCIFAR10.self])
}

struct FetchMNIST: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mnist",
        abstract: "Verify (or download) the four official MNIST .gz files.",
        discussion: """
            Checks train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz \
            and t10k-labels-idx1-ubyte.gz against the SHA-256 sums pinned in the code (the same as \
            data/raw/mnist/SHA256SUMS).

            Example:
              ste fetch mnist --raw-dir data/raw/mnist
            """)

    @Option(help: "Folder holding the four .gz files.")
    var rawDir = "data/raw/mnist"

    @Option(
        help:
            "Base URL to download missing files from, instead of the usual mirrors (file name is appended)."
    )
    var mirror: String?

    func run() throws {
        do {
            let report = try fetchMNIST(
                rawDir: rawDir, mirrors: mirror.map { [$0] } ?? mnistMirrors)
            printFetchReport(report)
        } catch { throw datasetStageFailure(error) }
    }
}

struct FetchFashionMNIST: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fashion-mnist",
        abstract: "Copy the four Fashion-MNIST .gz files from Debian's package and verify them.",
        discussion: """
            A missing file is copied from the system folder (Debian's dataset-fashion-mnist installs it; \
            `make deps` installs the package); every file is verified by the SHA-256 of its decompressed \
            content (data/raw/fashion-mnist/SHA256SUMS), so the upstream .gz files pass too.

            Example:
              ste fetch fashion-mnist --raw-dir data/raw/fashion-mnist
            """)

    @Option(help: "Folder to hold the four .gz files.")
    var rawDir = "data/raw/fashion-mnist"

    @Option(help: "Folder to copy missing files from.")
    var systemDir = fashionMNISTSystemDir

    func run() throws {
        do {
            let report = try fetchFashionMNIST(rawDir: rawDir, systemDir: systemDir)
            for path in report.verified { print("ok          \(path)") }
            for path in report.downloaded { print("copied      \(path) (checksum ok)") }
        } catch { throw datasetStageFailure(error) }
    }
}

struct FetchCIFAR10: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cifar10",
        abstract: "Verify (or download) the official cifar-10-binary.tar.gz.",
        discussion: """
            Checks <raw-dir>/cifar-10-binary.tar.gz against the published MD5 \
            c32a1d4ab5d03f1284b67883e8d87530. If it is missing and cannot be downloaded, the command \
            prints where to get it and exits non-zero (the Makefile then skips the CIFAR-10 rows).

            Example:
              ste fetch cifar10 --raw-dir data/raw
            """)

    @Option(help: "Folder holding cifar-10-binary.tar.gz.")
    var rawDir = "data/raw"

    @Option(help: "URL to download the archive from when it is missing.")
    var url = cifar10URL

    // For the end-to-end test on an archive the tests write (scripts/test-cifar-path.sh): it replaces the
    // published sum for this call only; without it the official archive's MD5 is checked, always.
    @Option(help: .hidden) var testFixtureMD5: String?

    func run() throws {
        do {
            printFetchReport(try fetchCIFAR10(rawDir: rawDir, url: url, md5: testFixtureMD5 ?? cifar10ArchiveMD5))
        } catch { throw datasetStageFailure(error) }
    }
}

private func printFetchReport(_ report: FetchReport) {
    for path in report.verified { print("ok          \(path)") }
    for path in report.downloaded { print("downloaded  \(path) (checksum ok)") }
}

/// Prints `error: <file>: <problem>` (and `hint:`) lines on stderr; returns the failing exit code.
func datasetStageFailure(_ error: Error) -> ExitCode {
    for line in failureLines(for: error) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
    return ExitCode.failure
}
