// A host stand-in for the NVIDIA libraries the CUDA engine loads (Sources/GPU/Libraries.swift): the CUDA runtime,
// the driver's libcuda, NVRTC (with its builtins), cuBLAS (with cublasLt) — each built from this file — and cuDNN
// (cudnn_standin.cpp), each as a shared library of the real soname (tools/cuda-standin/build.sh), exporting the entry points the engine
// declares with the C signatures of the CUDA 13 / cuDNN 9 headers. With them the engine's real paths run on a machine
// without a GPU: finding and opening the libraries by path (siblings included), dlsym, marshalling arguments through
// C function pointers, cuDNN's descriptors and algorithm queries, NVRTC's compile-and-load, cuLaunchKernel's parameter
// array, the version checks, and the error paths (STE_STANDIN_FAIL makes one call fail). scripts/gpu-rehearsal.sh runs
// scripts/gpu-check.sh against them.
//
// "Device" memory is host memory (the runtime keeps a table of it, and a copy whose direction does not match the
// pointers fails as on a GPU). NVRTC compiles the CUDA C as C++ with a C++ compiler, CUDA's thread indices, shared
// memory and barriers mapped onto the host (Tests/GPUTests/EmulatedDevice.swift uses it too), and its "CUBIN" is that
// shared object's bytes (an ELF file, as a CUBIN is); the driver loads it with dlopen. cuBLAS and cuDNN compute
// with plain loops (im2col for the convolutions). What this cannot check — NVIDIA's own code — is left to the GPU.
#include "standin.h"

#if defined(STANDIN_CUDART)
// ---- libcudart.so.13: devices, memory, copies (cuda_runtime_api.h) ------------------------------------------------
static std::mutex memory_lock;
static std::map<uintptr_t, size_t> allocations;  // start → bytes

static bool on_device(const void* p, size_t bytes) {
    std::lock_guard<std::mutex> guard(memory_lock);
    auto it = allocations.upper_bound(reinterpret_cast<uintptr_t>(p));
    if (it == allocations.begin()) return false;
    --it;
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    return a >= it->first && a + bytes <= it->first + it->second;
}

EXPORT int cudaGetDeviceCount(int* count) { *count = 1; return 0; }
EXPORT int cudaSetDevice(int device) { return device == 0 ? 0 : 101; }  // cudaErrorInvalidDevice
EXPORT int cudaDeviceGetAttribute(int* value, int attribute, int device) {
    if (device != 0) return 101;
    switch (attribute) {
    case 75: *value = 9; return 0;        // compute capability 9.0
    case 76: *value = 0; return 0;
    case 16: *value = 4; return 0;        // multiprocessors
    case 13: *value = 1000000; return 0;  // clock, kHz
    default: return 1;                    // cudaErrorInvalidValue
    }
}
static int properties(void* p, int device) {
    if (device != 0) return 101;
    snprintf(static_cast<char*>(p), 256, "ste host stand-in (CUDA 13 API on the CPU)");
    return 0;
}
EXPORT int cudaGetDeviceProperties_v2(void* p, int device) { return properties(p, device); }
EXPORT int cudaGetDeviceProperties(void* p, int device) { return properties(p, device); }
EXPORT int cudaMalloc(void** p, size_t bytes) {
    if (injected_failure("cudaMalloc")) return 2;  // cudaErrorMemoryAllocation
    *p = aligned_alloc(256, (bytes + 255) / 256 * 256);
    if (!*p) return 2;
    std::lock_guard<std::mutex> guard(memory_lock);
    allocations[reinterpret_cast<uintptr_t>(*p)] = bytes;
    return 0;
}
static bool refused_while_capturing();
EXPORT int cudaFree(void* p) {
    if (!p) return 0;
    if (refused_while_capturing()) return 900;  // cudaFree synchronises the device
    std::lock_guard<std::mutex> guard(memory_lock);
    auto it = allocations.find(reinterpret_cast<uintptr_t>(p));
    if (it == allocations.end()) return 1;
    allocations.erase(it);
    free(p);
    return 0;
}
// cudaMemcpyKind: 1 host → device, 2 device → host, 3 device → device; anything else, or pointers on the wrong side,
// is cudaErrorInvalidValue (a real GPU would fault or copy garbage).
EXPORT int cudaMemcpy(void* dst, const void* src, size_t bytes, int kind) {
    if (injected_failure("cudaMemcpy")) return 700;  // cudaErrorIllegalAddress
    bool ok = (kind == 1 && on_device(dst, bytes) && !on_device(src, bytes))
        || (kind == 2 && !on_device(dst, bytes) && on_device(src, bytes))
        || (kind == 3 && on_device(dst, bytes) && on_device(src, bytes));
    if (!ok) return 1;
    memmove(dst, src, bytes);
    return 0;
}
EXPORT int cudaMemset(void* p, int value, size_t bytes) {
    if (!on_device(p, bytes)) return 1;
    memset(p, value, bytes);
    return 0;
}

