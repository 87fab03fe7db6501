// SplitMix64 reference values, α fitting, cross-entropy and the optimizer update kernels on
// hand-computed examples.
import XCTest

@testable import Kernels

final class NumericsTests: XCTestCase {
    func testSplitMix64ReferenceSequence() {
        // Vigna's splitmix64.c with seed 1234567.
        var rng = SplitMix64(seed: 1_234_567)
        XCTAssertEqual(
            (0..<5).map { _ in rng.next() },
            [6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423,
             4_593_380_528_125_082_431, 16_408_922_859_458_223_821])
    }

    func testUniformGaussianAndBoundedDraws() {
        var rng = SplitMix64(seed: 9)
        var sum = 0.0, sumSq = 0.0
        let n = 100_000
        for _ in 0..<n {
            let u = rng.nextUniform()
            XCTAssertTrue(u >= 0 && u < 1)
            let g = Double(rng.nextGaussian())
            sum += g
            sumSq += g * g
        }
        XCTAssertEqual(sum / Double(n), 0, accuracy: 0.02)
        XCTAssertEqual(sumSq / Double(n), 1, accuracy: 0.02)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 { counts[rng.next(below: 7)] += 1 }
        for c in counts { XCTAssertEqual(Double(c), 10_000, accuracy: 400) }
        var a = SplitMix64(seed: 5), b = SplitMix64(seed: 5)
        XCTAssertEqual((0..<10).map { _ in a.nextGaussian() }, (0..<10).map { _ in b.nextGaussian() })
        XCTAssertNotEqual(
            RandomStream.shuffle.generator(runSeed: 1).state, RandomStream.augmentation.generator(runSeed: 1).state)
    }

    func testAlphaFitMatchesAuthorsTable() {
        // The authors' bit_alpha are the round-to-nearest MSE fit (papers.md §1.5: 0.6508, 0.1932).
        let a2 = fitAlpha(bits: 2, rounding: .nearest), a4 = fitAlpha(bits: 4, rounding: .nearest)
        XCTAssertEqual(a2, 0.6508, accuracy: 5e-4)
        XCTAssertEqual(a4, 0.1932, accuracy: 5e-4)
        XCTAssertEqual(a2, defaultAlpha(bits: 2)!, accuracy: 1e-3)
        XCTAssertEqual(a4, defaultAlpha(bits: 4)!, accuracy: 2e-3)
        XCTAssertEqual(fitAlpha(bits: 1, rounding: .nearest), 1.224, accuracy: 1e-3)
        // Ceil-rounding optimum (papers.md §1.5: 0.798, 0.487, 0.167).
        XCTAssertEqual(fitAlpha(bits: 2, rounding: .ceil), 0.487, accuracy: 2e-3)
        XCTAssertEqual(fitAlpha(bits: 4, rounding: .ceil), 0.167, accuracy: 2e-3)
    }

