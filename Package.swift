// swift-tools-version:6.0
// ste-repro: reproduces the experiments of four papers on straight-through estimators (STE)
// for activation-quantized nets. One module per stage or concern; thin C shims for the system
// libraries; one executable `ste` whose subcommands are the pipeline stages.
import PackageDescription

// The hand-written kernels get their own flags: without AVX2 codegen `rounded()` becomes a libm
// call per element (8-10x slower, notes/swift-native-libraries.md §2.10); -Ounchecked drops
// bounds checks in the inner loops. Only this target needs an AVX2 CPU.
let kernelFlags: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-target-cpu", "haswell"])]

let package = Package(
    name: "ste-repro",
    platforms: [.macOS(.v13)],
    products: [.executable(name: "ste", targets: ["ste"]), .executable(name: "ste-fuzz", targets: ["ste-fuzz"])],
    // Exact versions: a reproduction must not float its dependencies, and a Package.resolved cannot be committed here
    // (the machines' package copies carry other commit ids). swift-crypto's own dependency, swift-asn1, resolves to
    // the one version these machines carry (1.7.4).
    dependencies: [
        // CLI parsing for the `ste` subcommands.
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        // SHA-256 for provenance and raw-file checksums; MD5 for the published CIFAR-10 sum.
        .package(url: "https://github.com/apple/swift-crypto", exact: "4.5.2"),
        // Experiment grids are YAML files.
        .package(url: "https://github.com/jpsim/Yams", exact: "5.0.1"),
        // The papers' reference tables and our result tables (table1.csv, runs.csv, histories.csv) are CSV.
        .package(url: "https://github.com/yaslab/CSV.swift", exact: "2.5.2"),
    ],
    targets: [
        // MARK: - System libraries, found through pkg-config where the library ships a .pc file (HDF5, zlib,
        // OpenBLAS; PKG_CONFIG_PATH points at a cluster module's); oneDNN 2.x by its header and -ldnnl.
        .systemLibrary(
            name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5",
            providers: [.apt(["libhdf5-dev"]), .yum(["hdf5-devel"])]),
        .systemLibrary(
            name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"]), .yum(["zlib-devel"])]),
        .systemLibrary(
            name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"]), .yum(["openblas-devel"])]),
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL", providers: [.apt(["libdnnl-dev"])]),

        // MARK: - Libraries
        // Tensor type and the CPU kernels oneDNN lacks (quantizer + STE, loss, optimizer updates).
        .target(
            name: "Kernels", swiftSettings: kernelFlags,
            linkerSettings: [.linkedLibrary("m", .when(platforms: [.linux]))]),
        // HDF5 tensor store: the contract between stages.
        .target(name: "Storage", dependencies: ["CHDF5", .product(name: "Crypto", package: "swift-crypto")]),
        // Raw dataset verification, IDX / CIFAR-10 decoding, HDF5 dataset files.
        .target(
            name: "Datasets",
            dependencies: ["Storage", "CZlib", .product(name: "Crypto", package: "swift-crypto")]),
        // Compute backends behind one interface: oneDNN (conv, fast path) and a reference CPU path.
        .target(name: "Backends", dependencies: ["Kernels", "CDNNL", "COpenBLAS"]),
        // Layers with forward and backward side by side, and the three nets.
        .target(name: "NN", dependencies: ["Kernels", "Backends"]),
        // The training loop (Trainer) and the engine seam it drives (TrainingEngine; CPUEngine is the first engine),
        // optimizers, schedules, data feeding, checkpoints, the per-epoch history.
        .target(name: "Training", dependencies: ["NN", "Kernels", "Backends", "Storage"]),
        // The experiment harness every experiment shares: config reading, claims and their outcomes, result files with
        // provenance, Markdown tables, SVG figures.
        .target(name: "Harness", dependencies: ["Storage", "Yams"]),
        // The seed papers' theory experiments (Yin 2019 two-linear-layer model, Long 2021, Gongyo 2021).
        .target(name: "Theory", dependencies: ["Storage", "Harness", "Kernels"]),
        // Experiment grids as data (YAML), run ids, overrides and sweeps, the plan (Make rules), and the stages that run
        // one cell of the grid: pretrain / train (through the Trainer) and eval.
        .target(
            name: "Experiments",
            dependencies: ["Training", "NN", "Kernels", "Backends", "Storage", "Datasets", "Harness"]),
        // The report stage: the grid's run files → table1.csv, runs.csv, histories.csv, REPORT.md and figures; the
        // comparison with the papers' tables and claims, and `ste diff` between two tables.
        .target(
            name: "Report",
            dependencies: [
                "Datasets", "Experiments", "Harness", "Kernels", "NN", "Training", "Storage", .product(name: "CSV", package: "CSV.swift"),
            ]),
        // The grid on a Slurm cluster: job-array scripts, settings, and the status of submitted tasks.
        .target(name: "Cluster", dependencies: ["Experiments", "NN", "Storage", "Harness"]),
        // The second engine: TrainingEngine on an NVIDIA GPU (cuDNN, cuBLAS, NVRTC kernels), its libraries loaded at
        // run time, so the build needs nothing of CUDA.
        .target(name: "GPU", dependencies: ["NN", "Kernels", "Backends", "Training", "Storage"]),
        // Schoenbauer et al. 2024: weight quantization with custom gradient estimators vs the mapped STE.
        .target(name: "Schoenbauer", dependencies: ["NN", "Kernels", "Training", "Storage", "Datasets", "Harness"]),

        // MARK: - Executable
        .executableTarget(
            name: "ste",
            dependencies: [
                "Storage", "Datasets", "Training", "NN", "Theory", "Experiments", "Report", "Cluster", "Kernels", "Backends",
                "Schoenbauer", "GPU",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // The parsers a user's input reaches, under libFuzzer (make fuzz) or replaying the committed corpus (make test).
        .executableTarget(name: "ste-fuzz", dependencies: ["Datasets", "Experiments", "Storage"]),

        // MARK: - Tests
        // What the test targets share: temporary folders, the repository root, random tensors, bit patterns,
        // closeness with tolerances.
        .target(name: "TestSupport", dependencies: ["Kernels"], path: "Tests/TestSupport"),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "TestSupport"]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets", "TestSupport", "Storage", "CZlib"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "TestSupport"]),
        .testTarget(
            name: "NNTests", dependencies: ["NN", "TestSupport", "Kernels", "Backends", "Storage", "Training"],
            resources: [.copy("Fixtures")]),
        .testTarget(name: "TheoryTests", dependencies: ["Theory", "Kernels", "Harness"]),
        .testTarget(
            name: "GPUTests", dependencies: ["GPU", "NN", "Kernels", "Backends", "Training", "Storage", "TestSupport"]),
        .testTarget(name: "SchoenbauerTests", dependencies: ["Schoenbauer", "Kernels", "NN"]),
        .testTarget(
            name: "PipelineTests",
            dependencies: [
                "Experiments", "Report", "Cluster", "Harness", "Storage", "Datasets", "Kernels", "Backends", "Training", "TestSupport",
                "Theory", "Schoenbauer",
            ]),
    ],
    swiftLanguageModes: [.v5]
)