// ---- streams and graphs: work runs when it is issued (a stream's order is the program's), except while a stream is
// being captured, when work issued on it is recorded instead; a graph runs its recorded work in order. What a real
// capture refuses (thread-local mode) fails here too and invalidates the capture: a synchronisation, a copy between
// host and device, freeing memory, or work issued on another stream (the legacy one included) while capturing.
struct Capture {
    void* stream;
    std::vector<std::function<void()>> work;
    bool invalid = false;
};
static Capture* capturing = nullptr;
struct Graph { std::vector<std::function<void()>> work; };
static const int captureUnsupported = 900, captureInvalidated = 901;

static bool refused_while_capturing() {
    if (!capturing) return false;
    capturing->invalid = true;
    return true;
}
EXPORT void standin_enqueue(void* stream, std::function<void()>* work) {
    std::unique_ptr<std::function<void()>> owned(work);
    if (!capturing) return (*owned)();
    if (stream != capturing->stream) {
        fprintf(stderr, "cuda-standin: work issued on stream %p while stream %p is captured\n", stream, capturing->stream);
        capturing->invalid = true;
        return;
    }
    capturing->work.push_back(std::move(*owned));
}
EXPORT int cudaStreamCreateWithFlags(void** stream, unsigned flags) {
    if (flags > 1) return 1;
    *stream = new int(int(flags));
    return 0;
}
EXPORT int cudaStreamDestroy(void* stream) {
    delete static_cast<int*>(stream);
    return 0;
}
EXPORT int cudaStreamSynchronize(void*) {
    if (refused_while_capturing()) return captureUnsupported;
    return injected_failure("cudaStreamSynchronize") ? 700 : 0;
}
EXPORT int cudaDeviceSynchronize() {
    if (refused_while_capturing()) return captureUnsupported;
    return injected_failure("cudaDeviceSynchronize") ? 700 : 0;
}
EXPORT int cudaMemcpyAsync(void* dst, const void* src, size_t bytes, int kind, void* stream) {
    if (injected_failure("cudaMemcpyAsync")) return 700;
    bool ok = (kind == 1 && on_device(dst, bytes) && !on_device(src, bytes))
        || (kind == 2 && !on_device(dst, bytes) && on_device(src, bytes))
        || (kind == 3 && on_device(dst, bytes) && on_device(src, bytes));
    if (!ok) return 1;
    if (kind != 3 && refused_while_capturing()) return captureUnsupported;
    on_stream(stream, [=] { memmove(dst, src, bytes); });
    return 0;
}
EXPORT int cudaMemsetAsync(void* p, int value, size_t bytes, void* stream) {
    if (!on_device(p, bytes)) return 1;
    on_stream(stream, [=] { memset(p, value, bytes); });
    return 0;
}
// cudaStreamCaptureMode: 0 global, 1 thread-local, 2 relaxed.
EXPORT int cudaStreamBeginCapture(void* stream, int mode) {
    if (capturing || !stream || mode < 0 || mode > 2) return 1;
    capturing = new Capture{stream, {}};
    return 0;
}
EXPORT int cudaStreamEndCapture(void* stream, void** graph) {
    if (!capturing || capturing->stream != stream) return 1;
    std::unique_ptr<Capture> done(capturing);
    capturing = nullptr;
    *graph = nullptr;
    if (done->invalid) return captureInvalidated;
    *graph = new Graph{std::move(done->work)};
    return 0;
}
EXPORT int cudaGraphInstantiateWithFlags(void** executable, void* graph, unsigned long long flags) {
    if (!graph || flags != 0) return 1;
    if (injected_failure("cudaGraphInstantiateWithFlags")) return 1;
    *executable = new Graph(*static_cast<Graph*>(graph));
    return 0;
}
EXPORT int cudaGraphLaunch(void* executable, void* stream) {
    if (!executable) return 1;
    if (injected_failure("cudaGraphLaunch")) return 700;
    for (auto& work : static_cast<Graph*>(executable)->work) on_stream(stream, work);
    return 0;
}
EXPORT int cudaGraphDestroy(void* graph) {
    delete static_cast<Graph*>(graph);
    return 0;
}
EXPORT int cudaGraphExecDestroy(void* executable) {
    delete static_cast<Graph*>(executable);
    return 0;
}
EXPORT const char* cudaGetErrorString(int status) {
    switch (status) {
    case 0: return "no error";
    case 1: return "invalid argument";
    case 2: return "out of memory";
    case 101: return "invalid device ordinal";
    case 700: return "an illegal memory access was encountered";
    case 900: return "operation not permitted when stream is capturing";
    case 901: return "operation failed due to a previous error during capture";
    default: return "unrecognized error code";
    }
}
EXPORT int cudaRuntimeGetVersion(int* v) { *v = env_int("STE_STANDIN_RUNTIME_VERSION", 13000); return 0; }
EXPORT int cudaDriverGetVersion(int* v) { *v = env_int("STE_STANDIN_DRIVER_VERSION", 13000); return 0; }
#endif

