// Batch normalisation kernels with PyTorch semantics (BatchNorm1d/2d): training normalises with the
// batch mean and the biased variance and updates running_var with the unbiased one; eval uses the
// running statistics. One layout for both: element (i, ch, s) at (i·c + ch)·spatial + s, so
// BatchNorm1d is spatial = 1 and BatchNorm2d is spatial = h·w. Per-channel sums run in a fixed
// order (Float SIMD partials per plane, Double across planes in image order); work is split over images.
// Channel-blocked tensors (`shape.layout`) go to the kernels of BatchNormBlocked.swift, [n, c] tensors
// (spatial = 1) to the bit-identical channel-vectorised ones of BatchNorm1d.swift.

/// Send spatial = 1 to BatchNorm1d.swift (false: the per-channel loops below; tests compare the two).
nonisolated(unsafe) var batchNormRowKernels = true

public struct BatchNormShape: Equatable, Sendable {
    public var n: Int, c: Int, spatial: Int
    /// NCHW, or the channel-blocked layout of a ResNet-20 activation.
    public var layout: ActivationLayout
    public init(n: Int, c: Int, spatial: Int, layout: ActivationLayout = .nchw) {
        (self.n, self.c, self.spatial, self.layout) = (n, c, spatial, layout)
    }
    public var count: Int { n * c * spatial }
    /// Elements averaged per channel.
    public var reduced: Int { n * spatial }
}

@inline(__always)
func planeSum(_ p: UnsafePointer<Float>, _ count: Int) -> Float {
    var acc = SIMD8<Float>(repeating: 0), acc2 = SIMD8<Float>(repeating: 0)
    let raw = UnsafeRawPointer(p)
    var i = 0
    while i + 16 <= count {
        acc += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        acc2 += raw.loadUnaligned(fromByteOffset: i * 4 + 32, as: SIMD8<Float>.self)
        i += 16
    }
    var s = (acc + acc2).sum()
    while i < count { s += p[i]; i += 1 }
    return s
}

@inline(__always)
func planeSquaredDeviation(_ p: UnsafePointer<Float>, _ count: Int, _ mean: Float) -> Float {
    var acc = SIMD8<Float>(repeating: 0)
    let raw = UnsafeRawPointer(p), m = SIMD8<Float>(repeating: mean)
    var i = 0
    while i + 8 <= count {
        let d = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - m
        acc += d * d
        i += 8
    }
    var s = acc.sum()
    while i < count { let d = p[i] - mean; s += d * d; i += 1 }
    return s
}

