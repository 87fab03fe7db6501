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
                let r0 = xs + 2 * oy * w, r1 = r0 + w
                for ox in 0..<ow {
                    var best = r0[2 * ox], k: UInt8 = 0
                    if r0[2 * ox + 1] > best { best = r0[2 * ox + 1]; k = 1 }
                    if r1[2 * ox] > best { best = r1[2 * ox]; k = 2 }
                    if r1[2 * ox + 1] > best { best = r1[2 * ox + 1]; k = 3 }
                    ys[oy * ow + ox] = best
                    as_[oy * ow + ox] = k
                }
            }
        }
    }
}

/// dx[winner] += dy
public func maxPool2Backward(_ dx: UnsafeMutableBufferPointer<Float>, _ dy: UnsafeBufferPointer<Float>,
                             argmax: UnsafeBufferPointer<UInt8>, n: Int, c: Int, h: Int, w: Int) {
    let (oh, ow) = (h / 2, w / 2)
    precondition(dx.count == n * c * h * w && dy.count == n * c * oh * ow && argmax.count == dy.count)
    nonisolated(unsafe) let (dxp, dyp, ap) = (dx.baseAddress!, dy.baseAddress!, argmax.baseAddress!)
    Parallel.forEachChunk(n * c, minimumPerWorker: Swift.max(1, 8_192 / Swift.max(1, h * w))) { planes in
        for p in planes {
            let dxs = dxp + p * h * w, dys = dyp + p * oh * ow, as_ = ap + p * oh * ow
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let k = Int(as_[oy * ow + ox])
                    dxs[(2 * oy + (k >> 1)) * w + 2 * ox + (k & 1)] += dys[oy * ow + ox]
                }
            }
        }
    }
}

/// y[i, ch] = mean over h·w of x[i, ch]
public func globalAveragePoolForward(_ y: UnsafeMutableBufferPointer<Float>, _ x: UnsafeBufferPointer<Float>,
                                     n: Int, c: Int, spatial: Int) {
    precondition(x.count == n * c * spatial && y.count == n * c)
    let inv = 1 / Float(spatial)
    for p in 0..<(n * c) {
        var s: Float = 0
        let xs = x.baseAddress! + p * spatial
        for k in 0..<spatial { s += xs[k] }
        y[p] = s * inv
    }
}

/// dx += dy / (h·w), broadcast over the plane
public func globalAveragePoolBackward(_ dx: UnsafeMutableBufferPointer<Float>, _ dy: UnsafeBufferPointer<Float>,
                                      n: Int, c: Int, spatial: Int) {
    precondition(dx.count == n * c * spatial && dy.count == n * c)
    let inv = 1 / Float(spatial)
    for p in 0..<(n * c) {
        let g = dy[p] * inv
        let d = dx.baseAddress! + p * spatial
        for k in 0..<spatial { d[k] += g }
    }
}

/// Option-A shortcut: y[i, pad + ch, oy, ox] = x[i, ch, 2·oy, 2·ox]; the other channels are 0.
/// y has c + 2·pad channels and ceil(h/2) × ceil(w/2) pixels (x[:, :, ::2, ::2]).
public func shortcutOptionAForward(_ y: UnsafeMutableBufferPointer<Float>, _ x: UnsafeBufferPointer<Float>,
                                   n: Int, c: Int, h: Int, w: Int, pad: Int) {
    let (oh, ow, oc) = ((h + 1) / 2, (w + 1) / 2, c + 2 * pad)
    precondition(x.count == n * c * h * w && y.count == n * oc * oh * ow)
    y.update(repeating: 0)
    for i in 0..<n {
        for ch in 0..<c {
            let xs = x.baseAddress! + (i * c + ch) * h * w, ys = y.baseAddress! + (i * oc + pad + ch) * oh * ow
            for oy in 0..<oh { for ox in 0..<ow { ys[oy * ow + ox] = xs[2 * oy * w + 2 * ox] } }
        }
    }
}

/// dx[i, ch, 2·oy, 2·ox] += dy[i, pad + ch, oy, ox]
public func shortcutOptionABackward(_ dx: UnsafeMutableBufferPointer<Float>, _ dy: UnsafeBufferPointer<Float>,
                                    n: Int, c: Int, h: Int, w: Int, pad: Int) {
    let (oh, ow, oc) = ((h + 1) / 2, (w + 1) / 2, c + 2 * pad)
    precondition(dx.count == n * c * h * w && dy.count == n * oc * oh * ow)
    for i in 0..<n {
        for ch in 0..<c {
            let ds = dx.baseAddress! + (i * c + ch) * h * w, gs = dy.baseAddress! + (i * oc + pad + ch) * oh * ow
            for oy in 0..<oh { for ox in 0..<ow { ds[2 * oy * w + 2 * ox] += gs[oy * ow + ox] } }
        }
    }
}
