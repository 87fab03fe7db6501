// One CUDA device as the engine uses it: the libraries' handles, the kernels compiled by NVRTC for its
// architecture, float buffers in its memory, copies, launches, and errors that name the call that failed. One
// stream (the legacy default stream) and synchronous copies: the order of every operation is the program's.
import Foundation
import Kernels

/// A CUDA call that failed: which, and the library's reason.
public struct CUDAError: Error, CustomStringConvertible {
    public let description: String
}

/// Float (or raw byte) memory on the device, freed with its last reference.
final class DeviceBuffer {
    let device: CUDADevice
    let pointer: UnsafeMutableRawPointer
    let bytes: Int

    init(_ device: CUDADevice, bytes: Int) {
        self.device = device
        self.bytes = max(bytes, 4)
        var p: Ptr = nil
        device.check(device.libraries.runtime.malloc(&p, self.bytes), "cudaMalloc(\(self.bytes) bytes)")
        pointer = p!
    }

    convenience init(_ device: CUDADevice, floats: Int) { self.init(device, bytes: floats * 4) }

    deinit { _ = device.libraries.runtime.free(pointer) }

    var floats: Int { bytes / 4 }

    func upload(_ source: UnsafeRawPointer, bytes count: Int) {
        precondition(count <= bytes, "upload of \(count) bytes into \(bytes)")
        device.check(device.libraries.runtime.memcpy(pointer, source, count, CUDARuntime.hostToDevice), "cudaMemcpy to the device")
    }

    func download(_ destination: UnsafeMutableRawPointer, bytes count: Int) {
        precondition(count <= bytes, "download of \(count) bytes from \(bytes)")
        device.check(device.libraries.runtime.memcpy(destination, pointer, count, CUDARuntime.deviceToHost),
                     "cudaMemcpy to the host")
    }

    func upload(_ t: Tensor) { upload(UnsafeRawPointer(t.pointer), bytes: t.count * 4) }
    func download(into t: Tensor) { download(UnsafeMutableRawPointer(t.pointer), bytes: t.count * 4) }

    func copy(from other: DeviceBuffer, bytes count: Int) {
        device.check(device.libraries.runtime.memcpy(pointer, other.pointer, count, CUDARuntime.deviceToDevice),
                     "cudaMemcpy on the device")
    }

    func zero() { device.check(device.libraries.runtime.memset(pointer, 0, bytes), "cudaMemset") }
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
    mutating func get(_ device: CUDADevice, _ shape: [Int]) -> DeviceTensor {
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

public final class CUDADevice {
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
    private var functions: [String: Ptr] = [:]
    /// cuDNN's workspace, grown on demand.
    private var workspace: DeviceBuffer?

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
        guard libraries.cublas.create(&handle) == 0 else { throw CUDAError(description: "cublasCreate failed") }
        cublas = handle
        _ = libraries.cublas.setMathMode(cublas, tf32 ? CUBLAS.tf32Math : CUBLAS.defaultMath)
        handle = nil
        let s = libraries.cudnn.create(&handle)
        guard s == 0 else {
            throw CUDAError(description: "cudnnCreate: " + (libraries.cudnn.getErrorString(s).map { String(cString: $0) } ?? "") + " (\(s))")
        }
        cudnn = handle
        let ptx = try NVRTCCompiler(nvrtc: libraries.nvrtc)
            .compileKernels(architecture: "compute_\(computeCapability.major)\(computeCapability.minor)")
        var m: Ptr = nil
        let loaded = ptx.withCString { libraries.driver.moduleLoadData(&m, UnsafeRawPointer($0)) }
        module = m
        guard loaded == 0 else { throw CUDAError(description: "cuModuleLoadData of the NVRTC kernels: \(driverMessage(loaded))") }
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

    /// A failed call mid-step ends the process with the call and the reason: the run's last resume state stays.
    func check(_ status: CInt, _ what: String) {
        if status != 0 { fatalError("CUDA: \(what) failed: \(CUDADevice.runtimeMessage(libraries.runtime, status))") }
    }

    func checkCUDNN(_ status: CInt, _ what: String) {
        if status != 0 { fatalError("cuDNN: \(what) failed: \(cudnnMessage(status))") }
    }

    func function(_ name: String) -> Ptr {
        if let f = functions[name] { return f }
        var f: Ptr = nil
        let status = name.withCString { libraries.driver.moduleGetFunction(&f, module, $0) }
        if status != 0 { fatalError("CUDA: kernel \(name) not in the compiled module: \(driverMessage(status))") }
        functions[name] = f
        return f
    }

    /// Launches `name` on a 1-D grid of `blocks` blocks of `threads` threads.
    func launch(_ name: String, blocks: Int, threads: Int = 256, _ arguments: [KernelArgument]) {
        guard blocks > 0 else { return }
        let storage = UnsafeMutableRawPointer.allocate(byteCount: 8 * arguments.count, alignment: 8)
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
        let status = pointers.withUnsafeMutableBufferPointer {
            libraries.driver.launchKernel(function(name), UInt32(blocks), 1, 1, UInt32(threads), 1, 1, 0, nil,
                                          $0.baseAddress, nil)
        }
        if status != 0 { fatalError("CUDA: launch of \(name) failed: \(driverMessage(status))") }
    }

    /// One thread per element.
    func launchElementwise(_ name: String, count: Int, _ arguments: [KernelArgument]) {
        launch(name, blocks: (count + 255) / 256, arguments)
    }

    func workspace(bytes: Int) -> Ptr {
        guard bytes > 0 else { return nil }
        if let w = workspace, w.bytes >= bytes { return w.pointer }
        workspace = DeviceBuffer(self, bytes: bytes)
        return workspace!.pointer
    }

    func synchronize() { check(libraries.runtime.deviceSynchronize(), "cudaDeviceSynchronize") }
}
