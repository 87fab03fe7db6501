// What the engine needs of a device (`ComputeDevice`: memory, copies, kernel launches, GEMMs, convolutions) and the
// CUDA device that provides it: the libraries' handles, the kernels compiled by NVRTC for its architecture, cuDNN
// convolutions with pinned deterministic algorithms, and errors that name the call that failed. One stream of its own
// for every kernel, library call and copy (copies to the host wait for it): the order of every operation is the
// program's, and a step's work can be captured into a CUDA graph (Graphs.swift). The tests run the
// same engine on a host emulation of this protocol (Tests/GPUTests/EmulatedDevice.swift).
import Backends
import Foundation
import Kernels

enum CopyDirection { case toDevice, toHost, onDevice }

/// A convolution geometry's three passes on device memory (no bias: the engine adds and reduces it itself).
protocol DeviceConvolution: AnyObject {
    func forward(x: UnsafeRawPointer, w: UnsafeRawPointer, y: UnsafeMutableRawPointer)
    func backwardData(dy: UnsafeRawPointer, w: UnsafeRawPointer, dx: UnsafeMutableRawPointer)
    func backwardFilter(x: UnsafeRawPointer, dy: UnsafeRawPointer, dw: UnsafeMutableRawPointer)
}

protocol ComputeDevice: AnyObject {
    var description: String { get }
    func allocate(bytes: Int) -> UnsafeMutableRawPointer
    func release(_ pointer: UnsafeMutableRawPointer)
    func copy(_ destination: UnsafeMutableRawPointer, _ source: UnsafeRawPointer, bytes: Int, _ direction: CopyDirection)
    func zero(_ pointer: UnsafeMutableRawPointer, bytes: Int)
    /// Launches kernel `name` of KernelSource.swift on `blocks` blocks of `threads` threads. Called only by the typed
    /// launches of KernelLaunches.swift, one per kernel.
    func launch(_ name: String, blocks: Int, threads: Int, _ arguments: [KernelArgument])
    /// Column-major C = op(A)·op(B) (BLAS SGEMM with α = 1, β = 0).
    func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, a: UnsafeRawPointer, lda: Int,
               b: UnsafeRawPointer, ldb: Int, c: UnsafeMutableRawPointer, ldc: Int)
    func convolution(_ geometry: Conv2DGeometry) -> DeviceConvolution
    func synchronize()
    /// Runs `body` with the device work it enqueues recorded into a graph instead of run (nil: this device has no
    /// graphs, and the work ran); the graph, launched, does that work again with the same arguments and addresses.
    func capture(_ body: () -> Void) -> DeviceGraph?
    /// How many buffers were released so far: a graph refers to its buffers by address, so one captured before a
    /// release may point at freed memory and is not launched again.
    var releases: Int { get }
    /// The libraries it computes with and their versions, recorded in every file a run on it writes.
    var recordedLibraries: [String: String] { get }
}

extension ComputeDevice {
    /// The first device error recorded since the last call (the CUDA device under `ste gpu-check`); nil here.
    func pendingError() -> String? { (self as? CUDADevice)?.takeError() }
}

/// A CUDA call that failed: which, and the library's reason.
public struct CUDAError: Error, CustomStringConvertible {
    public let description: String
}

/// Float (or raw byte) memory on the device, freed with its last reference.
final class DeviceBuffer {
    let device: ComputeDevice
    let pointer: UnsafeMutableRawPointer
    let bytes: Int
    /// The buffer a view lies in (kept alive by the view); nil for a buffer that owns its memory.
    private let parent: DeviceBuffer?

    init(_ device: ComputeDevice, bytes: Int) {
        self.device = device
        self.bytes = max(bytes, 4)
        pointer = device.allocate(bytes: self.bytes)
        parent = nil
    }

    convenience init(_ device: ComputeDevice, floats: Int) { self.init(device, bytes: floats * 4) }

    /// `count` floats of `parent` from float `offset`, without memory of its own.
    init(viewOf parent: DeviceBuffer, offset: Int, floats count: Int) {
        precondition(offset >= 0 && count > 0 && 4 * (offset + count) <= parent.bytes,
            "view of floats \(offset)..<\(offset + count) in a buffer of \(parent.floats)")
        (device, pointer, bytes, self.parent) = (parent.device, parent.pointer + 4 * offset, 4 * count, parent)
    }

