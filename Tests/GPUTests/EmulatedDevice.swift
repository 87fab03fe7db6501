// A host emulation of the CUDA engine's device, so the whole engine — its layer operations, the CUDA C kernels,
// the optimizer state, the host syncs — runs and is checked on a machine without a GPU. The kernels of
// Sources/GPU/KernelSource.swift are compiled as C++ by the toolchain's clang++ with a prelude that maps CUDA's
// thread indices, shared memory and __syncthreads onto host threads (a block's threads run as real threads, four of them, where a
// kernel synchronises, one after another where it does not); device memory is host memory; convolutions run on the
// CPU engine's reference backend (im2col + OpenBLAS) and SGEMM on plain loops. What this cannot check — cuDNN and
// cuBLAS themselves, the driver, NVRTC's code — is left to `ste gpu-check` on a GPU.
import Backends
import Foundation
import Kernels
import XCTest

@testable import GPU

final class EmulatedDevice: ComputeDevice {
    typealias Launcher = @convention(c) (UInt32, UInt32, UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> Void
    private let library: UnsafeMutableRawPointer
    private var launchers: [String: Launcher] = [:]
    let description = "emulated"

    /// Compiles the kernels; nil (with the reason) where no clang++ is installed.
    static func make() throws -> EmulatedDevice {
        let folder = NSTemporaryDirectory() + "ste-emulated-kernels-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let source = "\(folder)/kernels.cpp", object = "\(folder)/kernels.so"
        try (prelude + cudaKernelSource + wrappers(for: cudaKernelSource)).write(toFile: source, atomically: true, encoding: .utf8)
        guard let compiler = ["/opt/swift/usr/bin/clang++", "/usr/bin/clang++", "/usr/bin/g++"]
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else { throw XCTSkip("no C++ compiler (clang++ or g++) to build the kernels' host emulation") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: compiler)
        p.arguments = ["-std=c++20", "-O2", "-shared", "-fPIC", "-o", object, source, "-lpthread"]
        let errors = Pipe()
        p.standardError = errors
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw NSError(domain: "EmulatedDevice", code: 1, userInfo: [NSLocalizedDescriptionKey: "the kernels do not compile as C++:\n\(text)"])
        }
        guard let handle = dlopen(object, RTLD_NOW) else { throw NSError(domain: "EmulatedDevice", code: 2) }
        return EmulatedDevice(library: handle)
    }

    private init(library: UnsafeMutableRawPointer) { self.library = library }

    /// CUDA's indices, shared memory and barrier on host threads.
    static let prelude = """
        #include <barrier>
        #include <cmath>
        #include <functional>
        #include <thread>
        #include <vector>
        struct dim3 { unsigned x = 0, y = 0, z = 0; };
        static thread_local dim3 threadIdx, blockIdx;
        static dim3 blockDim, gridDim;
        static std::barrier<>* current_barrier = nullptr;
        static inline void __syncthreads() { current_barrier->arrive_and_wait(); }
        #define __global__
        #define __device__
        #define __forceinline__ inline
        #define __trap() __builtin_trap()
        #define __shared__ static
        static void run_grid(unsigned blocks, unsigned threads, bool synchronising, const std::function<void()>& body) {
            blockDim = {threads, 1, 1};
            gridDim = {blocks, 1, 1};
            for (unsigned b = 0; b < blocks; b++) {
                if (!synchronising) {
                    for (unsigned t = 0; t < threads; t++) { blockIdx = {b, 0, 0}; threadIdx = {t, 0, 0}; body(); }
                    continue;
                }
                std::barrier<> barrier(threads);
                current_barrier = &barrier;
                std::vector<std::thread> team;
                for (unsigned t = 0; t < threads; t++) team.emplace_back([&, b, t] { blockIdx = {b, 0, 0}; threadIdx = {t, 0, 0}; body(); });
                for (auto& member : team) member.join();
            }
        }

        """

