// Direct stride-1 convolution kernels on plain NCHW for layers with few channels (LeNet-5's 1→6 and
// 6→16 convolutions). oneDNN pads such channel counts to its 8/16-channel blocks and then spends about
// as long reordering the blocked result back to NCHW as it spent convolving; these kernels work in
// NCHW directly. Three vectorisations, each where its lanes do useful work (8 lanes, AVX2):
// - along image rows (forward, backward-weights; a row's last vector overlaps the one before it instead
//   of a scalar tail), register tiles of 6 channels × 2 vectors: few output channels;
// - backward-data through columns: wᵀ·dy vectorised over an image's output pixels, then gathered per
//   input-row vector: few input channels;
// - backward-weights over output channels (dy transposed to channels-last per image): outputs a multiple of 8.
// Every image is handled by one worker; weight gradients are reduced per worker and then summed in worker
// order, so a fixed worker count gives bit-identical results. Summation order differs from oneDNN's:
// results agree to rounding. Which pass runs here is decided in Backends (ConvolutionPasses.direct).

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
            Parallel.forEachPart(parts) { part in
                weightsOfImages(s, Parallel.share(part, of: parts, count: s.batch), input: x, outputGrad: dy, sums: out + part * sums, bias: biasGrad != nil)
            }
            for i in 0..<weightCount { weightGrad[i] = totalOfParts(partial, parts: parts, stride: sums, slot: i) }
            if let biasGrad {
                for o in 0..<s.outChannels {
                    biasGrad[o] = totalOfParts(partial, parts: parts, stride: sums, slot: weightCount + o)
                }
            }
        }
    }

    /// One slot of the workers' partial sums (worker `p`'s at `p * stride + slot`), added in worker order: the
    /// order fixes the bits, whatever the thread timing, for both backward-weights passes.
    @inline(__always)
    static func totalOfParts(_ partial: UnsafeMutableBufferPointer<Float>, parts: Int, stride: Int, slot: Int) -> Float {
        var total = partial[slot]
        for part in 1..<parts { total += partial[part * stride + slot] }
        return total
    }

    /// One worker's share: per-lane sums over its images, reduced to scalars in `sums` at the end. The bias
    /// sums only when `bias` (a chain of adds through every dy vector of a channel, for nothing otherwise).
    private static func weightsOfImages(_ s: DirectConvShape, _ images: Range<Int>, input: UnsafePointer<Float>,
                                        outputGrad: UnsafePointer<Float>, sums: UnsafeMutablePointer<Float>,
                                        bias: Bool) {
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
                loadGradientVectors(s, outputGrad + n * co * oh * ow, into: grad, lastMask: lastMask,
                                    biasLanes: bias ? acc + weightCount : nil)
                // Tiles of 2 output channels × 5 kernel columns for one (input channel, kernel row).
                for i in 0..<ci {
                    for ky in 0..<k {
                        for c0 in stride(from: 0, to: co, by: 2) {
                            accumulateWeightTiles(s, plane: plane, grad: grad, acc: acc, channel: i, kernelRow: ky,
                                                  outChannel: c0)
                        }
                    }
                }
            }
            for i in 0..<(weightCount + co) { sums[i] = acc[i].sum() }
        }
        }
        }
    }

    /// One image's dy as whole vectors per row (the row's last vector overlaps the one before it: `lastMask` masks
    /// its lanes already counted), summed into the bias lanes when `biasLanes` is given.
    @inline(__always)
    private static func loadGradientVectors(_ s: DirectConvShape, _ g: UnsafePointer<Float>,
                                            into grad: UnsafeMutablePointer<SIMD8<Float>>, lastMask: SIMD8<Float>,
                                            biasLanes: UnsafeMutablePointer<SIMD8<Float>>?) {
        let (co, oh, ow) = (s.outChannels, s.outHeight, s.outWidth)
        let vectors = (ow + 7) / 8, lastStart = ow - 8
        for o in 0..<co {
            for oy in 0..<oh {
                let row = g + (o * oh + oy) * ow, dst = grad + (o * oh + oy) * vectors
                for v in 0..<(vectors - 1) { dst[v] = load8(row + 8 * v) }
                dst[vectors - 1] = load8(row + lastStart) * lastMask
            }
            guard let biasLanes else { continue }
            var lanes = biasLanes[o]
            for v in 0..<(oh * vectors) { lanes += grad[o * oh * vectors + v] }
            biasLanes[o] = lanes
        }
    }

    /// `weightsOfImages`' tiles for input channel `i`, kernel row `ky` and output channels c0, c0 + 1: 2 channels × 5
    /// kernel columns at a time, over every output pixel of the image in `plane`, into the lanes of `acc`.
    @inline(__always)
    private static func accumulateWeightTiles(_ s: DirectConvShape, plane: UnsafeMutablePointer<Float>,
                                              grad: UnsafeMutablePointer<SIMD8<Float>>,
                                              acc: UnsafeMutablePointer<SIMD8<Float>>, channel i: Int, kernelRow ky: Int,
                                              outChannel c0: Int) {
        let (k, ci, co, oh, ph, pw) = (s.kernel, s.inChannels, s.outChannels, s.outHeight, s.paddedHeight, s.paddedWidth)
        let vectors = (s.outWidth + 7) / 8, lastStart = s.outWidth - 8
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

    // MARK: backward-data through columns

    /// Shapes `backwardDataByColumns` handles: at least one vector of output pixels per image and input
    /// rows at least one vector wide.
    public static func supportsColumns(_ s: DirectConvShape) -> Bool {
        s.kernel >= 1 && s.padding >= 0 && s.padding < s.kernel && s.outHeight * s.outWidth >= 8 && s.width >= 8
            && s.outHeight >= 1 && s.outWidth >= 1 && s.batch >= 1 && s.inChannels >= 1 && s.outChannels >= 1
    }

    /// dx = conv_transpose(dy, w), overwritten, for layers with few input channels (LeNet-5 conv2): per
    /// image, columns = wᵀ·dy (rows: input channel × tap; vectorised over the image's output pixels, so
    /// no lane multiplies padding), then each column row is added into dx at its tap's offset.
    public static func backwardDataByColumns(_ s: DirectConvShape, outputGrad: UnsafePointer<Float>,
                                             weight: UnsafePointer<Float>, inputGrad: UnsafeMutablePointer<Float>) {
        precondition(supportsColumns(s), "direct convolution: unsupported shape \(s) (columns)")
        nonisolated(unsafe) let (dy, w, dx) = (outputGrad, weight, inputGrad)
        let rows = s.inChannels * s.taps, pixels = s.outHeight * s.outWidth, vectors = (s.width + 7) / 8
        // Lane j of input-row vector v reads output column x0 + j + p − kx: masked off outside 0..<outWidth.
        let masks = (0..<s.kernel).flatMap { kx in
            (0..<vectors).map { v in
                let x0 = Swift.min(8 * v, s.width - 8)
                return SIMDMask<SIMD8<Int32>>((0..<8).map { j in
                    let ox = x0 + j + s.padding - kx
                    return ox < 0 || ox >= s.outWidth
                })
            }
        }
        // Reads past a column row stay inside the buffer: kernel − 1 floats of slack before, kernel after.
        let slack = s.kernel
        let groups = gatherGroups(s)
        masks.withUnsafeBufferPointer { maskBuffer in
        groups.withUnsafeBufferPointer { groupBuffer in
            nonisolated(unsafe) let (m, g) = (maskBuffer.baseAddress!, groupBuffer)
            Parallel.forEachChunk(s.batch) { images in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: rows * pixels + 2 * slack) { buffer in
                    buffer.initialize(repeating: 0)
                    let columns = buffer.baseAddress! + slack
                    for n in images {
                        transposedProduct(s, weight: w, outputGrad: dy + n * s.outChannels * pixels, columns: columns)
                        gatherColumns(s, columns, masks: m, groups: g, into: dx + n * s.inChannels * s.height * s.width)
                    }
                }
            }
        }
        }
    }

    /// columns[r, p] = Σ_o w[o, r] · dy[o, p] for r over (input channel, tap), p over output pixels, each
    /// one chain of fused multiply-adds over o from 0. Register tiles of 4 rows × 3 pixel vectors; the one or
    /// two vectors left over take tiles of 12 rows × 1 or 6 rows × 2 vectors (the same twelve accumulators,
    /// instead of 4 × 3 tiles that recompute up to two vectors). Tiles past the end repeat the last row.
    private static func transposedProduct(_ s: DirectConvShape, weight: UnsafePointer<Float>,
                                          outputGrad: UnsafePointer<Float>, columns: UnsafeMutablePointer<Float>) {
        let rows = s.inChannels * s.taps, pixels = s.outHeight * s.outWidth, co = s.outChannels
        let vectors = (pixels + 7) / 8, fullTiles = vectors / 3
        @inline(__always) func start(_ v: Int) -> Int { Swift.min(8 * Swift.min(v, vectors - 1), pixels - 8) }
        switch vectors - 3 * fullTiles {
        case 1: remainderTiles(s, weight: weight, outputGrad: outputGrad, columns: columns, tileRows: 12, tileVectors: 1,
                               pa: start(3 * fullTiles), pb: start(3 * fullTiles))
        case 2: remainderTiles(s, weight: weight, outputGrad: outputGrad, columns: columns, tileRows: 6, tileVectors: 2,
                               pa: start(3 * fullTiles), pb: start(3 * fullTiles + 1))
        default: break
        }
        for r0 in stride(from: 0, to: rows, by: 4) {
            let r1 = Swift.min(r0 + 1, rows - 1), r2 = Swift.min(r0 + 2, rows - 1), r3 = Swift.min(r0 + 3, rows - 1)
            for v0 in stride(from: 0, to: 3 * fullTiles, by: 3) {
                let (pa, pb, pc) = (start(v0), start(v0 + 1), start(v0 + 2))
                var a0 = SIMD8<Float>(), b0 = SIMD8<Float>(), c0 = SIMD8<Float>()
                var a1 = SIMD8<Float>(), b1 = SIMD8<Float>(), c1 = SIMD8<Float>()
                var a2 = SIMD8<Float>(), b2 = SIMD8<Float>(), c2 = SIMD8<Float>()
                var a3 = SIMD8<Float>(), b3 = SIMD8<Float>(), c3 = SIMD8<Float>()
                for o in 0..<co {
                    let g = outputGrad + o * pixels, wr = weight + o * rows
                    let ga = load8(g + pa), gb = load8(g + pb), gc = load8(g + pc)
                    var m = SIMD8<Float>(repeating: wr[r0])
                    a0 = a0.addingProduct(m, ga); b0 = b0.addingProduct(m, gb); c0 = c0.addingProduct(m, gc)
                    m = SIMD8<Float>(repeating: wr[r1])
                    a1 = a1.addingProduct(m, ga); b1 = b1.addingProduct(m, gb); c1 = c1.addingProduct(m, gc)
                    m = SIMD8<Float>(repeating: wr[r2])
                    a2 = a2.addingProduct(m, ga); b2 = b2.addingProduct(m, gb); c2 = c2.addingProduct(m, gc)
                    m = SIMD8<Float>(repeating: wr[r3])
                    a3 = a3.addingProduct(m, ga); b3 = b3.addingProduct(m, gb); c3 = c3.addingProduct(m, gc)
                }
                // Repeated rows are stored again with the same values; overlapping vectors likewise.
                let out0 = columns + r0 * pixels, out1 = columns + r1 * pixels
                let out2 = columns + r2 * pixels, out3 = columns + r3 * pixels
                store8(a0, out0 + pa); store8(b0, out0 + pb); store8(c0, out0 + pc)
                store8(a1, out1 + pa); store8(b1, out1 + pb); store8(c1, out1 + pc)
                store8(a2, out2 + pa); store8(b2, out2 + pb); store8(c2, out2 + pc)
                store8(a3, out3 + pa); store8(b3, out3 + pb); store8(c3, out3 + pc)
            }
        }
    }

    /// `transposedProduct`'s tiles of `tileRows` rows × `tileVectors` (1 or 2) vectors, at pixels `pa` (and `pb`), over
    /// the vectors its full tiles of three leave.
    @inline(__always)
    private static func remainderTiles(_ s: DirectConvShape, weight: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>,
                                       columns: UnsafeMutablePointer<Float>, tileRows: Int, tileVectors: Int, pa: Int,
                                       pb: Int) {
        let rows = s.inChannels * s.taps, pixels = s.outHeight * s.outWidth, co = s.outChannels
        for r0 in stride(from: 0, to: rows, by: tileRows) {
            var acc = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(),
                       SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
            @inline(__always) func row(_ j: Int) -> Int { Swift.min(r0 + j, rows - 1) }
            if tileVectors == 1 {
                for o in 0..<co {
                    let ga = load8(outputGrad + o * pixels + pa), wr = weight + o * rows
                    acc.0 = acc.0.addingProduct(SIMD8(repeating: wr[row(0)]), ga)
                    acc.1 = acc.1.addingProduct(SIMD8(repeating: wr[row(1)]), ga)
                    acc.2 = acc.2.addingProduct(SIMD8(repeating: wr[row(2)]), ga)
                    acc.3 = acc.3.addingProduct(SIMD8(repeating: wr[row(3)]), ga)
                    acc.4 = acc.4.addingProduct(SIMD8(repeating: wr[row(4)]), ga)
                    acc.5 = acc.5.addingProduct(SIMD8(repeating: wr[row(5)]), ga)
                    acc.6 = acc.6.addingProduct(SIMD8(repeating: wr[row(6)]), ga)
                    acc.7 = acc.7.addingProduct(SIMD8(repeating: wr[row(7)]), ga)
                    acc.8 = acc.8.addingProduct(SIMD8(repeating: wr[row(8)]), ga)
                    acc.9 = acc.9.addingProduct(SIMD8(repeating: wr[row(9)]), ga)
                    acc.10 = acc.10.addingProduct(SIMD8(repeating: wr[row(10)]), ga)
                    acc.11 = acc.11.addingProduct(SIMD8(repeating: wr[row(11)]), ga)
                }
                withUnsafeBytes(of: &acc) { sums in
                    for j in 0..<Swift.min(12, rows - r0) {
                        store8(sums.load(fromByteOffset: 32 * j, as: SIMD8<Float>.self), columns + (r0 + j) * pixels + pa)
                    }
                }
            } else {
                for o in 0..<co {
                    let g = outputGrad + o * pixels, wr = weight + o * rows
                    let ga = load8(g + pa), gb = load8(g + pb)
                    var m = SIMD8<Float>(repeating: wr[row(0)])
                    acc.0 = acc.0.addingProduct(m, ga); acc.1 = acc.1.addingProduct(m, gb)
                    m = SIMD8<Float>(repeating: wr[row(1)])
                    acc.2 = acc.2.addingProduct(m, ga); acc.3 = acc.3.addingProduct(m, gb)
                    m = SIMD8<Float>(repeating: wr[row(2)])
                    acc.4 = acc.4.addingProduct(m, ga); acc.5 = acc.5.addingProduct(m, gb)
                    m = SIMD8<Float>(repeating: wr[row(3)])
                    acc.6 = acc.6.addingProduct(m, ga); acc.7 = acc.7.addingProduct(m, gb)
                    m = SIMD8<Float>(repeating: wr[row(4)])
                    acc.8 = acc.8.addingProduct(m, ga); acc.9 = acc.9.addingProduct(m, gb)
                    m = SIMD8<Float>(repeating: wr[row(5)])
                    acc.10 = acc.10.addingProduct(m, ga); acc.11 = acc.11.addingProduct(m, gb)
                }
                withUnsafeBytes(of: &acc) { sums in
                    for j in 0..<Swift.min(6, rows - r0) {
                        store8(sums.load(fromByteOffset: 64 * j, as: SIMD8<Float>.self), columns + (r0 + j) * pixels + pa)
                        store8(sums.load(fromByteOffset: 64 * j + 32, as: SIMD8<Float>.self), columns + (r0 + j) * pixels + pb)
                    }
                }
            }
        }
    }

    /// Four chains of the gather (input-row vectors whose sums run side by side) and their tap rows ky in
    /// lo...hi (empty when lo > hi): the same for every channel and image of a shape, so worked out once per
    /// call (per channel, the divisions that placed the chains cost a fifth of the gather).
    struct GatherGroup {
        /// Per chain: the vector's first element in a dx plane (row · width + x0), its first element in a
        /// column plane at tap row 0 (input row + padding) · outWidth + x0 + padding, and its mask column v.
        var dxOffset: SIMD4<Int>, columnOffset: SIMD4<Int>, maskColumn: SIMD4<Int>
        var lo: Int, hi: Int
    }

    /// The chains (iy, v) in row-major order, taken four at a time while their tap range is the same; a short
    /// group repeats its first chain (stored twice with the same value).
    static func gatherGroups(_ s: DirectConvShape) -> [GatherGroup] {
        let (k, p, h, wd, oh, ow) = (s.kernel, s.padding, s.height, s.width, s.outHeight, s.outWidth)
        let vectors = (wd + 7) / 8
        /// The taps ky whose output row exists for input row iy (empty when lo > hi).
        func tapRows(_ iy: Int) -> (lo: Int, hi: Int) { (Swift.max(0, iy + p - (oh - 1)), Swift.min(k - 1, iy + p)) }
        var groups: [GatherGroup] = [], chain = 0
        while chain < h * vectors {
            let first = chain, range = tapRows(first / vectors)
            var count = 1
            while count < 4, first + count < h * vectors, tapRows((first + count) / vectors) == range { count += 1 }
            chain += count
            var group = GatherGroup(dxOffset: .zero, columnOffset: .zero, maskColumn: .zero, lo: range.lo, hi: range.hi)
            for j in 0..<4 {
                let id = first + (count > j ? j : 0), iy = id / vectors, v = id % vectors
                let x0 = Swift.min(8 * v, wd - 8)
                group.dxOffset[j] = iy * wd + x0
                group.columnOffset[j] = (iy + p) * ow + x0 + p
                group.maskColumn[j] = v
            }
            groups.append(group)
        }
        return groups
    }

    /// dx[c, iy, ix] = Σ over taps (ky, kx) of columns[(c, ky, kx), (iy + p − ky, ix + p − kx)] where that
    /// output pixel exists. Gathered per input-row vector in registers (adding into dx tap by tap would
    /// reload what the previous tap stored one element over, which defeats store-to-load forwarding);
    /// lanes whose output column does not exist are masked off, so reads may run past a column row.
    /// Each vector's sum is one chain of adds in (ky, kx) order; the four chains of a `GatherGroup` run side
    /// by side so that the adds' latency overlaps (the same sums, in the same order, as one by one).
    private static func gatherColumns(_ s: DirectConvShape, _ columns: UnsafePointer<Float>,
                                      masks: UnsafePointer<SIMDMask<SIMD8<Int32>>>,
                                      groups: UnsafeBufferPointer<GatherGroup>, into dx: UnsafeMutablePointer<Float>) {
        let (k, h, wd, ow) = (s.kernel, s.height, s.width, s.outWidth)
        let vectors = (wd + 7) / 8, pixels = s.outHeight * ow
        for c in 0..<s.inChannels {
            let out = dx + c * h * wd
            for group in groups {
                let (d, col, v) = (group.dxOffset, group.columnOffset, group.maskColumn)
                var (s0, s1, s2, s3) = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
                if group.lo <= group.hi {
                    for ky in group.lo...group.hi {
                        let plane = columns + (c * k + ky) * k * pixels - ky * ow
                        let r0 = plane + col[0], r1 = plane + col[1], r2 = plane + col[2], r3 = plane + col[3]
                        for kx in 0..<k {
                            let o = kx * pixels - kx, m = masks + kx * vectors
                            s0 += load8(r0 + o).replacing(with: 0, where: m[v[0]])
                            s1 += load8(r1 + o).replacing(with: 0, where: m[v[1]])
                            s2 += load8(r2 + o).replacing(with: 0, where: m[v[2]])
                            s3 += load8(r3 + o).replacing(with: 0, where: m[v[3]])
                        }
                    }
                }
                store8(s3, out + d[3]); store8(s2, out + d[2]); store8(s1, out + d[1]); store8(s0, out + d[0])
            }
        }
    }

    // MARK: helpers

    /// Copies one image's channels into the interior of a zero-bordered padded plane.
    static func copyPadded(_ s: DirectConvShape, from x: UnsafePointer<Float>, into plane: UnsafeMutablePointer<Float>) {
        let (h, w, p, ph, pw) = (s.height, s.width, s.padding, s.paddedHeight, s.paddedWidth)
        for i in 0..<s.inChannels {
            for y in 0..<h {
                (plane + (i * ph + y + p) * pw + p).update(from: x + (i * h + y) * w, count: w)
            }
        }
    }
}

// 8-lane unaligned loads and stores shared by the kernels of this module (also Layout.swift).
@inline(__always)
func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
func load8(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}
