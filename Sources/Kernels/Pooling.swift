// Pooling kernels on NCHW: MaxPool2d(kernel 2, stride 2) with PyTorch's tie rule (the first maximum in
// scan order wins), global average pooling, and the ResNet option-A shortcut (stride-2 subsample
// x[:, :, ::2, ::2] with the channels zero-padded on both sides). Work is split over images.

/// y[i, ch, oy, ox] = max of the 2×2 window; `argmax` records the winner (0...3, row-major in the window).
/// Output size floor(h/2) × floor(w/2), as PyTorch.
public func maxPool2Forward(_ y: UnsafeMutableBufferPointer<Float>, argmax: UnsafeMutableBufferPointer<UInt8>,
                            _ x: UnsafeBufferPointer<Float>, n: Int, c: Int, h: Int, w: Int) {
    let (oh, ow) = (h / 2, w / 2)
    precondition(x.count == n * c * h * w && y.count == n * c * oh * ow && argmax.count == y.count)
    nonisolated(unsafe) let (yp, ap, xp) = (y.baseAddress!, argmax.baseAddress!, x.baseAddress!)
    Parallel.forEachChunk(n * c, minimumPerWorker: Swift.max(1, 8_192 / Swift.max(1, h * w))) { planes in
        for p in planes {
            let xs = xp + p * h * w, ys = yp + p * oh * ow, as_ = ap + p * oh * ow
            for oy in 0..<oh {
                let r0 = xs + 2 * oy * w, r1 = r0 + w, yr = ys + oy * ow, ar = as_ + oy * ow
                // SIMD over the windows of a row pair; the last vector overlaps the previous one
                // (idempotent writes) instead of a scalar tail. Selects, not branches: the winner is
                // unpredictable on real activations.
                if ow >= 8 {
                    var ox = 0
                    while true {
                        maxPoolWindows8(r0 + 2 * ox, r1 + 2 * ox, yr + ox, ar + ox)
                        if ox + 8 == ow { break }
                        ox = Swift.min(ox + 8, ow - 8)
                    }
                } else if ow >= 4 {
                    maxPoolWindows4(r0, r1, yr, ar)
                    if ow > 4 { maxPoolWindows4(r0 + 2 * (ow - 4), r1 + 2 * (ow - 4), yr + ow - 4, ar + ow - 4) }
                } else {
                    for ox in 0..<ow {
                        var best = r0[2 * ox], k: UInt8 = 0
                        if r0[2 * ox + 1] > best { best = r0[2 * ox + 1]; k = 1 }
                        if r1[2 * ox] > best { best = r1[2 * ox]; k = 2 }
                        if r1[2 * ox + 1] > best { best = r1[2 * ox + 1]; k = 3 }
                        yr[ox] = best
                        ar[ox] = k
                    }
                }
            }
        }
    }
}

/// Eight adjacent 2×2 windows (rows r0, r1): max and the first winner in scan order (ties keep the earlier).
@inline(__always)
private func maxPoolWindows8(_ r0: UnsafePointer<Float>, _ r1: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                             _ argmax: UnsafeMutablePointer<UInt8>) {
    let top = UnsafeRawPointer(r0).loadUnaligned(as: SIMD16<Float>.self)
    let bottom = UnsafeRawPointer(r1).loadUnaligned(as: SIMD16<Float>.self)
    var best = top.evenHalf, k = SIMD8<Int32>(repeating: 0)
    var wins = top.oddHalf .> best
    best.replace(with: top.oddHalf, where: wins); k.replace(with: 1, where: wins)
    wins = bottom.evenHalf .> best
    best.replace(with: bottom.evenHalf, where: wins); k.replace(with: 2, where: wins)
    wins = bottom.oddHalf .> best
    best.replace(with: bottom.oddHalf, where: wins); k.replace(with: 3, where: wins)
    UnsafeMutableRawPointer(y).storeBytes(of: best, as: SIMD8<Float>.self)
    UnsafeMutableRawPointer(argmax).storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: k), as: SIMD8<UInt8>.self)
}