    deinit { if parent == nil { device.release(pointer) } }

    var floats: Int { bytes / 4 }

    func upload(_ source: UnsafeRawPointer, bytes count: Int) {
        precondition(count <= bytes, "upload of \(count) bytes into \(bytes)")
        device.copy(pointer, source, bytes: count, .toDevice)
    }

    func download(_ destination: UnsafeMutableRawPointer, bytes count: Int) {
        precondition(count <= bytes, "download of \(count) bytes from \(bytes)")
        device.copy(destination, UnsafeRawPointer(pointer), bytes: count, .toHost)
    }

    func upload(_ t: Tensor) { upload(UnsafeRawPointer(t.pointer), bytes: t.count * 4) }
    func download(into t: Tensor) { download(UnsafeMutableRawPointer(t.pointer), bytes: t.count * 4) }

    func copy(from other: DeviceBuffer, bytes count: Int) { device.copy(pointer, UnsafeRawPointer(other.pointer), bytes: count, .onDevice) }

    func zero() { device.zero(pointer, bytes: bytes) }
}

/// A device tensor: a buffer and the NCHW (or [n, features]) shape of its contents.
struct DeviceTensor {
    let buffer: DeviceBuffer
    let shape: [Int]
    var count: Int { shape.reduce(1, *) }
    var pointer: UnsafeMutableRawPointer { buffer.pointer }
    func reshaped(_ s: [Int]) -> DeviceTensor {
        precondition(s.reduce(1, *) == count, "reshape \(shape) → \(s)")
        return DeviceTensor(buffer: buffer, shape: s)
    }
}

/// A buffer kept between steps and reallocated only when a larger one is needed (the device's ReusableTensor).
struct ReusableDeviceTensor {
    private var buffer: DeviceBuffer?
    mutating func get(_ device: ComputeDevice, _ shape: [Int]) -> DeviceTensor {
        let count = shape.reduce(1, *)
        if let b = buffer, b.floats >= count { return DeviceTensor(buffer: b, shape: shape) }
        let b = DeviceBuffer(device, floats: count)
        buffer = b
        return DeviceTensor(buffer: b, shape: shape)
    }
}

/// A kernel argument, passed by value as the kernel's C signature declares it.
enum KernelArgument {
    case pointer(UnsafeMutableRawPointer?)
    case int(Int32)
    case long(Int)
    case float(Float)
}

public final class CUDADevice: ComputeDevice {
    let libraries: CUDALibraries
    /// "NVIDIA H200", its compute capability, SM count and clock.
    public let name: String
    public let computeCapability: (major: Int, minor: Int)
    public let multiprocessors: Int
    public let clockKHz: Int
    /// TF32 tensor-core math in cuDNN and cuBLAS (off by default: float32 as the CPU engine computes).
    public let tf32: Bool
    let cublas: Ptr
    let cudnn: Ptr
    private var module: Ptr = nil
    /// What the kernels were loaded as: "CUBIN sm_90" (machine code from NVRTC) or "PTX compute_90" (the fallback).
    public private(set) var kernelImage = ""
    private var functions: [String: Ptr] = [:]
    /// cuDNN's workspace, grown on demand.
    private var workspaceBuffer: DeviceBuffer?
    /// The stream everything runs on (cuDNN and cuBLAS too), and whether a graph is being captured from it.
    private(set) var stream: Ptr = nil
    var capturing = false
    private(set) var releases = 0

