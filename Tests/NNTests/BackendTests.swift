// oneDNN against the reference convolution (im2col + OpenBLAS) on the nets' geometries: forward,
// backward-data, backward-weights (with and without bias), and the combined backward the layer uses.
// Tolerance |a − b| ≤ atol + rtol·max|b|: both sides sum the same products in different orders in
// float32, so the error grows with the number of terms summed (≈ √K·ε relative to the magnitude).
import Backends
import Kernels
import TestSupport
import XCTest

final class BackendTests: XCTestCase {
    static let geometries: [(Conv2DGeometry, bias: Bool)] = [
        (Conv2DGeometry(batch: 4, inChannels: 1, height: 28, width: 28, outChannels: 6, kernel: 5, padding: 2), false),  // LeNet conv1
        (Conv2DGeometry(batch: 4, inChannels: 6, height: 14, width: 14, outChannels: 16, kernel: 5), false),  // LeNet conv2
        (Conv2DGeometry(batch: 3, inChannels: 3, height: 32, width: 32, outChannels: 16, kernel: 3, padding: 1), false),  // stem
        (Conv2DGeometry(batch: 3, inChannels: 16, height: 32, width: 32, outChannels: 32, kernel: 3, stride: 2, padding: 1), false),  // ResNet s2
        (Conv2DGeometry(batch: 2, inChannels: 32, height: 8, width: 8, outChannels: 64, kernel: 3, padding: 1), false),
        (Conv2DGeometry(batch: 2, inChannels: 5, height: 9, width: 7, outChannels: 8, kernel: 3, stride: 2, padding: 1), true),  // odd sizes
        (Conv2DGeometry(batch: 3, inChannels: 8, height: 10, width: 10, outChannels: 12, kernel: 5, padding: 2), true),
    ]

    func random(_ count: Int, _ rng: inout SplitMix64) -> [Float] { (0..<count).map { _ in rng.nextGaussian() } }

    /// Closeness relative to the largest expected magnitude (a convolution's sums cancel: elementwise relative
    /// tolerances would fail on the small outputs).
    func assertCloseAtScale(_ got: [Float], _ expected: [Float], rtol: Float, atol: Float, _ what: String) {
        XCTAssertEqual(got.count, expected.count, what)
        let scale = expected.map(abs).max() ?? 0
        var worst = (index: -1, diff: Float(0))
        for i in 0..<min(got.count, expected.count) {
            let d = abs(got[i] - expected[i])
            if !(d <= worst.diff) { worst = (i, d) }
        }
        let ok = worst.index < 0 || worst.diff <= atol + rtol * scale
        XCTAssertTrue(ok, "\(what): max |Δ| \(worst.diff) at \(worst.index) (got \(got[max(0, worst.index)]), "
                      + "expected \(expected[max(0, worst.index)])), scale \(scale)")
    }

    func testOneDNNMatchesReference() throws {
        guard let dnnl = OneDNNBackend.make() else { throw XCTSkip("oneDNN (libdnnl.so.2) could not be loaded; `make deps` installs libdnnl-dev") }
        // As the layers use it: LeNet conv1's forward and weights on the direct kernels.
        XCTAssertEqual(ConvolutionPasses.direct(for: Self.geometries[0].0), [.forward, .backwardWeights])
        XCTAssertEqual(ConvolutionPasses.direct(for: Self.geometries[1].0), [.backwardData, .backwardWeights])  // 6→16
        XCTAssertEqual(ConvolutionPasses.direct(for: Self.geometries[4].0), [])  // 32→64
        XCTAssertEqual(ConvolutionPasses.direct(for: Self.geometries[2].0), [])  // ResNet stem 3→16, k3
        XCTAssertTrue(dnnl.convolution(Self.geometries[0].0, bias: false) is MixedConvolution)
        assertMatchesReference(dnnl, Self.geometries)
        dnnl.usesDirectKernels = false
        XCTAssertTrue(dnnl.convolution(Self.geometries[0].0, bias: false) is OneDNNConvolution)
        assertMatchesReference(dnnl, Self.geometries)
    }