/// Training forward: y = (x − mean)·invstd (·weight + bias when affine); writes the batch `mean` and
/// `invstd` = 1/√(var_biased + eps) per channel for the backward; updates the running statistics.
/// With `quantizer`, y = σ(that) in the same pass (the BN + quantized-ReLU pair, bit-identical to
/// running the two kernels in turn, without writing and re-reading the normalised tensor).
public func batchNormForwardTraining(
    _ y: UnsafeMutableBufferPointer<Float>, mean: UnsafeMutableBufferPointer<Float>,
    invstd: UnsafeMutableBufferPointer<Float>, _ x: UnsafeBufferPointer<Float>,
    runningMean: UnsafeMutableBufferPointer<Float>, runningVar: UnsafeMutableBufferPointer<Float>,
    weight: UnsafeBufferPointer<Float>?, bias: UnsafeBufferPointer<Float>?,
    shape: BatchNormShape, eps: Float, momentum: Float, quantizer: QuantizerSpec? = nil,
    residual: UnsafeBufferPointer<Float>? = nil
) {
    precondition(y.count == shape.count && x.count == shape.count && mean.count == shape.c && invstd.count == shape.c)
    precondition(runningMean.count == shape.c && runningVar.count == shape.c && shape.reduced > 1)
    precondition(residual == nil || (quantizer != nil && residual!.count == shape.count), "residual needs the quantizer")
    if shape.layout != .nchw {
        return batchNormForwardTrainingBlocked(
            y.baseAddress!, mean: mean.baseAddress!, invstd: invstd.baseAddress!, x.baseAddress!,
            runningMean: runningMean.baseAddress!, runningVar: runningVar.baseAddress!, weight: weight?.baseAddress,
            bias: bias?.baseAddress, shape: shape, eps: eps, momentum: momentum, quantizer: quantizer,
            residual: residual?.baseAddress)
    }
    if shape.spatial == 1 && batchNormRowKernels && residual == nil {
        return batchNormForwardTrainingRows(
            y.baseAddress!, mean: mean.baseAddress!, invstd: invstd.baseAddress!, x.baseAddress!,
            runningMean: runningMean.baseAddress!, runningVar: runningVar.baseAddress!, weight: weight?.baseAddress,
            bias: bias?.baseAddress, n: shape.n, c: shape.c, eps: eps, momentum: momentum, quantizer: quantizer)
    }
    let (n, c, s) = (shape.n, shape.c, shape.spatial)
    nonisolated(unsafe) let (yp, xp, mp, ip) = (y.baseAddress!, x.baseAddress!, mean.baseAddress!, invstd.baseAddress!)
    nonisolated(unsafe) let (rm, rv) = (runningMean.baseAddress!, runningVar.baseAddress!)
    nonisolated(unsafe) let (wp, bp) = (weight?.baseAddress, bias?.baseAddress)
    nonisolated(unsafe) let rp = residual?.baseAddress
    let m = Double(shape.reduced)
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * n * c + 2 * c) { scratch in
        // Per-plane partial sums (planes split over images), then each channel's Double sum over the
        // planes in image order: the same arithmetic whatever the split.
        nonisolated(unsafe) let planes = scratch.baseAddress!, scales = planes + n * c, shifts = scales + c
        forEachImageChunk(shape) { images in
            for i in images { for ch in 0..<c { planes[i * c + ch] = planeSum(xp + (i * c + ch) * s, s) } }
        }
        for ch in 0..<c {
            var sum = 0.0
            for i in 0..<n { sum += Double(planes[i * c + ch]) }
            mp[ch] = Float(sum / m)
        }
        forEachImageChunk(shape) { images in
            for i in images {
                for ch in 0..<c { planes[i * c + ch] = planeSquaredDeviation(xp + (i * c + ch) * s, s, mp[ch]) }
            }
        }
        for ch in 0..<c {
            let mu = mp[ch]
            var sq = 0.0
            for i in 0..<n { sq += Double(planes[i * c + ch]) }
            let variance = sq / m
            let inv = Float(1 / (variance + Double(eps)).squareRoot())
            ip[ch] = inv
            rm[ch] = (1 - momentum) * rm[ch] + momentum * mu
            rv[ch] = (1 - momentum) * rv[ch] + momentum * Float(variance * m / (m - 1))
            scales[ch] = inv * (wp?[ch] ?? 1)
            shifts[ch] = (bp?[ch] ?? 0) - mu * scales[ch]
        }
        forEachImageChunk(shape) { images in
            if let quantizer {
                quantizer.withQuantizer { quantize in
                    for i in images {
                        for ch in 0..<c {
                            let o = (i * c + ch) * s
                            affineQuantizeRow(yp + o, xp + o, s, scales[ch], shifts[ch], rp.map { $0 + o }, quantize)
                        }
                    }
                }
            } else {
                for i in images { for ch in 0..<c { affineRow(yp + (i * c + ch) * s, xp + (i * c + ch) * s, s, scales[ch], shifts[ch]) } }
            }
        }
    }
}

/// Splits a pass over the images of a batch-norm input among the workers (at least 16k elements each):
/// every kernel of an NCHW batch norm splits the batch the way the convolutions and pooling around it do,
/// so each worker reads and writes the images it already holds in its cache (two cores that share no
/// cache pay for every line that changes hands).
@inline(__always)
func forEachImageChunk(_ shape: BatchNormShape, _ body: (Range<Int>) -> Void) {
    Parallel.forEachChunk(shape.n, minimumPerWorker: Swift.max(1, 16_384 / Swift.max(1, shape.c * shape.spatial)), body)
}

