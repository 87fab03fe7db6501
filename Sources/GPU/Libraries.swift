// The NVIDIA libraries, found at run time: nothing CUDA is needed to build this project, and a binary built on a
// machine without a GPU runs on one with. Each library is opened by soname with version fallbacks (CUDA 13, then
// 12), in the system's search path and then in the folders where CUDA toolkits and NVIDIA's Python wheels put them
// (and STE_CUDA_LIBRARY_PATH first); a missing library or entry point is named in the error. Only the entry points
// the engine calls are declared, with their C types written out by hand (cuda_runtime_api.h, cuda.h, nvrtc.h,
// cublas_api.h, cudnn_graph.h / cudnn_cnn.h of CUDA 13 and cuDNN 9).
import Foundation

#if canImport(Glibc)
import Glibc
#endif

public struct CUDAUnavailable: Error, CustomStringConvertible {
    public let description: String
}

/// One opened shared library.
struct SharedLibrary {
    let name: String
    let path: String
    let handle: UnsafeMutableRawPointer

    /// Opens the first of `sonames` found in the search folders (then the loader's own path). Libraries it loads by
    /// name that sit beside it (`preload`: file-name prefixes, e.g. NVRTC's `libnvrtc-builtins.so`, cuBLAS's
    /// `libcublasLt.so`) are opened first by path: a folder of a Python wheel or a toolkit is not on the loader's path.
    static func open(_ what: String, sonames: [String], folders: [String], preload: [String] = []) throws -> SharedLibrary {
        var tried: [String] = []
        for soname in sonames {
            for folder in folders {
                let path = "\(folder)/\(soname)"
                guard FileManager.default.fileExists(atPath: path) else { continue }
                let major = soname.split(separator: ".").last.flatMap { Int($0) }
                for sibling in siblings(in: folder, prefixes: preload, major: major) { _ = dlopen(sibling, RTLD_NOW | RTLD_GLOBAL) }
                if let h = dlopen(path, RTLD_NOW | RTLD_GLOBAL) { return SharedLibrary(name: what, path: path, handle: h) }
                tried.append("\(path): \(String(cString: dlerror()))")
            }
            if let h = dlopen(soname, RTLD_NOW | RTLD_GLOBAL) { return SharedLibrary(name: what, path: soname, handle: h) }
        }
        throw CUDAUnavailable(description: "\(what) not found (tried \(sonames.joined(separator: ", ")) in the loader's "
            + "path and \(folders.count) CUDA folders\(tried.isEmpty ? "" : "; " + tried.joined(separator: "; "))); "
            + "install it, or point STE_CUDA_LIBRARY_PATH at the folder that holds it")
    }

    /// The files of `folder` that start with one of `prefixes` (the newest version first; of `major` when given).
    static func siblings(in folder: String, prefixes: [String], major: Int?) -> [String] {
        guard !prefixes.isEmpty, let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
        return prefixes.compactMap { prefix in
            names.filter { $0.hasPrefix(prefix) && (major == nil || $0.hasPrefix("\(prefix).\(major!)")) }
                .sorted { $0.localizedStandardCompare($1) == .orderedDescending }.first.map { "\(folder)/\($0)" }
        }
    }

    func symbol<T>(_ name: String, as type: T.Type) throws -> T {
        guard let p = dlsym(handle, name) else {
            throw CUDAUnavailable(description: "\(self.name) (\(path)) lacks \(name): an older version than this engine needs")
        }
        return unsafeBitCast(p, to: type)
    }
}