    /// Opens device `index`: loads the libraries, creates the handles, compiles the kernels.
    public init(index: Int = 0, tf32: Bool = false) throws {
        libraries = try CUDALibraries.load()
        let rt = libraries.runtime
        var count: CInt = 0
        let status = rt.getDeviceCount(&count)
        guard status == 0, count > index else {
            throw CUDAError(description: status != 0
                ? "no usable CUDA device: cudaGetDeviceCount says \(CUDADevice.runtimeMessage(rt, status)) (no NVIDIA driver or GPU here?)"
                : "CUDA device \(index) requested, \(count) present")
        }
        self.tf32 = tf32
        func attribute(_ a: CInt) throws -> Int {
            var v: CInt = 0
            let s = rt.deviceGetAttribute(&v, a, CInt(index))
            guard s == 0 else { throw CUDAError(description: "cudaDeviceGetAttribute(\(a)): \(CUDADevice.runtimeMessage(rt, s))") }
            return Int(v)
        }
        guard rt.setDevice(CInt(index)) == 0 else { throw CUDAError(description: "cudaSetDevice(\(index)) failed") }
        computeCapability = (try attribute(CUDARuntime.attributeComputeCapabilityMajor),
                             try attribute(CUDARuntime.attributeComputeCapabilityMinor))
        multiprocessors = try attribute(CUDARuntime.attributeMultiprocessorCount)
        clockKHz = try attribute(CUDARuntime.attributeClockRate)
        // cudaDeviceProp starts with `char name[256]`; the rest of the struct is not read.
        let properties = UnsafeMutableRawPointer.allocate(byteCount: 16_384, alignment: 16)
        defer { properties.deallocate() }
        properties.initializeMemory(as: UInt8.self, repeating: 0, count: 16_384)
        name = rt.getDeviceProperties(properties, CInt(index)) == 0
            ? String(cString: properties.assumingMemoryBound(to: CChar.self)) : "CUDA device \(index)"
        var handle: Ptr = nil
        let created = libraries.cublas.create(&handle)
        guard created == 0 else { throw CUDAError(description: "cublasCreate failed: \(libraries.cublas.message(created))") }
        cublas = handle
        _ = libraries.cublas.setMathMode(cublas, tf32 ? CUBLAS.tf32Math : CUBLAS.defaultMath)
        handle = nil
        let s = libraries.cudnn.create(&handle)
        guard s == 0 else {
            throw CUDAError(description: "cudnnCreate: " + (libraries.cudnn.getErrorString(s).map { String(cString: $0) } ?? "") + " (\(s))")
        }
        cudnn = handle
        var streamHandle: Ptr = nil
        let streamStatus = rt.streamCreateWithFlags(&streamHandle, CUDARuntime.streamNonBlocking)
        guard streamStatus == 0 else {
            throw CUDAError(description: "cudaStreamCreateWithFlags: \(CUDADevice.runtimeMessage(rt, streamStatus))")
        }
        stream = streamHandle
        let onStream = (libraries.cublas.setStream(cublas, stream), libraries.cudnn.setStream(cudnn, stream))
        guard onStream == (0, 0) else {
            throw CUDAError(description: "cublasSetStream/cudnnSetStream: statuses \(onStream.0), \(onStream.1)")
        }
        // Machine code for this device first (it loads under a driver older than the NVRTC that made it); PTX, which
        // the driver compiles, when NVRTC cannot emit CUBIN or the driver refuses it.
        let compiler = NVRTCCompiler(nvrtc: libraries.nvrtc)
        let arch = "\(computeCapability.major)\(computeCapability.minor)"
        var m: Ptr = nil
        var failures: [String] = []
        if let cubin = try? compiler.compileKernelsCUBIN(architecture: "sm_\(arch)") {
            let loaded = cubin.withUnsafeBytes { libraries.driver.moduleLoadData(&m, $0.baseAddress) }
            if loaded == 0 { kernelImage = "CUBIN sm_\(arch)" } else { failures.append("CUBIN sm_\(arch): \(driverMessage(loaded))"); m = nil }
        }
        if m == nil {
            let ptx = try compiler.compileKernels(architecture: "compute_\(arch)")
            let loaded = ptx.withCString { libraries.driver.moduleLoadData(&m, UnsafeRawPointer($0)) }
            guard loaded == 0 else {
                throw CUDAError(description: "cuModuleLoadData of the NVRTC kernels: " + (failures + ["PTX compute_\(arch): \(driverMessage(loaded))"])
                    .joined(separator: "; "))
            }
            kernelImage = "PTX compute_\(arch)"
        }
        module = m
    }

    /// "cuda:NVIDIA H200 (sm_90, TF32 off)": what output files record as the device.
    public var description: String {
        "cuda:\(name) (sm_\(computeCapability.major)\(computeCapability.minor), TF32 \(tf32 ? "on" : "off"))"
    }

    /// Nominal float32 peak: SMs × 128 FP32 lanes × 2 flops × clock (Volta and later have 64 or 128 lanes per SM;
    /// 128 for sm_80+ parts other than A100's 64 — an estimate stated as such).
    public var float32PeakGFLOPS: Double {
        let lanes = computeCapability.major == 8 && computeCapability.minor == 0 ? 64 : 128
        return Double(multiprocessors * lanes * 2) * Double(clockKHz) / 1e6
    }