    /// One `launch_<kernel>(blocks, threads, parameters)` per kernel, unpacking cuLaunchKernel's parameter array.
    static func wrappers(for source: String) -> String {
        var out = "extern \"C\" {\n"
        let pattern = try! NSRegularExpression(pattern: #"__global__ void (\w+)\(([^)]*)\)"#)
        let text = source as NSString
        let matches = pattern.matches(in: source, range: NSRange(location: 0, length: text.length))
        for m in matches {
            let name = text.substring(with: m.range(at: 1))
            let parameters = text.substring(with: m.range(at: 2)).split(separator: ",").map {
                $0.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            // The kernel's body: from its signature to the brace that closes it.
            var depth = 0, started = false
            let position = m.range.location + m.range.length
            let characters = Array(text.substring(from: position).utf16)
            var length = 0
            for c in characters {
                length += 1
                if c == 123 { depth += 1; started = true } else if c == 125 { depth -= 1 }
                if started && depth == 0 { break }
            }
            let body = text.substring(with: NSRange(location: position, length: length))
            let synchronising = body.contains("__syncthreads") || body.contains("block_sum(")
            // "const float* x" → *(const float**)a[k]: the parameter's type is all but its trailing name.
            let arguments = parameters.enumerated().map { (k, p) -> String in
                let cut = p.lastIndex(where: { !($0.isLetter || $0.isNumber || $0 == "_") })!
                return "*(\(p[...cut].trimmingCharacters(in: .whitespaces))*)a[\(k)]"
            }
            out += "void launch_\(name)(unsigned blocks, unsigned threads, void** a) {\n"
            out += "    run_grid(blocks, \(synchronising ? "threads < 4 ? threads : 4" : "threads"), \(synchronising), [&] { \(name)(\(arguments.joined(separator: ", "))); });\n}\n"
        }
        return out + "}\n"
    }

    func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 4), alignment: 64)
    }
    func release(_ pointer: UnsafeMutableRawPointer) { pointer.deallocate() }
    func copy(_ destination: UnsafeMutableRawPointer, _ source: UnsafeRawPointer, bytes: Int, _ direction: CopyDirection) {
        destination.copyMemory(from: source, byteCount: bytes)
    }
    func zero(_ pointer: UnsafeMutableRawPointer, bytes: Int) { pointer.initializeMemory(as: UInt8.self, repeating: 0, count: bytes) }

    func launch(_ name: String, blocks: Int, threads: Int, _ arguments: [KernelArgument]) {
        guard blocks > 0 else { return }
        let launcher: Launcher
        if let l = launchers[name] { launcher = l } else {
            guard let symbol = dlsym(library, "launch_\(name)") else { fatalError("no emulated kernel \(name)") }
            launcher = unsafeBitCast(symbol, to: Launcher.self)
            launchers[name] = launcher
        }
        withKernelParameters(arguments) { launcher(UInt32(blocks), UInt32(threads), $0) }
    }

    func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, a: UnsafeRawPointer, lda: Int,
               b: UnsafeRawPointer, ldb: Int, c: UnsafeMutableRawPointer, ldc: Int) {
        let (A, B, C) = (a.assumingMemoryBound(to: Float.self), b.assumingMemoryBound(to: Float.self),
                         c.assumingMemoryBound(to: Float.self))
        for j in 0..<n {
            for i in 0..<m {
                var sum: Float = 0
                for l in 0..<k {
                    let x = transposeA ? A[l + i * lda] : A[i + l * lda]
                    let y = transposeB ? B[j + l * ldb] : B[l + j * ldb]
                    sum += x * y
                }
                C[i + j * ldc] = sum
            }
        }
    }

    final class ReferenceConvolution: DeviceConvolution {
        let convolution: Convolution2D
        init(_ g: Conv2DGeometry) { convolution = Compute.reference.convolution(g, bias: false) }
        func forward(x: UnsafeRawPointer, w: UnsafeRawPointer, y: UnsafeMutableRawPointer) {
            convolution.forward(input: x.assumingMemoryBound(to: Float.self), weight: w.assumingMemoryBound(to: Float.self),
                                bias: nil, output: y.assumingMemoryBound(to: Float.self))
        }
        func backwardData(dy: UnsafeRawPointer, w: UnsafeRawPointer, dx: UnsafeMutableRawPointer) {
            convolution.backwardData(outputGrad: dy.assumingMemoryBound(to: Float.self),
                                     weight: w.assumingMemoryBound(to: Float.self), inputGrad: dx.assumingMemoryBound(to: Float.self))
        }
        func backwardFilter(x: UnsafeRawPointer, dy: UnsafeRawPointer, dw: UnsafeMutableRawPointer) {
            let g = convolution.geometry
            let w = dw.assumingMemoryBound(to: Float.self)
            w.update(repeating: 0, count: g.weightCount)
            convolution.backwardWeights(input: x.assumingMemoryBound(to: Float.self),
                                        outputGrad: dy.assumingMemoryBound(to: Float.self), weightGrad: w, biasGrad: nil)
        }
    }

    func convolution(_ geometry: Conv2DGeometry) -> DeviceConvolution { ReferenceConvolution(geometry) }
    func synchronize() {}
    var recordedLibraries: [String: String] { ["emulation": "the CUDA kernels compiled for the host (C++ threads)"] }
}