@inline(__always)
private func maxPoolWindows4(_ r0: UnsafePointer<Float>, _ r1: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                             _ argmax: UnsafeMutablePointer<UInt8>) {
    let top = UnsafeRawPointer(r0).loadUnaligned(as: SIMD8<Float>.self)
    let bottom = UnsafeRawPointer(r1).loadUnaligned(as: SIMD8<Float>.self)
    var best = top.evenHalf, k = SIMD4<Int32>(repeating: 0)
    var wins = top.oddHalf .> best
    best.replace(with: top.oddHalf, where: wins); k.replace(with: 1, where: wins)
    wins = bottom.evenHalf .> best
    best.replace(with: bottom.evenHalf, where: wins); k.replace(with: 2, where: wins)
    wins = bottom.oddHalf .> best
    best.replace(with: bottom.oddHalf, where: wins); k.replace(with: 3, where: wins)
    UnsafeMutableRawPointer(y).storeBytes(of: best, as: SIMD4<Float>.self)
    UnsafeMutableRawPointer(argmax).storeBytes(of: SIMD4<UInt8>(truncatingIfNeeded: k), as: SIMD4<UInt8>.self)
}

/// dx[winner] = dy, every other element of dx (the losers, and a trailing odd row/column) = 0.
public func maxPool2Backward(_ dx: UnsafeMutableBufferPointer<Float>, _ dy: UnsafeBufferPointer<Float>,
                             argmax: UnsafeBufferPointer<UInt8>, n: Int, c: Int, h: Int, w: Int) {
    let (oh, ow) = (h / 2, w / 2)
    precondition(dx.count == n * c * h * w && dy.count == n * c * oh * ow && argmax.count == dy.count)
    nonisolated(unsafe) let (dxp, dyp, ap) = (dx.baseAddress!, dy.baseAddress!, argmax.baseAddress!)
    Parallel.forEachChunk(n * c, minimumPerWorker: Swift.max(1, 8_192 / Swift.max(1, h * w))) { planes in
        for p in planes {
            let dxs = dxp + p * h * w, dys = dyp + p * oh * ow, as_ = ap + p * oh * ow
            if h != 2 * oh || w != 2 * ow { dxs.update(repeating: 0, count: h * w) }
            for oy in 0..<oh {
                let r0 = dxs + 2 * oy * w, r1 = r0 + w, gr = dys + oy * ow, ar = as_ + oy * ow
                // SIMD over the windows of a row pair as in the forward; the last vector overlaps the previous
                // one (the same values written twice).
                if ow >= 8 {
                    var ox = 0
                    while true {
                        maxPoolGradient8(gr + ox, ar + ox, r0 + 2 * ox, r1 + 2 * ox)
                        if ox + 8 == ow { break }
                        ox = Swift.min(ox + 8, ow - 8)
                    }
                } else if ow >= 4 {
                    maxPoolGradient4(gr, ar, r0, r1)
                    if ow > 4 { maxPoolGradient4(gr + ow - 4, ar + ow - 4, r0 + 2 * (ow - 4), r1 + 2 * (ow - 4)) }
                } else {
                    for ox in 0..<ow {
                        let k = ar[ox], g = gr[ox]
                        r0[2 * ox] = k == 0 ? g : 0
                        r0[2 * ox + 1] = k == 1 ? g : 0
                        r1[2 * ox] = k == 2 ? g : 0
                        r1[2 * ox + 1] = k == 3 ? g : 0
                    }
                }
            }
        }
    }
}

