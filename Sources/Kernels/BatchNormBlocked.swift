// Batch normalisation on channel-blocked activations (nChw8c / nChw16c, `ActivationLayout`): the kernels
// of BatchNorm.swift for the layout oneDNN's convolutions compute in, so ResNet-20 hands activations
// from layer to layer without reordering them. Same formulas, same fused variants (quantizer, residual
// add, STE mask), same per-element arithmetic lane for lane; only the order of the per-channel sums
// differs from the NCHW kernels (rounding-level differences, tested in BatchNormBlockedTests).
// A row (image i, channel block) is `spatial` pixels × `block` channels. Its 8-float vectors alternate
// between the block's two 8-channel groups when block = 16 and all belong to one group when block = 8,
// so every loop takes vectors in pairs, with one set of per-channel constants per member of the pair.
// Sums: Float SIMD partials over runs of 64 vector pairs, Double across runs and images, in a fixed
// order that does not depend on the worker count. Closures that run per vector (quantizer, STE rule,
// the terms of a sum) are resolved inside each worker's closure so that they inline.

/// The geometry of a channel-blocked [n, c, spatial] tensor.
struct BlockedRows {
    let n: Int, c: Int, spatial: Int, block: Int

    init(_ shape: BatchNormShape) {
        // fatalError, not precondition: -Ounchecked (this module's flag) drops preconditions.
        guard let b = shape.layout.block, channelBlockingSupported(channels: shape.c, spatial: shape.spatial, block: b)
        else { fatalError("channel-blocked batch norm: \(shape.c) channels, \(shape.spatial) pixels, \(shape.layout)") }
        (n, c, spatial, block) = (shape.n, shape.c, shape.spatial, b)
    }

    var blocks: Int { c / block }
    var rows: Int { n * blocks }
    /// 8-float vectors per row (even: spatial is a multiple of 8).
    var vectors: Int { spatial * block / 8 }
    /// First channel of the 8-channel group of each member of a vector pair in channel block `cb`.
    func groups(_ cb: Int) -> (Int, Int) { block == 16 ? (cb * 16, cb * 16 + 8) : (cb * 8, cb * 8) }
    /// Rows per work item so a worker gets at least ~16k elements.
    var minimumRowsPerWorker: Int { Swift.max(1, 16_384 / (spatial * block)) }
}

/// Per-channel sums of two terms over all images: `image(i, out)` adds image i's sums into `out`
/// (`imageSums`, [8-channel group][term]). Images go to the workers in fixed chunks of 8, summed in order
/// within a chunk, the chunks then in order: the result does not depend on the worker count. `image`
/// is called once per image (an indirect call); the per-vector work inside it is inlined.
@inline(__always)
private func channelSums(_ r: BlockedRows, _ sums: UnsafeMutablePointer<Double>, _ sums2: UnsafeMutablePointer<Double>,
                         _ image: (_ i: Int, _ out: UnsafeMutablePointer<SIMD8<Double>>) -> Void) {
    let groups = r.c / 8, chunk = 8, chunks = (r.n + 7) / 8
    withUnsafeTemporaryAllocation(of: SIMD8<Double>.self, capacity: 2 * groups * chunks) { partial in
        nonisolated(unsafe) let p = partial.baseAddress!   // [chunk][group][term]
        p.initialize(repeating: .zero, count: 2 * groups * chunks)
        Parallel.forEachChunk(chunks, minimumPerWorker: Swift.max(1, r.minimumRowsPerWorker / (r.blocks * chunk))) { range in
            for k in range {
                for i in (k * chunk)..<Swift.min(r.n, (k + 1) * chunk) { image(i, p + k * groups * 2) }
            }
        }
        for g in 0..<groups {
            var a = SIMD8<Double>.zero, b = SIMD8<Double>.zero
            for k in 0..<chunks { a += p[(k * groups + g) * 2]; b += p[(k * groups + g) * 2 + 1] }
            for l in 0..<8 { sums[g * 8 + l] = a[l]; sums2[g * 8 + l] = b[l] }
        }
    }
}

