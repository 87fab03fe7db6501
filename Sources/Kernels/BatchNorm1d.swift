// Batch normalisation of [n, c] tensors (BatchNorm1d, spatial = 1: LeNet-5's classifier), vectorised over
// channels. BatchNorm.swift's kernels walk one channel at a time, which for one element per plane is a
// scalar loop with a stride of c floats (0.1 ms for LeNet-5's [128, 120]); these walk the rows of the
// batch with 8 channels per vector. Every element sees the same Float operations as in BatchNorm.swift's
// kernels and the per-channel Double sums run over the images in the same order, so the results are
// bit-identical to them (tested in NumericsTests). Serial: the tensors are a few thousand elements.

/// Calls `body(ch, lanes)` for the 8-channel groups of a row of `c` channels (`lanes` = 8, or fewer for
/// the last group).
@inline(__always)
private func forEachChannelGroup(_ c: Int, _ body: (_ ch: Int, _ lanes: Int) -> Void) {
    var ch = 0
    while ch < c {
        body(ch, Swift.min(8, c - ch))
        ch += 8
    }
}

/// Lanes 0..<lanes of p (zeros past them).
@inline(__always)
private func loadLanes(_ p: UnsafePointer<Float>, _ lanes: Int) -> SIMD8<Float> {
    if lanes == 8 { return load8(p) }
    var v = SIMD8<Float>.zero
    for l in 0..<lanes { v[l] = p[l] }
    return v
}

@inline(__always)
private func storeLanes(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ lanes: Int) {
    if lanes == 8 { store8(v, p); return }
    for l in 0..<lanes { p[l] = v[l] }
}

/// batchNormForwardTraining for spatial = 1.
func batchNormForwardTrainingRows(
    _ y: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, invstd: UnsafeMutablePointer<Float>,
    _ x: UnsafePointer<Float>, runningMean: UnsafeMutablePointer<Float>, runningVar: UnsafeMutablePointer<Float>,
    weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, n: Int, c: Int, eps: Float, momentum: Float,
    quantizer: QuantizerSpec?
) {
    let m = Double(n)
    forEachChannelGroup(c) { ch, lanes in
        var sum = SIMD8<Double>.zero
        for i in 0..<n { sum += SIMD8<Double>(loadLanes(x + i * c + ch, lanes)) }
        var mu = SIMD8<Float>.zero
        for l in 0..<lanes { mu[l] = Float(sum[l] / m) }
        var sq = SIMD8<Double>.zero
        for i in 0..<n {
            let d = loadLanes(x + i * c + ch, lanes) - mu
            sq += SIMD8<Double>(d * d)
        }
        var scale = SIMD8<Float>.zero, shift = SIMD8<Float>.zero
        for l in 0..<lanes {
            let k = ch + l
            let variance = sq[l] / m
            let inv = Float(1 / (variance + Double(eps)).squareRoot())
            mean[k] = mu[l]
            invstd[k] = inv
            runningMean[k] = (1 - momentum) * runningMean[k] + momentum * mu[l]
            runningVar[k] = (1 - momentum) * runningVar[k] + momentum * Float(variance * m / (m - 1))
            scale[l] = inv * (weight?[k] ?? 1)
            shift[l] = (bias?[k] ?? 0) - mu[l] * scale[l]
        }
        applyAffineRows(y, x, n: n, c: c, ch, lanes, scale, shift, quantizer)
    }
}

/// y = x·scale + shift, or σ of that, on channels ch..<ch + lanes of every row.
@inline(__always)
private func applyAffineRows(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, n: Int, c: Int, _ ch: Int,
                             _ lanes: Int, _ scale: SIMD8<Float>, _ shift: SIMD8<Float>, _ quantizer: QuantizerSpec?) {
    guard let quantizer else {
        for i in 0..<n { storeLanes(loadLanes(x + i * c + ch, lanes) * scale + shift, y + i * c + ch, lanes) }
        return
    }
    quantizer.withQuantizer { quantize in
        for i in 0..<n { storeLanes(quantize(loadLanes(x + i * c + ch, lanes) * scale + shift), y + i * c + ch, lanes) }
    }
}