/// The gradients of eight adjacent 2×2 windows: dy where the window's winner was, 0 elsewhere, written to
/// the 16 floats of rows r0 and r1 the windows cover.
@inline(__always)
private func maxPoolGradient8(_ dy: UnsafePointer<Float>, _ argmax: UnsafePointer<UInt8>,
                              _ r0: UnsafeMutablePointer<Float>, _ r1: UnsafeMutablePointer<Float>) {
    let g = UnsafeRawPointer(dy).loadUnaligned(as: SIMD8<Float>.self)
    // Float masks for Float selects: an Int32 mask on a Float vector compiles to a lane-by-lane loop.
    let winner = UnsafeRawPointer(argmax).loadUnaligned(as: SIMD8<UInt8>.self)
    let k = SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: winner)), zero = SIMD8<Float>.zero
    let top = interleaved(zero.replacing(with: g, where: k .== 0), zero.replacing(with: g, where: k .== 1))
    let bottom = interleaved(zero.replacing(with: g, where: k .== 2), zero.replacing(with: g, where: k .== 3))
    UnsafeMutableRawPointer(r0).storeBytes(of: top, as: SIMD16<Float>.self)
    UnsafeMutableRawPointer(r1).storeBytes(of: bottom, as: SIMD16<Float>.self)
}

/// maxPoolGradient8 for four windows.
@inline(__always)
private func maxPoolGradient4(_ dy: UnsafePointer<Float>, _ argmax: UnsafePointer<UInt8>,
                              _ r0: UnsafeMutablePointer<Float>, _ r1: UnsafeMutablePointer<Float>) {
    let g = UnsafeRawPointer(dy).loadUnaligned(as: SIMD4<Float>.self)
    let winner = UnsafeRawPointer(argmax).loadUnaligned(as: SIMD4<UInt8>.self)
    let k = SIMD4<Float>(SIMD4<Int32>(truncatingIfNeeded: winner)), zero = SIMD4<Float>.zero
    let top = interleaved(zero.replacing(with: g, where: k .== 0), zero.replacing(with: g, where: k .== 1))
    let bottom = interleaved(zero.replacing(with: g, where: k .== 2), zero.replacing(with: g, where: k .== 3))
    UnsafeMutableRawPointer(r0).storeBytes(of: top, as: SIMD8<Float>.self)
    UnsafeMutableRawPointer(r1).storeBytes(of: bottom, as: SIMD8<Float>.self)
}

/// (e0, o0, e1, o1, …): the inverse of SIMD16's evenHalf / oddHalf.
@inline(__always)
private func interleaved(_ e: SIMD8<Float>, _ o: SIMD8<Float>) -> SIMD16<Float> {
    SIMD16(e[0], o[0], e[1], o[1], e[2], o[2], e[3], o[3], e[4], o[4], e[5], o[5], e[6], o[6], e[7], o[7])
}

@inline(__always)
private func interleaved(_ e: SIMD4<Float>, _ o: SIMD4<Float>) -> SIMD8<Float> {
    SIMD8(e[0], o[0], e[1], o[1], e[2], o[2], e[3], o[3])
}

/// maxPool2Forward on a channel-blocked x (8 channels per vector: a window's four pixels hold them at
/// four addresses), y in `outputLayout` (the same blocked layout, or NCHW where the Kernels cannot hold
/// the output planes blocked). `argmax` is indexed like y. Same maxima, same winners (the first maximum
/// in scan order) as the NCHW kernel: results are bit-identical.
public func maxPool2ForwardBlocked(_ y: UnsafeMutableBufferPointer<Float>, argmax: UnsafeMutableBufferPointer<UInt8>,
                                   _ x: UnsafeBufferPointer<Float>, n: Int, c: Int, h: Int, w: Int,
                                   inputLayout: ActivationLayout, outputLayout: ActivationLayout) {
    precondition(x.count == n * c * h * w && y.count == n * c * (h / 2) * (w / 2) && argmax.count == y.count)
    nonisolated(unsafe) let (yp, ap, xp) = (y.baseAddress!, argmax.baseAddress!, x.baseAddress!)
    Parallel.forEachChunk(n, minimumPerWorker: Swift.max(1, 16_384 / Swift.max(1, c * h * w))) { images in
        forEachPoolingWindow(images, c: c, h: h, w: w, inputLayout, outputLayout) { p0, p1, p2, p3, out, laneStride in
            let v0 = load8(xp + p0), v1 = load8(xp + p1), v2 = load8(xp + p2), v3 = load8(xp + p3)
            var best = v0, k = SIMD8<Int32>(repeating: 0)
            var wins = v1 .> best
            best.replace(with: v1, where: wins); k.replace(with: 1, where: wins)
            wins = v2 .> best
            best.replace(with: v2, where: wins); k.replace(with: 2, where: wins)
            wins = v3 .> best
            best.replace(with: v3, where: wins); k.replace(with: 3, where: wins)
            if laneStride == 1 {
                store8(best, yp + out)
                UnsafeMutableRawPointer(ap + out).storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: k), as: SIMD8<UInt8>.self)
            } else {
                for l in 0..<8 { yp[out + l * laneStride] = best[l]; ap[out + l * laneStride] = UInt8(k[l]) }
            }
        }
    }
}