/// What `imageSums` adds up per channel: (Σ x, 0), (Σ (x − mean)², 0), or (Σ g, Σ g·(x − mean)) with g
/// the gradient arriving at BN's output (`incomingGradient`).
private enum ChannelSum { case values, squaredDeviations, gradients }

/// Adds image i's per-channel sums into `out` ([8-channel group][term]). Float SIMD partials over runs
/// of 64 vector pairs, Double across runs (the plain kernels' planeSum / dotSums arithmetic per term).
@inline(__always)
private func imageSums(_ r: BlockedRows, _ i: Int, _ out: UnsafeMutablePointer<SIMD8<Double>>, _ kind: ChannelSum,
                       x: UnsafePointer<Float>, mean: UnsafePointer<Float>, dy: UnsafePointer<Float>? = nil,
                       scale: UnsafePointer<Float>? = nil, shift: UnsafePointer<Float>? = nil, masked: Bool = false,
                       derivative: (SIMD8<Float>) -> SIMD8<Float> = { $0 }) {
    /// The two terms of the vector at float offset `o`, channels ch..<ch + 8.
    @inline(__always) func term(_ o: Int, _ ch: Int) -> (SIMD8<Float>, SIMD8<Float>) {
        switch kind {
        case .values: return (load8(x + o), .zero)
        case .squaredDeviations:
            let d = load8(x + o) - load8(mean + ch)
            return (d * d, .zero)
        case .gradients:
            let g = incomingGradient(o, ch, dy!, x, scale!, shift!, masked, derivative)
            return (g, g * (load8(x + o) - load8(mean + ch)))
        }
    }
    for cb in 0..<r.blocks {
        let base = (i * r.blocks + cb) * r.spatial * r.block
        let (c0, c1) = r.groups(cb)
        var d0 = SIMD8<Double>.zero, e0 = SIMD8<Double>.zero, d1 = SIMD8<Double>.zero, e1 = SIMD8<Double>.zero
        var j = 0
        while j < r.vectors {
            let end = Swift.min(r.vectors, j + 128)
            var f0 = SIMD8<Float>.zero, g0 = SIMD8<Float>.zero, f1 = SIMD8<Float>.zero, g1 = SIMD8<Float>.zero
            while j < end {
                let (a0, b0) = term(base + j * 8, c0)
                let (a1, b1) = term(base + j * 8 + 8, c1)
                f0 += a0; g0 += b0; f1 += a1; g1 += b1
                j += 2
            }
            d0 += SIMD8<Double>(f0); e0 += SIMD8<Double>(g0)
            d1 += SIMD8<Double>(f1); e1 += SIMD8<Double>(g1)
        }
        out[c0 / 8 * 2] += d0; out[c0 / 8 * 2 + 1] += e0
        out[c1 / 8 * 2] += d1; out[c1 / 8 * 2 + 1] += e1   // c1 == c0 when block = 8
    }
}

/// Runs `body(offset, a0, b0, a1, b1)` on every vector pair of `rows`, with (a, b) the per-channel
/// constants of each member's channel group. Call it inside the worker's closure with a closure literal,
/// so that the per-vector work is inlined.
@inline(__always)
private func forEachVectorPair(_ r: BlockedRows, _ rows: Range<Int>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                               _ body: (_ offset: Int, _ a0: SIMD8<Float>, _ b0: SIMD8<Float>,
                                        _ a1: SIMD8<Float>, _ b1: SIMD8<Float>) -> Void) {
    for row in rows {
        let (c0, c1) = r.groups(row % r.blocks)
        let (a0, b0, a1, b1) = (load8(a + c0), load8(b + c0), load8(a + c1), load8(b + c1))
        let base = row * r.spatial * r.block
        var j = 0
        while j < r.vectors {
            body(base + j * 8, a0, b0, a1, b1)
            j += 2
        }
    }
}

/// dy, or dy·STE'(x·scale + shift) (maskedGradient's arithmetic), for the vector at `o` of channels ch..<ch + 8.
@inline(__always)
private func incomingGradient(_ o: Int, _ ch: Int, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                              _ scale: UnsafePointer<Float>, _ shift: UnsafePointer<Float>, _ masked: Bool,
                              _ derivative: (SIMD8<Float>) -> SIMD8<Float>) -> SIMD8<Float> {
    masked ? load8(dy + o) * derivative(load8(x + o) * load8(scale + ch) + load8(shift + ch)) : load8(dy + o)
}

