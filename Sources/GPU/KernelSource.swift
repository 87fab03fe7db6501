// The CUDA C kernels of the CUDA engine, compiled at run time by NVRTC (Libraries.swift): what cuDNN and cuBLAS do
// not do. Each mirrors a CPU kernel of Sources/Kernels and is named after it: the quantizer and every STE
// (QuantizedReLU.swift), batch norm in training and eval with the quantizer, the residual add and the STE mask fused
// (BatchNorm.swift), pooling and the option-A shortcut (Pooling.swift), the loss (CrossEntropy.swift) and the
// optimizer updates (OptimizerKernels.swift). Deterministic by construction: no atomics; every per-channel reduction is
// a fixed number of blocks per channel (by the shape alone), each summing a fixed chunk in double precision through a
// fixed-shape tree, then the chunks in order; the loss is one thread per row.

let cudaKernelSource = #"""
extern "C" {

// ---- quantizer and STE (QuantizedReLU.swift) -------------------------------------------------------------------
// rounding: 0 = ceil (the authors' code), 1 = nearest (half to even); ste: 0 identity, 1 relu, 2 clipped, 3 log-tailed.
__device__ __forceinline__ float quantize(float x, int levels, float alpha, int rounding) {
    float r = x / alpha;
    r = rounding == 0 ? ceilf(r) : rintf(r);
    if (r <= 0.0f) r = 0.0f;
    if (r > (float)levels) r = (float)levels;
    return r * alpha;
}

__device__ __forceinline__ float ste_derivative(float x, int ste, float top) {
    switch (ste) {
    case 0: return 1.0f;
    case 1: return x > 0.0f ? 1.0f : 0.0f;
    case 2: return (x > 0.0f && x <= top) ? 1.0f : 0.0f;
    case 3: return x > top ? 1.0f / (1.0f + (x - top)) : (x > 0.0f ? 1.0f : 0.0f);
    default: __trap(); return 0.0f;  // an STE code this file does not know: never a silent other rule
    }
}

__global__ void quantized_relu_forward(float* y, const float* x, long n, int levels, float alpha, int rounding) {
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (i < n) y[i] = quantize(x[i], levels, alpha, rounding);
}

// 0 + …: as the CPU kernels, which add the product to a zeroed accumulator (so −0 becomes +0, bit for bit).
__global__ void quantized_relu_backward(float* dx, const float* dy, const float* x, long n, int ste, float top) {
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (i < n) dx[i] = 0.0f + dy[i] * ste_derivative(x[i], ste, top);
}

__global__ void relu_forward(float* y, const float* x, long n) {
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

__global__ void relu_backward(float* dx, const float* dy, const float* x, long n) {
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (i < n) dx[i] = 0.0f + (x[i] > 0.0f ? dy[i] : 0.0f);
}

// ---- per-channel sums: `parts` blocks of 256 threads per channel, each over a fixed chunk, then the chunks' sums in
// order by one thread per channel — deterministic, and c·parts blocks to fill the GPU (parts depends on the shape only).
// Element (i, ch, s) of an [n, c, spatial] tensor is at (i·c + ch)·spatial + s.
__device__ double block_sum(double v, double* shared) {
    shared[threadIdx.x] = v;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
        __syncthreads();
    }
    double total = shared[0];
    __syncthreads();
    return total;
}

// Block b covers channel b / parts, chunk b % parts of its n·spatial elements: [first, end).
__device__ __forceinline__ void channel_chunk(int parts, long count, int* ch, long* first, long* end) {
    *ch = blockIdx.x / parts;
    long chunk = (count + parts - 1) / parts;
    *first = (blockIdx.x % parts) * chunk;
    *end = *first + chunk < count ? *first + chunk : count;
}

// partial[ch·parts + part] = Σ x over the chunk, or Σ (x − mean[ch])² when mean is given.
__global__ void channel_partial_sums(double* partial, const float* x, const float* mean, int n, int c, int spatial,
                                     int parts) {
    __shared__ double shared[256];
    int ch;
    long first, end;
    channel_chunk(parts, (long)n * spatial, &ch, &first, &end);
    double sum = 0.0;
    for (long j = first + threadIdx.x; j < end; j += blockDim.x) {
        long i = j / spatial, s = j % spatial;
        float v = x[(i * c + ch) * spatial + s];
        if (mean) {
            double d = (double)(v - mean[ch]);
            sum += d * d;
        } else {
            sum += (double)v;
        }
    }
    double total = block_sum(sum, shared);
    if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// out[ch] = Σ of the channel's partial sums in order (a bias gradient).
__global__ void channel_sums_finish(float* out, const double* partial, int c, int parts) {
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double sum = 0.0;
    for (int p = 0; p < parts; p++) sum += partial[ch * parts + p];
    out[ch] = (float)sum;
}

// Training statistics (BatchNorm.swift batchNormForwardTraining), from two rounds of partial sums: the batch mean,
// then 1/sqrt(biased var + eps) and the running statistics updated with the unbiased variance.
__global__ void batch_norm_mean(float* mean, const double* partial, int c, int parts, long count) {
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double sum = 0.0;
    for (int p = 0; p < parts; p++) sum += partial[ch * parts + p];
    mean[ch] = (float)(sum / (double)count);
}

__global__ void batch_norm_variance(float* invstd, float* running_mean, float* running_var, const float* mean,
                                    const double* partial, int c, int parts, long count, float eps, float momentum) {
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double sq = 0.0;
    for (int p = 0; p < parts; p++) sq += partial[ch * parts + p];
    double m = (double)count, variance = sq / m;
    invstd[ch] = (float)(1.0 / sqrt(variance + (double)eps));
    running_mean[ch] = (1.0f - momentum) * running_mean[ch] + momentum * mean[ch];
    running_var[ch] = (1.0f - momentum) * running_var[ch] + momentum * (float)(variance * m / (m - 1.0));
}

// y = σ(x·scale + shift (+ residual)) with scale = invstd·w, shift = b − mean·scale per channel; quantize 0: no σ.
// Training passes the batch statistics, eval the running ones (invstd = 1/sqrt(running_var + eps)).
__global__ void batch_norm_apply(float* y, const float* x, const float* residual, const float* mean,
                                 const float* invstd, const float* weight, const float* bias, long total, int c,
                                 int spatial, int quantize_output, int levels, float alpha, int rounding) {
    long j = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (j >= total) return;
    int ch = (int)((j / spatial) % c);
    float scale = invstd[ch] * (weight ? weight[ch] : 1.0f);
    float shift = (bias ? bias[ch] : 0.0f) - mean[ch] * scale;
    float v = x[j] * scale + shift;
    if (residual) v = v + residual[j];
    y[j] = quantize_output ? quantize(v, levels, alpha, rounding) : v;
}

// 1/sqrt(running_var + eps) per channel, for the eval pass.
__global__ void batch_norm_eval_invstd(float* invstd, const float* running_var, int c, float eps) {
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch < c) invstd[ch] = (float)(1.0 / sqrt((double)running_var[ch] + (double)eps));
}

// The gradient at the quantizer's input recomputed from the batch norm's input (the pre-activation as the forward
// computed it, residual included): g = dy·STE'(pre). ste < 0: no quantizer, g = dy.
__device__ __forceinline__ float masked_gradient(const float* dy, const float* x, const float* residual, long j,
                                                 float scale, float shift, int ste, float top) {
    if (ste < 0) return dy[j];
    float v = x[j] * scale + shift;
    if (residual) v = v + residual[j];
    return dy[j] * ste_derivative(v, ste, top);
}

// Per channel and chunk: Σ g and Σ g·x̂ (BatchNorm.swift batchNormBackwardTraining) into partial[2·b], partial[2·b + 1]
// for block b = ch·parts + part.
__global__ void batch_norm_backward_partial_sums(double* partial, const float* dy, const float* x, const float* mean,
                                                 const float* invstd, const float* weight, const float* bias, int n,
                                                 int c, int spatial, int parts, int ste, float top) {
    __shared__ double shared[256];
    int ch;
    long first, end;
    channel_chunk(parts, (long)n * spatial, &ch, &first, &end);
    float scale = invstd[ch] * (weight ? weight[ch] : 1.0f);
    float shift = (bias ? bias[ch] : 0.0f) - mean[ch] * scale;
    double sum_g = 0.0, sum_gx = 0.0;
    for (long k = first + threadIdx.x; k < end; k += blockDim.x) {
        long i = k / spatial, s = k % spatial;
        long j = (i * c + ch) * spatial + s;
        float g = masked_gradient(dy, x, 0, j, scale, shift, ste, top);
        float xhat = (x[j] - mean[ch]) * invstd[ch];
        sum_g += (double)g;
        sum_gx += (double)g * (double)xhat;
    }
    double total_g = block_sum(sum_g, shared);
    double total_gx = block_sum(sum_gx, shared);
    if (threadIdx.x == 0) {
        partial[2 * blockIdx.x] = total_g;
        partial[2 * blockIdx.x + 1] = total_gx;
    }
}

// The chunks' sums in order: sums[2·ch] = Σ g, sums[2·ch + 1] = Σ g·x̂; with weight_grad / bias_grad (affine) also
// dweight = Σ g·x̂, dbias = Σ g.
__global__ void batch_norm_backward_sums_finish(double* sums, float* weight_grad, float* bias_grad,
                                                const double* partial, int c, int parts) {
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double total_g = 0.0, total_gx = 0.0;
    for (int p = 0; p < parts; p++) {
        total_g += partial[2 * (ch * parts + p)];
        total_gx += partial[2 * (ch * parts + p) + 1];
    }
    sums[2 * ch] = total_g;
    sums[2 * ch + 1] = total_gx;
    if (weight_grad) weight_grad[ch] = (float)total_gx;
    if (bias_grad) bias_grad[ch] = (float)total_g;
}

// dx = w·invstd·(g − mean(g) − x̂·mean(g·x̂)).
__global__ void batch_norm_backward_apply(float* dx, const double* sums, const float* dy, const float* x,
                                          const float* mean, const float* invstd, const float* weight,
                                          const float* bias, long total, int n, int c, int spatial, int ste,
                                          float top) {
    long j = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (j >= total) return;
    int ch = (int)((j / spatial) % c);
    float w = weight ? weight[ch] : 1.0f;
    float scale = invstd[ch] * w;
    float shift = (bias ? bias[ch] : 0.0f) - mean[ch] * scale;
    float g = masked_gradient(dy, x, 0, j, scale, shift, ste, top);
    float m = (float)n * (float)spatial;
    float mean_g = (float)(sums[2 * ch] / (double)m), mean_gx = (float)(sums[2 * ch + 1] / (double)m);
    float xhat = (x[j] - mean[ch]) * invstd[ch];
    dx[j] = w * invstd[ch] * (g - mean_g - xhat * mean_gx);
}

// The ResNet block's end: the gradient at the residual sum, dy·STE'(BN(x) + residual).
__global__ void batch_norm_residual_gradient(float* dsum, const float* dy, const float* x, const float* residual,
                                             const float* mean, const float* invstd, const float* weight,
                                             const float* bias, long total, int c, int spatial, int ste, float top) {
    long j = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (j >= total) return;
    int ch = (int)((j / spatial) % c);
    float scale = invstd[ch] * (weight ? weight[ch] : 1.0f);
    float shift = (bias ? bias[ch] : 0.0f) - mean[ch] * scale;
    dsum[j] = masked_gradient(dy, x, residual, j, scale, shift, ste, top);
}

// ---- convolution and linear biases -------------------------------------------------------------------------
__global__ void channel_bias_add(float* y, const float* bias, long total, int c, int spatial) {
    long j = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (j < total) y[j] += bias[(j / spatial) % c];
}

// ---- pooling and the option-A shortcut (Pooling.swift) --------------------------------------------------------
// 2×2 max pooling, stride 2; argmax = the first maximum in scan order (PyTorch's tie rule), 0…3.
__global__ void max_pool2_forward(float* y, unsigned char* argmax, const float* x, int n, int c, int h, int w) {
    int oh = h / 2, ow = w / 2;
    long total = (long)n * c * oh * ow;
    long o = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (o >= total) return;
    int q = (int)(o % ow), p = (int)((o / ow) % oh);
    long plane = o / ((long)oh * ow);
    const float* base = x + plane * h * w + (long)(2 * p) * w + 2 * q;
    float best = base[0];
    int index = 0;
    float candidates[3] = {base[1], base[w], base[w + 1]};
    for (int k = 0; k < 3; k++) if (candidates[k] > best) { best = candidates[k]; index = k + 1; }
    y[o] = best;
    argmax[o] = (unsigned char)index;
}

// One thread per input element: its window's dy where it was the maximum, else 0 (no scatter, no zeroing).
__global__ void max_pool2_backward(float* dx, const float* dy, const unsigned char* argmax, int n, int c, int h, int w) {
    long total = (long)n * c * h * w;
    long j = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (j >= total) return;
    int col = (int)(j % w), row = (int)((j / w) % h);
    long plane = j / ((long)h * w);
    int oh = h / 2, ow = w / 2;
    int p = row / 2, q = col / 2;
    if (p >= oh || q >= ow) { dx[j] = 0.0f; return; }
    long o = plane * oh * ow + (long)p * ow + q;
    int position = (row % 2) * 2 + (col % 2);
    dx[j] = argmax[o] == position ? dy[o] : 0.0f;
}

// [n, c, spatial] → [n, c]: the mean over space (a thread per (n, c), fixed order).
__global__ void global_average_pool_forward(float* y, const float* x, long planes, int spatial) {
    long p = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (p >= planes) return;
    double sum = 0.0;
    for (int s = 0; s < spatial; s++) sum += (double)x[p * spatial + s];
    y[p] = (float)(sum / (double)spatial);
}

__global__ void global_average_pool_backward(float* dx, const float* dy, long planes, int spatial) {
    long j = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (j < planes * spatial) dx[j] = dy[j / spatial] / (float)spatial;
}

// y[:, pad + ch, p, q] = x[:, ch, 2p, 2q]; the `pad` channels on each side are zero.
__global__ void shortcut_option_a_forward(float* y, const float* x, int n, int c, int h, int w, int pad) {
    int oc = c + 2 * pad, oh = (h + 1) / 2, ow = (w + 1) / 2;
    long total = (long)n * oc * oh * ow;
    long o = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (o >= total) return;
    int q = (int)(o % ow), p = (int)((o / ow) % oh), ch = (int)((o / ((long)oh * ow)) % oc);
    long i = o / ((long)oc * oh * ow);
    int source = ch - pad;
    y[o] = (source >= 0 && source < c) ? x[((i * c + source) * h + 2 * p) * w + 2 * q] : 0.0f;
}

__global__ void shortcut_option_a_backward(float* dx, const float* dy, int n, int c, int h, int w, int pad) {
    int oc = c + 2 * pad, oh = (h + 1) / 2, ow = (w + 1) / 2;
    long total = (long)n * c * h * w;
    long j = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (j >= total) return;
    int col = (int)(j % w), row = (int)((j / w) % h), ch = (int)((j / ((long)h * w)) % c);
    long i = j / ((long)c * h * w);
    dx[j] = (row % 2 == 0 && col % 2 == 0) ? dy[((i * oc + ch + pad) * oh + row / 2) * ow + col / 2] : 0.0f;
}

__global__ void add(float* y, const float* a, const float* b, long n) {
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (i < n) y[i] = a[i] + b[i];
}

__global__ void accumulate(float* y, const float* a, long n) {
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (i < n) y[i] += a[i];
}

// ---- batches from the data set kept on the device (Training/Batcher.swift) ------------------------------------
// Row r of the batch is data set image plan[4r], cropped at offset (plan[4r+1], plan[4r+2]) of the unpadded image
// (zero outside it), mirrored when plan[4r+3] is 1, each byte mapped through the normalisation table: the host
// batcher's arithmetic, so the same floats. One thread per output value; the row's first writes its label.
__global__ void gather_batch(float* x, int* labels, const unsigned char* images, const unsigned char* image_labels,
                             const float* lookup, const int* plan, int count, int c, int h, int w) {
    long image_size = (long)c * h * w;
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (i >= (long)count * image_size) return;
    int col = (int)(i % w), row = (int)((i / w) % h), ch = (int)((i / ((long)h * w)) % c);
    int r = (int)(i / image_size);
    const int* p = plan + 4 * r;
    int sy = row + p[1], sx = (p[3] ? w - 1 - col : col) + p[2];
    unsigned char pixel = (sy >= 0 && sy < h && sx >= 0 && sx < w)
        ? images[(long)p[0] * image_size + ((long)ch * h + sy) * w + sx] : (unsigned char)0;
    x[i] = lookup[ch * 256 + pixel];
    if (i % image_size == 0) labels[r] = (int)image_labels[p[0]];
}

// ---- loss (CrossEntropy.swift): a thread per row, in double; the host sums the rows in order ------------------
__global__ void softmax_cross_entropy(double* row_loss, int* row_correct, float* dlogits, const float* logits,
                                      const int* labels, int batch, int classes) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= batch) return;
    const float* row = logits + (long)i * classes;
    int label = labels[i];
    int max_index = 0;
    float max_value = row[0];
    for (int j = 1; j < classes; j++) if (row[j] > max_value) { max_value = row[j]; max_index = j; }
    row_correct[i] = max_index == label ? 1 : 0;
    double m = (double)max_value, sum = 0.0;
    for (int j = 0; j < classes; j++) sum += exp((double)row[j] - m);
    double log_sum = m + log(sum);
    row_loss[i] = log_sum - (double)row[label];
    if (dlogits) {
        double scale = 1.0 / (double)batch;
        for (int j = 0; j < classes; j++) {
            double p = exp((double)row[j] - log_sum);
            dlogits[(long)i * classes + j] = (float)((j == label ? p - 1.0 : p) * scale);
        }
    }
}

// ---- optimizers (OptimizerKernels.swift) ----------------------------------------------------------------------
__global__ void sgd_update(float* w, const float* g, float* buffer, long n, float lr, float momentum,
                           float weight_decay, int first_step) {
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    float d = g[i] + weight_decay * w[i];
    if (momentum == 0.0f) { w[i] -= lr * d; return; }
    float v = first_step ? d : momentum * buffer[i] + d;
    buffer[i] = v;
    w[i] -= lr * v;
}

__global__ void adam_update(float* w, const float* g, float* m, float* v, long n, float step_size,
                            float correction2_sqrt, float one_minus_beta1, float one_minus_beta2, float beta2,
                            float eps, float weight_decay) {
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    float d = g[i] + weight_decay * w[i];
    m[i] += one_minus_beta1 * (d - m[i]);
    v[i] = beta2 * v[i] + one_minus_beta2 * d * d;
    w[i] -= step_size * (m[i] / (sqrtf(v[i]) / correction2_sqrt + eps));
}

}
"""#