/// maxPool2Backward for maxPool2ForwardBlocked: dx (in `inputLayout`) gets dy at each window's winner, 0
/// elsewhere.
public func maxPool2BackwardBlocked(_ dx: UnsafeMutableBufferPointer<Float>, _ dy: UnsafeBufferPointer<Float>,
                                    argmax: UnsafeBufferPointer<UInt8>, n: Int, c: Int, h: Int, w: Int,
                                    inputLayout: ActivationLayout, outputLayout: ActivationLayout) {
    precondition(dx.count == n * c * h * w && dy.count == n * c * (h / 2) * (w / 2) && argmax.count == dy.count)
    nonisolated(unsafe) let (dxp, dyp, ap) = (dx.baseAddress!, dy.baseAddress!, argmax.baseAddress!)
    if h % 2 != 0 || w % 2 != 0 { dx.update(repeating: 0) }   // a trailing row / column no window covers
    Parallel.forEachChunk(n, minimumPerWorker: Swift.max(1, 16_384 / Swift.max(1, c * h * w))) { images in
        forEachPoolingWindow(images, c: c, h: h, w: w, inputLayout, outputLayout) { p0, p1, p2, p3, out, laneStride in
            var g = SIMD8<Float>.zero, k = SIMD8<Int32>.zero
            if laneStride == 1 {
                g = load8(dyp + out)
                k = SIMD8<Int32>(truncatingIfNeeded: UnsafeRawPointer(ap + out).loadUnaligned(as: SIMD8<UInt8>.self))
            } else {
                for l in 0..<8 { g[l] = dyp[out + l * laneStride]; k[l] = Int32(ap[out + l * laneStride]) }
            }
            // Float masks for Float selects: an Int32 mask on a Float vector compiles to a lane-by-lane loop.
            let zero = SIMD8<Float>.zero, winner = SIMD8<Float>(k)
            store8(zero.replacing(with: g, where: winner .== 0), dxp + p0)
            store8(zero.replacing(with: g, where: winner .== 1), dxp + p1)
            store8(zero.replacing(with: g, where: winner .== 2), dxp + p2)
            store8(zero.replacing(with: g, where: winner .== 3), dxp + p3)
        }
    }
}