    /// The direct NCHW kernels: narrow and wide channel counts (tiles of 6 channels and 2 columns with
    /// repeats), kernels 1–7 with every padding below the kernel, rows of exactly one vector, one vector
    /// plus one, odd widths, bias on and off, batches that split unevenly over the workers.
    func testDirectKernelsMatchReference() {
        let direct = DirectBackend()
        var cases: [(Conv2DGeometry, bias: Bool)] = [
            (Self.geometries[0].0, false), (Self.geometries[1].0, false), (Self.geometries[2].0, true),
            (Conv2DGeometry(batch: 3, inChannels: 7, height: 9, width: 9, outChannels: 13, kernel: 1), true),
            (Conv2DGeometry(batch: 1, inChannels: 2, height: 8, width: 8, outChannels: 5, kernel: 3, padding: 1), true),
            (Conv2DGeometry(batch: 5, inChannels: 1, height: 11, width: 17, outChannels: 1, kernel: 7, padding: 3), false),
            (Conv2DGeometry(batch: 2, inChannels: 3, height: 12, width: 22, outChannels: 7, kernel: 7, padding: 6), true),
            (Conv2DGeometry(batch: 3, inChannels: 12, height: 6, width: 9, outChannels: 2, kernel: 2), false),
        ]
        for k in 1...5 {
            for p in 0..<k {
                cases.append((Conv2DGeometry(batch: 2, inChannels: 3, height: 10, width: 12 - 2 * p + k - 1,
                                             outChannels: 8, kernel: k, padding: p), p % 2 == 0))
            }
        }
        for (g, _) in cases { XCTAssertTrue(DirectConvolution.supports(g.directShape!), "\(g)") }
        assertMatchesReference(direct, cases)
        XCTAssertFalse(DirectConvolution.supports(
            Conv2DGeometry(batch: 1, inChannels: 1, height: 8, width: 7, outChannels: 1, kernel: 1).directShape!),
            "rows narrower than a vector")
        XCTAssertNil(Self.geometries[3].0.directShape, "strided")
    }

    /// The channel-vectorised weight gradient alone, on shapes the row kernels cannot take (rows narrower
    /// than a vector) and with an odd number of 8-channel groups (the last tile repeats a group).
    func testChannelVectorWeightGradientMatchesReference() {
        let reference = ReferenceBackend()
        var rng = SplitMix64(seed: 9)
        let cases = [
            Conv2DGeometry(batch: 3, inChannels: 6, height: 6, width: 6, outChannels: 16, kernel: 5),
            Conv2DGeometry(batch: 2, inChannels: 2, height: 5, width: 7, outChannels: 24, kernel: 3, padding: 1),
            Conv2DGeometry(batch: 1, inChannels: 1, height: 4, width: 4, outChannels: 8, kernel: 7, padding: 3),
            Conv2DGeometry(batch: 4, inChannels: 3, height: 9, width: 9, outChannels: 8, kernel: 1),
        ]
        for g in cases {
            let shape = g.directShape!
            XCTAssertTrue(DirectConvolution.supportsChannelVectors(shape), "\(g)")
            let x = random(g.inputCount, &rng), dy = random(g.outputCount, &rng)
            var dw = [Float](repeating: .nan, count: g.weightCount), db = [Float](repeating: .nan, count: g.outChannels)
            var rw = dw, rb = db
            DirectConvolution.backwardWeightsOverChannels(shape, input: x, outputGrad: dy, weightGrad: &dw, biasGrad: &db)
            reference.convolution(g, bias: true).backwardWeights(input: x, outputGrad: dy, weightGrad: &rw, biasGrad: &rb)
            let terms = Float(g.batch * g.outHeight * g.outWidth)
            assertCloseAtScale(dw, rw, rtol: 1e-6 * terms.squareRoot(), atol: 1e-6, "weights over channels \(g)")
            assertCloseAtScale(db, rb, rtol: 1e-6 * terms.squareRoot(), atol: 1e-6, "bias over channels \(g)")
        }
        XCTAssertFalse(DirectConvolution.supportsChannelVectors(Self.geometries[0].0.directShape!), "6 outputs")
    }

    /// Same worker count → bit-identical weight gradients; other worker counts agree to rounding.
    func testDirectWeightGradientIsDeterministic() {
        for outChannels in [6, 16] {  // the row kernel and the channel-vector kernel
            assertDeterministic(Conv2DGeometry(batch: 7, inChannels: 2, height: 12, width: 12, outChannels: outChannels,
                                               kernel: 5, padding: 2))
        }
    }

    func assertDeterministic(_ g: Conv2DGeometry) {
        var rng = SplitMix64(seed: 5)
        let x = random(g.inputCount, &rng), dy = random(g.outputCount, &rng)
        let conv = DirectBackend().convolution(g, bias: true)
        func gradients(workers: Int) -> [Float] {
            let saved = Parallel.workers
            defer { Parallel.workers = saved }
            Parallel.workers = workers
            var dw = [Float](repeating: .nan, count: g.weightCount), db = [Float](repeating: .nan, count: g.outChannels)
            conv.backwardWeights(input: x, outputGrad: dy, weightGrad: &dw, biasGrad: &db)
            return dw + db
        }
        let two = gradients(workers: 2)
        XCTAssertEqual(two, gradients(workers: 2))
        assertCloseAtScale(gradients(workers: 1), two, rtol: 1e-5, atol: 1e-6, "1 vs 2 workers \(g)")
        assertCloseAtScale(gradients(workers: 3), two, rtol: 1e-5, atol: 1e-6, "3 vs 2 workers \(g)")
    }

