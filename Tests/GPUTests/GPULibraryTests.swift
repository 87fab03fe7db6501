// What of the CUDA engine can be checked without a GPU: its kernels compile with NVRTC (CUDA C errors surface here,
// not on the GPU machine), every cuDNN and cuBLAS entry point it declares exists in the libraries found, and without
// an NVIDIA driver the engine refuses to start with an error that names what is missing. The parity, determinism and
// speed checks that need a GPU are `ste gpu-check` (scripts/gpu-check.sh runs it on the GPU machine).
import XCTest

@testable import GPU

final class GPULibraryTests: XCTestCase {
    /// NVIDIA's NVRTC, or a skip. Not the host stand-in (tools/cuda-standin): it shares NVRTC's soname, so once the
    /// emulated device's tests have loaded it in this process, the loader hands it to a lookup by soname, and its
    /// "PTX" is a host shared object.
    private func nvidiaNVRTC() throws -> NVRTCCompiler {
        let compiler: NVRTCCompiler
        do { compiler = try CUDALibraries.loadNVRTC() } catch {
            throw XCTSkip("NVRTC (libnvrtc.so.13 / .12) is not installed here: \(error); NVIDIA's nvidia-cuda-nvrtc wheel "
                + "provides it (`make cuda-libs`)")
        }
        if dlsym(compiler.nvrtc.library.handle, EmulatedDevice.standInNVRTCMarker) != nil {
            throw XCTSkip("NVIDIA's NVRTC is not installed here (the one loaded, \(compiler.path), is the emulated device's host "
                + "stand-in); NVIDIA's nvidia-cuda-nvrtc wheel provides it (`make cuda-libs`)")
        }
        return compiler
    }

    func testKernelsCompileWithNVRTC() throws {
        let compiler = try nvidiaNVRTC()
        for architecture in ["compute_80", "compute_90"] {
            let ptx = try compiler.compileKernels(architecture: architecture)
            for kernel in ["channel_partial_sums", "batch_norm_mean", "batch_norm_variance", "batch_norm_apply",
                           "batch_norm_backward_partial_sums", "batch_norm_backward_sums_finish", "batch_norm_backward_apply",
                           "batch_norm_residual_gradient", "channel_sums_finish", "max_pool2_forward", "max_pool2_backward", "softmax_cross_entropy",
                           "sgd_update", "adam_update", "shortcut_option_a_forward", "quantized_relu_backward"] {
                XCTAssertTrue(ptx.contains(".entry \(kernel)("), "\(kernel) missing from the PTX for \(architecture)")
            }
        }
    }

    /// CUBIN (machine code for the device, which loads under a driver older than NVRTC) for the architectures the
    /// engine meets, and NVRTC's builtins library found beside it by path (a wheel's folder is not on the loader's path).
    func testKernelsCompileToCUBINAndBuiltinsArePreloaded() throws {
        let compiler = try nvidiaNVRTC()
        for architecture in ["sm_80", "sm_90"] {
            let cubin = try compiler.compileKernelsCUBIN(architecture: architecture)
            XCTAssertEqual(Array(cubin.prefix(4)), [0x7f, 0x45, 0x4c, 0x46], "\(architecture): not an ELF image")
            XCTAssertGreaterThan(cubin.count, 10_000)
        }
        let folder = URL(fileURLWithPath: compiler.path).deletingLastPathComponent().path
        let major = compiler.path.split(separator: ".").last.flatMap { Int($0) }
        if (try FileManager.default.contentsOfDirectory(atPath: folder)).contains(where: { $0.hasPrefix("libnvrtc-builtins.so") }) {
            let found = SharedLibrary.siblings(in: folder, prefixes: ["libnvrtc-builtins.so"], major: major)
            XCTAssertEqual(found.count, 1, "\(folder)")
            XCTAssertTrue(found.first?.contains("libnvrtc-builtins.so.\(major ?? 0)") ?? false, "\(found)")
        }
    }

    /// Libraries of different CUDA majors, or a driver older than the runtime, are refused before anything runs.
    func testMixedCUDAVersionsAreRefused() {
        XCTAssertNil(CUDALibraries.versionProblem(runtime: 12040, driver: 13000, nvrtcMajor: 12, cublas: 120405))
        XCTAssertTrue(CUDALibraries.versionProblem(runtime: 12040, driver: 13000, nvrtcMajor: 13, cublas: 120405)?
            .contains("mixed CUDA major versions (CUDA runtime 12, NVRTC 13, cuBLAS 12)") ?? false)
        XCTAssertTrue(CUDALibraries.versionProblem(runtime: 13000, driver: 12080, nvrtcMajor: 13, cublas: 130001)?
            .contains("older than the runtime") ?? false)
    }

    /// The declared entry points resolve in the cuDNN and cuBLAS found (the initialisers look every symbol up).
    func testDeclaredEntryPointsExist() throws {
        let folders = cudaLibraryFolders()
        var found = 0
        for load in [{ _ = try CUDNN(folders: folders) }, { _ = try CUBLAS(folders: folders) },
                     { _ = try CUDARuntime(folders: folders) }] as [() throws -> Void] {
            do { try load(); found += 1 } catch let e as CUDAUnavailable where e.description.contains("not found") {
                continue  // not installed here; a symbol missing from an installed library fails the test
            }
        }
        if found == 0 {
            throw XCTSkip("no cuDNN, cuBLAS or CUDA runtime installed here (NVIDIA's Python wheels provide them: `make cuda-libs`)")
        }
    }

    /// cuBLAS statuses by cuBLAS's names (the runtime's cudaGetErrorString would name another error for the same
    /// number), and the v7 algorithm queries present in the cuDNN found.
    func testCUBLASStatusesAndCUDNNQueries() throws {
        let folders = cudaLibraryFolders()
        guard let cublas = try? CUBLAS(folders: folders) else {
            throw XCTSkip("no cuBLAS installed here (NVIDIA's nvidia-cublas wheel provides it; `make cuda-libs` installs it in ~/.venv-cuda)")
        }
        XCTAssertNotNil(cublas.getStatusString, "cuBLAS ≥ 11.4 has cublasGetStatusString")
        XCTAssertEqual(cublas.message(7), "CUBLAS_STATUS_INVALID_VALUE: an unsupported value or parameter was passed to the function (7)")
        XCTAssertTrue(cublas.message(13).hasPrefix("CUBLAS_STATUS_EXECUTION_FAILED: "))
        if let cudnn = try? CUDNN(folders: folders) {
            XCTAssertNotNil(cudnn.forwardAlgorithmsV7)
            XCTAssertNotNil(cudnn.backwardDataAlgorithmsV7)
            XCTAssertNotNil(cudnn.backwardFilterAlgorithmsV7)
        }
    }

    /// Without a driver (or a GPU), the engine names what is missing instead of failing later.
    func testWithoutADriverTheErrorNamesIt() throws {
        if FileManager.default.fileExists(atPath: "/dev/nvidiactl") { throw XCTSkip("this machine has an NVIDIA driver") }
        XCTAssertThrowsError(try CUDADevice()) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("libcuda.so.1") || text.contains("no usable CUDA device"), text)
            XCTAssertTrue(text.contains("STE_CUDA_LIBRARY_PATH") || text.contains("no usable CUDA device"), text)
        }
    }
}