#if defined(STANDIN_DRIVER)
// ---- libcuda.so.1: modules and launches (cuda.h) ------------------------------------------------------------------
typedef void (*Launcher)(unsigned blocks, unsigned threads, void** parameters);
// A kernel: its launcher and its parameters' sizes (0-terminated), so that a launch can keep copies of the values.
struct Function { Launcher launch; const int* sizes; };

// A module image is either the stand-in NVRTC's CUBIN (the kernels' shared object, an ELF file: its size is where
// its section headers end) or its PTX (text naming that shared object on a line "// image: <path>").
EXPORT int cuModuleLoadData(void** module, const void* image) {
    if (injected_failure("cuModuleLoadData")) return 218;  // CUDA_ERROR_INVALID_PTX
    const unsigned char* bytes = static_cast<const unsigned char*>(image);
    std::string path;
    if (memcmp(bytes, ELFMAG, SELFMAG) == 0) {
        if (env_int("STE_STANDIN_REFUSE_CUBIN", 0)) return 209;  // CUDA_ERROR_NO_BINARY_FOR_GPU
        const Elf64_Ehdr* header = static_cast<const Elf64_Ehdr*>(image);
        size_t size = header->e_shoff + size_t(header->e_shnum) * header->e_shentsize;
        char name[] = "/tmp/cuda-standin-module-XXXXXX";
        int fd = mkstemp(name);
        if (fd < 0 || write(fd, image, size) != ssize_t(size)) return 999;
        close(fd);
        path = name;
    } else {
        std::string text(static_cast<const char*>(image));
        if (text.find(".target compute_") == std::string::npos) return 218;
        auto at = text.find("// image: ");
        if (at == std::string::npos) return 218;
        path = text.substr(at + 10, text.find('\n', at) - at - 10);
    }
    *module = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (path.rfind("/tmp/cuda-standin-module-", 0) == 0) unlink(path.c_str());
    if (!*module) { fprintf(stderr, "cuda-standin: %s\n", dlerror()); return 200; }  // CUDA_ERROR_INVALID_IMAGE
    return 0;
}
EXPORT int cuModuleGetFunction(void** function, void* module, const char* name) {
    void* launch = dlsym(module, (std::string("launch_") + name).c_str());
    void* sizes = dlsym(module, (std::string("sizes_") + name).c_str());
    if (!launch || !sizes) return 500;  // CUDA_ERROR_NOT_FOUND
    *function = new Function{reinterpret_cast<Launcher>(launch), static_cast<const int*>(sizes)};
    return 0;
}
// One-dimensional grids and blocks, as the engine launches them; up to 1,024 threads a block, no dynamic shared memory.
// The parameters' values are copied at the launch, as the driver does, so that a captured launch keeps them.
EXPORT int cuLaunchKernel(void* function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                          unsigned shared, void* stream, void** parameters, void** extra) {
    if (injected_failure("cuLaunchKernel")) return 719;  // CUDA_ERROR_LAUNCH_FAILED
    if (!function || gy != 1 || gz != 1 || by != 1 || bz != 1 || bx == 0 || bx > 1024 || gx == 0 || shared != 0
        || extra != nullptr || parameters == nullptr)
        return 1;  // CUDA_ERROR_INVALID_VALUE
    const Function* f = static_cast<const Function*>(function);
    std::vector<std::vector<char>> values;
    for (int k = 0; f->sizes[k]; k++) {
        const char* value = static_cast<const char*>(parameters[k]);
        values.emplace_back(value, value + f->sizes[k]);
    }
    on_stream(stream, [f, gx, bx, values = std::move(values)]() mutable {
        std::vector<void*> pointers;
        for (auto& v : values) pointers.push_back(v.data());
        f->launch(gx, bx, pointers.data());
    });
    return 0;
}
EXPORT int cuGetErrorString(int status, const char** text) {
    switch (status) {
    case 0: *text = "no error"; return 0;
    case 1: *text = "invalid argument"; return 0;
    case 200: *text = "device kernel image is invalid"; return 0;
    case 209: *text = "no kernel image is available for execution on the device"; return 0;
    case 218: *text = "a PTX JIT compilation failed"; return 0;
    case 500: *text = "named symbol not found"; return 0;
    case 719: *text = "unspecified launch failure"; return 0;
    default: *text = nullptr; return 1;
    }
}
#endif

