// Elementwise kernels of the layers: float ReLU forward/backward, the residual add, a batch copy.
// SIMD8 with `.replacing(with:where:)`; 2 workers over blocks.

/// y = max(x, 0)
public func reluForward(_ y: UnsafeMutableBufferPointer<Float>, _ x: UnsafeBufferPointer<Float>) {
    precondition(y.count == x.count)
    let yp = UnsafeMutableRawPointer(y.baseAddress!), xp = UnsafeRawPointer(x.baseAddress!)
    let n = x.count
    nonisolated(unsafe) let (ys, xs) = (yp, xp)
    Parallel.forEachChunk(n / 8, minimumPerWorker: 16_384) { r in
        let zero = SIMD8<Float>(repeating: 0)
        for i in r {
            let v = xs.loadUnaligned(fromByteOffset: i * 32, as: SIMD8<Float>.self)
            ys.storeBytes(of: v.replacing(with: zero, where: v .< zero), toByteOffset: i * 32, as: SIMD8<Float>.self)
        }
    }
    for i in (n / 8 * 8)..<n { y[i] = Swift.max(x[i], 0) }
}

/// dx += dy · 1{x > 0}  (accumulates, like every backward kernel; `accumulate: false` writes
/// dx = dy · 1{x > 0} without reading dx, for a layer's fresh input-gradient buffer)
public func reluBackward(_ dx: UnsafeMutableBufferPointer<Float>, _ dy: UnsafeBufferPointer<Float>,
                         _ x: UnsafeBufferPointer<Float>, accumulate: Bool = true) {
    precondition(dx.count == x.count && dy.count == x.count)
    nonisolated(unsafe) let (dxs, dys, xs) = (UnsafeMutableRawPointer(dx.baseAddress!),
                                             UnsafeRawPointer(dy.baseAddress!), UnsafeRawPointer(x.baseAddress!))
    let n = x.count
    Parallel.forEachChunk(n / 8, minimumPerWorker: 16_384) { r in
        let zero = SIMD8<Float>(repeating: 0)
        for i in r {
            let v = xs.loadUnaligned(fromByteOffset: i * 32, as: SIMD8<Float>.self)
            let g = dys.loadUnaligned(fromByteOffset: i * 32, as: SIMD8<Float>.self)
            let d = accumulate ? dxs.loadUnaligned(fromByteOffset: i * 32, as: SIMD8<Float>.self) : zero
            dxs.storeBytes(of: d + g.replacing(with: zero, where: v .<= zero), toByteOffset: i * 32,
                           as: SIMD8<Float>.self)
        }
    }
    for i in (n / 8 * 8)..<n { dx[i] = (accumulate ? dx[i] : 0) + (x[i] > 0 ? dy[i] : 0) }
}

/// y = a + b
public func addForward(_ y: UnsafeMutableBufferPointer<Float>, _ a: UnsafeBufferPointer<Float>,
                       _ b: UnsafeBufferPointer<Float>) {
    precondition(y.count == a.count && b.count == a.count)
    nonisolated(unsafe) let (ys, as_, bs) = (UnsafeMutableRawPointer(y.baseAddress!),
                                            UnsafeRawPointer(a.baseAddress!), UnsafeRawPointer(b.baseAddress!))
    let n = a.count
    Parallel.forEachChunk(n / 8, minimumPerWorker: 16_384) { r in
        for i in r {
            let u = as_.loadUnaligned(fromByteOffset: i * 32, as: SIMD8<Float>.self)
            let v = bs.loadUnaligned(fromByteOffset: i * 32, as: SIMD8<Float>.self)
            ys.storeBytes(of: u + v, toByteOffset: i * 32, as: SIMD8<Float>.self)
        }
    }
    for i in (n / 8 * 8)..<n { y[i] = a[i] + b[i] }
}

/// y += x
public func accumulate(_ y: UnsafeMutableBufferPointer<Float>, _ x: UnsafeBufferPointer<Float>) {
    precondition(y.count == x.count)
    for i in 0..<x.count { y[i] += x[i] }
}

/// y = x for [n, …] tensors, split over the n images as the layers around it split them, so that each
/// worker copies the images its own cache holds (Flatten's copy between pooling and a linear layer).
public func copyImages(_ y: UnsafeMutableBufferPointer<Float>, _ x: UnsafeBufferPointer<Float>, images n: Int) {
    precondition(y.count == x.count && n > 0 && x.count % n == 0)
    nonisolated(unsafe) let (ys, xs) = (y.baseAddress!, x.baseAddress!)
    let row = x.count / n
    Parallel.forEachChunk(n, minimumPerWorker: Swift.max(1, 8_192 / Swift.max(1, row))) { images in
        (ys + images.lowerBound * row).update(from: xs + images.lowerBound * row, count: images.count * row)
    }
}
