// Typed launches of the CUDA kernels (KernelSource.swift): one Swift function per `__global__` function, its
// parameters those of the C signature in order, name and type — a pointer of any element type is a device pointer,
// `long` an Int, `int` an Int32, `float` a Float — as llm.c gives each kernel a host function. Nothing else launches
// a kernel by name; Tests/GPUTests/KernelLaunchTests.swift calls every function here on a recording device and checks
// its arguments against the C signatures it parses from the kernel source, and that every kernel has its function.

/// A device address (nil: the kernel's optional input is absent).
typealias DevicePointer = UnsafeMutableRawPointer

/// How many threads run a kernel: one per element (blocks of 256), or `blocks` blocks of `threads`.
enum LaunchGrid {
    case elements(Int)
    case blocks(Int, threads: Int = 256)

    var shape: (blocks: Int, threads: Int) {
        switch self {
        case .elements(let count): return ((count + 255) / 256, 256)
        case .blocks(let blocks, let threads): return (blocks, threads)
        }
    }
}

extension ComputeDevice {
    private func launch(_ name: String, _ grid: LaunchGrid, _ arguments: [KernelArgument]) {
        let (blocks, threads) = grid.shape
        launch(name, blocks: blocks, threads: threads, arguments)
    }

    /// `quantized_relu_forward(float* y, const float* x, long n, int levels, float alpha, int rounding)`
    func quantizedReluForward(_ grid: LaunchGrid, y: DevicePointer?, x: DevicePointer?, n: Int, levels: Int32,
        alpha: Float, rounding: Int32) {
        launch("quantized_relu_forward", grid, [.pointer(y), .pointer(x), .long(n), .int(levels), .float(alpha),
            .int(rounding)])
    }

    /// `quantized_relu_backward(float* dx, const float* dy, const float* x, long n, int ste, float top)`
    func quantizedReluBackward(_ grid: LaunchGrid, dx: DevicePointer?, dy: DevicePointer?, x: DevicePointer?, n: Int,
        ste: Int32, top: Float) {
        launch("quantized_relu_backward", grid, [.pointer(dx), .pointer(dy), .pointer(x), .long(n), .int(ste),
            .float(top)])
    }

    /// `relu_forward(float* y, const float* x, long n)`
    func reluForward(_ grid: LaunchGrid, y: DevicePointer?, x: DevicePointer?, n: Int) {
        launch("relu_forward", grid, [.pointer(y), .pointer(x), .long(n)])
    }

    /// `relu_backward(float* dx, const float* dy, const float* x, long n)`
    func reluBackward(_ grid: LaunchGrid, dx: DevicePointer?, dy: DevicePointer?, x: DevicePointer?, n: Int) {
        launch("relu_backward", grid, [.pointer(dx), .pointer(dy), .pointer(x), .long(n)])
    }

    /// `channel_partial_sums(double* partial, const float* x, const float* mean, int n, int c, int spatial, int
    ///     parts)`
    func channelPartialSums(_ grid: LaunchGrid, partial: DevicePointer?, x: DevicePointer?, mean: DevicePointer?, n: Int32,
        c: Int32, spatial: Int32, parts: Int32) {
        launch("channel_partial_sums", grid, [.pointer(partial), .pointer(x), .pointer(mean), .int(n), .int(c),
            .int(spatial), .int(parts)])
    }

    /// `channel_sums_finish(float* out, const double* partial, int c, int parts)`
    func channelSumsFinish(_ grid: LaunchGrid, out: DevicePointer?, partial: DevicePointer?, c: Int32, parts: Int32) {
        launch("channel_sums_finish", grid, [.pointer(out), .pointer(partial), .int(c), .int(parts)])
    }

    /// `batch_norm_mean(float* mean, const double* partial, int c, int parts, long count)`
    func batchNormMean(_ grid: LaunchGrid, mean: DevicePointer?, partial: DevicePointer?, c: Int32, parts: Int32,
        count: Int) {
        launch("batch_norm_mean", grid, [.pointer(mean), .pointer(partial), .int(c), .int(parts), .long(count)])
    }

