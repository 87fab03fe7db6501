// DirectConvolution's backward-weights vectorised over output channels (DirectConvolution.swift says which pass runs
// where): dy transposed to channels-last per image, so that the 8 lanes are 8 output channels and the weight
// gradients need no horizontal sums; for outputs a multiple of 8.

extension DirectConvolution {
    /// Shapes `backwardWeightsOverChannels` handles: output channels a multiple of the vector.
    public static func supportsChannelVectors(_ s: DirectConvShape) -> Bool {
        s.kernel >= 1 && s.padding >= 0 && s.padding < s.kernel && s.outChannels % 8 == 0 && s.outHeight >= 1
            && s.outWidth >= 1 && s.batch >= 1 && s.inChannels >= 1
    }

    /// dw = Σ dy ⋆ x (overwritten), db = Σ dy when given — for layers with wide outputs and few inputs
    /// (LeNet-5 conv2, 6→16): dy is transposed to channels-last per image so that one FMA updates 8
    /// output channels of one (input channel, tap) and every lane does useful work, whatever the row width.
    public static func backwardWeightsOverChannels(_ s: DirectConvShape, input: UnsafePointer<Float>,
                                                   outputGrad: UnsafePointer<Float>,
                                                   weightGrad: UnsafeMutablePointer<Float>,
                                                   biasGrad: UnsafeMutablePointer<Float>?) {
        precondition(supportsChannelVectors(s), "direct convolution: unsupported shape \(s) (channel vectors)")
        let weightCount = s.outChannels * s.inChannels * s.taps
        let sums = weightCount + s.outChannels  // weights in [ci][ky][kx][co] order, then bias
        let parts = Swift.max(1, Swift.min(Parallel.workers, s.batch))
        withUnsafeTemporaryAllocation(of: Float.self, capacity: parts * sums) { partial in
            nonisolated(unsafe) let (x, dy, out) = (input, outputGrad, partial.baseAddress!)
            Parallel.forEachPart(parts) { part in
                channelVectorWeights(s, Parallel.share(part, of: parts, count: s.batch), input: x, outputGrad: dy, sums: out + part * sums, bias: biasGrad != nil)
            }
            let (co, ci, k) = (s.outChannels, s.inChannels, s.kernel)
            for i in 0..<ci {
                for t in 0..<s.taps {
                    for o in 0..<co {
                        weightGrad[(o * ci + i) * k * k + t] =
                            totalOfParts(partial, parts: parts, stride: sums, slot: (i * s.taps + t) * co + o)
                    }
                }
            }
            if let biasGrad {
                for o in 0..<co { biasGrad[o] = totalOfParts(partial, parts: parts, stride: sums, slot: weightCount + o) }
            }
        }
    }