    func testClosedFormMSEMatchesMonteCarlo() {
        var rng = SplitMix64(seed: 11)
        let n = 200_000
        let xs = (0..<n).map { _ in abs(rng.nextGaussian()) }
        for rounding in Rounding.allCases {
            let spec = QuantizerSpec(bits: 2, alpha: 0.6511, rounding: rounding)
            var y = [Float](repeating: 0, count: n)
            y.withUnsafeMutableBufferPointer { o in xs.withUnsafeBufferPointer { quantizedReLUForward(o, $0, spec: spec) } }
            let mc = zip(xs, y).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) } / Double(n)
            let exact = halfNormalQuantizationMSE(alpha: 0.6511, bits: 2, rounding: rounding)
            XCTAssertEqual(mc, exact, accuracy: exact * 0.02, "\(rounding)")
        }
    }

    func testSoftmaxCrossEntropyHandExample() {
        let logits: [Float] = [0, 0, 0, 2, 3, 0]
        let labels: [Int32] = [0, 2]
        var d = [Float](repeating: 9, count: 6)
        let r = logits.withUnsafeBufferPointer { z in
            labels.withUnsafeBufferPointer { l in
                d.withUnsafeMutableBufferPointer {
                    softmaxCrossEntropy(logits: z, labels: l, batch: 2, classes: 3, dlogits: $0)
                }
            }
        }
        // Row 0: ln 3; row 1: logsumexp(2,3,0) − 0.
        let lse = log(exp(2.0) + exp(3.0) + 1)
        XCTAssertEqual(Double(r.loss), (log(3.0) + lse) / 2, accuracy: 1e-6)
        XCTAssertEqual(r.correct, 1, "row 0: first arg-max is class 0 (tie); row 1: arg-max 1 ≠ 2")
        let p1 = [exp(2.0 - lse), exp(3.0 - lse), exp(0.0 - lse)]
        let expected = [(1.0 / 3 - 1) / 2, 1.0 / 6, 1.0 / 6, p1[0] / 2, p1[1] / 2, (p1[2] - 1) / 2]
        for (g, e) in zip(d, expected) { XCTAssertEqual(Double(g), e, accuracy: 1e-7) }
    }

    func testSGDTwoStepHandExample() {
        // lr 0.1, μ 0.9, g = 1: buf 1 → 1.9; w 1 → 0.9 → 0.71 (style.md §2.7).
        var w: [Float] = [1], buf: [Float] = [0]
        let g: [Float] = [1]
        for first in [true, false] {
            w.withUnsafeMutableBufferPointer { wp in
                buf.withUnsafeMutableBufferPointer { bp in
                    g.withUnsafeBufferPointer {
                        sgdUpdate(wp, grad: $0, momentumBuffer: bp, learningRate: 0.1, momentum: 0.9,
                                  weightDecay: 0, nesterov: false, firstStep: first)
                    }
                }
            }
            XCTAssertEqual(w[0], first ? 0.9 : 0.71, accuracy: 1e-6)
            XCTAssertEqual(buf[0], first ? 1 : 1.9, accuracy: 1e-6)
        }
        // Weight decay joins the gradient before the momentum: d = 1 + 0.5·2 = 2 → w = 2 − 0.1·2.
        var w2: [Float] = [2], b2: [Float] = [0]
        w2.withUnsafeMutableBufferPointer { wp in
            b2.withUnsafeMutableBufferPointer { bp in
                g.withUnsafeBufferPointer {
                    sgdUpdate(wp, grad: $0, momentumBuffer: bp, learningRate: 0.1, momentum: 0.9,
                              weightDecay: 0.5, nesterov: false, firstStep: true)
                }
            }
        }
        XCTAssertEqual(w2[0], 1.8, accuracy: 1e-6)
        XCTAssertEqual(b2[0], 2, accuracy: 1e-6)
    }

    func testAdamFirstStepsHandExample() {
        // Step 1: m̂ = g, v̂ = g², so w −= lr·g/(|g| + ε) ≈ lr·sign(g).
        var w: [Float] = [1, -1], m: [Float] = [0, 0], v: [Float] = [0, 0]
        let g: [Float] = [2, -0.5]
        func step(_ t: Int) {
            w.withUnsafeMutableBufferPointer { wp in
                m.withUnsafeMutableBufferPointer { mp in
                    v.withUnsafeMutableBufferPointer { vp in
                        g.withUnsafeBufferPointer {
                            adamUpdate(wp, grad: $0, expAvg: mp, expAvgSq: vp, step: t, learningRate: 0.01,
                                       beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0)
                        }
                    }
                }
            }
        }
        step(1)
        XCTAssertEqual(w[0], 0.99, accuracy: 1e-6)
        XCTAssertEqual(w[1], -0.99, accuracy: 1e-6)
        XCTAssertEqual(m[0], 0.2, accuracy: 1e-7)
        XCTAssertEqual(v[0], 0.004, accuracy: 1e-8)
        step(2)  // constant gradient: m̂ = g, v̂ = g² again
        XCTAssertEqual(w[0], 0.98, accuracy: 1e-6)
        XCTAssertEqual(w[1], -0.98, accuracy: 1e-6)
    }
}