    /// `batch_norm_variance(float* invstd, float* running_mean, float* running_var, const float* mean, const double*
    ///     partial, int c, int parts, long count, float eps, float momentum)`
    func batchNormVariance(_ grid: LaunchGrid, invstd: DevicePointer?, runningMean: DevicePointer?,
        runningVar: DevicePointer?, mean: DevicePointer?, partial: DevicePointer?, c: Int32, parts: Int32, count: Int,
        eps: Float, momentum: Float) {
        launch("batch_norm_variance", grid, [.pointer(invstd), .pointer(runningMean), .pointer(runningVar),
            .pointer(mean), .pointer(partial), .int(c), .int(parts), .long(count), .float(eps), .float(momentum)])
    }

    /// `batch_norm_apply(float* y, const float* x, const float* residual, const float* mean, const float* invstd, const
    ///     float* weight, const float* bias, long total, int c, int spatial, int quantize_output, int levels, float
    ///     alpha, int rounding)`
    func batchNormApply(_ grid: LaunchGrid, y: DevicePointer?, x: DevicePointer?, residual: DevicePointer?,
        mean: DevicePointer?, invstd: DevicePointer?, weight: DevicePointer?, bias: DevicePointer?, total: Int,
        c: Int32, spatial: Int32, quantizeOutput: Int32, levels: Int32, alpha: Float, rounding: Int32) {
        launch("batch_norm_apply", grid, [.pointer(y), .pointer(x), .pointer(residual), .pointer(mean),
            .pointer(invstd), .pointer(weight), .pointer(bias), .long(total), .int(c), .int(spatial),
            .int(quantizeOutput), .int(levels), .float(alpha), .int(rounding)])
    }

    /// `batch_norm_eval_invstd(float* invstd, const float* running_var, int c, float eps)`
    func batchNormEvalInvstd(_ grid: LaunchGrid, invstd: DevicePointer?, runningVar: DevicePointer?, c: Int32,
        eps: Float) {
        launch("batch_norm_eval_invstd", grid, [.pointer(invstd), .pointer(runningVar), .int(c), .float(eps)])
    }

    /// `batch_norm_backward_partial_sums(double* partial, const float* dy, const float* x, const float* mean, const
    ///     float* invstd, const float* weight, const float* bias, int n, int c, int spatial, int parts, int ste, float
    ///     top)`
    func batchNormBackwardPartialSums(_ grid: LaunchGrid, partial: DevicePointer?, dy: DevicePointer?,
        x: DevicePointer?, mean: DevicePointer?, invstd: DevicePointer?, weight: DevicePointer?, bias: DevicePointer?,
        n: Int32, c: Int32, spatial: Int32, parts: Int32, ste: Int32, top: Float) {
        launch("batch_norm_backward_partial_sums", grid, [.pointer(partial), .pointer(dy), .pointer(x), .pointer(mean),
            .pointer(invstd), .pointer(weight), .pointer(bias), .int(n), .int(c), .int(spatial), .int(parts),
            .int(ste), .float(top)])
    }

    /// `batch_norm_backward_sums_finish(double* sums, float* weight_grad, float* bias_grad, const double* partial, int
    ///     c, int parts)`
    func batchNormBackwardSumsFinish(_ grid: LaunchGrid, sums: DevicePointer?, weightGrad: DevicePointer?,
        biasGrad: DevicePointer?, partial: DevicePointer?, c: Int32, parts: Int32) {
        launch("batch_norm_backward_sums_finish", grid, [.pointer(sums), .pointer(weightGrad), .pointer(biasGrad),
            .pointer(partial), .int(c), .int(parts)])
    }