/// batchNormForwardInference for spatial = 1.
func batchNormForwardInferenceRows(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, runningMean: UnsafePointer<Float>,
    runningVar: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, n: Int, c: Int,
    eps: Float, quantizer: QuantizerSpec?
) {
    forEachChannelGroup(c) { ch, lanes in
        var scale = SIMD8<Float>.zero, shift = SIMD8<Float>.zero
        for l in 0..<lanes {
            let k = ch + l
            scale[l] = (weight?[k] ?? 1) / (runningVar[k] + eps).squareRoot()
            shift[l] = (bias?[k] ?? 0) - runningMean[k] * scale[l]
        }
        applyAffineRows(y, x, n: n, c: c, ch, lanes, scale, shift, quantizer)
    }
}

/// batchNormBackwardTraining for spatial = 1; `activation`: dy is masked by its STE (the fused forward's).
func batchNormBackwardTrainingRows(
    _ dx: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?, dbias: UnsafeMutablePointer<Float>?,
    _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, mean: UnsafePointer<Float>, invstd: UnsafePointer<Float>,
    weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, n: Int, c: Int, accumulate: Bool,
    activation: (spec: QuantizerSpec, ste: STE)?
) {
    if let activation {
        activation.ste.withDerivative(top: activation.spec.top) { derivative in
            backwardRows(dx, dweight, dbias, dy, x, mean, invstd, weight, bias, n, c, accumulate, true, derivative)
        }
    } else {
        backwardRows(dx, dweight, dbias, dy, x, mean, invstd, weight, bias, n, c, accumulate, false, { $0 })
    }
}

@inline(__always)
private func backwardRows(
    _ dx: UnsafeMutablePointer<Float>, _ dweight: UnsafeMutablePointer<Float>?, _ dbias: UnsafeMutablePointer<Float>?,
    _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ mean: UnsafePointer<Float>, _ invstd: UnsafePointer<Float>,
    _ weight: UnsafePointer<Float>?, _ bias: UnsafePointer<Float>?, _ n: Int, _ c: Int, _ accumulate: Bool,
    _ masked: Bool, _ derivative: (SIMD8<Float>) -> SIMD8<Float>
) {
    let m = Double(n)
    var ch = 0
    while ch < c {   // not forEachChannelGroup: a closure may not capture the non-escaping `derivative`
        let lanes = Swift.min(8, c - ch)
        let mu = loadLanes(mean + ch, lanes), inv = loadLanes(invstd + ch, lanes)
        // The forward's affine map, for the fused activation's STE mask (maskedGradient's arithmetic).
        var scale = SIMD8<Float>.zero, shift = SIMD8<Float>.zero
        for l in 0..<lanes {
            scale[l] = inv[l] * (weight?[ch + l] ?? 1)
            shift[l] = (bias?[ch + l] ?? 0) - mu[l] * scale[l]
        }
        @inline(__always) func gradient(_ i: Int) -> SIMD8<Float> {
            let g = loadLanes(dy + i * c + ch, lanes)
            return masked ? g * derivative(loadLanes(x + i * c + ch, lanes) * scale + shift) : g
        }
        var sumDy = SIMD8<Double>.zero, sumDyXc = SIMD8<Double>.zero   // Σ dy, Σ dy·(x − mean)
        for i in 0..<n {
            let g = gradient(i)
            sumDy += SIMD8<Double>(g)
            sumDyXc += SIMD8<Double>(g * (loadLanes(x + i * c + ch, lanes) - mu))
        }
        var gain = SIMD8<Float>.zero, k1 = SIMD8<Float>.zero, k2 = SIMD8<Float>.zero
        for l in 0..<lanes {
            let k = ch + l
            dweight?[k] += Float(sumDyXc[l] * Double(inv[l]))
            dbias?[k] += Float(sumDy[l])
            gain[l] = inv[l] * (weight?[k] ?? 1)
            k1[l] = Float(Double(gain[l]) * sumDy[l] / m)
            k2[l] = Float(Double(gain[l]) * Double(inv[l]) * Double(inv[l]) * sumDyXc[l] / m)
        }
        // dx = g·dy − g·mean(dy) − g·inv²·(x − mean)·mean(dy·(x − mean)), bnBackwardRow's arithmetic.
        for i in 0..<n {
            let xc = loadLanes(x + i * c + ch, lanes) - mu
            let old = accumulate ? loadLanes(dx + i * c + ch, lanes) : .zero
            storeLanes(old + (gradient(i) * gain - k1 - xc * k2), dx + i * c + ch, lanes)
        }
        ch += 8
    }
}