    static func runtimeMessage(_ rt: CUDARuntime, _ status: CInt) -> String {
        (rt.getErrorString(status).map { String(cString: $0) } ?? "error") + " (\(status))"
    }

    func cudnnMessage(_ status: CInt) -> String {
        (libraries.cudnn.getErrorString(status).map { String(cString: $0) } ?? "cuDNN error") + " (\(status))"
    }

    func driverMessage(_ status: CInt) -> String {
        var text: UnsafePointer<CChar>? = nil
        _ = libraries.driver.getErrorString(status, &text)
        return (text.map { String(cString: $0) } ?? "CUDA driver error") + " (\(status))"
    }

    /// A failed call mid-step ends the process with the call and the reason: the run's last resume state stays. Under
    /// `ste gpu-check` (`recordsErrors`) the first failure is kept instead, and the check that caused it fails.
    func check(_ status: CInt, _ what: String) {
        if status != 0 { fail("CUDA: \(what) failed: \(CUDADevice.runtimeMessage(libraries.runtime, status))") }
    }

    func checkCUDNN(_ status: CInt, _ what: String) {
        if status != 0 { fail("cuDNN: \(what) failed: \(cudnnMessage(status))") }
    }

    /// Keep device errors for the checks to report (a check's numbers are then meaningless and it fails), rather than
    /// ending the process: the log of a first run on a new machine then holds every check.
    public var recordsErrors = false
    private(set) var firstError: String?

    func fail(_ message: String) {
        guard recordsErrors else { fatalError(message) }
        if firstError == nil { firstError = message }
        FileHandle.standardError.write(Data("\(message)\n".utf8))
    }

    /// The first device error since the last call (nil: none), and forget it.
    public func takeError() -> String? {
        defer { firstError = nil }
        return firstError
    }

    /// The libraries' versions as loaded (refused when their CUDA majors differ): `ste gpu-check` prints them.
    public func libraryVersions() throws -> String { try libraries.versions(cublasHandle: cublas) }

    /// The CUDA libraries' versions and files, the device, and how its kernels were loaded: a run's provenance (read
    /// once; every file the run writes records it).
    lazy var recordedLibraries: [String: String] = libraries.versionTable(cublasHandle: cublas)
        .merging(["gpu": description, "cuda_kernels": kernelImage, "tf32": tf32 ? "on" : "off"]) { $1 }

    func function(_ name: String) -> Ptr {
        if let f = functions[name] { return f }
        var f: Ptr = nil
        let status = name.withCString { libraries.driver.moduleGetFunction(&f, module, $0) }
        if status != 0 { fail("CUDA: kernel \(name) not in the compiled module: \(driverMessage(status))") }
        functions[name] = f
        return f
    }

    func launch(_ name: String, blocks: Int, threads: Int, _ arguments: [KernelArgument]) {
        guard blocks > 0 else { return }
        withKernelParameters(arguments) { parameters in
            let status = libraries.driver.launchKernel(function(name), UInt32(blocks), 1, 1, UInt32(threads), 1, 1, 0,
                                                       stream, parameters, nil)
            if status != 0 { fail("CUDA: launch of \(name) failed: \(driverMessage(status))") }
        }
    }

