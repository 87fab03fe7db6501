// Layout changes between plain NCHW and oneDNN's channel-blocked nChw16c / nChw8c (blocks of `block`
// channels innermost: element (i, ch, s) at ((i·c/block + ch/block)·spatial + s)·block + ch % block).
// oneDNN's own reorder for these moved about 5 GB/s on this machine (1.65 ms for a 128×16×32×32
// tensor, ONEDNN_VERBOSE) and was 30 % of ResNet-20's oneDNN time; these are 8×8 SIMD transposes,
// split over the workers by (image, channel block). Pure data movement: results are bit-identical.

/// Layouts these kernels handle: whole channel blocks of 8 or 16, and planes of whole 8-pixel vectors.
public func channelBlockingSupported(channels: Int, spatial: Int, block: Int) -> Bool {
    (block == 8 || block == 16) && channels % block == 0 && spatial % 8 == 0 && spatial > 0
}

/// plain NCHW → nChw{block}c.
public func reorderToChannelBlocks(_ blocked: UnsafeMutablePointer<Float>, from plain: UnsafePointer<Float>,
                                   n: Int, c: Int, spatial: Int, block: Int) {
    reorderTiles(blocked, from: plain, n: n, c: c, spatial: spatial, block: block, plainIsSource: true)
}

/// nChw{block}c → plain NCHW.
public func reorderFromChannelBlocks(_ plain: UnsafeMutablePointer<Float>, from blocked: UnsafePointer<Float>,
                                     n: Int, c: Int, spatial: Int, block: Int) {
    reorderTiles(plain, from: blocked, n: n, c: c, spatial: spatial, block: block, plainIsSource: false)
}

extension Tensor {
    /// This [n, c, h, w] activation in `layout`: itself when it already is, else a reordered copy in
    /// `buffer` (between two channel-blocked layouts through NCHW).
    public func converted(to layout: ActivationLayout, reusing buffer: inout ReusableTensor) -> Tensor {
        if layout == self.layout { return self }
        precondition(rank == 4, "layout change of a \(shape) tensor")
        let (n, c, spatial) = (shape[0], shape[1], shape[2] * shape[3])
        let out = buffer.get(shape, layout: layout)
        let supported = [self.layout, layout].allSatisfy {
            $0.block.map { channelBlockingSupported(channels: c, spatial: spatial, block: $0) } ?? true
        }
        guard supported else {   // element by element (geometries the SIMD tiles do not cover)
            for i in 0..<n { for ch in 0..<c { for s in 0..<spatial {
                out[layout.index(i, ch, s, channels: c, spatial: spatial)] =
                    self[self.layout.index(i, ch, s, channels: c, spatial: spatial)]
            } } }
            return out
        }
        switch (self.layout, layout) {
        case (.nchw, .channelBlocked(let b)):
            reorderToChannelBlocks(out.pointer, from: pointer, n: n, c: c, spatial: spatial, block: b)
        case (.channelBlocked(let b), .nchw):
            reorderFromChannelBlocks(out.pointer, from: pointer, n: n, c: c, spatial: spatial, block: b)
        default:
            var plain = ReusableTensor()
            return converted(to: .nchw, reusing: &plain).converted(to: layout, reusing: &buffer)
        }
        return out
    }
}

/// One (image, channel block) plane per work item; each 8×8 tile (8 channels × 8 pixels) is loaded as 8
/// rows, transposed and stored as 8 rows. The plane starts at the same offset in both layouts.
private func reorderTiles(_ destination: UnsafeMutablePointer<Float>, from source: UnsafePointer<Float>,
                          n: Int, c: Int, spatial: Int, block: Int, plainIsSource: Bool) {
    // fatalError, not precondition: -Ounchecked (this module's flag) drops preconditions.
    guard channelBlockingSupported(channels: c, spatial: spatial, block: block) else {
        fatalError("channel-block reorder of \(c) channels × \(spatial) pixels, block \(block)")
    }
    nonisolated(unsafe) let (dst, src) = (destination, source)
    // Offsets of tile (s0, j0) and strides between its rows, in the plain and the blocked layout.
    @inline(__always) func plainTile(_ s0: Int, _ j0: Int) -> Int { j0 * spatial + s0 }
    @inline(__always) func blockedTile(_ s0: Int, _ j0: Int) -> Int { s0 * block + j0 }
    let (inStride, outStride) = plainIsSource ? (spatial, block) : (block, spatial)
    Parallel.forEachChunk(n * (c / block), minimumPerWorker: Swift.max(1, 4_096 / (spatial * block))) { planes in
        for plane in planes {
            let from = src + plane * block * spatial, to = dst + plane * block * spatial
            // Both 8-channel halves of a pixel's 64-byte block back to back: whole cache lines per pass.
            for s0 in stride(from: 0, to: spatial, by: 8) {
                for j0 in stride(from: 0, to: block, by: 8) {
                    let input = from + (plainIsSource ? plainTile(s0, j0) : blockedTile(s0, j0))
                    let out = to + (plainIsSource ? blockedTile(s0, j0) : plainTile(s0, j0))
                    let t = transpose8x8(
                        load8(input), load8(input + inStride), load8(input + 2 * inStride), load8(input + 3 * inStride),
                        load8(input + 4 * inStride), load8(input + 5 * inStride), load8(input + 6 * inStride),
                        load8(input + 7 * inStride))
                    store8(t.0, out); store8(t.1, out + outStride); store8(t.2, out + 2 * outStride)
                    store8(t.3, out + 3 * outStride); store8(t.4, out + 4 * outStride); store8(t.5, out + 5 * outStride)
                    store8(t.6, out + 6 * outStride); store8(t.7, out + 7 * outStride)
                }
            }
        }
    }
}

/// The transpose of the 8×8 matrix with rows r0…r7. Three rounds of "even lanes of each row pair, then
/// odd lanes": each round rotates the 6 bits of an element's row-major index right by one, and three
/// rotations turn (row, column) into (column, row).
@inline(__always)
func transpose8x8(_ r0: SIMD8<Float>, _ r1: SIMD8<Float>, _ r2: SIMD8<Float>, _ r3: SIMD8<Float>,
                  _ r4: SIMD8<Float>, _ r5: SIMD8<Float>, _ r6: SIMD8<Float>, _ r7: SIMD8<Float>)
    -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
    @inline(__always) func round(
        _ a: (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)
    ) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        let p0 = SIMD16(lowHalf: a.0, highHalf: a.1), p1 = SIMD16(lowHalf: a.2, highHalf: a.3)
        let p2 = SIMD16(lowHalf: a.4, highHalf: a.5), p3 = SIMD16(lowHalf: a.6, highHalf: a.7)
        return (p0.evenHalf, p1.evenHalf, p2.evenHalf, p3.evenHalf, p0.oddHalf, p1.oddHalf, p2.oddHalf, p3.oddHalf)
    }
    return round(round(round((r0, r1, r2, r3, r4, r5, r6, r7))))
}
