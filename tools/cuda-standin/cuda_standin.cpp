// A host stand-in for the NVIDIA libraries the CUDA engine loads (Sources/GPU/Libraries.swift): the CUDA runtime,
// the driver's libcuda, NVRTC (with its builtins), cuBLAS (with cublasLt) and cuDNN, each built from this one file
// as a shared library of the real soname (tools/cuda-standin/build.sh), exporting the entry points the engine
// declares with the C signatures of the CUDA 13 / cuDNN 9 headers. With them the engine's real paths run on a machine
// without a GPU: finding and opening the libraries by path (siblings included), dlsym, marshalling arguments through
// C function pointers, cuDNN's descriptors and algorithm queries, NVRTC's compile-and-load, cuLaunchKernel's parameter
// array, the version checks, and the error paths (STE_STANDIN_FAIL makes one call fail). scripts/gpu-rehearsal.sh runs
// scripts/gpu-check.sh against them.
//
// "Device" memory is host memory (the runtime keeps a table of it, and a copy whose direction does not match the
// pointers fails as on a GPU). NVRTC compiles the CUDA C as C++ with a C++ compiler, CUDA's thread indices, shared
// memory and barriers mapped onto the host (as Tests/GPUTests/EmulatedDevice.swift does, with fibers for threads), and its "CUBIN" is
// that shared object's bytes (an ELF file, as a CUBIN is); the driver loads it with dlopen. cuBLAS and cuDNN compute
// with plain loops (im2col for the convolutions). What this cannot check — NVIDIA's own code — is left to the GPU.
#include <dlfcn.h>
#include <elf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#define EXPORT extern "C" __attribute__((visibility("default")))

// STE_STANDIN_FAIL=<entry point>:<n>[,…]: the n-th call (from 1) of that entry point fails with its library's
// error status, so that the engine's error paths run. Counted per entry point, per process.
static bool injected_failure(const char* entry) {
    static std::mutex lock;
    static std::map<std::string, long> calls;
    const char* spec = getenv("STE_STANDIN_FAIL");
    if (!spec) return false;
    std::lock_guard<std::mutex> guard(lock);
    long call = ++calls[entry];
    std::stringstream items(spec);
    std::string item;
    while (std::getline(items, item, ',')) {
        auto colon = item.find(':');
        if (colon == std::string::npos) continue;
        if (item.substr(0, colon) == entry && std::atol(item.c_str() + colon + 1) == call) {
            fprintf(stderr, "cuda-standin: %s fails on call %ld (STE_STANDIN_FAIL)\n", entry, call);
            return true;
        }
    }
    return false;
}

// Row-major C[m×n] = op(A)·op(B) + β·C (α = 1, the only α the engine passes), summing over k in order. Plain loops:
// the stand-in needs no BLAS, and its sums are rounded in an order of its own, as a GPU's are.
[[maybe_unused]] static void gemm(bool ta, bool tb, int m, int n, int k, const float* a, int lda, const float* b, int ldb,
                                  float beta, float* c, int ldc) {
    for (int i = 0; i < m; i++) {
        float* row = c + size_t(i) * ldc;
        for (int j = 0; j < n; j++) row[j] = beta == 0.0f ? 0.0f : beta * row[j];
        if (tb && !ta) {  // rows of A against rows of B: dot products
            const float* ai = a + size_t(i) * lda;
            for (int j = 0; j < n; j++) {
                const float* bj = b + size_t(j) * ldb;
                float sum = 0.0f;
                for (int p = 0; p < k; p++) sum += ai[p] * bj[p];
                row[j] += sum;
            }
            continue;
        }
        for (int p = 0; p < k; p++) {
            float x = ta ? a[size_t(p) * lda + i] : a[size_t(i) * lda + p];
            if (!tb) {
                const float* bp = b + size_t(p) * ldb;
                for (int j = 0; j < n; j++) row[j] += x * bp[j];
            } else {
                for (int j = 0; j < n; j++) row[j] += x * b[size_t(j) * ldb + p];
            }
        }
    }
}