/// Calls `body(p0, p1, p2, p3, out, laneStride)` for every 2×2 window and 8 channels of the channel-blocked
/// [n, c, h, w] input's `images`: p0…p3 the float offsets of the window's pixels in scan order (8 channels
/// each, contiguous), `out` the offset of the output element of the first channel and `laneStride` the
/// step between the 8 channels in the output layout (1 when blocked, the plane size when NCHW). Call it
/// inside the worker's closure with a closure literal, so that `body` inlines.
@inline(__always)
private func forEachPoolingWindow(_ images: Range<Int>, c: Int, h: Int, w: Int, _ inputLayout: ActivationLayout,
                                  _ outputLayout: ActivationLayout,
                                  _ body: (Int, Int, Int, Int, Int, Int) -> Void) {
    // fatalError, not precondition: -Ounchecked (this module's flag) drops preconditions.
    guard let b = inputLayout.block, c % b == 0, b % 8 == 0, outputLayout == .nchw || outputLayout == inputLayout else {
        fatalError("blocked max pool: \(c) channels from \(inputLayout) to \(outputLayout)")
    }
    let (oh, ow) = (h / 2, w / 2)
    let laneStride = outputLayout == .nchw ? oh * ow : 1
    let outPixel = outputLayout == .nchw ? 1 : b   // floats from one output pixel to the next
    for i in images {
        for block in stride(from: 0, to: c, by: b) {
            // Pixel 0 of the block's channels (hoisted: the layouts' index divides by the block). The
            // block's 8-channel groups innermost: each window pixel's cache line is written whole.
            let inBase = inputLayout.index(i, block, 0, channels: c, spatial: h * w)
            let outBase = outputLayout.index(i, block, 0, channels: c, spatial: oh * ow)
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let p0 = inBase + (2 * oy * w + 2 * ox) * b, p2 = p0 + w * b
                    let out = outBase + (oy * ow + ox) * outPixel
                    for group in stride(from: 0, to: b, by: 8) {
                        body(p0 + group, p0 + b + group, p2 + group, p2 + b + group, out + group * laneStride, laneStride)
                    }
                }
            }
        }
    }
}

/// y[i, ch] = mean over h·w of x[i, ch]; y is [n, c] whatever the layout of x. Each channel is summed
/// over its pixels in order in both layouts, so the two give the same bits.
public func globalAveragePoolForward(_ y: UnsafeMutableBufferPointer<Float>, _ x: UnsafeBufferPointer<Float>,
                                     n: Int, c: Int, spatial: Int, layout: ActivationLayout = .nchw) {
    precondition(x.count == n * c * spatial && y.count == n * c)
    let inv = 1 / Float(spatial)
    if let b = layout.block {
        precondition(c % b == 0 && b % 8 == 0, "global average pool: \(c) channels in \(layout)")
        for i in 0..<n {
            for group in 0..<(c / 8) {   // 8 channels: lanes of one vector per pixel
                let row = x.baseAddress! + ((i * (c / b) + group * 8 / b) * spatial) * b + group * 8 % b
                var acc = SIMD8<Float>.zero
                for k in 0..<spatial { acc += load8(row + k * b) }
                store8(acc * SIMD8(repeating: inv), y.baseAddress! + i * c + group * 8)
            }
        }
        return
    }
    for p in 0..<(n * c) {
        var s: Float = 0
        let xs = x.baseAddress! + p * spatial
        for k in 0..<spatial { s += xs[k] }
        y[p] = s * inv
    }
}

/// dx = dy / (h·w), broadcast over the plane (dx in `layout`, dy [n, c])
public func globalAveragePoolBackward(_ dx: UnsafeMutableBufferPointer<Float>, _ dy: UnsafeBufferPointer<Float>,
                                      n: Int, c: Int, spatial: Int, layout: ActivationLayout = .nchw) {
    precondition(dx.count == n * c * spatial && dy.count == n * c)
    let inv = 1 / Float(spatial)
    if let b = layout.block {
        precondition(c % b == 0 && b % 8 == 0, "global average pool: \(c) channels in \(layout)")
        for i in 0..<n {
            for group in 0..<(c / 8) {
                let row = dx.baseAddress! + ((i * (c / b) + group * 8 / b) * spatial) * b + group * 8 % b
                let g = load8(dy.baseAddress! + i * c + group * 8) * SIMD8(repeating: inv)
                for k in 0..<spatial { store8(g, row + k * b) }
            }
        }
        return
    }
    for p in 0..<(n * c) {
        let g = dy[p] * inv
        let d = dx.baseAddress! + p * spatial
        for k in 0..<spatial { d[k] = g }
    }
}

