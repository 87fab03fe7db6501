// What every library of the host stand-in shares (tools/cuda-standin/cuda_standin.cpp says what the stand-in is):
// the exported-symbol mark, failure injection (STE_STANDIN_FAIL), version overrides from the environment, and a plain
// GEMM.
#pragma once
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
#include <functional>
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


// Work on a stream: run now, or recorded into the graph being captured from that stream. The CUDA runtime's stand-in
// keeps the capture (standin_enqueue, cuda_standin.cpp); the other libraries find it in the process when they need it.
[[maybe_unused]] static void on_stream(void* stream, std::function<void()> work) {
    using Enqueue = void (*)(void*, std::function<void()>*);
    static Enqueue enqueue = nullptr;
    if (!enqueue) enqueue = reinterpret_cast<Enqueue>(dlsym(RTLD_DEFAULT, "standin_enqueue"));
    if (!enqueue) return work();
    enqueue(stream, new std::function<void()>(std::move(work)));
}