/// Folders that may hold the NVIDIA libraries besides the loader's path: STE_CUDA_LIBRARY_PATH (colon-separated),
/// CUDA_HOME / the usual toolkit folders, and the `nvidia/*/lib` folders of Python environments (NVIDIA's wheels).
func cudaLibraryFolders() -> [String] {
    let env = ProcessInfo.processInfo.environment
    var folders = (env["STE_CUDA_LIBRARY_PATH"] ?? "").split(separator: ":").map(String.init)
    let toolkits = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/local")) ?? []).filter { $0.hasPrefix("cuda-") }
        .sorted { $0.localizedStandardCompare($1) == .orderedDescending }.map { "/usr/local/\($0)" }
    for home in ([env["CUDA_HOME"], env["CUDA_PATH"], "/usr/local/cuda"].compactMap({ $0 }) + toolkits) {
        folders += ["\(home)/lib64", "\(home)/targets/x86_64-linux/lib", "\(home)/lib"]
    }
    folders += ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/local/lib"]
    // Python environments that may hold NVIDIA's wheels: the active one, conda's, the peer's, the user's, /opt/*/.venv.
    var roots = [env["VIRTUAL_ENV"], env["CONDA_PREFIX"], env["HOME"].map { "\($0)/.venv-peer" }, env["HOME"].map { "\($0)/.local" }]
        .compactMap { $0 }
    roots += ((try? FileManager.default.contentsOfDirectory(atPath: "/opt")) ?? []).sorted().flatMap { ["/opt/\($0)/.venv", "/opt/\($0)"] }
    roots += ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/local/lib")) ?? []).filter { $0.hasPrefix("python3") }
        .map { "/usr/local/lib/\($0)/dist-packages" }
    for root in roots {
        let libs = root.hasSuffix("packages") ? [root] : ((try? FileManager.default.contentsOfDirectory(atPath: "\(root)/lib")) ?? [])
            .map { "\(root)/lib/\($0)/site-packages" }
        for packages in libs {
            let nvidia = "\(packages)/nvidia"
            for sub in ((try? FileManager.default.contentsOfDirectory(atPath: nvidia)) ?? []).sorted() {
                folders += ["\(nvidia)/\(sub)/lib"]
            }
        }
    }
    return folders
}

typealias CInt = Int32
typealias Ptr = UnsafeMutableRawPointer?
typealias ConstPtr = UnsafeRawPointer?

/// The CUDA runtime (libcudart): devices, memory, the stream, copies on it, and CUDA graphs captured from it.
struct CUDARuntime {
    let library: SharedLibrary
    let getDeviceCount: @convention(c) (UnsafeMutablePointer<CInt>) -> CInt
    let setDevice: @convention(c) (CInt) -> CInt
    let deviceGetAttribute: @convention(c) (UnsafeMutablePointer<CInt>, CInt, CInt) -> CInt
    let getDeviceProperties: @convention(c) (UnsafeMutableRawPointer, CInt) -> CInt
    let malloc: @convention(c) (UnsafeMutablePointer<Ptr>, Int) -> CInt
    let free: @convention(c) (Ptr) -> CInt
    let streamCreateWithFlags: @convention(c) (UnsafeMutablePointer<Ptr>, UInt32) -> CInt
    let streamSynchronize: @convention(c) (Ptr) -> CInt
    let memcpyAsync: @convention(c) (Ptr, ConstPtr, Int, CInt, Ptr) -> CInt
    let memsetAsync: @convention(c) (Ptr, CInt, Int, Ptr) -> CInt
    let streamBeginCapture: @convention(c) (Ptr, CInt) -> CInt
    let streamEndCapture: @convention(c) (Ptr, UnsafeMutablePointer<Ptr>) -> CInt
    let graphInstantiateWithFlags: @convention(c) (UnsafeMutablePointer<Ptr>, Ptr, UInt64) -> CInt
    let graphLaunch: @convention(c) (Ptr, Ptr) -> CInt
    let graphDestroy: @convention(c) (Ptr) -> CInt
    let graphExecDestroy: @convention(c) (Ptr) -> CInt
    let getErrorString: @convention(c) (CInt) -> UnsafePointer<CChar>?
    let runtimeGetVersion: @convention(c) (UnsafeMutablePointer<CInt>) -> CInt
    let driverGetVersion: @convention(c) (UnsafeMutablePointer<CInt>) -> CInt