    /// Every pass of `backend` against the reference, alone and as the layer calls them.
    func assertMatchesReference(_ backend: ConvolutionBackend, _ geometries: [(Conv2DGeometry, bias: Bool)],
                                file: StaticString = #filePath, line: UInt = #line) {
        let reference = ReferenceBackend()
        var rng = SplitMix64(seed: 42)
        for (g, bias) in geometries {
            let fast = backend.convolution(g, bias: bias), slow = reference.convolution(g, bias: bias)
            let x = random(g.inputCount, &rng), w = random(g.weightCount, &rng), b = random(g.outChannels, &rng)
            let dy = random(g.outputCount, &rng)
            func run(_ c: Convolution2D) -> (y: [Float], dx: [Float], dw: [Float], db: [Float], dx2: [Float], dw2: [Float]) {
                var y = [Float](repeating: .nan, count: g.outputCount), dx = [Float](repeating: .nan, count: g.inputCount)
                var dw = [Float](repeating: .nan, count: g.weightCount), db = [Float](repeating: .nan, count: g.outChannels)
                var dx2 = dx, dw2 = dw, db2 = db
                b.withUnsafeBufferPointer { bp in
                    c.forward(input: x, weight: w, bias: bias ? bp.baseAddress : nil, output: &y)
                }
                c.backwardData(outputGrad: dy, weight: w, inputGrad: &dx)
                db.withUnsafeMutableBufferPointer { dbp in
                    c.backwardWeights(input: x, outputGrad: dy, weightGrad: &dw, biasGrad: bias ? dbp.baseAddress : nil)
                }
                // The layer's path: forward, then one combined backward on the same input buffer.
                x.withUnsafeBufferPointer { xp in
                    b.withUnsafeBufferPointer { bp in
                        c.forward(input: xp.baseAddress!, weight: w, bias: bias ? bp.baseAddress : nil, output: &y)
                    }
                    db2.withUnsafeMutableBufferPointer { dbp in
                        c.backward(input: xp.baseAddress!, outputGrad: dy, weight: w, inputGrad: &dx2, weightGrad: &dw2,
                                   biasGrad: bias ? dbp.baseAddress : nil)
                    }
                }
                return (y, dx, dw, bias ? db : [], dx2, dw2)
            }
            let f = run(fast), s = run(slow)
            let k = Float(g.inChannels * g.kernel * g.kernel)
            let terms = Float(g.batch * g.outHeight * g.outWidth)
            assertCloseAtScale(f.y, s.y, rtol: 1e-6 * k.squareRoot(), atol: 1e-6, "forward \(g) [\(fast.implementation)]")
            assertCloseAtScale(f.dx, s.dx, rtol: 1e-6 * Float(g.outChannels * g.kernel * g.kernel).squareRoot(), atol: 1e-6,
                        "backward-data \(g)")
            assertCloseAtScale(f.dw, s.dw, rtol: 1e-6 * terms.squareRoot(), atol: 1e-6, "backward-weights \(g)")
            assertCloseAtScale(f.db, s.db, rtol: 1e-6 * terms.squareRoot(), atol: 1e-6, "backward-bias \(g)")
            assertCloseAtScale(f.dx2, s.dx, rtol: 1e-6 * Float(g.outChannels * g.kernel * g.kernel).squareRoot(), atol: 1e-6,
                        "combined backward dx \(g)")
            assertCloseAtScale(f.dw2, s.dw, rtol: 1e-6 * terms.squareRoot(), atol: 1e-6, "combined backward dw \(g)")
            XCTAssertTrue(f.y.allSatisfy(\.isFinite) && f.dx.allSatisfy(\.isFinite) && f.dw.allSatisfy(\.isFinite))
        }
    }