#if defined(STANDIN_NVRTC)
// ---- libnvrtc.so.13: CUDA C → a host shared object (nvrtc.h) -----------------------------------------------------
// CUDA's indices, shared memory and barrier on the host: a block's threads run one after another where a kernel does
// not synchronise; where it does, as fibers (ucontext) on one thread, switched at every __syncthreads, so that each
// barrier is passed only when every thread of the block has reached it — deterministic, and no OS thread per CUDA one.
static const char* prelude = R"(#include <cmath>
#include <functional>
#include <memory>
#include <ucontext.h>
#include <vector>
struct dim3 { unsigned x = 0, y = 0, z = 0; };
static dim3 threadIdx, blockIdx, blockDim, gridDim;
struct Fiber { ucontext_t context; bool done = false; };
static std::vector<std::unique_ptr<char[]>> stacks;  // one per fiber, kept between launches (not cleared)
static const size_t stack_bytes = 128 * 1024;
static ucontext_t scheduler;
static std::vector<Fiber>* fibers = nullptr;
static unsigned current_fiber = 0;
static const std::function<void()>* fiber_body = nullptr;
static inline void __syncthreads() { swapcontext(&(*fibers)[current_fiber].context, &scheduler); }
static void fiber_main() { (*fiber_body)(); (*fibers)[current_fiber].done = true; }
#define __global__
#define __device__
#define __forceinline__ inline
#define __trap() __builtin_trap()
#define __shared__ static
static void run_grid(unsigned blocks, unsigned threads, bool synchronising, const std::function<void()>& body) {
    blockDim = {threads, 1, 1};
    gridDim = {blocks, 1, 1};
    for (unsigned b = 0; b < blocks; b++) {
        blockIdx = {b, 0, 0};
        if (!synchronising) {
            for (unsigned t = 0; t < threads; t++) { threadIdx = {t, 0, 0}; body(); }
            continue;
        }
        std::vector<Fiber> team(threads);
        fibers = &team;
        fiber_body = &body;
        while (stacks.size() < threads) stacks.emplace_back(new char[stack_bytes]);
        for (unsigned t = 0; t < threads; t++) {
            Fiber& f = team[t];
            getcontext(&f.context);
            f.context.uc_stack.ss_sp = stacks[t].get();
            f.context.uc_stack.ss_size = stack_bytes;
            f.context.uc_link = &scheduler;
            makecontext(&f.context, fiber_main, 0);
        }
        for (bool running = true; running;) {
            running = false;
            for (unsigned t = 0; t < threads; t++) {
                if (team[t].done) continue;
                current_fiber = t;
                threadIdx = {t, 0, 0};
                swapcontext(&scheduler, &team[t].context);
                running = running || !team[t].done;
            }
        }
    }
}
)";

