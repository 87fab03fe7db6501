// The readable reference convolution: im2col + OpenBLAS sgemm (OpenBLAS at 1 thread), images split
// over the Kernels' Dispatch workers. The test reference for oneDNN and the fallback without it.
import COpenBLAS
import Kernels

public final class ReferenceBackend: ConvolutionBackend {
    public let name = "reference (im2col + OpenBLAS sgemm)"
    public init() {}
    public func convolution(_ geometry: Conv2DGeometry, bias: Bool) -> Convolution2D {
        ReferenceConvolution(geometry, bias: bias)
    }
}

public final class ReferenceConvolution: Convolution2D {
    public let geometry: Conv2DGeometry
    public let hasBias: Bool
    public let implementation = "im2col+sgemm"

    public init(_ geometry: Conv2DGeometry, bias: Bool) {
        self.geometry = geometry
        hasBias = bias
    }

    private var patch: Int { geometry.inChannels * geometry.kernel * geometry.kernel }  // rows of a column matrix
    private var pixels: Int { geometry.outHeight * geometry.outWidth }                   // its columns

    /// col[(ch·k + ky)·k + kx, oy·ow + ox] = x[ch, oy·s − p + ky, ox·s − p + kx] (0 outside the image)
    private func im2col(_ col: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>) {
        let g = geometry, (oh, ow) = (g.outHeight, g.outWidth)
        for ch in 0..<g.inChannels {
            for ky in 0..<g.kernel {
                for kx in 0..<g.kernel {
                    let row = col + ((ch * g.kernel + ky) * g.kernel + kx) * oh * ow
                    for oy in 0..<oh {
                        let iy = oy * g.stride - g.padding + ky
                        let dst = row + oy * ow
                        if iy < 0 || iy >= g.height { dst.update(repeating: 0, count: ow); continue }
                        let src = x + (ch * g.height + iy) * g.width
                        for ox in 0..<ow {
                            let ix = ox * g.stride - g.padding + kx
                            dst[ox] = (ix >= 0 && ix < g.width) ? src[ix] : 0
                        }
                    }
                }
            }
        }
    }

    /// dx[ch, iy, ix] += col[...]: the adjoint of im2col.
    private func col2im(_ dx: UnsafeMutablePointer<Float>, _ col: UnsafePointer<Float>) {
        let g = geometry, (oh, ow) = (g.outHeight, g.outWidth)
        for ch in 0..<g.inChannels {
            for ky in 0..<g.kernel {
                for kx in 0..<g.kernel {
                    let row = col + ((ch * g.kernel + ky) * g.kernel + kx) * oh * ow
                    for oy in 0..<oh {
                        let iy = oy * g.stride - g.padding + ky
                        if iy < 0 || iy >= g.height { continue }
                        let dst = dx + (ch * g.height + iy) * g.width
                        for ox in 0..<ow {
                            let ix = ox * g.stride - g.padding + kx
                            if ix >= 0 && ix < g.width { dst[ix] += row[oy * ow + ox] }
                        }
                    }
                }
            }
        }
    }

    public func forward(input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        output: UnsafeMutablePointer<Float>) {
        let g = geometry, (k, p) = (patch, pixels)
        nonisolated(unsafe) let (x, w, b, y) = (input, weight, bias, output)
        Parallel.forEachChunk(g.batch) { images in
            let col = UnsafeMutablePointer<Float>.allocate(capacity: k * p)
            defer { col.deallocate() }
            for i in images {
                im2col(col, x + i * g.inChannels * g.height * g.width)
                let yi = y + i * g.outChannels * p
                // y_i[outC, P] = W[outC, K] · col[K, P]
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(g.outChannels), Int32(p), Int32(k),
                            1, w, Int32(k), col, Int32(p), 0, yi, Int32(p))
                if let b {
                    for o in 0..<g.outChannels { for j in 0..<p { yi[o * p + j] += b[o] } }
                }
            }
        }
    }

    public func backwardData(outputGrad: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                             inputGrad: UnsafeMutablePointer<Float>) {
        let g = geometry, (k, p) = (patch, pixels)
        nonisolated(unsafe) let (dy, w, dx) = (outputGrad, weight, inputGrad)
        Parallel.forEachChunk(g.batch) { images in
            let col = UnsafeMutablePointer<Float>.allocate(capacity: k * p)
            defer { col.deallocate() }
            for i in images {
                // dcol[K, P] = Wᵀ[K, outC] · dy_i[outC, P]
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(k), Int32(p), Int32(g.outChannels),
                            1, w, Int32(k), dy + i * g.outChannels * p, Int32(p), 0, col, Int32(p))
                let dxi = dx + i * g.inChannels * g.height * g.width
                dxi.update(repeating: 0, count: g.inChannels * g.height * g.width)
                col2im(dxi, col)
            }
        }
    }

    public func backwardWeights(input: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>,
                                weightGrad: UnsafeMutablePointer<Float>, biasGrad: UnsafeMutablePointer<Float>?) {
        let g = geometry, (k, p) = (patch, pixels)
        // One partial sum per worker, added in worker order: deterministic for a fixed worker count.
        let workers = max(1, min(Parallel.workers, g.batch))
        let partials = UnsafeMutablePointer<Float>.allocate(capacity: workers * g.weightCount)
        defer { partials.deallocate() }
        partials.update(repeating: 0, count: workers * g.weightCount)
        nonisolated(unsafe) let (x, dy, parts) = (input, outputGrad, partials)
        Parallel.forEachChunk(workers) { ws in
            for wk in ws {
                let lo = g.batch * wk / workers, hi = g.batch * (wk + 1) / workers
                let col = UnsafeMutablePointer<Float>.allocate(capacity: k * p)
                defer { col.deallocate() }
                for i in lo..<hi {
                    im2col(col, x + i * g.inChannels * g.height * g.width)
                    // dW[outC, K] += dy_i[outC, P] · colᵀ[P, K]
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(g.outChannels), Int32(k), Int32(p),
                                1, dy + i * g.outChannels * p, Int32(p), col, Int32(p), 1,
                                parts + wk * g.weightCount, Int32(k))
                }
            }
        }
        weightGrad.update(from: partials, count: g.weightCount)
        for wk in 1..<workers {
            for j in 0..<g.weightCount { weightGrad[j] += partials[wk * g.weightCount + j] }
        }
        if let db = biasGrad {
            for o in 0..<g.outChannels {
                var s: Float = 0
                for i in 0..<g.batch {
                    let row = dy + (i * g.outChannels + o) * p
                    for j in 0..<p { s += row[j] }
                }
                db[o] = s
            }
        }
    }
}
