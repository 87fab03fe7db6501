// Direct stride-1 convolution kernels on plain NCHW for layers with few channels (LeNet-5's 1→6 and
// 6→16 convolutions). oneDNN pads such channel counts to its 8/16-channel blocks and then spends about
// as long reordering the blocked result back to NCHW as it spent convolving; these kernels convolve in
// NCHW directly. Vectorised along image rows (8 lanes; a row's last vector overlaps the one before it
// instead of a scalar tail) with register tiles of 6 channels × 2 vectors. Every image is handled by one
// worker; weight gradients are reduced per worker and then summed in worker order, so a fixed worker
// count gives bit-identical results. Summation order differs from oneDNN's: results agree to rounding.

/// A stride-1, square-kernel convolution (PyTorch's floor rule for the output size).
public struct DirectConvShape: Sendable, Equatable {
    public var batch: Int, inChannels: Int, height: Int, width: Int
    public var outChannels: Int, kernel: Int, padding: Int

    public init(batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int, kernel: Int, padding: Int) {
        (self.batch, self.inChannels, self.height, self.width) = (batch, inChannels, height, width)
        (self.outChannels, self.kernel, self.padding) = (outChannels, kernel, padding)
    }

    public var outHeight: Int { height + 2 * padding - kernel + 1 }
    public var outWidth: Int { width + 2 * padding - kernel + 1 }
    var paddedHeight: Int { height + 2 * padding }
    var paddedWidth: Int { width + 2 * padding }
    var taps: Int { kernel * kernel }
}

public enum DirectConvolution {
    /// Geometries the kernels handle: every row they vectorise (input and output) is at least one vector
    /// wide, and the padding is narrower than the kernel (as in every "same" or "valid" convolution).
    public static func supports(_ s: DirectConvShape) -> Bool {
        s.kernel >= 1 && s.padding >= 0 && s.padding < s.kernel && s.width >= 8 && s.outWidth >= 8
            && s.outHeight >= 1 && s.batch >= 1 && s.inChannels >= 1 && s.outChannels >= 1
    }

    // MARK: forward

