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
    precondition(channelBlockingSupported(channels: c, spatial: spatial, block: block))
    nonisolated(unsafe) let (dst, src) = (blocked, plain)
    Parallel.forEachChunk(n * (c / block), minimumPerWorker: Swift.max(1, 4_096 / (spatial * block))) { planes in
        for plane in planes {
            // plane = i·(c/block) + cb: its `block` plain channel rows start at plane·block·spatial too.
            let from = src + plane * block * spatial, to = dst + plane * spatial * block
            // Both 8-channel halves of a pixel's 64-byte block back to back: whole cache lines written.
            for s0 in stride(from: 0, to: spatial, by: 8) {
                for j0 in stride(from: 0, to: block, by: 8) {
                    let rows = from + j0 * spatial + s0
                    let t = transpose8x8(
                        load8(rows), load8(rows + spatial), load8(rows + 2 * spatial), load8(rows + 3 * spatial),
                        load8(rows + 4 * spatial), load8(rows + 5 * spatial), load8(rows + 6 * spatial),
                        load8(rows + 7 * spatial))
                    let out = to + s0 * block + j0
                    store8(t.0, out); store8(t.1, out + block); store8(t.2, out + 2 * block)
                    store8(t.3, out + 3 * block); store8(t.4, out + 4 * block); store8(t.5, out + 5 * block)
                    store8(t.6, out + 6 * block); store8(t.7, out + 7 * block)
                }
            }
        }
    }
}

/// nChw{block}c → plain NCHW.
public func reorderFromChannelBlocks(_ plain: UnsafeMutablePointer<Float>, from blocked: UnsafePointer<Float>,
                                     n: Int, c: Int, spatial: Int, block: Int) {
    precondition(channelBlockingSupported(channels: c, spatial: spatial, block: block))
    nonisolated(unsafe) let (dst, src) = (plain, blocked)
    Parallel.forEachChunk(n * (c / block), minimumPerWorker: Swift.max(1, 4_096 / (spatial * block))) { planes in
        for plane in planes {
            let from = src + plane * spatial * block, to = dst + plane * block * spatial
            // Both 8-channel halves of a pixel's 64-byte block back to back: whole cache lines read.
            for s0 in stride(from: 0, to: spatial, by: 8) {
                for j0 in stride(from: 0, to: block, by: 8) {
                    let pixels = from + s0 * block + j0
                    let t = transpose8x8(
                        load8(pixels), load8(pixels + block), load8(pixels + 2 * block), load8(pixels + 3 * block),
                        load8(pixels + 4 * block), load8(pixels + 5 * block), load8(pixels + 6 * block),
                        load8(pixels + 7 * block))
                    let out = to + j0 * spatial + s0
                    store8(t.0, out); store8(t.1, out + spatial); store8(t.2, out + 2 * spatial)
                    store8(t.3, out + 3 * spatial); store8(t.4, out + 4 * spatial); store8(t.5, out + 5 * spatial)
                    store8(t.6, out + 6 * spatial); store8(t.7, out + 7 * spatial)
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

@inline(__always)
private func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}
