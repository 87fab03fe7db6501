// `--device cpu|cuda|auto` and `--tf32` of the stages that compute (pretrain, train, eval, bench): which engine
// runs the step. auto: the CUDA engine when a GPU and its libraries are found, else the CPU engine (and a line
// says why). The device is recorded in every output file; make passes DEVICE= / TF32= through the environment.
import ArgumentParser
import Experiments
import Foundation
import GPU
import NN
import Training

enum DeviceChoice: String, ExpressibleByArgument, CaseIterable {
    case cpu, cuda, auto
}

struct DeviceOptions: ParsableArguments {
    @Option(help: "Engine: cpu, cuda (an NVIDIA GPU; its libraries are found at run time) or auto (cuda when a GPU and its libraries are found, else cpu). Default: $STE_DEVICE or cpu.")
    var device: DeviceChoice?

    @Flag(help: "TF32 tensor-core math in cuDNN and cuBLAS (cuda only; off by default: float32 as on the CPU). Recorded with the device. Default: on when $STE_TF32 is 1.")
    var tf32 = false

    var choice: DeviceChoice {
        device ?? ProcessInfo.processInfo.environment["STE_DEVICE"].flatMap { DeviceChoice(rawValue: $0.lowercased()) } ?? .cpu
    }

    var wantsTF32: Bool { tf32 || ProcessInfo.processInfo.environment["STE_TF32"] == "1" }

    /// The engine factory of the chosen device; opening the GPU once per process.
    func engineFactory(quiet: Bool) throws -> EngineFactory {
        switch choice {
        case .cpu:
            return cpuEngineFactory
        case .cuda:
            return cudaFactory(try CUDADevice(tf32: wantsTF32))
        case .auto:
            do {
                return cudaFactory(try CUDADevice(tf32: wantsTF32))
            } catch {
                if !quiet { FileHandle.standardError.write(Data("device auto: the CPU engine (\(error))\n".utf8)) }
                return cpuEngineFactory
            }
        }
    }

    private func cudaFactory(_ gpu: CUDADevice) -> EngineFactory {
        { network, optimizer in try CUDAEngine(network: network, optimizer: optimizer, gpu: gpu) }
    }
}