    /// y = conv(x, w) (+ b), y overwritten.
    public static func forward(_ s: DirectConvShape, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>) {
        precondition(supports(s), "direct convolution: unsupported shape \(s)")
        nonisolated(unsafe) let (x, w, b, y) = (input, weight, bias, output)
        let planeCount = s.inChannels * s.paddedHeight * s.paddedWidth
        Parallel.forEachChunk(s.batch) { images in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: planeCount) { buffer in
                let plane = buffer.baseAddress!
                plane.initialize(repeating: 0, count: planeCount)  // the border stays zero
                for n in images {
                    copyPadded(s, from: x + n * s.inChannels * s.height * s.width, into: plane)
                    forwardImage(s, plane: plane, weight: w, bias: b,
                                 output: y + n * s.outChannels * s.outHeight * s.outWidth)
                }
            }
        }
    }

    private static func forwardImage(_ s: DirectConvShape, plane: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                     bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>) {
        let (k, ci, co, oh, ow, pw, ph) = (s.kernel, s.inChannels, s.outChannels, s.outHeight, s.outWidth,
                                            s.paddedWidth, s.paddedHeight)
        let vectors = (ow + 7) / 8
        for c0 in stride(from: 0, to: co, by: 6) {
            // Tiles past the last channel repeat it; their results are not stored.
            let c = (0..<6).map { Swift.min(c0 + $0, co - 1) }
            let w0 = weight + c[0] * ci * s.taps, w1 = weight + c[1] * ci * s.taps, w2 = weight + c[2] * ci * s.taps
            let w3 = weight + c[3] * ci * s.taps, w4 = weight + c[4] * ci * s.taps, w5 = weight + c[5] * ci * s.taps
            let start = (0..<6).map { SIMD8<Float>(repeating: bias?[c[$0]] ?? 0) }
            for oy in 0..<oh {
                var v = 0
                while v < vectors {
                    // Two vectors of the row; a lone last vector is computed twice and stored twice.
                    let xa = Swift.min(8 * v, ow - 8), xb = Swift.min(8 * (v + 1), ow - 8)
                    var a0 = start[0], b0 = start[0], a1 = start[1], b1 = start[1], a2 = start[2], b2 = start[2]
                    var a3 = start[3], b3 = start[3], a4 = start[4], b4 = start[4], a5 = start[5], b5 = start[5]
                    for i in 0..<ci {
                        for ky in 0..<k {
                            let row = plane + (i * ph + oy + ky) * pw
                            let t0 = (i * k + ky) * k
                            for kx in 0..<k {
                                let va = load8(row + xa + kx), vb = load8(row + xb + kx), t = t0 + kx
                                var m = SIMD8<Float>(repeating: w0[t])
                                a0 = a0.addingProduct(m, va); b0 = b0.addingProduct(m, vb)
                                m = SIMD8<Float>(repeating: w1[t])
                                a1 = a1.addingProduct(m, va); b1 = b1.addingProduct(m, vb)
                                m = SIMD8<Float>(repeating: w2[t])
                                a2 = a2.addingProduct(m, va); b2 = b2.addingProduct(m, vb)
                                m = SIMD8<Float>(repeating: w3[t])
                                a3 = a3.addingProduct(m, va); b3 = b3.addingProduct(m, vb)
                                m = SIMD8<Float>(repeating: w4[t])
                                a4 = a4.addingProduct(m, va); b4 = b4.addingProduct(m, vb)
                                m = SIMD8<Float>(repeating: w5[t])
                                a5 = a5.addingProduct(m, va); b5 = b5.addingProduct(m, vb)
                            }
                        }
                    }
                    let out = output + (c0 * oh + oy) * ow, channelStride = oh * ow, live = co - c0
                    store8(a0, out + xa); store8(b0, out + xb)
                    if live > 1 { store8(a1, out + channelStride + xa); store8(b1, out + channelStride + xb) }
                    if live > 2 { store8(a2, out + 2 * channelStride + xa); store8(b2, out + 2 * channelStride + xb) }
                    if live > 3 { store8(a3, out + 3 * channelStride + xa); store8(b3, out + 3 * channelStride + xb) }
                    if live > 4 { store8(a4, out + 4 * channelStride + xa); store8(b4, out + 4 * channelStride + xb) }
                    if live > 5 { store8(a5, out + 5 * channelStride + xa); store8(b5, out + 5 * channelStride + xb) }
                    v += 2
                }
            }
        }
    }

    // MARK: backward-data

    /// dx = conv_transpose(dy, w), dx overwritten.
    public static func backwardData(_ s: DirectConvShape, outputGrad: UnsafePointer<Float>,
                                    weight: UnsafePointer<Float>, inputGrad: UnsafeMutablePointer<Float>) {
        precondition(supports(s), "direct convolution: unsupported shape \(s)")
        nonisolated(unsafe) let (dy, w, dx) = (outputGrad, weight, inputGrad)
        // dy rows padded on both sides so that every tap of an input-row vector reads inside the row:
        // padded[c] = dy[c − (k − 1)].
        let rowWidth = s.width + s.padding + s.kernel - 1
        let padCount = s.outChannels * s.outHeight * rowWidth
        Parallel.forEachChunk(s.batch) { images in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: padCount) { buffer in
                let padded = buffer.baseAddress!
                padded.initialize(repeating: 0, count: padCount)
                for n in images {
                    let g = dy + n * s.outChannels * s.outHeight * s.outWidth
                    for r in 0..<(s.outChannels * s.outHeight) {
                        (padded + r * rowWidth + s.kernel - 1).update(from: g + r * s.outWidth, count: s.outWidth)
                    }
                    dataImage(s, padded: padded, rowWidth: rowWidth, weight: w,
                              inputGrad: dx + n * s.inChannels * s.height * s.width)
                }
            }
        }
    }

    private static func dataImage(_ s: DirectConvShape, padded: UnsafePointer<Float>, rowWidth: Int,
                                  weight: UnsafePointer<Float>, inputGrad: UnsafeMutablePointer<Float>) {
        let (k, ci, co, oh, h, wd, p) = (s.kernel, s.inChannels, s.outChannels, s.outHeight, s.height, s.width,
                                         s.padding)
        let vectors = (wd + 7) / 8
        for c0 in stride(from: 0, to: ci, by: 6) {
            let c = (0..<6).map { Swift.min(c0 + $0, ci - 1) }
            for iy in 0..<h {
                // Only the taps whose output row exists: oy = iy + p − ky in 0..<oh.
                let kyLow = Swift.max(0, iy + p - (oh - 1)), kyHigh = Swift.min(k - 1, iy + p)
                var v = 0
                while v < vectors {
                    let xa = Swift.min(8 * v, wd - 8), xb = Swift.min(8 * (v + 1), wd - 8)
                    var a0 = SIMD8<Float>(), b0 = SIMD8<Float>(), a1 = SIMD8<Float>(), b1 = SIMD8<Float>()
                    var a2 = SIMD8<Float>(), b2 = SIMD8<Float>(), a3 = SIMD8<Float>(), b3 = SIMD8<Float>()
                    var a4 = SIMD8<Float>(), b4 = SIMD8<Float>(), a5 = SIMD8<Float>(), b5 = SIMD8<Float>()
                    if kyLow <= kyHigh {
                        for o in 0..<co {
                            let wo = weight + o * ci * s.taps
                            let w0 = wo + c[0] * s.taps, w1 = wo + c[1] * s.taps, w2 = wo + c[2] * s.taps
                            let w3 = wo + c[3] * s.taps, w4 = wo + c[4] * s.taps, w5 = wo + c[5] * s.taps
                            for ky in kyLow...kyHigh {
                                // padded index of dy[oy, ix + p − kx] is ix + p + k − 1 − kx
                                let row = padded + (o * oh + iy + p - ky) * rowWidth + p + k - 1
                                for kx in 0..<k {
                                    let va = load8(row + xa - kx), vb = load8(row + xb - kx), t = ky * k + kx
                                    var m = SIMD8<Float>(repeating: w0[t])
                                    a0 = a0.addingProduct(m, va); b0 = b0.addingProduct(m, vb)
                                    m = SIMD8<Float>(repeating: w1[t])
                                    a1 = a1.addingProduct(m, va); b1 = b1.addingProduct(m, vb)
                                    m = SIMD8<Float>(repeating: w2[t])
                                    a2 = a2.addingProduct(m, va); b2 = b2.addingProduct(m, vb)
                                    m = SIMD8<Float>(repeating: w3[t])
                                    a3 = a3.addingProduct(m, va); b3 = b3.addingProduct(m, vb)
                                    m = SIMD8<Float>(repeating: w4[t])
                                    a4 = a4.addingProduct(m, va); b4 = b4.addingProduct(m, vb)
                                    m = SIMD8<Float>(repeating: w5[t])
                                    a5 = a5.addingProduct(m, va); b5 = b5.addingProduct(m, vb)
                                }
                            }
                        }
                    }
                    let out = inputGrad + (c0 * h + iy) * wd, channelStride = h * wd, live = ci - c0
                    store8(a0, out + xa); store8(b0, out + xb)
                    if live > 1 { store8(a1, out + channelStride + xa); store8(b1, out + channelStride + xb) }
                    if live > 2 { store8(a2, out + 2 * channelStride + xa); store8(b2, out + 2 * channelStride + xb) }
                    if live > 3 { store8(a3, out + 3 * channelStride + xa); store8(b3, out + 3 * channelStride + xb) }
                    if live > 4 { store8(a4, out + 4 * channelStride + xa); store8(b4, out + 4 * channelStride + xb) }
                    if live > 5 { store8(a5, out + 5 * channelStride + xa); store8(b5, out + 5 * channelStride + xb) }
                    v += 2
                }
            }
        }
    }

    // MARK: backward-weights

    /// dw = Σ dy ⋆ x over the batch (overwritten); db = Σ dy when `biasGrad` is given.
    public static func backwardWeights(_ s: DirectConvShape, input: UnsafePointer<Float>,
                                       outputGrad: UnsafePointer<Float>, weightGrad: UnsafeMutablePointer<Float>,
                                       biasGrad: UnsafeMutablePointer<Float>?) {
        precondition(supports(s), "direct convolution: unsupported shape \(s)")
        let weightCount = s.outChannels * s.inChannels * s.taps
        let sums = weightCount + s.outChannels  // weights, then bias
        let parts = Swift.max(1, Swift.min(Parallel.workers, s.batch))
        withUnsafeTemporaryAllocation(of: Float.self, capacity: parts * sums) { partial in
            nonisolated(unsafe) let (x, dy, out) = (input, outputGrad, partial.baseAddress!)
            let body = { (part: Int) in
                let lo = s.batch * part / parts, hi = s.batch * (part + 1) / parts
                weightsOfImages(s, lo..<hi, input: x, outputGrad: dy, sums: out + part * sums)
            }
            if parts == 1 { body(0) } else { Parallel.runner(parts, body) }
            for i in 0..<weightCount {
                var t = partial[i]
                for part in 1..<parts { t += partial[part * sums + i] }
                weightGrad[i] = t
            }
            if let biasGrad {
                for o in 0..<s.outChannels {
                    var t = partial[weightCount + o]
                    for part in 1..<parts { t += partial[part * sums + weightCount + o] }
                    biasGrad[o] = t
                }
            }
        }
    }

    /// One worker's share: per-lane sums over its images, reduced to scalars in `sums` at the end.
    private static func weightsOfImages(_ s: DirectConvShape, _ images: Range<Int>, input: UnsafePointer<Float>,
                                        outputGrad: UnsafePointer<Float>, sums: UnsafeMutablePointer<Float>) {
        let (k, ci, co, oh, ow, ph, pw) = (s.kernel, s.inChannels, s.outChannels, s.outHeight, s.outWidth,
                                            s.paddedHeight, s.paddedWidth)
        let vectors = (ow + 7) / 8
        let weightCount = co * ci * s.taps
        let planeCount = ci * ph * pw
        let gradVectors = co * oh * vectors
        withUnsafeTemporaryAllocation(of: Float.self, capacity: planeCount) { planeBuffer in
        withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: gradVectors) { gradBuffer in
        withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: weightCount + co) { accBuffer in
            let plane = planeBuffer.baseAddress!, grad = gradBuffer.baseAddress!, acc = accBuffer.baseAddress!
            plane.initialize(repeating: 0, count: planeCount)
            acc.initialize(repeating: .zero, count: weightCount + co)
            // The row's last vector overlaps the one before it: its lanes already counted are masked off.
            let lastStart = ow - 8, covered = 8 * (vectors - 1) - lastStart
            let lastMask = SIMD8<Float>((0..<8).map { $0 < covered ? 0 : 1 })
            for n in images {
                copyPadded(s, from: input + n * ci * s.height * s.width, into: plane)
                // dy as whole vectors per row (masked), also summed into the bias lanes.
                let g = outputGrad + n * co * oh * ow
                for o in 0..<co {
                    var biasLanes = acc[weightCount + o]
                    for oy in 0..<oh {
                        let row = g + (o * oh + oy) * ow, dst = grad + (o * oh + oy) * vectors
                        for v in 0..<(vectors - 1) { dst[v] = load8(row + 8 * v); biasLanes += dst[v] }
                        dst[vectors - 1] = load8(row + lastStart) * lastMask
                        biasLanes += dst[vectors - 1]
                    }
                    acc[weightCount + o] = biasLanes
                }
                // Tiles of 2 output channels × 5 kernel columns for one (input channel, kernel row).
                for i in 0..<ci {
                    for ky in 0..<k {
                        for c0 in stride(from: 0, to: co, by: 2) {
                            let ca = c0, cb = Swift.min(c0 + 1, co - 1)
                            for kx0 in stride(from: 0, to: k, by: 5) {
                                let k0 = kx0, k1 = Swift.min(kx0 + 1, k - 1), k2 = Swift.min(kx0 + 2, k - 1)
                                let k3 = Swift.min(kx0 + 3, k - 1), k4 = Swift.min(kx0 + 4, k - 1)
                                let slotA = ((ca * ci + i) * k + ky) * k, slotB = ((cb * ci + i) * k + ky) * k
                                var a0 = acc[slotA + k0], a1 = acc[slotA + k1], a2 = acc[slotA + k2]
                                var a3 = acc[slotA + k3], a4 = acc[slotA + k4]
                                var b0 = acc[slotB + k0], b1 = acc[slotB + k1], b2 = acc[slotB + k2]
                                var b3 = acc[slotB + k3], b4 = acc[slotB + k4]
                                for oy in 0..<oh {
                                    let ga = grad + (ca * oh + oy) * vectors, gb = grad + (cb * oh + oy) * vectors
                                    let row = plane + (i * ph + oy + ky) * pw
                                    for v in 0..<vectors {
                                        let x0 = row + Swift.min(8 * v, lastStart)
                                        let da = ga[v], db = gb[v]
                                        var u = load8(x0 + k0)
                                        a0 = a0.addingProduct(da, u); b0 = b0.addingProduct(db, u)
                                        u = load8(x0 + k1)
                                        a1 = a1.addingProduct(da, u); b1 = b1.addingProduct(db, u)
                                        u = load8(x0 + k2)
                                        a2 = a2.addingProduct(da, u); b2 = b2.addingProduct(db, u)
                                        u = load8(x0 + k3)
                                        a3 = a3.addingProduct(da, u); b3 = b3.addingProduct(db, u)
                                        u = load8(x0 + k4)
                                        a4 = a4.addingProduct(da, u); b4 = b4.addingProduct(db, u)
                                    }
                                }
                                // Store only real slots, each once (repeated channels/columns are dropped).
                                let columns = k - kx0, pair = c0 + 1 < co
                                acc[slotA + k0] = a0
                                if pair { acc[slotB + k0] = b0 }
                                if columns > 1 { acc[slotA + k1] = a1; if pair { acc[slotB + k1] = b1 } }
                                if columns > 2 { acc[slotA + k2] = a2; if pair { acc[slotB + k2] = b2 } }
                                if columns > 3 { acc[slotA + k3] = a3; if pair { acc[slotB + k3] = b3 } }
                                if columns > 4 { acc[slotA + k4] = a4; if pair { acc[slotB + k4] = b4 } }
                            }
                        }
                    }
                }
            }
            for i in 0..<(weightCount + co) { sums[i] = acc[i].sum() }
        }
        }
        }
    }

    // MARK: helpers

    /// Copies one image's channels into the interior of a zero-bordered padded plane.
    private static func copyPadded(_ s: DirectConvShape, from x: UnsafePointer<Float>, into plane: UnsafeMutablePointer<Float>) {
        let (h, w, p, ph, pw) = (s.height, s.width, s.padding, s.paddedHeight, s.paddedWidth)
        for i in 0..<s.inChannels {
            for y in 0..<h {
                (plane + (i * ph + y + p) * pw + p).update(from: x + (i * h + y) * w, count: w)
            }
        }
    }
}

@inline(__always)
private func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func load8(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}