    init(folders: [String]) throws {
        library = try SharedLibrary.open("the CUDA runtime", sonames: ["libcudart.so.13", "libcudart.so.12", "libcudart.so"],
                                         folders: folders)
        getDeviceCount = try library.symbol("cudaGetDeviceCount", as: type(of: getDeviceCount))
        setDevice = try library.symbol("cudaSetDevice", as: type(of: setDevice))
        deviceGetAttribute = try library.symbol("cudaDeviceGetAttribute", as: type(of: deviceGetAttribute))
        getDeviceProperties = try (try? library.symbol("cudaGetDeviceProperties_v2", as: type(of: getDeviceProperties)))
            ?? library.symbol("cudaGetDeviceProperties", as: type(of: getDeviceProperties))
        malloc = try library.symbol("cudaMalloc", as: type(of: malloc))
        free = try library.symbol("cudaFree", as: type(of: free))
        streamCreateWithFlags = try library.symbol("cudaStreamCreateWithFlags", as: type(of: streamCreateWithFlags))
        streamSynchronize = try library.symbol("cudaStreamSynchronize", as: type(of: streamSynchronize))
        memcpyAsync = try library.symbol("cudaMemcpyAsync", as: type(of: memcpyAsync))
        memsetAsync = try library.symbol("cudaMemsetAsync", as: type(of: memsetAsync))
        streamBeginCapture = try library.symbol("cudaStreamBeginCapture", as: type(of: streamBeginCapture))
        streamEndCapture = try library.symbol("cudaStreamEndCapture", as: type(of: streamEndCapture))
        graphInstantiateWithFlags = try library.symbol("cudaGraphInstantiateWithFlags",
                                                       as: type(of: graphInstantiateWithFlags))
        graphLaunch = try library.symbol("cudaGraphLaunch", as: type(of: graphLaunch))
        graphDestroy = try library.symbol("cudaGraphDestroy", as: type(of: graphDestroy))
        graphExecDestroy = try library.symbol("cudaGraphExecDestroy", as: type(of: graphExecDestroy))
        getErrorString = try library.symbol("cudaGetErrorString", as: type(of: getErrorString))
        runtimeGetVersion = try library.symbol("cudaRuntimeGetVersion", as: type(of: runtimeGetVersion))
        driverGetVersion = try library.symbol("cudaDriverGetVersion", as: type(of: driverGetVersion))
    }

    // cudaMemcpyKind, cudaDeviceAttr, cudaStreamNonBlocking, cudaStreamCaptureModeThreadLocal
    static let hostToDevice: CInt = 1, deviceToHost: CInt = 2, deviceToDevice: CInt = 3
    static let streamNonBlocking: UInt32 = 1, captureModeThreadLocal: CInt = 1
    static let attributeClockRate: CInt = 13, attributeMultiprocessorCount: CInt = 16
    static let attributeComputeCapabilityMajor: CInt = 75, attributeComputeCapabilityMinor: CInt = 76
}

/// The driver API (libcuda, installed with the NVIDIA driver): modules compiled by NVRTC and kernel launches.
struct CUDADriver {
    let library: SharedLibrary
    let moduleLoadData: @convention(c) (UnsafeMutablePointer<Ptr>, ConstPtr) -> CInt
    let moduleGetFunction: @convention(c) (UnsafeMutablePointer<Ptr>, Ptr, UnsafePointer<CChar>) -> CInt
    let launchKernel: @convention(c) (Ptr, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, Ptr,
                                      UnsafeMutablePointer<Ptr>?, UnsafeMutablePointer<Ptr>?) -> CInt
    let getErrorString: @convention(c) (CInt, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> CInt

    init(folders: [String]) throws {
        library = try SharedLibrary.open("the NVIDIA driver's CUDA library", sonames: ["libcuda.so.1", "libcuda.so"],
                                         folders: folders)
        moduleLoadData = try library.symbol("cuModuleLoadData", as: type(of: moduleLoadData))
        moduleGetFunction = try library.symbol("cuModuleGetFunction", as: type(of: moduleGetFunction))
        launchKernel = try library.symbol("cuLaunchKernel", as: type(of: launchKernel))
        getErrorString = try library.symbol("cuGetErrorString", as: type(of: getErrorString))
    }
}

/// NVRTC: CUDA C source → PTX at run time.
struct NVRTC {
    let library: SharedLibrary
    let version: @convention(c) (UnsafeMutablePointer<CInt>, UnsafeMutablePointer<CInt>) -> CInt
    let createProgram: @convention(c) (UnsafeMutablePointer<Ptr>, UnsafePointer<CChar>, UnsafePointer<CChar>, CInt,
                                       UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?) -> CInt
    let compileProgram: @convention(c) (Ptr, CInt, UnsafePointer<UnsafePointer<CChar>?>?) -> CInt
    let getPTXSize: @convention(c) (Ptr, UnsafeMutablePointer<Int>) -> CInt
    let getPTX: @convention(c) (Ptr, UnsafeMutablePointer<CChar>) -> CInt
    let getProgramLogSize: @convention(c) (Ptr, UnsafeMutablePointer<Int>) -> CInt
    let getProgramLog: @convention(c) (Ptr, UnsafeMutablePointer<CChar>) -> CInt
    let destroyProgram: @convention(c) (UnsafeMutablePointer<Ptr>) -> CInt
    typealias SizeQuery = @convention(c) (Ptr, UnsafeMutablePointer<Int>) -> CInt
    typealias CodeQuery = @convention(c) (Ptr, UnsafeMutablePointer<CChar>) -> CInt
    /// Machine code (CUBIN) for a real architecture ("sm_90"); nil in an NVRTC older than 11.1.
    let getCUBINSize: SizeQuery?
    let getCUBIN: CodeQuery?