    /// `batch_norm_backward_apply(float* dx, const double* sums, const float* dy, const float* x, const float* mean,
    ///     const float* invstd, const float* weight, const float* bias, long total, int n, int c, int spatial, int ste,
    ///     float top)`
    func batchNormBackwardApply(_ grid: LaunchGrid, dx: DevicePointer?, sums: DevicePointer?, dy: DevicePointer?,
        x: DevicePointer?, mean: DevicePointer?, invstd: DevicePointer?, weight: DevicePointer?, bias: DevicePointer?,
        total: Int, n: Int32, c: Int32, spatial: Int32, ste: Int32, top: Float) {
        launch("batch_norm_backward_apply", grid, [.pointer(dx), .pointer(sums), .pointer(dy), .pointer(x),
            .pointer(mean), .pointer(invstd), .pointer(weight), .pointer(bias), .long(total), .int(n), .int(c),
            .int(spatial), .int(ste), .float(top)])
    }

    /// `batch_norm_residual_gradient(float* dsum, const float* dy, const float* x, const float* residual, const float*
    ///     mean, const float* invstd, const float* weight, const float* bias, long total, int c, int spatial, int ste,
    ///     float top)`
    func batchNormResidualGradient(_ grid: LaunchGrid, dsum: DevicePointer?, dy: DevicePointer?, x: DevicePointer?,
        residual: DevicePointer?, mean: DevicePointer?, invstd: DevicePointer?, weight: DevicePointer?,
        bias: DevicePointer?, total: Int, c: Int32, spatial: Int32, ste: Int32, top: Float) {
        launch("batch_norm_residual_gradient", grid, [.pointer(dsum), .pointer(dy), .pointer(x), .pointer(residual),
            .pointer(mean), .pointer(invstd), .pointer(weight), .pointer(bias), .long(total), .int(c), .int(spatial),
            .int(ste), .float(top)])
    }

    /// `channel_bias_add(float* y, const float* bias, long total, int c, int spatial)`
    func channelBiasAdd(_ grid: LaunchGrid, y: DevicePointer?, bias: DevicePointer?, total: Int, c: Int32,
        spatial: Int32) {
        launch("channel_bias_add", grid, [.pointer(y), .pointer(bias), .long(total), .int(c), .int(spatial)])
    }

    /// `max_pool2_forward(float* y, unsigned char* argmax, const float* x, int n, int c, int h, int w)`
    func maxPool2Forward(_ grid: LaunchGrid, y: DevicePointer?, argmax: DevicePointer?, x: DevicePointer?, n: Int32,
        c: Int32, h: Int32, w: Int32) {
        launch("max_pool2_forward", grid, [.pointer(y), .pointer(argmax), .pointer(x), .int(n), .int(c), .int(h),
            .int(w)])
    }

    /// `max_pool2_backward(float* dx, const float* dy, const unsigned char* argmax, int n, int c, int h, int w)`
    func maxPool2Backward(_ grid: LaunchGrid, dx: DevicePointer?, dy: DevicePointer?, argmax: DevicePointer?, n: Int32,
        c: Int32, h: Int32, w: Int32) {
        launch("max_pool2_backward", grid, [.pointer(dx), .pointer(dy), .pointer(argmax), .int(n), .int(c), .int(h),
            .int(w)])
    }

    /// `global_average_pool_forward(float* y, const float* x, long planes, int spatial)`
    func globalAveragePoolForward(_ grid: LaunchGrid, y: DevicePointer?, x: DevicePointer?, planes: Int,
        spatial: Int32) {
        launch("global_average_pool_forward", grid, [.pointer(y), .pointer(x), .long(planes), .int(spatial)])
    }

    /// `global_average_pool_backward(float* dx, const float* dy, long planes, int spatial)`
    func globalAveragePoolBackward(_ grid: LaunchGrid, dx: DevicePointer?, dy: DevicePointer?, planes: Int,
        spatial: Int32) {
        launch("global_average_pool_backward", grid, [.pointer(dx), .pointer(dy), .long(planes), .int(spatial)])
    }

    /// `shortcut_option_a_forward(float* y, const float* x, int n, int c, int h, int w, int pad)`
    func shortcutOptionAForward(_ grid: LaunchGrid, y: DevicePointer?, x: DevicePointer?, n: Int32, c: Int32, h: Int32,
        w: Int32, pad: Int32) {
        launch("shortcut_option_a_forward", grid, [.pointer(y), .pointer(x), .int(n), .int(c), .int(h), .int(w),
            .int(pad)])
    }