// One `launch_<kernel>(blocks, threads, parameters)` per kernel, unpacking cuLaunchKernel's parameter array by the
// kernel's C signature: "const float* x" → *(const float**)a[k].
static std::string wrappers(const std::string& source) {
    std::string out = "extern \"C\" {\n";
    std::regex kernel(R"(__global__ void (\w+)\(([^)]*)\))");
    for (auto m = std::sregex_iterator(source.begin(), source.end(), kernel); m != std::sregex_iterator(); ++m) {
        std::string name = (*m)[1], list = (*m)[2];
        size_t start = m->position(0) + m->length(0), end = start;
        int depth = 0;
        bool started = false;
        for (; end < source.size(); end++) {
            if (source[end] == '{') { depth++; started = true; } else if (source[end] == '}') depth--;
            if (started && depth == 0) break;
        }
        std::string body = source.substr(start, end - start);
        bool synchronising = body.find("__syncthreads") != std::string::npos || body.find("block_sum(") != std::string::npos;
        std::vector<std::string> arguments;
        std::string sizes;
        std::stringstream items(list);
        std::string p;
        for (int k = 0; std::getline(items, p, ','); k++) {
            size_t last = p.find_last_not_of(" \t\n");
            size_t cut = p.find_last_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", last);
            std::string type = p.substr(0, cut + 1);
            type = type.substr(type.find_first_not_of(" \t\n"));
            arguments.push_back("*(" + type + "*)a[" + std::to_string(k) + "]");
            sizes += "(int)sizeof(" + type + "), ";
        }
        out += "extern const int sizes_" + name + "[] = {" + sizes + "0};\n";
        std::string call;
        for (size_t k = 0; k < arguments.size(); k++) call += (k ? ", " : "") + arguments[k];
        out += "void launch_" + name + "(unsigned blocks, unsigned threads, void** a) {\n    run_grid(blocks, "
            + (synchronising ? "threads < 32 ? threads : 32, true" : "threads, false") + ", [&] { " + name + "(" + call
            + "); });\n}\n";
    }
    return out + "}\n";
}

struct Program {
    std::string source, name, log, architecture;
    std::vector<char> object;  // the compiled shared object
    std::string objectPath;
};

// Not NVIDIA's: this stand-in shares NVRTC's soname, so in a process that has loaded it (the tests' emulated device)
// any later dlopen("libnvrtc.so.13") returns it; the tests that need NVIDIA's NVRTC look for this to skip.
EXPORT int ste_standin_nvrtc() { return 1; }