/// batchNormForwardTraining on a channel-blocked tensor.
func batchNormForwardTrainingBlocked(
    _ y: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, invstd: UnsafeMutablePointer<Float>,
    _ x: UnsafePointer<Float>, runningMean: UnsafeMutablePointer<Float>, runningVar: UnsafeMutablePointer<Float>,
    weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, shape: BatchNormShape, eps: Float, momentum: Float,
    quantizer: QuantizerSpec?, residual: UnsafePointer<Float>?
) {
    let r = BlockedRows(shape)
    let c = r.c, m = Double(shape.reduced)
    withUnsafeTemporaryAllocation(of: Double.self, capacity: 2 * c) { sums in
        let (s1, s2) = (sums.baseAddress!, sums.baseAddress! + c)
        nonisolated(unsafe) let (xp, mp) = (x, mean)
        channelSums(r, s1, s2) { i, out in imageSums(r, i, out, .values, x: xp, mean: mp) }
        for ch in 0..<c { mean[ch] = Float(s1[ch] / m) }
        channelSums(r, s1, s2) { i, out in imageSums(r, i, out, .squaredDeviations, x: xp, mean: mp) }
        for ch in 0..<c {
            let variance = s1[ch] / m
            let inv = Float(1 / (variance + Double(eps)).squareRoot())
            invstd[ch] = inv
            runningMean[ch] = (1 - momentum) * runningMean[ch] + momentum * mean[ch]
            runningVar[ch] = (1 - momentum) * runningVar[ch] + momentum * Float(variance * m / (m - 1))
        }
    }
    withAffineMaps(c, mean: mean, invstd: invstd, weight: weight, bias: bias) { scale, shift in
        applyAffine(r, y, x, scale, shift, quantizer: quantizer, residual: residual)
    }
}

/// Calls `body` with per-channel scale = invstd·w and shift = b − mean·scale (BatchNorm.swift's formulas).
@inline(__always)
private func withAffineMaps(_ c: Int, mean: UnsafePointer<Float>, invstd: UnsafePointer<Float>,
                            weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                            _ body: (UnsafePointer<Float>, UnsafePointer<Float>) -> Void) {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * c) { maps in
        let (scale, shift) = (maps.baseAddress!, maps.baseAddress! + c)
        for ch in 0..<c {
            scale[ch] = invstd[ch] * (weight?[ch] ?? 1)
            shift[ch] = (bias?[ch] ?? 0) - mean[ch] * scale[ch]
        }
        body(scale, shift)
    }
}

/// y = x·scale + shift, or σ((x·scale + shift) (+ r)) with a quantizer (affineRow / affineQuantizeRow's arithmetic).
private func applyAffine(_ r: BlockedRows, _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                         _ scale: UnsafePointer<Float>, _ shift: UnsafePointer<Float>,
                         quantizer: QuantizerSpec?, residual: UnsafePointer<Float>?) {
    precondition(residual == nil || quantizer != nil, "residual needs the quantizer")
    nonisolated(unsafe) let (yp, xp, rp, a, b) = (y, x, residual, scale, shift)
    Parallel.forEachChunk(r.rows, minimumPerWorker: r.minimumRowsPerWorker) { rows in
        guard let quantizer else {
            forEachVectorPair(r, rows, a, b) { o, a0, b0, a1, b1 in
                store8(load8(xp + o) * a0 + b0, yp + o)
                store8(load8(xp + o + 8) * a1 + b1, yp + o + 8)
            }
            return
        }
        quantizer.withQuantizer { quantize in
            if let rp {
                forEachVectorPair(r, rows, a, b) { o, a0, b0, a1, b1 in
                    store8(quantize((load8(xp + o) * a0 + b0) + load8(rp + o)), yp + o)
                    store8(quantize((load8(xp + o + 8) * a1 + b1) + load8(rp + o + 8)), yp + o + 8)
                }
            } else {
                forEachVectorPair(r, rows, a, b) { o, a0, b0, a1, b1 in
                    store8(quantize(load8(xp + o) * a0 + b0), yp + o)
                    store8(quantize(load8(xp + o + 8) * a1 + b1), yp + o + 8)
                }
            }
        }
    }
}