    private static func channelVectorWeights(_ s: DirectConvShape, _ images: Range<Int>, input: UnsafePointer<Float>,
                                             outputGrad: UnsafePointer<Float>, sums: UnsafeMutablePointer<Float>,
                                             bias: Bool) {
        let (k, ci, co, oh, ow, ph, pw) = (s.kernel, s.inChannels, s.outChannels, s.outHeight, s.outWidth,
                                            s.paddedHeight, s.paddedWidth)
        let pixels = oh * ow, groups = co / 8
        let weightVectors = ci * s.taps * groups
        let planeCount = ci * ph * pw
        withUnsafeTemporaryAllocation(of: Float.self, capacity: planeCount) { planeBuffer in
        withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: pixels * groups) { gradBuffer in
        withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: weightVectors + groups) { accBuffer in
            let plane = planeBuffer.baseAddress!, grad = gradBuffer.baseAddress!, acc = accBuffer.baseAddress!
            plane.initialize(repeating: 0, count: planeCount)
            acc.initialize(repeating: .zero, count: weightVectors + groups)
            for n in images {
                copyPadded(s, from: input + n * ci * s.height * s.width, into: plane)
                channelsLastGradient(s, outputGrad + n * co * pixels, into: grad, biasLanes: bias ? acc + weightVectors : nil)
                // Tiles of 5 kernel columns × 2 channel vectors for one (input channel, kernel row).
                for i in 0..<ci {
                    for ky in 0..<k {
                        for ga in stride(from: 0, to: groups, by: 2) {
                            accumulateChannelVectorTiles(s, plane: plane, grad: grad, acc: acc, channel: i, kernelRow: ky,
                                                         group: ga)
                        }
                    }
                }
            }
            // Lanes are output channels: no horizontal sums, just unpack.
            for v in 0..<(weightVectors + groups) {
                for lane in 0..<8 { sums[v * 8 + lane] = acc[v][lane] }
            }
        }
        }
        }
    }

    /// One image's dy channels-last, grad[p·groups + g] = dy[8g ..< 8g + 8, p], summed into the bias lanes when
    /// `biasLanes` is given.
    @inline(__always)
    private static func channelsLastGradient(_ s: DirectConvShape, _ g0: UnsafePointer<Float>,
                                             into grad: UnsafeMutablePointer<SIMD8<Float>>,
                                             biasLanes: UnsafeMutablePointer<SIMD8<Float>>?) {
        let pixels = s.outHeight * s.outWidth, groups = s.outChannels / 8
        for g in 0..<groups {
            for p in 0..<pixels {
                var v = SIMD8<Float>()
                for lane in 0..<8 { v[lane] = g0[(8 * g + lane) * pixels + p] }
                grad[p * groups + g] = v
            }
            guard let biasLanes else { continue }
            var lanes = biasLanes[g]
            for p in 0..<pixels { lanes += grad[p * groups + g] }
            biasLanes[g] = lanes
        }
    }

    /// `channelVectorWeights`' tiles for input channel `i`, kernel row `ky` and channel vectors ga, ga + 1: 5 kernel
    /// columns × 2 channel vectors at a time, over every output pixel of the image in `plane`, into `acc`.
    @inline(__always)
    private static func accumulateChannelVectorTiles(_ s: DirectConvShape, plane: UnsafeMutablePointer<Float>,
                                                     grad: UnsafeMutablePointer<SIMD8<Float>>,
                                                     acc: UnsafeMutablePointer<SIMD8<Float>>, channel i: Int,
                                                     kernelRow ky: Int, group ga: Int) {
        let (k, oh, ow, ph, pw) = (s.kernel, s.outHeight, s.outWidth, s.paddedHeight, s.paddedWidth)
        let groups = s.outChannels / 8
        let gb = Swift.min(ga + 1, groups - 1)
        for kx0 in stride(from: 0, to: k, by: 5) {
            let k0 = kx0, k1 = Swift.min(kx0 + 1, k - 1), k2 = Swift.min(kx0 + 2, k - 1)
            let k3 = Swift.min(kx0 + 3, k - 1), k4 = Swift.min(kx0 + 4, k - 1)
            let slot = (i * k + ky) * k  // + kx, then × groups + g
            @inline(__always) func at(_ kx: Int, _ g: Int) -> Int { (slot + kx) * groups + g }
            var a0 = acc[at(k0, ga)], a1 = acc[at(k1, ga)], a2 = acc[at(k2, ga)]
            var a3 = acc[at(k3, ga)], a4 = acc[at(k4, ga)]
            var b0 = acc[at(k0, gb)], b1 = acc[at(k1, gb)], b2 = acc[at(k2, gb)]
            var b3 = acc[at(k3, gb)], b4 = acc[at(k4, gb)]
            for oy in 0..<oh {
                let row = plane + (i * ph + oy + ky) * pw
                let gr = grad + oy * ow * groups
                for ox in 0..<ow {
                    let da = gr[ox * groups + ga], db = gr[ox * groups + gb]
                    let x = row + ox
                    var u = SIMD8<Float>(repeating: x[k0])
                    a0 = a0.addingProduct(u, da); b0 = b0.addingProduct(u, db)
                    u = SIMD8<Float>(repeating: x[k1])
                    a1 = a1.addingProduct(u, da); b1 = b1.addingProduct(u, db)
                    u = SIMD8<Float>(repeating: x[k2])
                    a2 = a2.addingProduct(u, da); b2 = b2.addingProduct(u, db)
                    u = SIMD8<Float>(repeating: x[k3])
                    a3 = a3.addingProduct(u, da); b3 = b3.addingProduct(u, db)
                    u = SIMD8<Float>(repeating: x[k4])
                    a4 = a4.addingProduct(u, da); b4 = b4.addingProduct(u, db)
                }
            }
            // Store only real slots, each once (repeated columns/groups are dropped).
            let columns = k - kx0, pair = ga + 1 < groups
            acc[at(k0, ga)] = a0
            if pair { acc[at(k0, gb)] = b0 }
            if columns > 1 { acc[at(k1, ga)] = a1; if pair { acc[at(k1, gb)] = b1 } }
            if columns > 2 { acc[at(k2, ga)] = a2; if pair { acc[at(k2, gb)] = b2 } }
            if columns > 3 { acc[at(k3, ga)] = a3; if pair { acc[at(k3, gb)] = b3 } }
            if columns > 4 { acc[at(k4, ga)] = a4; if pair { acc[at(k4, gb)] = b4 } }
        }
    }
}