    init(folders: [String]) throws {
        library = try SharedLibrary.open("NVRTC", sonames: ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"], folders: folders,
                                         preload: ["libnvrtc-builtins.so"])
        getCUBINSize = dlsym(library.handle, "nvrtcGetCUBINSize").map { unsafeBitCast($0, to: SizeQuery.self) }
        getCUBIN = dlsym(library.handle, "nvrtcGetCUBIN").map { unsafeBitCast($0, to: CodeQuery.self) }
        version = try library.symbol("nvrtcVersion", as: type(of: version))
        createProgram = try library.symbol("nvrtcCreateProgram", as: type(of: createProgram))
        compileProgram = try library.symbol("nvrtcCompileProgram", as: type(of: compileProgram))
        getPTXSize = try library.symbol("nvrtcGetPTXSize", as: type(of: getPTXSize))
        getPTX = try library.symbol("nvrtcGetPTX", as: type(of: getPTX))
        getProgramLogSize = try library.symbol("nvrtcGetProgramLogSize", as: type(of: getProgramLogSize))
        getProgramLog = try library.symbol("nvrtcGetProgramLog", as: type(of: getProgramLog))
        destroyProgram = try library.symbol("nvrtcDestroyProgram", as: type(of: destroyProgram))
    }

    /// Compiles `source` to PTX for a virtual `architecture` ("compute_90"), or to CUBIN for a real one ("sm_90"); a
    /// compile error throws with NVRTC's log.
    func ptx(_ source: String, name: String, architecture: String) throws -> [CChar] {
        var program: Ptr = nil
        var status = source.withCString { s in name.withCString { n in createProgram(&program, s, n, 0, nil, nil) } }
        guard status == 0 else { throw CUDAUnavailable(description: "nvrtcCreateProgram failed (\(status))") }
        defer { _ = destroyProgram(&program) }
        let options = ["--gpu-architecture=\(architecture)", "--std=c++17", "--fmad=false"]
        let cOptions = options.map { strdup($0) }
        defer { cOptions.forEach { Glibc.free($0) } }
        status = cOptions.map { UnsafePointer<CChar>($0) }.withUnsafeBufferPointer {
            compileProgram(program, CInt(options.count), $0.baseAddress)
        }
        var logSize = 0
        _ = getProgramLogSize(program, &logSize)
        var log = [CChar](repeating: 0, count: max(1, logSize))
        _ = getProgramLog(program, &log)
        guard status == 0 else {
            throw CUDAUnavailable(description: "NVRTC could not compile \(name) for \(architecture): "
                + String(decoding: log.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        var size = 0
        if architecture.hasPrefix("sm_") {
            guard let getCUBINSize, let getCUBIN else {
                throw CUDAUnavailable(description: "this NVRTC (\(library.path)) cannot emit CUBIN (nvrtcGetCUBIN is from 11.1)")
            }
            _ = getCUBINSize(program, &size)
            var cubin = [CChar](repeating: 0, count: size)
            _ = getCUBIN(program, &cubin)
            return cubin
        }
        _ = getPTXSize(program, &size)
        var ptx = [CChar](repeating: 0, count: size)
        _ = getPTX(program, &ptx)
        return ptx
    }
}

/// cuBLAS: the Linear layers' GEMMs.
struct CUBLAS {
    let library: SharedLibrary
    let create: @convention(c) (UnsafeMutablePointer<Ptr>) -> CInt
    let setMathMode: @convention(c) (Ptr, CInt) -> CInt
    let setStream: @convention(c) (Ptr, Ptr) -> CInt
    let sgemm: @convention(c) (Ptr, CInt, CInt, CInt, CInt, CInt, UnsafePointer<Float>, UnsafeRawPointer?, CInt,
                               UnsafeRawPointer?, CInt, UnsafePointer<Float>, UnsafeMutableRawPointer?, CInt) -> CInt
    /// cublasGetVersion_v2(handle, &version): major·10000 + minor·100 + patch (12.4.5 → 120405).
    let getVersion: @convention(c) (Ptr, UnsafeMutablePointer<CInt>) -> CInt
    /// cublasGetStatusString (cuBLAS ≥ 11.4); nil in older ones, where `statusNames` names the status.
    let getStatusString: (@convention(c) (CInt) -> UnsafePointer<CChar>?)?

    init(folders: [String]) throws {
        library = try SharedLibrary.open("cuBLAS", sonames: ["libcublas.so.13", "libcublas.so.12", "libcublas.so"],
                                         folders: folders, preload: ["libcublasLt.so"])
        create = try library.symbol("cublasCreate_v2", as: type(of: create))
        getVersion = try library.symbol("cublasGetVersion_v2", as: type(of: getVersion))
        setMathMode = try library.symbol("cublasSetMathMode", as: type(of: setMathMode))
        setStream = try library.symbol("cublasSetStream_v2", as: type(of: setStream))
        sgemm = try library.symbol("cublasSgemm_v2", as: type(of: sgemm))
        getStatusString = try? library.symbol("cublasGetStatusString", as: (@convention(c) (CInt) -> UnsafePointer<CChar>?).self)
    }

    /// cublasStatus_t (cublas_api.h), for a cuBLAS without cublasGetStatusString.
    static let statusNames: [CInt: String] = [0: "CUBLAS_STATUS_SUCCESS", 1: "CUBLAS_STATUS_NOT_INITIALIZED",
        3: "CUBLAS_STATUS_ALLOC_FAILED", 7: "CUBLAS_STATUS_INVALID_VALUE", 8: "CUBLAS_STATUS_ARCH_MISMATCH",
        11: "CUBLAS_STATUS_MAPPING_ERROR", 13: "CUBLAS_STATUS_EXECUTION_FAILED", 14: "CUBLAS_STATUS_INTERNAL_ERROR",
        15: "CUBLAS_STATUS_NOT_SUPPORTED", 16: "CUBLAS_STATUS_LICENSE_ERROR"]

    /// "CUBLAS_STATUS_INVALID_VALUE: an unsupported value or parameter was passed to the function (7)": cuBLAS's own
    /// name and words for a status (not the CUDA runtime's, whose codes mean other errors).
    func message(_ status: CInt) -> String {
        let name = CUBLAS.statusNames[status] ?? "unknown cuBLAS status"
        let words = getStatusString?(status).map { String(cString: $0) }
        return name + (words.map { ": " + $0 } ?? "") + " (\(status))"
    }

    static let opN: CInt = 0, opT: CInt = 1
    /// cublasMath_t: strict float32 (no tensor cores), or TF32 tensor-core math.
    static let defaultMath: CInt = 0, tf32Math: CInt = 3
}

/// cuDNN: the convolutions (forward, backward data, backward filter), through its legacy convolution API.
struct CUDNN {
    let library: SharedLibrary
    let getVersion: @convention(c) () -> Int
    let create: @convention(c) (UnsafeMutablePointer<Ptr>) -> CInt
    let setStream: @convention(c) (Ptr, Ptr) -> CInt
    let getErrorString: @convention(c) (CInt) -> UnsafePointer<CChar>?
    let createTensorDescriptor: @convention(c) (UnsafeMutablePointer<Ptr>) -> CInt
    let setTensor4dDescriptor: @convention(c) (Ptr, CInt, CInt, CInt, CInt, CInt, CInt) -> CInt
    let createFilterDescriptor: @convention(c) (UnsafeMutablePointer<Ptr>) -> CInt
    let setFilter4dDescriptor: @convention(c) (Ptr, CInt, CInt, CInt, CInt, CInt, CInt) -> CInt
    let createConvolutionDescriptor: @convention(c) (UnsafeMutablePointer<Ptr>) -> CInt
    let setConvolution2dDescriptor: @convention(c) (Ptr, CInt, CInt, CInt, CInt, CInt, CInt, CInt, CInt) -> CInt
    let setConvolutionMathType: @convention(c) (Ptr, CInt) -> CInt
    let forwardWorkspaceSize: @convention(c) (Ptr, Ptr, Ptr, Ptr, Ptr, CInt, UnsafeMutablePointer<Int>) -> CInt
    let forward: @convention(c) (Ptr, UnsafeRawPointer, Ptr, ConstPtr, Ptr, ConstPtr, Ptr, CInt, Ptr, Int,
                                 UnsafeRawPointer, Ptr, Ptr) -> CInt
    let backwardDataWorkspaceSize: @convention(c) (Ptr, Ptr, Ptr, Ptr, Ptr, CInt, UnsafeMutablePointer<Int>) -> CInt
    let backwardData: @convention(c) (Ptr, UnsafeRawPointer, Ptr, ConstPtr, Ptr, ConstPtr, Ptr, CInt, Ptr, Int,
                                      UnsafeRawPointer, Ptr, Ptr) -> CInt
    let backwardFilterWorkspaceSize: @convention(c) (Ptr, Ptr, Ptr, Ptr, Ptr, CInt, UnsafeMutablePointer<Int>) -> CInt
    let backwardFilter: @convention(c) (Ptr, UnsafeRawPointer, Ptr, ConstPtr, Ptr, ConstPtr, Ptr, CInt, Ptr, Int,
                                        UnsafeRawPointer, Ptr, Ptr) -> CInt
    /// cudnnGetConvolution{Forward,BackwardData,BackwardFilter}Algorithm_v7: cuDNN's heuristics, ranked, for one
    /// geometry (four descriptors in each call's order, the room for results, the count returned, the perf structs).
    /// nil where the library lacks them (then the fixed lists below are tried in order).
    typealias AlgorithmQuery = @convention(c) (Ptr, Ptr, Ptr, Ptr, Ptr, CInt, UnsafeMutablePointer<CInt>,
                                               UnsafeMutableRawPointer) -> CInt
    let forwardAlgorithmsV7: AlgorithmQuery?, backwardDataAlgorithmsV7: AlgorithmQuery?
    let backwardFilterAlgorithmsV7: AlgorithmQuery?

    init(folders: [String]) throws {
        library = try SharedLibrary.open("cuDNN", sonames: ["libcudnn.so.9", "libcudnn.so"], folders: folders)
        getVersion = try library.symbol("cudnnGetVersion", as: type(of: getVersion))
        create = try library.symbol("cudnnCreate", as: type(of: create))
        setStream = try library.symbol("cudnnSetStream", as: type(of: setStream))
        getErrorString = try library.symbol("cudnnGetErrorString", as: type(of: getErrorString))
        createTensorDescriptor = try library.symbol("cudnnCreateTensorDescriptor", as: type(of: createTensorDescriptor))
        setTensor4dDescriptor = try library.symbol("cudnnSetTensor4dDescriptor", as: type(of: setTensor4dDescriptor))
        createFilterDescriptor = try library.symbol("cudnnCreateFilterDescriptor", as: type(of: createFilterDescriptor))
        setFilter4dDescriptor = try library.symbol("cudnnSetFilter4dDescriptor", as: type(of: setFilter4dDescriptor))
        createConvolutionDescriptor = try library.symbol("cudnnCreateConvolutionDescriptor",
                                                         as: type(of: createConvolutionDescriptor))
        setConvolution2dDescriptor = try library.symbol("cudnnSetConvolution2dDescriptor",
                                                        as: type(of: setConvolution2dDescriptor))
        setConvolutionMathType = try library.symbol("cudnnSetConvolutionMathType", as: type(of: setConvolutionMathType))
        forwardWorkspaceSize = try library.symbol("cudnnGetConvolutionForwardWorkspaceSize",
                                                  as: type(of: forwardWorkspaceSize))
        forward = try library.symbol("cudnnConvolutionForward", as: type(of: forward))
        backwardDataWorkspaceSize = try library.symbol("cudnnGetConvolutionBackwardDataWorkspaceSize",
                                                       as: type(of: backwardDataWorkspaceSize))
        backwardData = try library.symbol("cudnnConvolutionBackwardData", as: type(of: backwardData))
        backwardFilterWorkspaceSize = try library.symbol("cudnnGetConvolutionBackwardFilterWorkspaceSize",
                                                         as: type(of: backwardFilterWorkspaceSize))
        backwardFilter = try library.symbol("cudnnConvolutionBackwardFilter", as: type(of: backwardFilter))
        forwardAlgorithmsV7 = try? library.symbol("cudnnGetConvolutionForwardAlgorithm_v7", as: AlgorithmQuery.self)
        backwardDataAlgorithmsV7 = try? library.symbol("cudnnGetConvolutionBackwardDataAlgorithm_v7",
                                                       as: AlgorithmQuery.self)
        backwardFilterAlgorithmsV7 = try? library.symbol("cudnnGetConvolutionBackwardFilterAlgorithm_v7",
                                                         as: AlgorithmQuery.self)
    }

    // cudnnTensorFormat_t, cudnnDataType_t, cudnnConvolutionMode_t, cudnnMathType_t
    static let nchw: CInt = 0, float32: CInt = 0, crossCorrelation: CInt = 1
    static let fmaMath: CInt = 3, defaultMath: CInt = 0
    /// The deterministic algorithms, in order of preference (cudnn_cnn.h: forward algorithms are all
    /// deterministic; backward data ALGO_0 and backward filter ALGO_0 / ALGO_3 are not and are never used).
    static let forwardAlgorithms: [CInt] = [1, 0, 2]         // implicit precomputed GEMM, implicit GEMM, GEMM
    static let backwardDataAlgorithms: [CInt] = [1, 4, 5]   // ALGO_1, WINOGRAD, WINOGRAD_NONFUSED
    static let backwardFilterAlgorithms: [CInt] = [1, 5]    // ALGO_1, WINOGRAD_NONFUSED
}

/// Every library the CUDA engine needs, loaded once per process.
public struct CUDALibraries {
    let runtime: CUDARuntime
    let driver: CUDADriver
    let nvrtc: NVRTC
    let cublas: CUBLAS
    let cudnn: CUDNN

    /// Loads all five, or throws naming every one that is missing.
    public static func load() throws -> CUDALibraries {
        let folders = cudaLibraryFolders()
        var problems: [String] = []
        func attempt<T>(_ make: () throws -> T) -> T? {
            do { return try make() } catch { problems.append("\(error)"); return nil }
        }
        let runtime = attempt { try CUDARuntime(folders: folders) }
        let driver = attempt { try CUDADriver(folders: folders) }
        let nvrtc = attempt { try NVRTC(folders: folders) }
        let cublas = attempt { try CUBLAS(folders: folders) }
        let cudnn = attempt { try CUDNN(folders: folders) }
        guard let runtime, let driver, let nvrtc, let cublas, let cudnn else {
            throw CUDAUnavailable(description: "the CUDA engine cannot start: " + problems.joined(separator: "; "))
        }
        return CUDALibraries(runtime: runtime, driver: driver, nvrtc: nvrtc, cublas: cublas, cudnn: cudnn)
    }

    /// NVRTC alone (compiling the kernels needs no GPU).
    /// The versions of the five libraries as loaded ("CUDA runtime 12.4, driver 13.0, NVRTC 12.4, cuBLAS 12.4.5,
    /// cuDNN 9.1.0"), and an error when the runtime, NVRTC and cuBLAS are not of one CUDA major version, or the driver
    /// is older than the runtime: mixing them fails later, in ways that do not name the cause.
    func versions(cublasHandle: Ptr) throws -> String {
        let v = versionNumbers(cublasHandle: cublasHandle), table = versionTable(v)
        let text = "CUDA runtime \(table["cuda_runtime"]!) (\(runtime.library.path)), driver \(table["cuda_driver"]!), "
            + "NVRTC \(table["nvrtc"]!) (\(nvrtc.library.path)), cuBLAS \(table["cublas"]!) (\(cublas.library.path)), "
            + "cuDNN \(table["cudnn"]!) (\(cudnn.library.path))"
        if let problem = CUDALibraries.versionProblem(runtime: v.runtime, driver: v.driver, nvrtcMajor: v.nvrtcMajor,
            cublas: v.cublas)
        {
            throw CUDAUnavailable(description: "\(problem): \(text); point STE_CUDA_LIBRARY_PATH at one CUDA version's libraries")
        }
        return text
    }

    /// The versions as the libraries report them (runtime 12040, cuBLAS 120405, cuDNN 90100).
    private func versionNumbers(cublasHandle: Ptr)
        -> (runtime: CInt, driver: CInt, nvrtcMajor: CInt, nvrtcMinor: CInt, cublas: CInt, cudnn: Int)
    {
        var runtimeVersion: CInt = 0, driverVersion: CInt = 0, nvrtcMajor: CInt = 0, nvrtcMinor: CInt = 0, blas: CInt = 0
        _ = runtime.runtimeGetVersion(&runtimeVersion)
        _ = runtime.driverGetVersion(&driverVersion)
        _ = nvrtc.version(&nvrtcMajor, &nvrtcMinor)
        _ = cublas.getVersion(cublasHandle, &blas)
        return (runtimeVersion, driverVersion, nvrtcMajor, nvrtcMinor, blas, Int(cudnn.getVersion()))
    }

    /// The five libraries' versions as a run file's provenance records them ("cuda_runtime" → "12.4", "cudnn" →
    /// "9.1.0", …), each with the file it was loaded from.
    func versionTable(cublasHandle: Ptr) -> [String: String] { versionTable(versionNumbers(cublasHandle: cublasHandle)) }

    private func versionTable(_ v: (runtime: CInt, driver: CInt, nvrtcMajor: CInt, nvrtcMinor: CInt, cublas: CInt, cudnn: Int))
        -> [String: String]
    {
        func cuda(_ v: CInt) -> String { "\(v / 1000).\((v % 1000) / 10)" }
        return ["cuda_runtime": cuda(v.runtime), "cuda_driver": cuda(v.driver), "nvrtc": "\(v.nvrtcMajor).\(v.nvrtcMinor)",
            "cublas": "\(v.cublas / 10000).\((v.cublas / 100) % 100).\(v.cublas % 100)",
            "cudnn": "\(v.cudnn / 10000).\((v.cudnn / 100) % 100).\(v.cudnn % 100)",
            "cuda_libraries": [runtime.library.path, nvrtc.library.path, cublas.library.path, cudnn.library.path]
                .joined(separator: " ")]
    }

    /// Why these versions cannot work together (nil: they can): the runtime, NVRTC and cuBLAS of different CUDA majors,
    /// or a driver older than the runtime. Versions as the libraries report them (runtime 12040, cuBLAS 120405).
    static func versionProblem(runtime: CInt, driver: CInt, nvrtcMajor: CInt, cublas: CInt) -> String? {
        let majors = ["CUDA runtime": Int(runtime / 1000), "NVRTC": Int(nvrtcMajor), "cuBLAS": Int(cublas / 10000)]
        if Set(majors.values).count != 1 {
            return "mixed CUDA major versions (" + majors.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
                .joined(separator: ", ") + ")"
        }
        if driver < runtime { return "the driver (CUDA \(driver / 1000).\((driver % 1000) / 10)) is older than the runtime" }
        return nil
    }

    public static func loadNVRTC() throws -> NVRTCCompiler { NVRTCCompiler(nvrtc: try NVRTC(folders: cudaLibraryFolders())) }

    /// Which of the five libraries load here, and from where (`ste gpu-check`, the tests).
    public static func survey() -> [(library: String, found: String)] {
        let folders = cudaLibraryFolders()
        func where_<T>(_ make: () throws -> T, _ path: (T) -> String) -> String {
            do { return path(try make()) } catch { return "missing: \(error)" }
        }
        return [
            ("CUDA runtime", where_({ try CUDARuntime(folders: folders) }, { $0.library.path })),
            ("CUDA driver", where_({ try CUDADriver(folders: folders) }, { $0.library.path })),
            ("NVRTC", where_({ try NVRTC(folders: folders) }, { $0.library.path })),
            ("cuBLAS", where_({ try CUBLAS(folders: folders) }, { $0.library.path })),
            ("cuDNN", where_({ try CUDNN(folders: folders) }, { $0.library.path })),
        ]
    }
}

/// The kernels' compiler on its own, for checks that need no GPU.
public struct NVRTCCompiler {
    let nvrtc: NVRTC
    public var path: String { nvrtc.library.path }
    /// PTX of the engine's kernels for `architecture` (e.g. "compute_90").
    public func compileKernels(architecture: String) throws -> String {
        let ptx = try nvrtc.ptx(cudaKernelSource, name: "ste_kernels.cu", architecture: architecture)
        return String(decoding: ptx.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Machine code (CUBIN, an ELF image) of the engine's kernels for a real `architecture` (e.g. "sm_90"): it loads
    /// under a driver older than this NVRTC, which PTX of a newer ISA version does not.
    public func compileKernelsCUBIN(architecture: String) throws -> [UInt8] {
        try nvrtc.ptx(cudaKernelSource, name: "ste_kernels.cu", architecture: architecture).map { UInt8(bitPattern: $0) }
    }
}