EXPORT int nvrtcVersion(int* major, int* minor) {
    *major = env_int("STE_STANDIN_NVRTC_MAJOR", 13);
    *minor = 0;
    return 0;
}
EXPORT int nvrtcCreateProgram(void** program, const char* source, const char* name, int headers, const char* const*,
                              const char* const*) {
    if (headers != 0) return 3;  // NVRTC_ERROR_INVALID_INPUT
    *program = new Program{source, name ? name : "default_program", "", "", {}, ""};
    return 0;
}
EXPORT int nvrtcDestroyProgram(void** program) {
    delete static_cast<Program*>(*program);
    *program = nullptr;
    return 0;
}

// The compiled objects are kept by the source's and options' hash ($TMPDIR/cuda-standin-cache), as a driver's JIT
// cache keeps PTX compilations: every `ste` process compiles the same kernels, and a C++ compile takes seconds.
EXPORT int nvrtcCompileProgram(void* handle, int count, const char* const* options) {
    Program* program = static_cast<Program*>(handle);
    // Like NVRTC, which opens its builtins library by name when it compiles. (Named apart from NVIDIA's 13.0 builtins,
    // which a real NVRTC in the same process would otherwise take for its own.)
    if (!dlopen("libnvrtc-builtins.so.13.0-standin", RTLD_NOW | RTLD_GLOBAL)) {
        program->log = std::string("cuda-standin: libnvrtc-builtins.so.13.0-standin could not be loaded: ") + dlerror();
        return 7;  // NVRTC_ERROR_BUILTIN_OPERATION_FAILURE
    }
    if (injected_failure("nvrtcCompileProgram")) { program->log = "injected failure"; return 6; }
    for (int i = 0; i < count; i++) {
        std::string o = options[i];
        if (o.rfind("--gpu-architecture=", 0) == 0) program->architecture = o.substr(19);
    }
    if (program->architecture.empty()) { program->log = "no --gpu-architecture"; return 5; }  // INVALID_OPTION
    std::string code = prelude + program->source + "\n" + wrappers(program->source);
    std::string folder = std::string(getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp") + "/cuda-standin-cache";
    mkdir(folder.c_str(), 0700);
    std::string stem = folder + "/" + std::to_string(std::hash<std::string>{}(code));
    program->objectPath = stem + ".so";
    if (access(program->objectPath.c_str(), R_OK) != 0) {
        std::ofstream(stem + ".cpp") << code;
        std::string temporary = stem + "." + std::to_string(getpid()) + ".so";
        std::string command = std::string(STANDIN_CXX) + " -std=c++20 -O2 -shared -fPIC -o " + temporary + " " + stem
            + ".cpp > " + stem + ".log 2>&1";
        int status = system(command.c_str());
        std::ifstream logFile(stem + ".log");
        program->log = std::string(std::istreambuf_iterator<char>(logFile), {});
        if (status != 0) return 6;  // NVRTC_ERROR_COMPILATION
        rename(temporary.c_str(), program->objectPath.c_str());
    }
    std::ifstream object(program->objectPath, std::ios::binary);
    program->object.assign(std::istreambuf_iterator<char>(object), {});
    return program->object.empty() ? 6 : 0;
}
EXPORT int nvrtcGetProgramLogSize(void* p, size_t* size) { *size = static_cast<Program*>(p)->log.size() + 1; return 0; }
EXPORT int nvrtcGetProgramLog(void* p, char* log) {
    const std::string& text = static_cast<Program*>(p)->log;
    memcpy(log, text.c_str(), text.size() + 1);
    return 0;
}
static std::string ptx_of(const Program* p) {
    return "// ste host stand-in PTX\n.version 9.0\n.target " + p->architecture + "\n// image: " + p->objectPath + "\n";
}
EXPORT int nvrtcGetPTXSize(void* p, size_t* size) { *size = ptx_of(static_cast<Program*>(p)).size() + 1; return 0; }
EXPORT int nvrtcGetPTX(void* p, char* ptx) {
    std::string text = ptx_of(static_cast<Program*>(p));
    memcpy(ptx, text.c_str(), text.size() + 1);
    return 0;
}
// Machine code only for a real architecture (sm_XY), as NVRTC: compute_XY programs have PTX alone.
EXPORT int nvrtcGetCUBINSize(void* p, size_t* size) {
    Program* program = static_cast<Program*>(p);
    if (program->architecture.rfind("sm_", 0) != 0) return 3;
    *size = program->object.size();
    return 0;
}
EXPORT int nvrtcGetCUBIN(void* p, char* cubin) {
    Program* program = static_cast<Program*>(p);
    if (program->architecture.rfind("sm_", 0) != 0) return 3;
    memcpy(cubin, program->object.data(), program->object.size());
    return 0;
}
#endif

#if defined(STANDIN_NVRTC_BUILTINS)
EXPORT int nvrtcStandinBuiltins() { return 1; }
#endif

#if defined(STANDIN_CUBLASLT)
EXPORT size_t cublasLtGetVersion() { return 130100; }
#endif

#if defined(STANDIN_CUBLAS)
// ---- libcublas.so.13 (needs libcublasLt.so.13, as the real one does): the GEMMs (cublas_api.h) --------------------
extern "C" size_t cublasLtGetVersion();
struct BlasHandle { int math = 0; void* stream = nullptr; };
EXPORT int cublasCreate_v2(void** handle) {
    if (cublasLtGetVersion() == 0) return 1;
    *handle = new BlasHandle;
    return 0;
}
EXPORT int cublasGetVersion_v2(void*, int* version) { *version = env_int("STE_STANDIN_CUBLAS_VERSION", 130100); return 0; }
EXPORT int cublasSetMathMode(void* handle, int mode) {
    if (!handle) return 1;
    static_cast<BlasHandle*>(handle)->math = mode;
    return 0;
}
EXPORT int cublasSetStream_v2(void* handle, void* stream) {
    if (!handle) return 1;
    static_cast<BlasHandle*>(handle)->stream = stream;
    return 0;
}
// Column-major C = α·op(A)·op(B) + β·C, as BLAS (cublasOperation_t: 0 N, 1 T).
EXPORT int cublasSgemm_v2(void* handle, int ta, int tb, int m, int n, int k, const float* alpha, const float* a, int lda,
                          const float* b, int ldb, const float* beta, float* c, int ldc) {
    if (injected_failure("cublasSgemm_v2")) return 13;  // CUBLAS_STATUS_EXECUTION_FAILED
    if (!handle) return 1;
    if (ta < 0 || ta > 1 || tb < 0 || tb > 1 || m < 0 || n < 0 || k < 0 || lda < (ta ? k : m) || ldb < (tb ? n : k)
        || ldc < m)
        return 7;  // CUBLAS_STATUS_INVALID_VALUE
    if (*alpha != 1.0f) return 15;  // CUBLAS_STATUS_NOT_SUPPORTED here: the engine passes α = 1
    // Column-major C = op(A)·op(B) is row-major Cᵀ = op(B)ᵀ·op(A)ᵀ.
    float scale = *beta;
    on_stream(static_cast<BlasHandle*>(handle)->stream, [=] { gemm(tb, ta, n, m, k, b, ldb, a, lda, scale, c, ldc); });
    return 0;
}
EXPORT const char* cublasGetStatusString(int status) {
    switch (status) {
    case 0: return "the operation completed successfully";
    case 1: return "the library was not initialized";
    case 7: return "an unsupported value or parameter was passed to the function";
    case 13: return "the GPU program failed to execute";
    default: return "unknown status";
    }
}
#endif