/// y = σ(x·scale + shift (+ r)) on one row; the affine map's arithmetic is affineRow's and the residual
/// add addForward's, lane for lane.
@inline(__always)
func affineQuantizeRow(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int, _ scale: Float,
                       _ shift: Float, _ residual: UnsafePointer<Float>?, _ quantize: (SIMD8<Float>) -> SIMD8<Float>) {
    let a = SIMD8<Float>(repeating: scale), b = SIMD8<Float>(repeating: shift)
    let xr = UnsafeRawPointer(x), yr = UnsafeMutableRawPointer(y)
    var i = 0
    if let residual {
        let rr = UnsafeRawPointer(residual)
        while i + 8 <= count {
            let v = xr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let r = rr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            yr.storeBytes(of: quantize((v * a + b) + r), toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
    } else {
        while i + 8 <= count {
            let v = xr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            yr.storeBytes(of: quantize(v * a + b), toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
    }
    if i < count {
        var v = SIMD8<Float>(repeating: 0)
        for j in 0..<(count - i) {
            let normalized = x[i + j] * scale + shift
            v[j] = residual.map { normalized + $0[i + j] } ?? normalized
        }
        let q = quantize(v)
        for j in 0..<(count - i) { y[i + j] = q[j] }
    }
}

/// The gradient at the input of the quantizer that followed a fused BN + residual-add forward:
/// d = 0 + dy·STE'(x·scale + shift + r), the pre-activation recomputed as the forward computed it —
/// bit-identical to quantizedReLUBackward on the materialised sum. `x` is BN's input, `r` the residual.
public func batchNormResidualActivationGradient(
    _ d: UnsafeMutableBufferPointer<Float>, _ dy: UnsafeBufferPointer<Float>, _ x: UnsafeBufferPointer<Float>,
    residual: UnsafeBufferPointer<Float>, mean: UnsafeBufferPointer<Float>, invstd: UnsafeBufferPointer<Float>,
    weight: UnsafeBufferPointer<Float>?, bias: UnsafeBufferPointer<Float>?, shape: BatchNormShape,
    spec: QuantizerSpec, ste: STE
) {
    precondition(d.count == shape.count && dy.count == shape.count && x.count == shape.count
                 && residual.count == shape.count && mean.count == shape.c)
    if shape.layout != .nchw {
        return batchNormResidualActivationGradientBlocked(
            d.baseAddress!, dy.baseAddress!, x.baseAddress!, residual: residual.baseAddress!, mean: mean.baseAddress!,
            invstd: invstd.baseAddress!, weight: weight?.baseAddress, bias: bias?.baseAddress, shape: shape, spec: spec,
            ste: ste)
    }
    let (c, s) = (shape.c, shape.spatial)
    nonisolated(unsafe) let (dp, dyp, xp, rp) = (d.baseAddress!, dy.baseAddress!, x.baseAddress!, residual.baseAddress!)
    nonisolated(unsafe) let (mp, ip, wp, bp) = (mean.baseAddress!, invstd.baseAddress!, weight?.baseAddress, bias?.baseAddress)
    forEachImageChunk(shape) { images in
        ste.withDerivative(top: spec.top) { derivative in   // inside each worker: see batchNormBackwardTrainingPlanes
            for i in images {
                for ch in 0..<c {
                    let scale = ip[ch] * (wp?[ch] ?? 1), shift = (bp?[ch] ?? 0) - mp[ch] * scale
                    let a = SIMD8<Float>(repeating: scale), b = SIMD8<Float>(repeating: shift)
                    let o = (i * c + ch) * s
                    let xr = UnsafeRawPointer(xp + o), rr = UnsafeRawPointer(rp + o), gr = UnsafeRawPointer(dyp + o)
                    let dr = UnsafeMutableRawPointer(dp + o)
                    var k = 0
                    while k + 8 <= s {
                        let v = xr.loadUnaligned(fromByteOffset: k * 4, as: SIMD8<Float>.self)
                        let r = rr.loadUnaligned(fromByteOffset: k * 4, as: SIMD8<Float>.self)
                        let g = gr.loadUnaligned(fromByteOffset: k * 4, as: SIMD8<Float>.self)
                        dr.storeBytes(of: SIMD8<Float>.zero + g * derivative((v * a + b) + r), toByteOffset: k * 4,
                                      as: SIMD8<Float>.self)
                        k += 8
                    }
                    if k < s {
                        var v = SIMD8<Float>(), g = SIMD8<Float>()
                        for j in 0..<(s - k) { v[j] = xp[o + k + j] * scale + shift + rp[o + k + j]; g[j] = dyp[o + k + j] }
                        let q = SIMD8<Float>.zero + g * derivative(v)
                        for j in 0..<(s - k) { dp[o + k + j] = q[j] }
                    }
                }
            }
        }
    }
}

@inline(__always)
func affineRow(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int, _ scale: Float, _ shift: Float) {
    let a = SIMD8<Float>(repeating: scale), b = SIMD8<Float>(repeating: shift)
    let xr = UnsafeRawPointer(x), yr = UnsafeMutableRawPointer(y)
    var i = 0
    while i + 8 <= count {
        let v = xr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        yr.storeBytes(of: v * a + b, toByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    while i < count { y[i] = x[i] * scale + shift; i += 1 }
}

/// Eval forward: y = (x − running_mean)/√(running_var + eps) (·weight + bias when affine); with
/// `quantizer`, σ of that.
public func batchNormForwardInference(
    _ y: UnsafeMutableBufferPointer<Float>, _ x: UnsafeBufferPointer<Float>,
    runningMean: UnsafeBufferPointer<Float>, runningVar: UnsafeBufferPointer<Float>,
    weight: UnsafeBufferPointer<Float>?, bias: UnsafeBufferPointer<Float>?, shape: BatchNormShape, eps: Float,
    quantizer: QuantizerSpec? = nil, residual: UnsafeBufferPointer<Float>? = nil
) {
    precondition(y.count == shape.count && x.count == shape.count && runningMean.count == shape.c)
    precondition(residual == nil || (quantizer != nil && residual!.count == shape.count), "residual needs the quantizer")
    if shape.layout != .nchw {
        return batchNormForwardInferenceBlocked(
            y.baseAddress!, x.baseAddress!, runningMean: runningMean.baseAddress!, runningVar: runningVar.baseAddress!,
            weight: weight?.baseAddress, bias: bias?.baseAddress, shape: shape, eps: eps, quantizer: quantizer,
            residual: residual?.baseAddress)
    }
    if shape.spatial == 1 && batchNormRowKernels && residual == nil {
        return batchNormForwardInferenceRows(
            y.baseAddress!, x.baseAddress!, runningMean: runningMean.baseAddress!, runningVar: runningVar.baseAddress!,
            weight: weight?.baseAddress, bias: bias?.baseAddress, n: shape.n, c: shape.c, eps: eps, quantizer: quantizer)
    }
    let (c, s) = (shape.c, shape.spatial)
    nonisolated(unsafe) let (yp, xp, rm, rv) = (y.baseAddress!, x.baseAddress!, runningMean.baseAddress!, runningVar.baseAddress!)
    nonisolated(unsafe) let rp = residual?.baseAddress
    nonisolated(unsafe) let (wp, bp) = (weight?.baseAddress, bias?.baseAddress)
    forEachImageChunk(shape) { images in
        for i in images {
            for ch in 0..<c {
                let scale = (wp?[ch] ?? 1) / (rv[ch] + eps).squareRoot()
                let shift = (bp?[ch] ?? 0) - rm[ch] * scale
                if let quantizer {
                    let o = (i * c + ch) * s
                    quantizer.withQuantizer { affineQuantizeRow(yp + o, xp + o, s, scale, shift, rp.map { $0 + o }, $0) }
                } else {
                    affineRow(yp + (i * c + ch) * s, xp + (i * c + ch) * s, s, scale, shift)
                }
            }
        }
    }
}

/// Training backward (batch statistics): dx += w·invstd·(dy − mean(dy) − x̂·mean(dy·x̂)) with
/// x̂ = (x − mean)·invstd; when affine, dweight += Σ dy·x̂ and dbias += Σ dy. `accumulate: false`
/// writes dx instead of adding to it (dx is then not read).
/// With `activation` (the forward's fused quantizer, `bias` the forward's), `dy` is the gradient at
/// the quantizer's output and every read of it becomes dy·STE'(y) with y = x·scale + shift recomputed
/// as the forward computed it: bit-identical to quantizedReLUBackward followed by this kernel.
public func batchNormBackwardTraining(
    _ dx: UnsafeMutableBufferPointer<Float>, dweight: UnsafeMutableBufferPointer<Float>?,
    dbias: UnsafeMutableBufferPointer<Float>?, _ dy: UnsafeBufferPointer<Float>, _ x: UnsafeBufferPointer<Float>,
    mean: UnsafeBufferPointer<Float>, invstd: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>?,
    shape: BatchNormShape, accumulate: Bool = true,
    activation: (spec: QuantizerSpec, ste: STE)? = nil, bias: UnsafeBufferPointer<Float>? = nil
) {
    if shape.layout != .nchw {
        precondition(dx.count == shape.count && dy.count == shape.count && x.count == shape.count && mean.count == shape.c)
        return batchNormBackwardTrainingBlocked(
            dx.baseAddress!, dweight: dweight?.baseAddress, dbias: dbias?.baseAddress, dy.baseAddress!, x.baseAddress!,
            mean: mean.baseAddress!, invstd: invstd.baseAddress!, weight: weight?.baseAddress, bias: bias?.baseAddress,
            shape: shape, accumulate: accumulate, activation: activation)
    }
    if shape.spatial == 1 && batchNormRowKernels {
        precondition(dx.count == shape.count && dy.count == shape.count && x.count == shape.count && mean.count == shape.c)
        return batchNormBackwardTrainingRows(
            dx.baseAddress!, dweight: dweight?.baseAddress, dbias: dbias?.baseAddress, dy.baseAddress!, x.baseAddress!,
            mean: mean.baseAddress!, invstd: invstd.baseAddress!, weight: weight?.baseAddress, bias: bias?.baseAddress,
            n: shape.n, c: shape.c, accumulate: accumulate, activation: activation)
    }
    batchNormBackwardTrainingPlanes(dx, dweight: dweight, dbias: dbias, dy, x, mean: mean, invstd: invstd,
                                    weight: weight, bias: bias, shape: shape, accumulate: accumulate,
                                    activation: activation)
}

private func batchNormBackwardTrainingPlanes(
    _ dx: UnsafeMutableBufferPointer<Float>, dweight: UnsafeMutableBufferPointer<Float>?,
    dbias: UnsafeMutableBufferPointer<Float>?, _ dy: UnsafeBufferPointer<Float>, _ x: UnsafeBufferPointer<Float>,
    mean: UnsafeBufferPointer<Float>, invstd: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>?,
    bias: UnsafeBufferPointer<Float>?, shape: BatchNormShape, accumulate: Bool,
    activation: (spec: QuantizerSpec, ste: STE)?
) {
    precondition(dx.count == shape.count && dy.count == shape.count && x.count == shape.count && mean.count == shape.c)
    let (n, c, s) = (shape.n, shape.c, shape.spatial)
    nonisolated(unsafe) let (dxp, dyp, xp, mp, ip) = (dx.baseAddress!, dy.baseAddress!, x.baseAddress!, mean.baseAddress!, invstd.baseAddress!)
    nonisolated(unsafe) let (wp, dwp, dbp) = (weight?.baseAddress, dweight?.baseAddress, dbias?.baseAddress)
    nonisolated(unsafe) let bp = bias?.baseAddress
    let m = Double(shape.reduced)
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * n * c + 5 * c) { scratch in
        // The forward's affine map per channel (for the fused activation's STE mask), per-plane partial
        // sums over images, then each channel's Double sums in image order (the same arithmetic whatever
        // the split), then dx over images.
        nonisolated(unsafe) let planes = scratch.baseAddress!, scales = planes + 2 * n * c, shifts = scales + c
        nonisolated(unsafe) let gains = shifts + c, k1s = gains + c, k2s = k1s + c
        for ch in 0..<c {
            scales[ch] = ip[ch] * (wp?[ch] ?? 1)
            shifts[ch] = (bp?[ch] ?? 0) - mp[ch] * scales[ch]
        }
        forEachImageChunk(shape) { images in
            @inline(__always) func pass(_ masked: Bool, _ derivative: (SIMD8<Float>) -> SIMD8<Float>) {
                for i in images {
                    for ch in 0..<c {
                        let o = (i * c + ch) * s
                        let (a, b) = masked ? maskedDotSums(dyp + o, xp + o, s, mp[ch], scales[ch], shifts[ch], derivative)
                            : dotSums(dyp + o, xp + o, s, mp[ch])
                        planes[2 * (i * c + ch)] = a
                        planes[2 * (i * c + ch) + 1] = b
                    }
                }
            }
            // The rule is switched on inside each worker's closure, so each worker runs a loop specialised for
            // it (switched outside, it reached the workers as a closure value: an indirect call per vector).
            if let activation { activation.ste.withDerivative(top: activation.spec.top) { pass(true, $0) } }
            else { pass(false, { $0 }) }
        }
        for ch in 0..<c {
            let inv = ip[ch]
            var sumDy = 0.0, sumDyXc = 0.0   // Σ dy, Σ dy·(x − mean)
            for i in 0..<n {
                sumDy += Double(planes[2 * (i * c + ch)])
                sumDyXc += Double(planes[2 * (i * c + ch) + 1])
            }
            let sumDyXhat = sumDyXc * Double(inv)
            dwp?[ch] += Float(sumDyXhat)
            dbp?[ch] += Float(sumDy)
            let g = inv * (wp?[ch] ?? 1)
            // dx = g·dy − g·mean(dy) − g·inv²·(x − mean)·mean(dy·(x − mean))
            gains[ch] = g
            k1s[ch] = Float(Double(g) * sumDy / m)
            k2s[ch] = Float(Double(g) * Double(inv) * Double(inv) * sumDyXc / m)
        }
        forEachImageChunk(shape) { images in
            @inline(__always) func pass(_ masked: Bool, _ derivative: (SIMD8<Float>) -> SIMD8<Float>) {
                for i in images {
                    for ch in 0..<c {
                        let o = (i * c + ch) * s
                        if masked {
                            maskedBackwardRow(dxp + o, dyp + o, xp + o, s, gains[ch], k1s[ch], k2s[ch], mp[ch],
                                              accumulate, scales[ch], shifts[ch], derivative)
                        } else {
                            bnBackwardRow(dxp + o, dyp + o, xp + o, s, gains[ch], k1s[ch], k2s[ch], mp[ch], accumulate)
                        }
                    }
                }
            }
            // The rule is switched on inside each worker's closure, so each worker runs a loop specialised for
            // it (switched outside, it reached the workers as a closure value: an indirect call per vector).
            if let activation { activation.ste.withDerivative(top: activation.spec.top) { pass(true, $0) } }
            else { pass(false, { $0 }) }
        }
    }
}

/// dy·STE'(x·scale + shift) for lanes i..<i+8 of a row (lanes at or past `count` are 0).
@inline(__always)
func maskedGradient(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ i: Int, _ count: Int, _ a: SIMD8<Float>,
                    _ b: SIMD8<Float>, _ scale: Float, _ shift: Float,
                    _ derivative: (SIMD8<Float>) -> SIMD8<Float>) -> SIMD8<Float> {
    if i + 8 <= count {
        let v = UnsafeRawPointer(x).loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        let g = UnsafeRawPointer(dy).loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        return g * derivative(v * a + b)
    }
    var v = SIMD8<Float>.zero, g = SIMD8<Float>.zero
    for j in 0..<(count - i) { v[j] = x[i + j] * scale + shift; g[j] = dy[i + j] }
    return g * derivative(v)
}

/// dotSums with dy masked by the fused activation's STE.
@inline(__always)
func maskedDotSums(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int, _ mean: Float,
                   _ scale: Float, _ shift: Float, _ derivative: (SIMD8<Float>) -> SIMD8<Float>) -> (Float, Float) {
    var a = SIMD8<Float>(repeating: 0), b = SIMD8<Float>(repeating: 0)
    let xr = UnsafeRawPointer(x), m = SIMD8<Float>(repeating: mean)
    let sa8 = SIMD8<Float>(repeating: scale), sb8 = SIMD8<Float>(repeating: shift)
    var i = 0
    while i + 8 <= count {
        let g = maskedGradient(dy, x, i, count, sa8, sb8, scale, shift, derivative)
        let v = xr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - m
        a += g
        b += g * v
        i += 8
    }
    var sa = a.sum(), sb = b.sum()
    if i < count {
        let g = maskedGradient(dy, x, i, count, sa8, sb8, scale, shift, derivative)
        for j in 0..<(count - i) { sa += g[j]; sb += g[j] * (x[i + j] - mean) }
    }
    return (sa, sb)
}

/// bnBackwardRow with dy masked by the fused activation's STE.
@inline(__always)
func maskedBackwardRow(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                       _ count: Int, _ g: Float, _ k1: Float, _ k2: Float, _ mean: Float, _ accumulate: Bool,
                       _ scale: Float, _ shift: Float, _ derivative: (SIMD8<Float>) -> SIMD8<Float>) {
    let dxr = UnsafeMutableRawPointer(dx), xr = UnsafeRawPointer(x)
    let vg = SIMD8<Float>(repeating: g), v1 = SIMD8<Float>(repeating: k1), v2 = SIMD8<Float>(repeating: k2)
    let m = SIMD8<Float>(repeating: mean)
    let sa8 = SIMD8<Float>(repeating: scale), sb8 = SIMD8<Float>(repeating: shift)
    var i = 0
    while i + 8 <= count {
        let gy = maskedGradient(dy, x, i, count, sa8, sb8, scale, shift, derivative)
        let xc = xr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - m
        let old = accumulate ? dxr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) : .zero
        dxr.storeBytes(of: old + (gy * vg - v1 - xc * v2), toByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    if i < count {
        let gy = maskedGradient(dy, x, i, count, sa8, sb8, scale, shift, derivative)
        for j in 0..<(count - i) {
            dx[i + j] = (accumulate ? dx[i + j] : 0) + (g * gy[j] - k1 - (x[i + j] - mean) * k2)
        }
    }
}

@inline(__always)
func dotSums(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int, _ mean: Float) -> (Float, Float) {
    var a = SIMD8<Float>(repeating: 0), b = SIMD8<Float>(repeating: 0)
    let dr = UnsafeRawPointer(dy), xr = UnsafeRawPointer(x), m = SIMD8<Float>(repeating: mean)
    var i = 0
    while i + 8 <= count {
        let g = dr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        let v = xr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - m
        a += g
        b += g * v
        i += 8
    }
    var sa = a.sum(), sb = b.sum()
    while i < count { sa += dy[i]; sb += dy[i] * (x[i] - mean); i += 1 }
    return (sa, sb)
}

@inline(__always)
func bnBackwardRow(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                   _ count: Int, _ g: Float, _ k1: Float, _ k2: Float, _ mean: Float, _ accumulate: Bool) {
    let dxr = UnsafeMutableRawPointer(dx), dr = UnsafeRawPointer(dy), xr = UnsafeRawPointer(x)
    let vg = SIMD8<Float>(repeating: g), v1 = SIMD8<Float>(repeating: k1), v2 = SIMD8<Float>(repeating: k2)
    let m = SIMD8<Float>(repeating: mean)
    var i = 0
    while i + 8 <= count {
        let gy = dr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        let xc = xr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - m
        let old = accumulate ? dxr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) : .zero
        dxr.storeBytes(of: old + (gy * vg - v1 - xc * v2), toByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    while i < count { dx[i] = (accumulate ? dx[i] : 0) + (g * dy[i] - k1 - (x[i] - mean) * k2); i += 1 }
}

/// Backward of the eval-mode normalisation (running statistics are constants): dx += dy·w/√(rv + eps)
/// (`accumulate: false`: dx = …).
public func batchNormBackwardInference(
    _ dx: UnsafeMutableBufferPointer<Float>, _ dy: UnsafeBufferPointer<Float>,
    runningVar: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>?, shape: BatchNormShape, eps: Float,
    accumulate: Bool = true
) {
    precondition(dx.count == shape.count && dy.count == shape.count)
    if shape.layout != .nchw {
        return batchNormBackwardInferenceBlocked(dx.baseAddress!, dy.baseAddress!, runningVar: runningVar.baseAddress!,
                                                 weight: weight?.baseAddress, shape: shape, eps: eps,
                                                 accumulate: accumulate)
    }
    let (n, c, s) = (shape.n, shape.c, shape.spatial)
    for i in 0..<n {
        for ch in 0..<c {
            let g = (weight?[ch] ?? 1) / (runningVar[ch] + eps).squareRoot()
            let o = (i * c + ch) * s
            for k in 0..<s { dx[o + k] = (accumulate ? dx[o + k] : 0) + g * dy[o + k] }
        }
    }
}