/// batchNormForwardInference on a channel-blocked tensor.
func batchNormForwardInferenceBlocked(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, runningMean: UnsafePointer<Float>,
    runningVar: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
    shape: BatchNormShape, eps: Float, quantizer: QuantizerSpec?, residual: UnsafePointer<Float>?
) {
    let r = BlockedRows(shape)
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * r.c) { maps in
        let (scale, shift) = (maps.baseAddress!, maps.baseAddress! + r.c)
        for ch in 0..<r.c {
            scale[ch] = (weight?[ch] ?? 1) / (runningVar[ch] + eps).squareRoot()
            shift[ch] = (bias?[ch] ?? 0) - runningMean[ch] * scale[ch]
        }
        applyAffine(r, y, x, scale, shift, quantizer: quantizer, residual: residual)
    }
}

/// batchNormResidualActivationGradient on channel-blocked tensors: d = 0 + dy·STE'(x·scale + shift + r).
func batchNormResidualActivationGradientBlocked(
    _ d: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
    residual: UnsafePointer<Float>, mean: UnsafePointer<Float>, invstd: UnsafePointer<Float>,
    weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, shape: BatchNormShape, spec: QuantizerSpec, ste: STE
) {
    let r = BlockedRows(shape)
    nonisolated(unsafe) let (dp, gp, xp, rp) = (d, dy, x, residual)
    withAffineMaps(r.c, mean: mean, invstd: invstd, weight: weight, bias: bias) { scale, shift in
        nonisolated(unsafe) let (a, b) = (scale, shift)
        Parallel.forEachChunk(r.rows, minimumPerWorker: r.minimumRowsPerWorker) { rows in
            ste.withDerivative(top: spec.top) { derivative in
                forEachVectorPair(r, rows, a, b) { o, a0, b0, a1, b1 in
                    store8(SIMD8<Float>.zero + load8(gp + o) * derivative((load8(xp + o) * a0 + b0) + load8(rp + o)), dp + o)
                    store8(SIMD8<Float>.zero + load8(gp + o + 8) * derivative((load8(xp + o + 8) * a1 + b1) + load8(rp + o + 8)),
                           dp + o + 8)
                }
            }
        }
    }
}

/// batchNormBackwardTraining on channel-blocked tensors; `activation`: dy is masked by its STE.
func batchNormBackwardTrainingBlocked(
    _ dx: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?, dbias: UnsafeMutablePointer<Float>?,
    _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, mean: UnsafePointer<Float>, invstd: UnsafePointer<Float>,
    weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, shape: BatchNormShape, accumulate: Bool,
    activation: (spec: QuantizerSpec, ste: STE)?
) {
    let r = BlockedRows(shape)
    let c = r.c, m = Double(shape.reduced)
    nonisolated(unsafe) let (dxp, gp, xp, mp) = (dx, dy, x, mean)
    withAffineMaps(c, mean: mean, invstd: invstd, weight: weight, bias: bias) { scale, shift in
        nonisolated(unsafe) let (sp, hp) = (scale, shift)
        withUnsafeTemporaryAllocation(of: Double.self, capacity: 2 * c) { sums in
            let (sumDy, sumDyXc) = (sums.baseAddress!, sums.baseAddress! + c)   // Σ dy, Σ dy·(x − mean)
            channelSums(r, sumDy, sumDyXc) { i, out in
                if let activation {
                    activation.ste.withDerivative(top: activation.spec.top) { derivative in
                        imageSums(r, i, out, .gradients, x: xp, mean: mp, dy: gp, scale: sp, shift: hp, masked: true,
                                  derivative: derivative)
                    }
                } else {
                    imageSums(r, i, out, .gradients, x: xp, mean: mp, dy: gp, scale: sp, shift: hp)
                }
            }
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * c) { k in
                let (gain, k1, k2) = (k.baseAddress!, k.baseAddress! + c, k.baseAddress! + 2 * c)
                for ch in 0..<c {
                    let inv = invstd[ch]
                    dweight?[ch] += Float(sumDyXc[ch] * Double(inv))
                    dbias?[ch] += Float(sumDy[ch])
                    let g = inv * (weight?[ch] ?? 1)
                    gain[ch] = g
                    k1[ch] = Float(Double(g) * sumDy[ch] / m)
                    k2[ch] = Float(Double(g) * Double(inv) * Double(inv) * sumDyXc[ch] / m)
                }
                let k = BackwardConstants(gain: gain, k1: k1, k2: k2, mean: mp)
                Parallel.forEachChunk(r.rows, minimumPerWorker: r.minimumRowsPerWorker) { rows in
                    if let activation {
                        activation.ste.withDerivative(top: activation.spec.top) { derivative in
                            backwardRows(r, rows, dxp, gp, xp, k, accumulate: accumulate, scale: sp, shift: hp,
                                         masked: true, derivative: derivative)
                        }
                    } else {
                        backwardRows(r, rows, dxp, gp, xp, k, accumulate: accumulate, scale: sp, shift: hp,
                                     masked: false, derivative: { $0 })
                    }
                }
            }
        }
    }
}

