// The allocation-free step's building blocks: `ReusableTensor` hands a buffer out again only when
// nobody holds it; backward kernels with `accumulate: false` never read dx (NaN-filled here); the SIMD
// max-pool (vector windows with an overlapping last vector) agrees with a plain scalar reference on
// every width, ties and the odd trailing row/column included.
import XCTest

@testable import Kernels

final class BufferAndPoolingTests: XCTestCase {
    func testReusableTensorReusesOnlyWhenUnheld() {
        var slot = ReusableTensor()
        let a = slot.get([2, 3])
        a[0] = 7
        let b = slot.get([2, 3])  // `a` is still held by this test: a fresh buffer, `a` intact
        XCTAssertNotEqual(a.pointer, b.pointer)
        XCTAssertEqual(a[0], 7)
        withExtendedLifetime((a, b)) {}
    }

    func testReusableTensorHandsBackTheSameStorage() {
        var slot = ReusableTensor()
        var address: UnsafeMutablePointer<Float>?
        do { address = slot.get([8, 8]).pointer }
        let again = slot.get([8, 8])
        XCTAssertEqual(again.pointer, address)
        let other = slot.get([8, 9])  // another count: a new buffer
        XCTAssertEqual(other.shape, [8, 9])
    }

    func testBackwardKernelsOverwriteWithoutReadingWhenNotAccumulating() {
        var rng = SplitMix64(seed: 5)
        let n = 4 * 3 * 19  // SIMD body and scalar tail
        let x = (0..<n).map { _ in rng.nextGaussian() }, dy = (0..<n).map { _ in rng.nextGaussian() }
        func run(_ base: Float, _ accumulate: Bool, _ body: (UnsafeMutableBufferPointer<Float>, Bool) -> Void) -> [Float] {
            var dx = [Float](repeating: base, count: n)
            dx.withUnsafeMutableBufferPointer { body($0, accumulate) }
            return dx
        }
        let spec = QuantizerSpec(bits: 2, alpha: 0.6511)
        let shape = BatchNormShape(n: 4, c: 3, spatial: 19)
        // Buffers that outlive the closures below (a pointer taken from an array argument dangles after the call).
        func stable(_ values: [Float]) -> UnsafeBufferPointer<Float> {
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: values.count)
            _ = b.initialize(from: values)
            return UnsafeBufferPointer(b)
        }
        let dyB = stable(dy), xB = stable(x)
        let meanB = stable([Float](repeating: 0.1, count: 3)), invstdB = stable([Float](repeating: 1.3, count: 3))
        defer { for b in [dyB, xB, meanB, invstdB] { b.deallocate() } }
        let kernels: [(String, (UnsafeMutableBufferPointer<Float>, Bool) -> Void)] = [
            ("relu", { d, a in reluBackward(d, dyB, xB, accumulate: a) }),
            ("qrelu", { d, a in
                quantizedReLUBackward(d, dyB, xB,
                                      spec: spec, ste: .clipped, accumulate: a) }),
            ("bn-train", { d, a in
                batchNormBackwardTraining(d, dweight: nil, dbias: nil, dyB,
                                          xB, mean: meanB,
                                          invstd: invstdB, weight: nil, shape: shape,
                                          accumulate: a) }),
            ("bn-eval", { d, a in
                batchNormBackwardInference(d, dyB,
                                           runningVar: invstdB, weight: nil,
                                           shape: shape, eps: 1e-5, accumulate: a) }),
        ]
        for (name, kernel) in kernels {
            let fresh = run(.nan, false, kernel)
            XCTAssertFalse(fresh.contains { $0.isNaN }, "\(name) read dx")
            XCTAssertEqual(fresh, run(0, true, kernel), "\(name): overwrite == accumulate onto zeros")
            let added = run(2, true, kernel)
            for i in 0..<n { XCTAssertEqual(added[i], 2 + fresh[i], accuracy: 1e-5, "\(name) accumulates") }
        }
    }

    /// PyTorch's rule written plainly: scan the window row-major, keep the first strict maximum.
    private func referencePool(_ x: [Float], n: Int, c: Int, h: Int, w: Int) -> ([Float], [UInt8]) {
        let (oh, ow) = (h / 2, w / 2)
        var y = [Float](), k = [UInt8]()
        for p in 0..<(n * c) {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var best = -Float.infinity, arg: UInt8 = 0
                    for (j, (dy, dx)) in [(0, 0), (0, 1), (1, 0), (1, 1)].enumerated() {
                        let v = x[p * h * w + (2 * oy + dy) * w + 2 * ox + dx]
                        if j == 0 || v > best { best = v; arg = UInt8(j) }
                    }
                    y.append(best)
                    k.append(arg)
                }
            }
        }
        return (y, k)
    }

    func testMaxPoolMatchesScalarReferenceOnEveryWidthWithTies() {
        var rng = SplitMix64(seed: 11)
        for w in 2...37 {
            for h in [2, 3, 5] {
                let (n, c) = (2, 3)
                // Few distinct values: many ties, as after a quantized activation.
                let x = (0..<(n * c * h * w)).map { _ in Float(rng.next(below: 4)) * 0.5 }
                var y = [Float](repeating: .nan, count: n * c * (h / 2) * (w / 2))
                var k = [UInt8](repeating: 9, count: y.count)
                y.withUnsafeMutableBufferPointer { yb in
                    k.withUnsafeMutableBufferPointer { kb in
                        x.withUnsafeBufferPointer { maxPool2Forward(yb, argmax: kb, $0, n: n, c: c, h: h, w: w) }
                    }
                }
                let (ry, rk) = referencePool(x, n: n, c: c, h: h, w: w)
                XCTAssertEqual(y, ry, "forward h \(h) w \(w)")
                XCTAssertEqual(k, rk, "argmax h \(h) w \(w)")
                // Backward writes every element: the winner gets dy, all else (odd row/column too) 0.
                let dy = (0..<y.count).map { Float($0 + 1) }
                var dx = [Float](repeating: .nan, count: x.count)
                dx.withUnsafeMutableBufferPointer { d in
                    dy.withUnsafeBufferPointer { g in
                        k.withUnsafeBufferPointer { maxPool2Backward(d, g, argmax: $0, n: n, c: c, h: h, w: w) }
                    }
                }
                XCTAssertFalse(dx.contains { $0.isNaN }, "backward left elements unwritten, h \(h) w \(w)")
                XCTAssertEqual(dx.reduce(0, +), dy.reduce(0, +), "backward routes every dy once, h \(h) w \(w)")
                var expected = [Float](repeating: 0, count: x.count)
                let (oh, ow) = (h / 2, w / 2)
                for p in 0..<(n * c) {
                    for oy in 0..<oh {
                        for ox in 0..<ow {
                            let o = (p * oh + oy) * ow + ox, k = Int(rk[o])
                            expected[(p * h + 2 * oy + k / 2) * w + 2 * ox + k % 2] = dy[o]
                        }
                    }
                }
                XCTAssertEqual(dx, expected, "backward: dy at each window's winner, h \(h) w \(w)")
            }
        }
    }
}
