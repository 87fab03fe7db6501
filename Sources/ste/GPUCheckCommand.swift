// `ste gpu-check`: the CUDA engine's checks on a GPU machine (GPU/Checks.swift): kinks, PyTorch and CPU parity of
// every net, determinism, a GPU checkpoint evaluated on the CPU. Without a GPU it says what is missing and exits 1.
import ArgumentParser
import Foundation
import GPU

struct GPUCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gpu-check",
        abstract: "Check the CUDA engine on this machine's GPU against PyTorch's fixtures and the CPU engine.",
        discussion: "Prints one PASS / FAIL line per check; exits 1 when one fails or no GPU is usable.\n\nExample: ste gpu-check")
    @Option(help: "The PyTorch fixture file of the parity checks (tools/make_fixtures.py).")
    var fixtures = "Tests/NNTests/Fixtures/nets.h5"
    @Flag(help: "TF32 math (the parity tolerances assume float32).")
    var tf32 = false

    func run() throws {
        for (library, found) in CUDALibraries.survey() { print("\(library): \(found)") }
        fflush(stdout)
        let gpu: CUDADevice
        do { gpu = try CUDADevice(tf32: tf32) } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
        // Each check is printed (and flushed) as it finishes: the log of a run that stops keeps what came before.
        let report = GPUChecks.run(gpu: gpu, fixtures: fixtures, echo: true)
        print("gpu-check: \(report.lines.filter { $0.hasPrefix("PASS") }.count) passed, \(report.failures) failed")
        if report.failures > 0 { throw ExitCode.failure }
    }
}