    /// The reference itself against a direct 7-loop convolution in Double on one small geometry.
    func testReferenceMatchesDirectLoops() {
        let g = Conv2DGeometry(batch: 2, inChannels: 3, height: 7, width: 6, outChannels: 4, kernel: 3, stride: 2, padding: 1)
        var rng = SplitMix64(seed: 7)
        let x = random(g.inputCount, &rng), w = random(g.weightCount, &rng), b = random(g.outChannels, &rng)
        var y = [Float](repeating: 0, count: g.outputCount)
        ReferenceBackend().convolution(g, bias: true).forward(input: x, weight: w, bias: b, output: &y)
        var expected = [Float]()
        for n in 0..<g.batch {
            for o in 0..<g.outChannels {
                for oy in 0..<g.outHeight {
                    for ox in 0..<g.outWidth {
                        var s = Double(b[o])
                        for c in 0..<g.inChannels {
                            for ky in 0..<g.kernel {
                                for kx in 0..<g.kernel {
                                    let iy = oy * g.stride - g.padding + ky, ix = ox * g.stride - g.padding + kx
                                    guard iy >= 0, iy < g.height, ix >= 0, ix < g.width else { continue }
                                    s += Double(x[((n * g.inChannels + c) * g.height + iy) * g.width + ix])
                                        * Double(w[((o * g.inChannels + c) * g.kernel + ky) * g.kernel + kx])
                                }
                            }
                        }
                        expected.append(Float(s))
                    }
                }
            }
        }
        assertCloseAtScale(y, expected, rtol: 1e-6, atol: 1e-6, "reference forward vs direct loops")
    }

    /// The kernels' loops give bit-identical results on Dispatch workers and on oneDNN's OpenMP pool
    /// (which `setComputeThreads` installs): the split into parts does not depend on the executor.
    func testOpenMPRunnerMatchesDispatch() {
        let saved = (Parallel.runner, Parallel.workers)
        defer { (Parallel.runner, Parallel.workers) = saved }
        var rng = SplitMix64(seed: 9)
        let shape = BatchNormShape(n: 16, c: 8, spatial: 300)
        let x = Tensor(random(shape.count, &rng), shape: [shape.count])
        let dy = Tensor(random(shape.count, &rng), shape: [shape.count])
        func run() -> [Float] {
            let y = Tensor(zeros: [shape.count]), dx = Tensor(zeros: [shape.count])
            let mean = Tensor(zeros: [8]), inv = Tensor(zeros: [8]), rm = Tensor(zeros: [8]), rv = Tensor(zeros: [8])
            batchNormForwardTraining(y.buffer, mean: mean.buffer, invstd: inv.buffer, x.readBuffer,
                                     runningMean: rm.buffer, runningVar: rv.buffer, weight: nil, bias: nil,
                                     shape: shape, eps: 1e-5, momentum: 0.1)
            reluBackward(dx.buffer, dy.readBuffer, y.readBuffer)
            return y.array + dx.array + mean.array + inv.array + rm.array + rv.array
        }
        Parallel.workers = 2
        let dispatch = run()
        setComputeThreads(2)
        let openMP = run()
        XCTAssertEqual(dispatch, openMP)
        XCTAssertTrue(dispatch.contains { $0 != 0 })
    }

    /// The Linear layer's GEMM split over the workers by rows of c, every transposition, against a
    /// Double-precision loop — with blocks big enough to split (LeNet-5's first linear layer) and with
    /// 1, 2 and 3 workers (uneven blocks).
    func testSgemmSplittingRowsMatchesTheProduct() {
        var rng = SplitMix64(seed: 21)
        let saved = Parallel.workers
        defer { Parallel.workers = saved }
        let (m, n, k) = (128, 120, 400)
        let a = (0..<(m * k)).map { _ in rng.nextGaussian() }, b = (0..<(k * n)).map { _ in rng.nextGaussian() }
        let c0 = (0..<(m * n)).map { _ in rng.nextGaussian() }
        for workers in [1, 2, 3] {
            Parallel.workers = workers
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    // op(a)[i, l] and op(b)[l, j] read from the same buffers laid out for each transposition.
                    func opA(_ i: Int, _ l: Int) -> Float { transposeA ? a[l * m + i] : a[i * k + l] }
                    func opB(_ l: Int, _ j: Int) -> Float { transposeB ? b[j * k + l] : b[l * n + j] }
                    var expected = [Float](repeating: 0, count: m * n)
                    for i in 0..<m {
                        for j in 0..<n {
                            var s = 0.5 * Double(c0[i * n + j])
                            for l in 0..<k { s += Double(opA(i, l)) * Double(opB(l, j)) }
                            expected[i * n + j] = Float(s)
                        }
                    }
                    var got = c0
                    a.withUnsafeBufferPointer { ap in
                        b.withUnsafeBufferPointer { bp in
                            got.withUnsafeMutableBufferPointer { cp in
                                sgemmSplittingRows(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                                   a: ap.baseAddress!, b: bp.baseAddress!, beta: 0.5, c: cp.baseAddress!)
                            }
                        }
                    }
                    assertCloseAtScale(got, expected, rtol: 1e-4, atol: 1e-4,
                                "workers \(workers) transposeA \(transposeA) transposeB \(transposeB)")
                }
            }
        }
    }
}
