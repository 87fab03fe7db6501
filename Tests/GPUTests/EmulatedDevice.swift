// A host emulation of the CUDA engine's device, so the whole engine — its layer operations, the CUDA C kernels,
// the optimizer state, the host syncs — runs and is checked on a machine without a GPU. The kernels of
// Sources/GPU/KernelSource.swift are compiled by the engine's own NVRTC path against the host stand-in's NVRTC
// (tools/cuda-standin: the CUDA C as C++, CUDA's thread indices, shared memory and __syncthreads mapped onto the host,
// a block's threads as fibers where a kernel synchronises), and the resulting shared object is loaded here; device
// memory is host memory; convolutions run on the CPU engine's reference backend (im2col + OpenBLAS) and SGEMM on plain
// loops; a graph is the list of the work captured, run again in order. The stand-in's other libraries (scripts/test-cuda-standin.sh) check the engine's calls into the NVIDIA
// libraries; what neither can check — cuDNN and cuBLAS themselves, the driver, NVRTC's code — is left to
// `ste gpu-check` on a GPU.
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

    /// Where the stand-in is built and the kernels compiled, one folder per test process.
    static let folder = NSTemporaryDirectory() + "ste-emulated-kernels-\(getpid())"
    /// The symbol by which the stand-in NVRTC is told from NVIDIA's (tools/cuda-standin/cuda_standin.cpp).
    static let standInNVRTCMarker = "ste_standin_nvrtc"

    /// Builds the stand-in (tools/cuda-standin/build.sh), compiles the kernels with its NVRTC as the engine does and
    /// loads them; skips where no C++ compiler is installed.
    static func make() throws -> EmulatedDevice {
        let folder = Self.folder
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let build = Process()
        build.executableURL = URL(fileURLWithPath: "/bin/bash")
        build.arguments = ["\(root)/tools/cuda-standin/build.sh", "\(folder)/nvidia"]
        let errors = Pipe()
        build.standardError = errors
        build.standardOutput = FileHandle.nullDevice
        try build.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        build.waitUntilExit()
        if build.terminationStatus == 2 { throw XCTSkip("the host stand-in for NVRTC does not build here: \(text)") }
        guard build.terminationStatus == 0 else {
            throw NSError(domain: "EmulatedDevice", code: 1, userInfo: [NSLocalizedDescriptionKey: "tools/cuda-standin/build.sh failed:\n\(text)"])
        }
        let nvrtc = try NVRTC(folders: ["\(folder)/nvidia"])
        let object = try NVRTCCompiler(nvrtc: nvrtc).compileKernelsCUBIN(architecture: "sm_90")
        let path = "\(folder)/kernels.so"
        try Data(object).write(to: URL(fileURLWithPath: path))
        guard let handle = dlopen(path, RTLD_NOW) else {
            throw NSError(domain: "EmulatedDevice", code: 2, userInfo: [NSLocalizedDescriptionKey: String(cString: dlerror())])
        }
        return EmulatedDevice(library: handle)
    }

    private init(library: UnsafeMutableRawPointer) { self.library = library }

    func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 4), alignment: 64)
    }
    private(set) var releases = 0
    func release(_ pointer: UnsafeMutableRawPointer) {
        precondition(recording == nil, "memory released while a graph is captured (cudaFree fails there)")
        releases += 1
        pointer.deallocate()
    }
    func copy(_ destination: UnsafeMutableRawPointer, _ source: UnsafeRawPointer, bytes: Int, _ direction: CopyDirection) {
        precondition(recording == nil || direction != .toHost, "a copy to the host while a graph is captured")
        run { destination.copyMemory(from: source, byteCount: bytes) }
    }
    func zero(_ pointer: UnsafeMutableRawPointer, bytes: Int) {
        run { pointer.initializeMemory(as: UInt8.self, repeating: 0, count: bytes) }
    }

    /// The work captured so far while a graph is being captured (nil: work runs as it comes).
    private var recording: [() -> Void]?
    private(set) var graphLaunches = 0
    private func run(_ work: @escaping () -> Void) { if recording != nil { recording!.append(work) } else { work() } }

    final class Graph: DeviceGraph {
        let work: [() -> Void]
        unowned let device: EmulatedDevice
        init(_ work: [() -> Void], _ device: EmulatedDevice) { (self.work, self.device) = (work, device) }
        func launch() {
            device.graphLaunches += 1
            for w in work { w() }
        }
    }

    func capture(_ body: () -> Void) -> DeviceGraph? {
        precondition(recording == nil, "nested capture")
        recording = []
        body()
        defer { recording = nil }
        return Graph(recording!, self)
    }

    func launch(_ name: String, blocks: Int, threads: Int, _ arguments: [KernelArgument]) {
        guard blocks > 0 else { return }
        let launcher: Launcher
        if let l = launchers[name] { launcher = l } else {
            guard let symbol = dlsym(library, "launch_\(name)") else { fatalError("no emulated kernel \(name)") }
            launcher = unsafeBitCast(symbol, to: Launcher.self)
            launchers[name] = launcher
        }
        run { withKernelParameters(arguments) { launcher(UInt32(blocks), UInt32(threads), $0) } }
    }

    func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, a: UnsafeRawPointer, lda: Int,
               b: UnsafeRawPointer, ldb: Int, c: UnsafeMutableRawPointer, ldc: Int) {
        run { Self.gemm(transposeA, transposeB, m, n, k, a, lda, b, ldb, c, ldc) }
    }

    private static func gemm(_ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ a: UnsafeRawPointer,
                             _ lda: Int, _ b: UnsafeRawPointer, _ ldb: Int, _ c: UnsafeMutableRawPointer, _ ldc: Int) {
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
        unowned let device: EmulatedDevice
        init(_ g: Conv2DGeometry, _ device: EmulatedDevice) {
            convolution = Compute.reference.convolution(g, bias: false)
            self.device = device
        }
        func forward(x: UnsafeRawPointer, w: UnsafeRawPointer, y: UnsafeMutableRawPointer) {
            device.run { self.forwardNow(x: x, w: w, y: y) }
        }
        func backwardData(dy: UnsafeRawPointer, w: UnsafeRawPointer, dx: UnsafeMutableRawPointer) {
            device.run { self.backwardDataNow(dy: dy, w: w, dx: dx) }
        }
        func backwardFilter(x: UnsafeRawPointer, dy: UnsafeRawPointer, dw: UnsafeMutableRawPointer) {
            device.run { self.backwardFilterNow(x: x, dy: dy, dw: dw) }
        }
        private func forwardNow(x: UnsafeRawPointer, w: UnsafeRawPointer, y: UnsafeMutableRawPointer) {
            convolution.forward(input: x.assumingMemoryBound(to: Float.self), weight: w.assumingMemoryBound(to: Float.self),
                                bias: nil, output: y.assumingMemoryBound(to: Float.self))
        }
        private func backwardDataNow(dy: UnsafeRawPointer, w: UnsafeRawPointer, dx: UnsafeMutableRawPointer) {
            convolution.backwardData(outputGrad: dy.assumingMemoryBound(to: Float.self),
                                     weight: w.assumingMemoryBound(to: Float.self), inputGrad: dx.assumingMemoryBound(to: Float.self))
        }
        private func backwardFilterNow(x: UnsafeRawPointer, dy: UnsafeRawPointer, dw: UnsafeMutableRawPointer) {
            let g = convolution.geometry
            let w = dw.assumingMemoryBound(to: Float.self)
            w.update(repeating: 0, count: g.weightCount)
            convolution.backwardWeights(input: x.assumingMemoryBound(to: Float.self),
                                        outputGrad: dy.assumingMemoryBound(to: Float.self), weightGrad: w, biasGrad: nil)
        }
    }

    func convolution(_ geometry: Conv2DGeometry) -> DeviceConvolution { ReferenceConvolution(geometry, self) }
    func synchronize() {}
    var recordedLibraries: [String: String] { ["emulation": "the CUDA kernels compiled for the host (C++ threads)"] }
}