    func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        var p: Ptr = nil
        check(libraries.runtime.malloc(&p, bytes), "cudaMalloc(\(bytes) bytes)")
        return p!
    }

    func release(_ pointer: UnsafeMutableRawPointer) {
        releases += 1
        _ = libraries.runtime.free(pointer)
    }

    /// On the stream; a copy from pageable host memory returns once the source was read, one to the host waits for it.
    func copy(_ destination: UnsafeMutableRawPointer, _ source: UnsafeRawPointer, bytes: Int, _ direction: CopyDirection) {
        let kind = direction == .toDevice ? CUDARuntime.hostToDevice : direction == .toHost ? CUDARuntime.deviceToHost
            : CUDARuntime.deviceToDevice
        check(libraries.runtime.memcpyAsync(destination, source, bytes, kind, stream), "cudaMemcpyAsync")
        if direction == .toHost { check(libraries.runtime.streamSynchronize(stream), "cudaStreamSynchronize") }
    }

    func zero(_ pointer: UnsafeMutableRawPointer, bytes: Int) {
        check(libraries.runtime.memsetAsync(pointer, 0, bytes, stream), "cudaMemsetAsync")
    }

    func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, a: UnsafeRawPointer, lda: Int,
               b: UnsafeRawPointer, ldb: Int, c: UnsafeMutableRawPointer, ldc: Int) {
        var one: Float = 1, zero: Float = 0
        let status = libraries.cublas.sgemm(cublas, transposeA ? CUBLAS.opT : CUBLAS.opN,
            transposeB ? CUBLAS.opT : CUBLAS.opN, CInt(m), CInt(n), CInt(k), &one, a, CInt(lda), b, CInt(ldb), &zero, c,
            CInt(ldc))
        if status != 0 { fail("cuBLAS: cublasSgemm failed: \(libraries.cublas.message(status))") }
    }

    func convolution(_ geometry: Conv2DGeometry) -> DeviceConvolution { CUDNNConvolution(self, geometry) }

    /// Every convolution pass's algorithm, as chosen ("<geometry> forward: algorithm 1 (cuDNN heuristics, rank 1,
    /// workspace 0 B)"), in the order the geometries were first used: `ste gpu-check` prints them.
    public private(set) var convolutionChoices: [String] = []
    func recordConvolutionChoice(_ line: String) { convolutionChoices.append(line) }

    func workspace(bytes: Int) -> Ptr {
        guard bytes > 0 else { return nil }
        if let w = workspaceBuffer, w.bytes >= bytes { return w.pointer }
        workspaceBuffer = DeviceBuffer(self, bytes: bytes)
        return workspaceBuffer!.pointer
    }

    func synchronize() { check(libraries.runtime.streamSynchronize(stream), "cudaStreamSynchronize") }
}

/// A kernel's parameter array as cuLaunchKernel takes it: one pointer per argument, to a copy of its value.
func withKernelParameters(_ arguments: [KernelArgument], _ body: (UnsafeMutablePointer<Ptr>) -> Void) {
    let storage = UnsafeMutableRawPointer.allocate(byteCount: 8 * max(1, arguments.count), alignment: 8)
    defer { storage.deallocate() }
    var pointers: [Ptr] = []
    for (i, a) in arguments.enumerated() {
        let slot = storage + 8 * i
        switch a {
        case .pointer(let p): slot.storeBytes(of: p, as: UnsafeMutableRawPointer?.self)
        case .int(let v): slot.storeBytes(of: v, as: Int32.self)
        case .long(let v): slot.storeBytes(of: v, as: Int.self)
        case .float(let v): slot.storeBytes(of: v, as: Float.self)
        }
        pointers.append(slot)
    }
    pointers.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
}

/// A convolution geometry on cuDNN: descriptors, and for each pass the algorithm ConvolutionAlgorithms.swift chooses
/// (supported, deterministic, FMA math), with its workspace; the choices are recorded on the device.
final class CUDNNConvolution: DeviceConvolution {
    let device: CUDADevice
    let geometry: Conv2DGeometry
    private let x: Ptr, y: Ptr, w: Ptr, conv: Ptr
    private var forwardAlgorithm: (CInt, Int) = (0, 0), dataAlgorithm: (CInt, Int) = (0, 0), filterAlgorithm: (CInt, Int) = (0, 0)