static int env_int(const char* name, int fallback) {
    const char* v = getenv(name);
    return v ? std::atoi(v) : fallback;
}

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
EXPORT int cudaFree(void* p) {
    if (!p) return 0;
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
EXPORT int cudaDeviceSynchronize() { return injected_failure("cudaDeviceSynchronize") ? 700 : 0; }
EXPORT const char* cudaGetErrorString(int status) {
    switch (status) {
    case 0: return "no error";
    case 1: return "invalid argument";
    case 2: return "out of memory";
    case 101: return "invalid device ordinal";
    case 700: return "an illegal memory access was encountered";
    default: return "unrecognized error code";
    }
}
EXPORT int cudaRuntimeGetVersion(int* v) { *v = env_int("STE_STANDIN_RUNTIME_VERSION", 13000); return 0; }
EXPORT int cudaDriverGetVersion(int* v) { *v = env_int("STE_STANDIN_DRIVER_VERSION", 13000); return 0; }
#endif

#if defined(STANDIN_DRIVER)
// ---- libcuda.so.1: modules and launches (cuda.h) ------------------------------------------------------------------
typedef void (*Launcher)(unsigned blocks, unsigned threads, void** parameters);

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
    *function = dlsym(module, (std::string("launch_") + name).c_str());
    return *function ? 0 : 500;  // CUDA_ERROR_NOT_FOUND
}
// One-dimensional grids and blocks, as the engine launches them; up to 1,024 threads a block, no dynamic shared memory.
EXPORT int cuLaunchKernel(void* function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                          unsigned shared, void* stream, void** parameters, void** extra) {
    if (injected_failure("cuLaunchKernel")) return 719;  // CUDA_ERROR_LAUNCH_FAILED
    if (!function || gy != 1 || gz != 1 || by != 1 || bz != 1 || bx == 0 || bx > 1024 || gx == 0 || shared != 0
        || stream != nullptr || extra != nullptr || parameters == nullptr)
        return 1;  // CUDA_ERROR_INVALID_VALUE
    reinterpret_cast<Launcher>(function)(gx, bx, parameters);
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
        std::stringstream items(list);
        std::string p;
        for (int k = 0; std::getline(items, p, ','); k++) {
            size_t last = p.find_last_not_of(" \t\n");
            size_t cut = p.find_last_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", last);
            std::string type = p.substr(0, cut + 1);
            type = type.substr(type.find_first_not_of(" \t\n"));
            arguments.push_back("*(" + type + "*)a[" + std::to_string(k) + "]");
        }
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
struct BlasHandle { int math = 0; };
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
    gemm(tb, ta, n, m, k, b, ldb, a, lda, *beta, c, ldc);
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

#if defined(STANDIN_CUDNN)
// ---- libcudnn.so.9: convolutions through the legacy API (cudnn_graph.h, cudnn_cnn.h) -----------------------------
enum Kind { tensorKind = 1, filterKind, convolutionKind };
struct Descriptor {
    Kind kind;
    int n = 0, c = 0, h = 0, w = 0;                                  // tensor NCHW, filter KCRS
    int padH = 0, padW = 0, strideH = 1, strideW = 1, mode = -1, math = 0;  // convolution
};
static const int badParam = 3, notSupported = 9, success = 0;

EXPORT size_t cudnnGetVersion() { return size_t(env_int("STE_STANDIN_CUDNN_VERSION", 91000)); }
EXPORT int cudnnCreate(void** handle) { *handle = new int(1); return 0; }
EXPORT const char* cudnnGetErrorString(int status) {
    switch (status) {
    case 0: return "CUDNN_STATUS_SUCCESS";
    case 3: return "CUDNN_STATUS_BAD_PARAM";
    case 8: return "CUDNN_STATUS_EXECUTION_FAILED";
    case 9: return "CUDNN_STATUS_NOT_SUPPORTED";
    default: return "CUDNN_STATUS_UNKNOWN";
    }
}
static int create(void** d, Kind kind) { *d = new Descriptor{kind}; return 0; }
EXPORT int cudnnCreateTensorDescriptor(void** d) { return create(d, tensorKind); }
EXPORT int cudnnCreateFilterDescriptor(void** d) { return create(d, filterKind); }
EXPORT int cudnnCreateConvolutionDescriptor(void** d) { return create(d, convolutionKind); }
static Descriptor* as(void* d, Kind kind) {
    Descriptor* x = static_cast<Descriptor*>(d);
    return x && x->kind == kind ? x : nullptr;
}
// (descriptor, format, data type, n, c, h, w): NCHW float only.
EXPORT int cudnnSetTensor4dDescriptor(void* d, int format, int type, int n, int c, int h, int w) {
    Descriptor* t = as(d, tensorKind);
    if (!t || format != 0 || type != 0 || n <= 0 || c <= 0 || h <= 0 || w <= 0) return badParam;
    t->n = n, t->c = c, t->h = h, t->w = w;
    return 0;
}
// (descriptor, data type, format, k, c, r, s): cuDNN's filter setter takes the type before the format.
EXPORT int cudnnSetFilter4dDescriptor(void* d, int type, int format, int k, int c, int r, int s) {
    Descriptor* f = as(d, filterKind);
    if (!f || format != 0 || type != 0 || k <= 0 || c <= 0 || r <= 0 || s <= 0) return badParam;
    f->n = k, f->c = c, f->h = r, f->w = s;
    return 0;
}
EXPORT int cudnnSetConvolution2dDescriptor(void* d, int padH, int padW, int u, int v, int dilationH, int dilationW,
                                           int mode, int type) {
    Descriptor* x = as(d, convolutionKind);
    if (!x || padH < 0 || padW < 0 || u <= 0 || v <= 0 || mode < 0 || mode > 1 || type != 0) return badParam;
    if (dilationH != 1 || dilationW != 1) return notSupported;
    x->padH = padH, x->padW = padW, x->strideH = u, x->strideW = v, x->mode = mode;
    return 0;
}
EXPORT int cudnnSetConvolutionMathType(void* d, int math) {
    Descriptor* x = as(d, convolutionKind);
    if (!x || math < 0 || math > 3) return badParam;
    x->math = math;
    return 0;
}

// A geometry checked for consistency (the shapes of x, w, y agree with the convolution): what every call verifies.
struct Geometry {
    int n, c, h, w, k, r, s, oh, ow, padH, padW, strideH, strideW;
    size_t columnBytes() const { return size_t(c) * r * s * oh * ow * 4; }
};
static bool geometry(void* xd, void* wd, void* cd, void* yd, Geometry& g) {
    Descriptor *x = as(xd, tensorKind), *f = as(wd, filterKind), *v = as(cd, convolutionKind), *y = as(yd, tensorKind);
    if (!x || !f || !v || !y || v->mode != 1 || f->c != x->c || y->c != f->n || y->n != x->n) return false;
    g = {x->n, x->c, x->h, x->w, f->n, f->h, f->w, y->h, y->w, v->padH, v->padW, v->strideH, v->strideW};
    return g.oh == (g.h + 2 * g.padH - g.r) / g.strideH + 1 && g.ow == (g.w + 2 * g.padW - g.s) / g.strideW + 1;
}
// The algorithms this stand-in has (all deterministic): forward 0, 1, 2; backward data 1; backward filter 1.
// Algorithm 1 wants an im2col workspace; the others none (they allocate their own).
enum Pass { forwardPass, dataPass, filterPass };
static bool supported(Pass pass, int algorithm) { return pass == forwardPass ? algorithm >= 0 && algorithm <= 2 : algorithm == 1; }
static size_t workspaceOf(const Geometry& g, int algorithm) { return algorithm == 1 ? g.columnBytes() : 0; }

static int workspaceQuery(Pass pass, void* a, void* b, void* c, void* d, int algorithm, size_t* bytes) {
    Geometry g;
    bool ok = pass == forwardPass ? geometry(a, b, c, d, g)     // x, w, conv, y
            : pass == dataPass ? geometry(d, a, c, b, g)         // w, dy, conv, dx
            : geometry(a, d, c, b, g);                           // x, dy, conv, dw
    if (!ok) return badParam;
    if (!supported(pass, algorithm)) return notSupported;
    *bytes = workspaceOf(g, algorithm);
    return 0;
}
EXPORT int cudnnGetConvolutionForwardWorkspaceSize(void*, void* x, void* w, void* c, void* y, int algorithm, size_t* b) {
    return workspaceQuery(forwardPass, x, w, c, y, algorithm, b);
}
EXPORT int cudnnGetConvolutionBackwardDataWorkspaceSize(void*, void* w, void* dy, void* c, void* dx, int algorithm, size_t* b) {
    return workspaceQuery(dataPass, w, dy, c, dx, algorithm, b);
}
EXPORT int cudnnGetConvolutionBackwardFilterWorkspaceSize(void*, void* x, void* dy, void* c, void* dw, int algorithm, size_t* b) {
    return workspaceQuery(filterPass, x, dy, c, dw, algorithm, b);
}

// cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t (cudnn_cnn.h): algo, status, time, memory, determinism, mathType,
// reserved[3]. The ranked answers put algorithms the engine must refuse first (non-deterministic ones, tensor-op
// math, unsupported), as a real cuDNN may.
struct AlgorithmPerformance { int algo, status; float time; size_t memory; int determinism, mathType, reserved[3]; };
static_assert(sizeof(AlgorithmPerformance) == 48, "cudnnConvolutionFwdAlgoPerf_t is 48 bytes");
static int rank(Pass pass, void* a, void* b, void* c, void* d, int room, int* returned, void* results) {
    Geometry g;
    if (!(pass == forwardPass ? geometry(a, b, c, d, g) : pass == dataPass ? geometry(d, a, c, b, g) : geometry(a, d, c, b, g)))
        return badParam;
    int math = as(c, convolutionKind)->math == 0 ? 0 : 3;
    std::vector<AlgorithmPerformance> ranked;
    if (pass == forwardPass) ranked = {{6, notSupported, -1, 0, 1, math, {}}, {1, 0, 1, workspaceOf(g, 1), 1, 1, {}},
                                       {1, 0, 2, workspaceOf(g, 1), 1, math, {}}, {0, 0, 3, 0, 1, math, {}}};
    else if (pass == dataPass) ranked = {{0, 0, 1, 0, 0, math, {}}, {1, 0, 2, workspaceOf(g, 1), 1, math, {}}};
    else ranked = {{0, 0, 1, 0, 0, math, {}}, {3, 0, 2, 0, 0, math, {}}, {1, 0, 3, workspaceOf(g, 1), 1, math, {}}};
    *returned = std::min<int>(room, ranked.size());
    memcpy(results, ranked.data(), sizeof(AlgorithmPerformance) * *returned);
    return 0;
}
EXPORT int cudnnGetConvolutionForwardAlgorithm_v7(void*, void* x, void* w, void* c, void* y, int room, int* n, void* r) {
    return rank(forwardPass, x, w, c, y, room, n, r);
}
EXPORT int cudnnGetConvolutionBackwardDataAlgorithm_v7(void*, void* w, void* dy, void* c, void* dx, int room, int* n, void* r) {
    return rank(dataPass, w, dy, c, dx, room, n, r);
}
EXPORT int cudnnGetConvolutionBackwardFilterAlgorithm_v7(void*, void* x, void* dy, void* c, void* dw, int room, int* n, void* r) {
    return rank(filterPass, x, dy, c, dw, room, n, r);
}

// One image's input planes as columns [c·r·s, oh·ow], and back (summing overlaps).
static void im2col(const Geometry& g, const float* x, float* col) {
    for (int ci = 0; ci < g.c; ci++) for (int i = 0; i < g.r; i++) for (int j = 0; j < g.s; j++) {
        float* row = col + ((size_t(ci) * g.r + i) * g.s + j) * g.oh * g.ow;
        for (int oy = 0; oy < g.oh; oy++) for (int ox = 0; ox < g.ow; ox++) {
            int y = oy * g.strideH - g.padH + i, xx = ox * g.strideW - g.padW + j;
            row[oy * g.ow + ox] = (y >= 0 && y < g.h && xx >= 0 && xx < g.w) ? x[(size_t(ci) * g.h + y) * g.w + xx] : 0.0f;
        }
    }
}
static void col2im(const Geometry& g, const float* col, float* x) {
    for (int ci = 0; ci < g.c; ci++) for (int i = 0; i < g.r; i++) for (int j = 0; j < g.s; j++) {
        const float* row = col + ((size_t(ci) * g.r + i) * g.s + j) * g.oh * g.ow;
        for (int oy = 0; oy < g.oh; oy++) for (int ox = 0; ox < g.ow; ox++) {
            int y = oy * g.strideH - g.padH + i, xx = ox * g.strideW - g.padW + j;
            if (y >= 0 && y < g.h && xx >= 0 && xx < g.w) x[(size_t(ci) * g.h + y) * g.w + xx] += row[oy * g.ow + ox];
        }
    }
}
// The workspace the caller passed when the algorithm wants one (too small: bad parameter), else our own.
static float* columns(const Geometry& g, int algorithm, void* workspace, size_t bytes, std::vector<float>& own, int& status) {
    if (algorithm == 1) {
        if (!workspace || bytes < g.columnBytes()) { status = badParam; return nullptr; }
        return static_cast<float*>(workspace);
    }
    own.resize(g.columnBytes() / 4);
    return own.data();
}

// What each pass does first: the injected failure, the descriptors' geometry (x, w, conv, y), the algorithm, and the
// columns buffer it works in.
static int begin(const char* entry, Pass pass, void* xd, void* wd, void* cd, void* yd, int algorithm, void* workspace,
                 size_t bytes, Geometry& g, std::vector<float>& own, float*& col) {
    if (injected_failure(entry)) return 8;  // CUDNN_STATUS_EXECUTION_FAILED
    if (!geometry(xd, wd, cd, yd, g)) return badParam;
    if (!supported(pass, algorithm)) return notSupported;
    int status = success;
    col = columns(g, algorithm, workspace, bytes, own, status);
    return col ? success : status;
}

EXPORT int cudnnConvolutionForward(void*, const float* alpha, void* xd, const float* x, void* wd, const float* w, void* cd,
                                   int algorithm, void* workspace, size_t bytes, const float* beta, void* yd, float* y) {
    if (*alpha != 1.0f) return notSupported;  // here only: the engine passes α = 1
    Geometry g;
    std::vector<float> own;
    float* col = nullptr;
    if (int status = begin("cudnnConvolutionForward", forwardPass, xd, wd, cd, yd, algorithm, workspace, bytes, g, own, col))
        return status;
    // Split in two halves along the reduction, as a GPU's GEMM splits it: the sums are rounded in another order than
    // the CPU engine's, as they are on a GPU, so that checks which must allow for that are rehearsed with it.
    int rows = g.c * g.r * g.s, plane = g.oh * g.ow, half = rows / 2;
    for (int b = 0; b < g.n; b++) {
        im2col(g, x + size_t(b) * g.c * g.h * g.w, col);
        float* out = y + size_t(b) * g.k * plane;
        gemm(false, false, g.k, plane, rows - half, w + half, rows, col + size_t(half) * plane, plane, *beta, out, plane);
        if (half > 0) gemm(false, false, g.k, plane, half, w, rows, col, plane, 1.0f, out, plane);
    }
    return 0;
}
EXPORT int cudnnConvolutionBackwardData(void*, const float* alpha, void* wd, const float* w, void* dyd, const float* dy,
                                        void* cd, int algorithm, void* workspace, size_t bytes, const float* beta, void* dxd,
                                        float* dx) {
    Geometry g;
    std::vector<float> own;
    float* col = nullptr;
    if (int status = begin("cudnnConvolutionBackwardData", dataPass, dxd, wd, cd, dyd, algorithm, workspace, bytes, g,
                           own, col))
        return status;
    int rows = g.c * g.r * g.s, plane = g.oh * g.ow;
    size_t image = size_t(g.c) * g.h * g.w;
    std::vector<float> sum(image);
    for (int b = 0; b < g.n; b++) {
        gemm(true, false, rows, plane, g.k, w, rows, dy + size_t(b) * g.k * plane, plane, 0.0f, col, plane);
        std::fill(sum.begin(), sum.end(), 0.0f);
        col2im(g, col, sum.data());
        float* out = dx + b * image;
        for (size_t i = 0; i < image; i++) out[i] = *alpha * sum[i] + (*beta == 0.0f ? 0.0f : *beta * out[i]);
    }
    return 0;
}
EXPORT int cudnnConvolutionBackwardFilter(void*, const float* alpha, void* xd, const float* x, void* dyd, const float* dy,
                                          void* cd, int algorithm, void* workspace, size_t bytes, const float* beta,
                                          void* dwd, float* dw) {
    Geometry g;
    std::vector<float> own;
    float* col = nullptr;
    if (int status = begin("cudnnConvolutionBackwardFilter", filterPass, xd, dwd, cd, dyd, algorithm, workspace, bytes, g,
                           own, col))
        return status;
    int rows = g.c * g.r * g.s, plane = g.oh * g.ow;
    std::vector<float> sum(size_t(g.k) * rows, 0.0f);
    for (int b = 0; b < g.n; b++) {
        im2col(g, x + size_t(b) * g.c * g.h * g.w, col);
        gemm(false, true, g.k, rows, plane, dy + size_t(b) * g.k * plane, plane, col, plane, 1.0f, sum.data(), rows);
    }
    for (size_t i = 0; i < sum.size(); i++) dw[i] = *alpha * sum[i] + (*beta == 0.0f ? 0.0f : *beta * dw[i]);
    return 0;
}
#endif