    /// `shortcut_option_a_backward(float* dx, const float* dy, int n, int c, int h, int w, int pad)`
    func shortcutOptionABackward(_ grid: LaunchGrid, dx: DevicePointer?, dy: DevicePointer?, n: Int32, c: Int32,
        h: Int32, w: Int32, pad: Int32) {
        launch("shortcut_option_a_backward", grid, [.pointer(dx), .pointer(dy), .int(n), .int(c), .int(h), .int(w),
            .int(pad)])
    }

    /// `add(float* y, const float* a, const float* b, long n)`
    func add(_ grid: LaunchGrid, y: DevicePointer?, a: DevicePointer?, b: DevicePointer?, n: Int) {
        launch("add", grid, [.pointer(y), .pointer(a), .pointer(b), .long(n)])
    }

    /// `accumulate(float* y, const float* a, long n)`
    func accumulate(_ grid: LaunchGrid, y: DevicePointer?, a: DevicePointer?, n: Int) {
        launch("accumulate", grid, [.pointer(y), .pointer(a), .long(n)])
    }

    /// `gather_batch(float* x, int* labels, const unsigned char* images, const unsigned char* image_labels, const
    ///     float* lookup, const int* plan, int count, int c, int h, int w)`
    func gatherBatch(_ grid: LaunchGrid, x: DevicePointer?, labels: DevicePointer?, images: DevicePointer?,
        imageLabels: DevicePointer?, lookup: DevicePointer?, plan: DevicePointer?, count: Int32, c: Int32, h: Int32,
        w: Int32) {
        launch("gather_batch", grid, [.pointer(x), .pointer(labels), .pointer(images), .pointer(imageLabels),
            .pointer(lookup), .pointer(plan), .int(count), .int(c), .int(h), .int(w)])
    }

    /// `softmax_cross_entropy(double* row_loss, int* row_correct, float* dlogits, const float* logits, const int*
    ///     labels, int batch, int classes)`
    func softmaxCrossEntropy(_ grid: LaunchGrid, rowLoss: DevicePointer?, rowCorrect: DevicePointer?,
        dlogits: DevicePointer?, logits: DevicePointer?, labels: DevicePointer?, batch: Int32, classes: Int32) {
        launch("softmax_cross_entropy", grid, [.pointer(rowLoss), .pointer(rowCorrect), .pointer(dlogits),
            .pointer(logits), .pointer(labels), .int(batch), .int(classes)])
    }

    /// `sgd_update(float* w, const float* g, float* buffer, long n, float lr, float momentum, float weight_decay, int
    ///     first_step)`
    func sgdUpdate(_ grid: LaunchGrid, w: DevicePointer?, g: DevicePointer?, buffer: DevicePointer?, n: Int, lr: Float,
        momentum: Float, weightDecay: Float, firstStep: Int32) {
        launch("sgd_update", grid, [.pointer(w), .pointer(g), .pointer(buffer), .long(n), .float(lr), .float(momentum),
            .float(weightDecay), .int(firstStep)])
    }

    /// `adam_update(float* w, const float* g, float* m, float* v, long n, float step_size, float correction2_sqrt,
    ///     float one_minus_beta1, float one_minus_beta2, float beta2, float eps, float weight_decay)`
    func adamUpdate(_ grid: LaunchGrid, w: DevicePointer?, g: DevicePointer?, m: DevicePointer?, v: DevicePointer?,
        n: Int, stepSize: Float, correction2Sqrt: Float, oneMinusBeta1: Float, oneMinusBeta2: Float, beta2: Float,
        eps: Float, weightDecay: Float) {
        launch("adam_update", grid, [.pointer(w), .pointer(g), .pointer(m), .pointer(v), .long(n), .float(stepSize),
            .float(correction2Sqrt), .float(oneMinusBeta1), .float(oneMinusBeta2), .float(beta2), .float(eps),
            .float(weightDecay)])
    }
}