    init(_ device: CUDADevice, _ g: Conv2DGeometry) {
        (self.device, geometry) = (device, g)
        let dnn = device.libraries.cudnn
        var x: Ptr = nil, y: Ptr = nil, f: Ptr = nil, c: Ptr = nil
        device.checkCUDNN(dnn.createTensorDescriptor(&x), "cudnnCreateTensorDescriptor")
        device.checkCUDNN(dnn.createTensorDescriptor(&y), "cudnnCreateTensorDescriptor")
        device.checkCUDNN(dnn.createFilterDescriptor(&f), "cudnnCreateFilterDescriptor")
        device.checkCUDNN(dnn.createConvolutionDescriptor(&c), "cudnnCreateConvolutionDescriptor")
        device.checkCUDNN(dnn.setTensor4dDescriptor(x, CUDNN.nchw, CUDNN.float32, CInt(g.batch), CInt(g.inChannels),
                                                     CInt(g.height), CInt(g.width)), "cudnnSetTensor4dDescriptor")
        device.checkCUDNN(dnn.setTensor4dDescriptor(y, CUDNN.nchw, CUDNN.float32, CInt(g.batch), CInt(g.outChannels),
                                                     CInt(g.outHeight), CInt(g.outWidth)), "cudnnSetTensor4dDescriptor")
        device.checkCUDNN(dnn.setFilter4dDescriptor(f, CUDNN.float32, CUDNN.nchw, CInt(g.outChannels), CInt(g.inChannels),
                                                     CInt(g.kernel), CInt(g.kernel)), "cudnnSetFilter4dDescriptor")
        device.checkCUDNN(dnn.setConvolution2dDescriptor(c, CInt(g.padding), CInt(g.padding), CInt(g.stride), CInt(g.stride),
                                                          1, 1, CUDNN.crossCorrelation, CUDNN.float32),
                          "cudnnSetConvolution2dDescriptor")
        device.checkCUDNN(dnn.setConvolutionMathType(c, device.tf32 ? CUDNN.defaultMath : CUDNN.fmaMath),
                          "cudnnSetConvolutionMathType")
        (self.x, self.y, self.w, self.conv) = (x, y, f, c)
        let handle = device.cudnn
        let math = device.tf32 ? CUDNN.defaultMath : CUDNN.fmaMath
        func pick(_ what: String, _ ranked: [AlgorithmPerformance], _ fallback: [CInt],
                  _ size: (CInt, UnsafeMutablePointer<Int>) -> CInt) -> (CInt, Int) {
            let choice = chooseAlgorithm(ranked: ranked, mathType: math, fallback: fallback) { a in
                var bytes = 0
                return size(a, &bytes) == 0 ? bytes : nil
            }
            guard let choice else {
                device.fail("cuDNN offers no supported deterministic \(what) algorithm for \(g) (its heuristics: "
                    + "\(ranked.map { "\($0.algorithm)/status \($0.status)" }); the fixed list \(fallback))")
                return (fallback[0], 0)
            }
            device.recordConvolutionChoice("\(g) \(what): \(choice)")
            return (choice.algorithm, choice.workspace)
        }
        forwardAlgorithm = pick("forward", rankedAlgorithms(dnn.forwardAlgorithmsV7, x, f, c, y, handle: handle),
            CUDNN.forwardAlgorithms) { dnn.forwardWorkspaceSize(handle, x, f, c, y, $0, $1) }
        dataAlgorithm = pick("backward-data", rankedAlgorithms(dnn.backwardDataAlgorithmsV7, f, y, c, x, handle: handle),
            CUDNN.backwardDataAlgorithms) { dnn.backwardDataWorkspaceSize(handle, f, y, c, x, $0, $1) }
        filterAlgorithm = pick("backward-filter",
            rankedAlgorithms(dnn.backwardFilterAlgorithmsV7, x, y, c, f, handle: handle), CUDNN.backwardFilterAlgorithms) {
            dnn.backwardFilterWorkspaceSize(handle, x, y, c, f, $0, $1)
        }
    }

    private var workspace: Ptr { device.workspace(bytes: max(forwardAlgorithm.1, dataAlgorithm.1, filterAlgorithm.1)) }

    func forward(x input: UnsafeRawPointer, w weight: UnsafeRawPointer, y output: UnsafeMutableRawPointer) {
        var one: Float = 1, zero: Float = 0
        device.checkCUDNN(device.libraries.cudnn.forward(device.cudnn, &one, x, input, w, weight, conv, forwardAlgorithm.0,
            workspace, forwardAlgorithm.1, &zero, y, output), "cudnnConvolutionForward")
    }

    func backwardData(dy: UnsafeRawPointer, w weight: UnsafeRawPointer, dx: UnsafeMutableRawPointer) {
        var one: Float = 1, zero: Float = 0
        device.checkCUDNN(device.libraries.cudnn.backwardData(device.cudnn, &one, w, weight, y, dy, conv, dataAlgorithm.0,
            workspace, dataAlgorithm.1, &zero, x, dx), "cudnnConvolutionBackwardData")
    }

    func backwardFilter(x input: UnsafeRawPointer, dy: UnsafeRawPointer, dw: UnsafeMutableRawPointer) {
        var one: Float = 1, zero: Float = 0
        device.checkCUDNN(device.libraries.cudnn.backwardFilter(device.cudnn, &one, x, input, y, dy, conv,
            filterAlgorithm.0, workspace, filterAlgorithm.1, &zero, w, dw), "cudnnConvolutionBackwardFilter")
    }
}
