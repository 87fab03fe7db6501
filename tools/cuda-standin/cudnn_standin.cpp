// The host stand-in's cuDNN (libcudnn.so.9; tools/cuda-standin/cuda_standin.cpp says what the stand-in is and how
// it is built): the legacy convolution API the engine calls — descriptors, the `_v7` algorithm queries, workspace
// sizes and the three passes — checked as cuDNN checks them and computed with im2col and plain loops.
#include "standin.h"

// ---- libcudnn.so.9: convolutions through the legacy API (cudnn_graph.h, cudnn_cnn.h) -----------------------------
enum Kind { tensorKind = 1, filterKind, convolutionKind };
struct Descriptor {
    Kind kind;
    int n = 0, c = 0, h = 0, w = 0;                                  // tensor NCHW, filter KCRS
    int padH = 0, padW = 0, strideH = 1, strideW = 1, mode = -1, math = 0;  // convolution
};
static const int badParam = 3, notSupported = 9, success = 0;

EXPORT size_t cudnnGetVersion() { return size_t(env_int("STE_STANDIN_CUDNN_VERSION", 91000)); }
// A handle keeps the stream its work is issued on (cudnnSetStream; the legacy stream until then).
struct DnnHandle { void* stream = nullptr; };
EXPORT int cudnnCreate(void** handle) { *handle = new DnnHandle; return 0; }
EXPORT int cudnnSetStream(void* handle, void* stream) {
    if (!handle) return badParam;
    static_cast<DnnHandle*>(handle)->stream = stream;
    return 0;
}
static void* stream_of(void* handle) { return handle ? static_cast<DnnHandle*>(handle)->stream : nullptr; }
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
    if (entry && injected_failure(entry)) return 8;  // CUDNN_STATUS_EXECUTION_FAILED (at the call, not at its run)
    if (!geometry(xd, wd, cd, yd, g)) return badParam;
    if (!supported(pass, algorithm)) return notSupported;
    int status = success;
    col = columns(g, algorithm, workspace, bytes, own, status);
    return col ? success : status;
}

// Each pass is checked when it is called (`issue`) and computed on the handle's stream (now, or when a captured graph
// runs), where it finds its geometry and columns again (`prepare`).
struct Prepared {
    Geometry g;
    std::vector<float> own;
    float* col = nullptr;
    int status = success;
};
static Prepared prepare(const char* entry, Pass pass, void* xd, void* wd, void* cd, void* yd, int algorithm,
                        void* workspace, size_t bytes) {
    Prepared p;
    p.status = begin(entry, pass, xd, wd, cd, yd, algorithm, workspace, bytes, p.g, p.own, p.col);
    return p;
}
static int issue(const char* entry, Pass pass, void* handle, void* xd, void* wd, void* cd, void* yd, int algorithm,
                 void* workspace, size_t bytes, std::function<void()> compute) {
    if (int status = prepare(entry, pass, xd, wd, cd, yd, algorithm, workspace, bytes).status) return status;
    on_stream(stream_of(handle), std::move(compute));
    return success;
}
static void forward_now(void* xd, const float* x, void* wd, const float* w, void* cd, int algorithm, void* workspace,
                        size_t bytes, const float* beta, void* yd, float* y) {
    Prepared p = prepare(nullptr, forwardPass, xd, wd, cd, yd, algorithm, workspace, bytes);
    const Geometry& g = p.g;
    float* col = p.col;
    // Split in two halves along the reduction, as a GPU's GEMM splits it: the sums are rounded in another order than
    // the CPU engine's, as they are on a GPU, so that checks which must allow for that are rehearsed with it.
    int rows = g.c * g.r * g.s, plane = g.oh * g.ow, half = rows / 2;
    for (int b = 0; b < g.n; b++) {
        im2col(g, x + size_t(b) * g.c * g.h * g.w, col);
        float* out = y + size_t(b) * g.k * plane;
        gemm(false, false, g.k, plane, rows - half, w + half, rows, col + size_t(half) * plane, plane, *beta, out, plane);
        if (half > 0) gemm(false, false, g.k, plane, half, w, rows, col, plane, 1.0f, out, plane);
    }
}
EXPORT int cudnnConvolutionForward(void* handle, const float* alpha, void* xd, const float* x, void* wd, const float* w,
                                   void* cd, int algorithm, void* workspace, size_t bytes, const float* beta, void* yd,
                                   float* y) {
    if (*alpha != 1.0f) return notSupported;  // here only: the engine passes α = 1
    float b = *beta;
    return issue("cudnnConvolutionForward", forwardPass, handle, xd, wd, cd, yd, algorithm, workspace, bytes,
                 [=] { forward_now(xd, x, wd, w, cd, algorithm, workspace, bytes, &b, yd, y); });
}
static void backward_data_now(const float* alpha, void* wd, const float* w, void* dyd, const float* dy, void* cd,
                              int algorithm, void* workspace, size_t bytes, const float* beta, void* dxd, float* dx) {
    Prepared p = prepare(nullptr, dataPass, dxd, wd, cd, dyd, algorithm, workspace, bytes);
    const Geometry& g = p.g;
    float* col = p.col;
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
}
EXPORT int cudnnConvolutionBackwardData(void* handle, const float* alpha, void* wd, const float* w, void* dyd,
                                        const float* dy, void* cd, int algorithm, void* workspace, size_t bytes,
                                        const float* beta, void* dxd, float* dx) {
    float a = *alpha, b = *beta;
    return issue("cudnnConvolutionBackwardData", dataPass, handle, dxd, wd, cd, dyd, algorithm, workspace, bytes,
                 [=] { backward_data_now(&a, wd, w, dyd, dy, cd, algorithm, workspace, bytes, &b, dxd, dx); });
}
static void backward_filter_now(const float* alpha, void* xd, const float* x, void* dyd, const float* dy, void* cd,
                                int algorithm, void* workspace, size_t bytes, const float* beta, void* dwd, float* dw) {
    Prepared p = prepare(nullptr, filterPass, xd, dwd, cd, dyd, algorithm, workspace, bytes);
    const Geometry& g = p.g;
    float* col = p.col;
    int rows = g.c * g.r * g.s, plane = g.oh * g.ow;
    std::vector<float> sum(size_t(g.k) * rows, 0.0f);
    for (int b = 0; b < g.n; b++) {
        im2col(g, x + size_t(b) * g.c * g.h * g.w, col);
        gemm(false, true, g.k, rows, plane, dy + size_t(b) * g.k * plane, plane, col, plane, 1.0f, sum.data(), rows);
    }
    for (size_t i = 0; i < sum.size(); i++) dw[i] = *alpha * sum[i] + (*beta == 0.0f ? 0.0f : *beta * dw[i]);
}
EXPORT int cudnnConvolutionBackwardFilter(void* handle, const float* alpha, void* xd, const float* x, void* dyd,
                                          const float* dy, void* cd, int algorithm, void* workspace, size_t bytes,
                                          const float* beta, void* dwd, float* dw) {
    float a = *alpha, b = *beta;
    return issue("cudnnConvolutionBackwardFilter", filterPass, handle, xd, dwd, cd, dyd, algorithm, workspace, bytes,
                 [=] { backward_filter_now(&a, xd, x, dyd, dy, cd, algorithm, workspace, bytes, &b, dwd, dw); });
}