/// Option-A shortcut: y[i, pad + ch, oy, ox] = x[i, ch, 2·oy, 2·ox]; the other channels are 0.
/// y has c + 2·pad channels and ceil(h/2) × ceil(w/2) pixels (x[:, :, ::2, ::2]); x in `inputLayout`,
/// y in `outputLayout`.
public func shortcutOptionAForward(_ y: UnsafeMutableBufferPointer<Float>, _ x: UnsafeBufferPointer<Float>,
                                   n: Int, c: Int, h: Int, w: Int, pad: Int,
                                   inputLayout: ActivationLayout = .nchw, outputLayout: ActivationLayout = .nchw) {
    let (oh, ow, oc) = ((h + 1) / 2, (w + 1) / 2, c + 2 * pad)
    precondition(x.count == n * c * h * w && y.count == n * oc * oh * ow)
    y.update(repeating: 0)
    copySubsampledChannels(n: n, c: c, h: h, w: w, pad: pad, inputLayout, outputLayout) { input, output in
        y[output] = x[input]
    } vectors: { input, output in
        store8(load8(x.baseAddress! + input), y.baseAddress! + output)
    }
}

/// dx[i, ch, 2·oy, 2·ox] = dy[i, pad + ch, oy, ox], the other elements of dx 0 (dx in `inputLayout`,
/// dy in `outputLayout`)
public func shortcutOptionABackward(_ dx: UnsafeMutableBufferPointer<Float>, _ dy: UnsafeBufferPointer<Float>,
                                    n: Int, c: Int, h: Int, w: Int, pad: Int,
                                    inputLayout: ActivationLayout = .nchw, outputLayout: ActivationLayout = .nchw) {
    let (oh, ow, oc) = ((h + 1) / 2, (w + 1) / 2, c + 2 * pad)
    precondition(dx.count == n * c * h * w && dy.count == n * oc * oh * ow)
    dx.update(repeating: 0)
    copySubsampledChannels(n: n, c: c, h: h, w: w, pad: pad, inputLayout, outputLayout) { input, output in
        dx[input] = dy[output]
    } vectors: { input, output in
        store8(load8(dy.baseAddress! + output), dx.baseAddress! + input)
    }
}

/// Calls `element(input, output)` with the flat indices of every pair (x[i, ch, 2·oy, 2·ox],
/// y[i, pad + ch, oy, ox]) — or `vectors` once per 8 channels when both layouts are channel-blocked and
/// `pad` keeps 8-channel groups whole (there 8 consecutive channels of a pixel are 8 consecutive floats).
@inline(__always)
private func copySubsampledChannels(n: Int, c: Int, h: Int, w: Int, pad: Int, _ inputLayout: ActivationLayout,
                                    _ outputLayout: ActivationLayout, _ element: (Int, Int) -> Void,
                                    vectors: (Int, Int) -> Void) {
    let (oh, ow, oc) = ((h + 1) / 2, (w + 1) / 2, c + 2 * pad)
    let grouped = inputLayout.block != nil && outputLayout.block != nil && pad % 8 == 0 && c % 8 == 0
    for i in 0..<n {
        for ch in stride(from: 0, to: c, by: grouped ? 8 : 1) {
            // Pixel 0 of the channel in each layout, and the step from one pixel to the next (hoisted:
            // a blocked layout's index divides by the block).
            let inBase = inputLayout.index(i, ch, 0, channels: c, spatial: h * w)
            let outBase = outputLayout.index(i, pad + ch, 0, channels: oc, spatial: oh * ow)
            let (inPixel, outPixel) = (inputLayout.block ?? 1, outputLayout.block ?? 1)
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let input = inBase + (2 * oy * w + 2 * ox) * inPixel, output = outBase + (oy * ow + ox) * outPixel
                    if grouped { vectors(input, output) } else { element(input, output) }
                }
            }
        }
    }
}