/// Per-channel constants of dx = gain·dy − k1 − (x − mean)·k2.
private struct BackwardConstants: @unchecked Sendable {
    let gain: UnsafePointer<Float>, k1: UnsafePointer<Float>, k2: UnsafePointer<Float>, mean: UnsafePointer<Float>
}

/// dx = g·dy − g·mean(dy) − g·inv²·(x − mean)·mean(dy·(x − mean)) on `rows`, bnBackwardRow's arithmetic.
@inline(__always)
private func backwardRows(_ r: BlockedRows, _ rows: Range<Int>, _ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                          _ x: UnsafePointer<Float>, _ k: BackwardConstants, accumulate: Bool,
                          scale: UnsafePointer<Float>, shift: UnsafePointer<Float>, masked: Bool,
                          derivative: (SIMD8<Float>) -> SIMD8<Float>) {
    for row in rows {
        let (c0, c1) = r.groups(row % r.blocks)
        let vg = (load8(k.gain + c0), load8(k.gain + c1)), v1 = (load8(k.k1 + c0), load8(k.k1 + c1))
        let v2 = (load8(k.k2 + c0), load8(k.k2 + c1)), mu = (load8(k.mean + c0), load8(k.mean + c1))
        let base = row * r.spatial * r.block
        var j = 0
        while j < r.vectors {
            let o = base + j * 8
            let gy0 = incomingGradient(o, c0, dy, x, scale, shift, masked, derivative)
            let gy1 = incomingGradient(o + 8, c1, dy, x, scale, shift, masked, derivative)
            let xc0 = load8(x + o) - mu.0, xc1 = load8(x + o + 8) - mu.1
            let old0 = accumulate ? load8(dx + o) : .zero, old1 = accumulate ? load8(dx + o + 8) : .zero
            store8(old0 + (gy0 * vg.0 - v1.0 - xc0 * v2.0), dx + o)
            store8(old1 + (gy1 * vg.1 - v1.1 - xc1 * v2.1), dx + o + 8)
            j += 2
        }
    }
}

/// batchNormBackwardInference on a channel-blocked tensor (dx += dy·w/√(rv + eps)).
func batchNormBackwardInferenceBlocked(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                                       runningVar: UnsafePointer<Float>, weight: UnsafePointer<Float>?,
                                       shape: BatchNormShape, eps: Float, accumulate: Bool) {
    let r = BlockedRows(shape)
    for row in 0..<r.rows {
        let cb = row % r.blocks
        for s in 0..<r.spatial {
            for lane in 0..<r.block {
                let ch = cb * r.block + lane, o = (row * r.spatial + s) * r.block + lane
                let g = (weight?[ch] ?? 1) / (runningVar[ch] + eps).squareRoot()
                dx[o] = (accumulate ? dx[o] : 0) + g * dy[o]
            }
        }
    }
}
