// Tests of the Schoenbauer et al. 2024 pieces: quantizer levels and clamping (mid-rise and He-uniform), estimator
// shapes and bounds, DSQ and its map against the authors' formulas, the equivalence map (α and M against closed
// forms, boundaries fixed, monotone), the weight-quantization wrapper on a tiny convolution, the MNIST experiment's
// schedule, change-point compression and pair metrics, and AvgPool2d.
import Foundation
import Kernels
import NN
import XCTest
@testable import Schoenbauer

final class QuantizerTests: XCTestCase {
    func testLevelsAndClamping() {
        let q = WeightQuantizer(bits: 2, step: 0.5)
        XCTAssertEqual(q.levels, [-0.75, -0.25, 0.25, 0.75])
        XCTAssertEqual(q.lower, -1)
        XCTAssertEqual(q.upper, 1)
        XCTAssertEqual(q.quantize(0.01), 0.25)
        XCTAssertEqual(q.quantize(-0.01), -0.25)
        XCTAssertEqual(q.quantize(0.5), 0.75)  // a boundary belongs to the bin above
        XCTAssertEqual(q.quantize(0.49), 0.25)
        XCTAssertEqual(q.quantize(7), 0.75)  // clamped
        XCTAssertEqual(q.quantize(-7), -0.75)
        XCTAssertEqual(q.bin(-7), -2)
        XCTAssertEqual(q.bin(7), 1)
        XCTAssertEqual(WeightQuantizer(bits: 4, step: 1).levels.count, 16)
        XCTAssertTrue(q.contains(1) && q.contains(-1) && !q.contains(1.0001))
    }
}

final class EstimatorTests: XCTestCase {
    let q = WeightQuantizer(bits: 3, step: 0.2)

    func testSTEIsOneInsideZeroOutside() {
        XCTAssertEqual(WeightEstimator.ste.derivative(0.33, q), 1)
        XCTAssertEqual(WeightEstimator.ste.derivative(q.upper, q), 1)
        XCTAssertEqual(WeightEstimator.ste.derivative(q.upper + 1e-6, q), 0)
        XCTAssertEqual(WeightEstimator.ste.derivative(q.lower - 1e-6, q), 0)
    }

    /// Same shape in every bin, within the bounds, zero outside the range.
    func testCyclicalShapeAndBounds() throws {
        for e in [WeightEstimator.cosine(amplitude: 0.8), .cosine(amplitude: -0.5), .piecewiseLinear(low: 0.25, high: 1.75)] {
            let (lo, hi) = e.bounds
            XCTAssertGreaterThan(lo, 0)
            var seenLow = Double.infinity, seenHigh = -Double.infinity
            for i in 0..<200 {
                let φ = (Double(i) + 0.37) / 200
                let inFirst = e.derivative(q.lower + φ * q.step, q)
                for k in 1..<(1 << q.bits) {
                    XCTAssertEqual(e.derivative(q.lower + (Double(k) + φ) * q.step, q), inFirst, accuracy: 1e-12, "\(e) bin \(k)")
                }
                XCTAssertGreaterThanOrEqual(inFirst, lo - 1e-12)
                XCTAssertLessThanOrEqual(inFirst, hi + 1e-12)
                seenLow = min(seenLow, inFirst)
                seenHigh = max(seenHigh, inFirst)
            }
            XCTAssertEqual(seenLow, lo, accuracy: 0.02 * (hi - lo) + 1e-9, "\(e) reaches its lower bound")
            XCTAssertEqual(seenHigh, hi, accuracy: 0.02 * (hi - lo) + 1e-9, "\(e) reaches its upper bound")
            XCTAssertEqual(e.derivative(q.upper + 0.01, q), 0)
            XCTAssertEqual(e.derivative(q.lower - 0.01, q), 0)
        }
        // The tent: low at the boundaries, high at the level (bin centre).
        let tent = WeightEstimator.piecewiseLinear(low: 0.25, high: 1.75)
        XCTAssertEqual(tent.derivative(0, q), 0.25, accuracy: 1e-12)
        XCTAssertEqual(tent.derivative(0.1, q), 1.75, accuracy: 1e-12)
        XCTAssertEqual(tent.derivative(0.05, q), 1.0, accuracy: 1e-12)
        // Cosine: 1 + a cos(2πw/Δ).
        XCTAssertEqual(WeightEstimator.cosine(amplitude: 0.8).derivative(0.05, q), 1, accuracy: 1e-12)
        XCTAssertEqual(WeightEstimator.cosine(amplitude: 0.8).derivative(0.1, q), 0.2, accuracy: 1e-12)
    }

    func testInvalidParametersAreRejected() {
        XCTAssertThrowsError(try EstimatorConfig(name: "cosine", amplitude: 1).make())
        XCTAssertThrowsError(try EstimatorConfig(name: "pwl", low: 0, high: 1).make())
        XCTAssertThrowsError(try EstimatorConfig(name: "pwl", low: 2, high: 1).make())
        XCTAssertThrowsError(try EstimatorConfig(name: "nope").make())
        XCTAssertEqual(try EstimatorConfig(name: "cosine", amplitude: 0.5).make(), .cosine(amplitude: 0.5))
    }
}

final class EquivalenceMapTests: XCTestCase {
    let q = WeightQuantizer(bits: 3, step: 0.3)

    func testAlphaClosedForms() {
        // ∫_0^Δ ds / (1 + a cos(2πs/Δ)) = Δ / √(1 − a²)  ⇒  α = √(1 − a²).
        for a in [0.0, 0.3, -0.6, 0.8, 0.95] {
            XCTAssertEqual(EquivalenceMap(estimator: .cosine(amplitude: a)).alpha, (1 - a * a).squareRoot(), accuracy: 1e-9, "a = \(a)")
        }
        // Tent low → high → low: ∫ = Δ ln(h/l) / (h − l)  ⇒  α = (h − l) / ln(h/l), the logarithmic mean.
        for (l, h) in [(0.25, 1.75), (0.5, 1.0), (1.0, 3.0)] {
            XCTAssertEqual(EquivalenceMap(estimator: .piecewiseLinear(low: l, high: h)).alpha, (h - l) / log(h / l),
                           accuracy: 1e-9)
        }
        XCTAssertEqual(EquivalenceMap(estimator: .piecewiseLinear(low: 0.7, high: 0.7)).alpha, 0.7, accuracy: 1e-12)
        XCTAssertEqual(EquivalenceMap(estimator: .ste).alpha, 1, accuracy: 1e-12)
    }

    func testMapAgainstClosedForms() {
        let Δ = q.step
        for a in [0.8, -0.5] {
            let m = EquivalenceMap(estimator: .cosine(amplitude: a))
            // For w − kΔ = r ∈ [0, Δ/2): M(w) = kΔ + (Δ/π)·atan(√((1−a)/(1+a))·tan(πr/Δ)).
            for k in [-4, -1, 0, 2, 3] {
                for r in [0.0, 0.05, 0.2, 0.35, 0.45, 0.499] {
                    let w = (Double(k) + r) * Δ
                    let expected = Double(k) * Δ + Δ / Double.pi * atan(((1 - a) / (1 + a)).squareRoot() * tan(Double.pi * r))
                    XCTAssertEqual(m.map(w, q), expected, accuracy: 1e-10, "a \(a) k \(k) r \(r)")
                }
            }
        }
        let (l, h) = (0.25, 1.75)
        let m = EquivalenceMap(estimator: .piecewiseLinear(low: l, high: h))
        let alpha = (h - l) / log(h / l)
        for k in [-3, 0, 1] {
            for r in [0.1, 0.25, 0.4, 0.5] {
                // ∫_0^r dφ / (l + 2(h−l)φ) = ln((l + 2(h−l)r)/l) / (2(h−l)) on the rising half of the tent.
                let expected = (Double(k) + alpha * log((l + 2 * (h - l) * r) / l) / (2 * (h - l))) * Δ
                XCTAssertEqual(m.map((Double(k) + r) * Δ, q), expected, accuracy: 1e-10)
            }
        }
    }

    func testMapFixesBoundariesIsMonotoneAndKeepsBins() {
        for e in [WeightEstimator.cosine(amplitude: 0.8), .piecewiseLinear(low: 0.25, high: 1.75), .cosine(amplitude: -0.9)] {
            let m = EquivalenceMap(estimator: e)
            for k in q.lowestBin...(q.highestBin + 1) {
                XCTAssertEqual(m.map(Double(k) * q.step, q), Double(k) * q.step, accuracy: 1e-12, "\(e) boundary \(k)")
            }
            var previous = -Double.infinity
            for i in 0...4000 {
                let w = q.lower - 0.1 + (q.upper - q.lower + 0.2) * Double(i) / 4000
                let mw = m.map(w, q)
                XCTAssertGreaterThan(mw, previous, "\(e) monotone at \(w)")
                previous = mw
                XCTAssertEqual(q.bin(mw), q.bin(w), "\(e) keeps the bin of \(w)")
            }
            XCTAssertEqual(m.map(q.upper + 0.05, q), q.upper + 0.05)  // identity outside the range
            XCTAssertEqual(EquivalenceMap(estimator: .ste).map(0.123, q), 0.123, accuracy: 1e-12)
        }
    }

    /// The derivation behind the map: one estimator step Δw = −ηQ̂′(w)g moves M(w) by −αηg + O(η²).
    func testOneStepMatchesScaledSTEStep() {
        let e = WeightEstimator.cosine(amplitude: 0.7)
        let m = EquivalenceMap(estimator: e)
        let (w, g) = (0.41, 0.9)
        func error(_ eta: Double) -> Double {
            abs(m.map(w - eta * e.derivative(w, q) * g, q) - m.map(w, q) + m.alpha * eta * g)
        }
        let (e1, e2) = (error(1e-3), error(1e-4))
        XCTAssertLessThan(e1, 0.02 * m.alpha * 1e-3 * g, "first order agrees")
        XCTAssertLessThan(e2, e1 / 30, "the remainder is second order: \(e1) → \(e2)")
        XCTAssertGreaterThan(e1, 0, "the cosine map is not affine")
    }
}

final class WeightQuantizationTests: XCTestCase {
    /// A 1×1 convolution 3→2 with bias (a Linear in disguise) and a dense layer: only the conv kernel is quantized,
    /// with the He-uniform quantizer of fan-in 3; forward uses Q(latent); backward gives
    /// latent.grad = weight.grad·Q̂′(latent).
    func testForwardBackwardOnTinyConvolution() {
        var rng = SplitMix64(seed: 7)
        let conv = Conv2d(3, 2, kernel: 1, bias: true, rng: &rng)
        let dense = Linear(2, 2, rng: &rng)
        let net = Network(name: "tiny", root: Sequential([conv, Flatten(), dense]))
        let m = Float(2.0).squareRoot()  // √(6/3)
        let latent: [Float] = [0.3 * m, -0.1 * m, 0.45 * m, -0.55 * m, 0.05 * m, 0.2 * m]
        conv.weight.set(latent)
        let estimator = WeightEstimator.dsq(sharpness: 3)
        let wq = WeightQuantization(network: net, bits: 2, estimator: estimator)
        XCTAssertEqual(wq.entries.count, 1, "only the convolution kernel")
        XCTAssertEqual(wq.floatParameters.count, 3, "conv bias, dense weight and bias stay float")
        let q = wq.entries[0].quantizer
        XCTAssertEqual(q.upper, Double(m), accuracy: 1e-6)
        XCTAssertEqual(q.step, 2 * Double(m) / 3, accuracy: 1e-6)
        // A latent outside the range (clipped: estimator 0).
        wq.entries[0].latent.value.pointer[5] = 1.2 * m
        var lat = latent
        lat[5] = 1.2 * m

        wq.quantizeIntoNetwork()
        let quantized = lat.map { Float(q.quantize(Double($0))) }
        XCTAssertEqual(conv.weight.value.array, quantized)
        let x = Tensor([1, 2, -1, 0.5, -0.5, 2], shape: [2, 3, 1, 1])
        _ = net.forward(x, training: true)
        wq.zeroGrad(net)
        let dy = Tensor([1, -2, 0.5, 3], shape: [2, 2])
        net.backward(dy)
        wq.accumulateLatentGradients()
        for i in 0..<6 {
            let expected = conv.weight.grad.array[i] * Float(estimator.derivative(Double(lat[i]), q))
            XCTAssertEqual(wq.entries[0].latent.grad.array[i], expected, accuracy: 1e-5)
        }
        XCTAssertEqual(wq.entries[0].latent.grad.array[5], 0)  // outside the range
        XCTAssertNotEqual(wq.entries[0].latent.grad.array[0], 0)
        // Accumulates: a second backward doubles the latent gradient.
        let before = wq.entries[0].latent.grad.array
        wq.accumulateLatentGradients()
        XCTAssertEqual(wq.entries[0].latent.grad.array, before.map { 2 * $0 })
        XCTAssertEqual(wq.entries[0].latent.value.array, lat)
    }

    func testBinsAndTransformOnTheConvNet() {
        let net = makeSchoenbauerConvNet(seed: 3)
        let wq = WeightQuantization(network: net, bits: 2, estimator: .ste)
        XCTAssertEqual(wq.entries.map { $0.latent.value.count }, [288, 18432], "the two convolution kernels")
        XCTAssertEqual(wq.entries.map(\.quantizer.upper), [(6.0 / 9).squareRoot(), (6.0 / 288).squareRoot()])
        var latents: [Float] = []
        wq.latents(into: &latents)
        for (i, t) in wq.tensorIndexPerWeight().enumerated() {
            XCTAssertLessThanOrEqual(abs(Double(latents[i])), wq.entries[t].quantizer.upper, "He-uniform init inside [−m, m]")
        }
        var before: [Int32] = []
        wq.bins(into: &before)
        let map = EquivalenceMap(estimator: .dsq(sharpness: 10.0 / 3))
        wq.transformLatents { map.map($0, $1) }
        var after: [Int32] = []
        wq.bins(into: &after)
        XCTAssertEqual(before, after, "M keeps every weight in its cell")
        // Every level is used by the init, and the init is not already quantized.
        XCTAssertEqual(Set(before).count, 4)
    }
}

/// The He-uniform quantizer and DSQ against the formulas of Schoenbauer et al.'s experiment files.
final class HeUniformAndDSQTests: XCTestCase {
    func testHeUniformQuantizer() {
        let q = WeightQuantizer(heUniformBits: 2, fanIn: 6)  // m = 1, Δ = 2/3
        XCTAssertEqual(q.upper, 1, accuracy: 1e-15)
        XCTAssertEqual(q.step, 2.0 / 3, accuracy: 1e-15)
        let levels = q.levels
        XCTAssertEqual(levels.count, 4)
        for (l, e) in zip(levels, [-1, -1.0 / 3, 1.0 / 3, 1]) { XCTAssertEqual(l, e, accuracy: 1e-12) }
        // Round to nearest, clip to [−m, m]: the files' Δ·round((clip(x) + m)/Δ) − m.
        for x in stride(from: -1.5, through: 1.5, by: 0.0173) {
            let expected = q.step * ((min(max(x, -1), 1) + 1) / q.step).rounded() - 1
            XCTAssertEqual(q.quantize(x), expected, accuracy: 1e-12, "x = \(x)")
        }
        // The thresholds are the cell boundaries: origin + jΔ = −m + (j + ½)Δ.
        XCTAssertEqual(q.origin, -1 + 1.0 / 3, accuracy: 1e-15)
        XCTAssertEqual(q.bin(q.origin - 1e-9), -1)
        XCTAssertEqual(q.bin(q.origin + 1e-9), 0)
    }

    /// Q̂′ is the derivative of the files' DSQ estimate φ(x) = (Δ/2)·s·tanh(k_n(x − m_i)), s = coth(k_nΔ/2), where
    /// m_i is the threshold of x's bin between two levels; κ = k_nΔ.
    func testDSQMatchesTheFilesEstimate() {
        let q = WeightQuantizer(heUniformBits: 2, fanIn: 6)
        let k = 2.5, kn = k / q.upper, κ = kn * q.step
        let e = WeightEstimator.dsq(sharpness: κ)
        func phi(_ x: Double) -> Double {
            let i = ((x + q.upper) / q.step).rounded(.down)
            let mi = -q.upper + (i + 0.5) * q.step
            return q.step / 2 / tanh(κ / 2) * tanh(kn * (x - mi))
        }
        for x in stride(from: -0.97, through: 0.97, by: 0.031) {
            let h = 1e-6
            let numeric = (phi(x + h) - phi(x - h)) / (2 * h)
            XCTAssertEqual(e.derivative(x, q), numeric, accuracy: 1e-6, "x = \(x)")
        }
        XCTAssertEqual(e.derivative(1.01, q), 0)
        XCTAssertEqual(e.derivative(-1.01, q), 0)
        // Mean 1 over a cell (φ rises by exactly Δ across it); largest at the thresholds.
        var mean = 0.0
        for i in 0..<10_000 { mean += e.shape(phase: (Double(i) + 0.5) / 10_000) }
        XCTAssertEqual(mean / 10_000, 1, accuracy: 1e-6)
        XCTAssertEqual(e.shape(phase: 0), e.bounds.high, accuracy: 1e-12)
        XCTAssertEqual(e.shape(phase: 0.5), e.bounds.low, accuracy: 1e-12)
    }

    /// α and M against the files' closed forms: interval_integral = ∫_bin ds/Q̂′, lr_adjustment α = Δ/∫, and the
    /// remap M(x) = α·(∫·(i − ⌊(2^b − 1)/2⌋) + (E + sinh E cosh E)/(s·Δ·k_n²)) with E = k_n(x − m_i).
    func testDSQMapMatchesTheFilesRemap() {
        let q = WeightQuantizer(heUniformBits: 2, fanIn: 6)
        let kn = 5 / q.upper, κ = kn * q.step
        let map = EquivalenceMap(estimator: .dsq(sharpness: κ), cells: 4096)
        let s = 1 / tanh(κ / 2), end = κ / 2
        let integral = (end + sinh(end) * cosh(end)) / s * 2 / (q.step * kn * kn)
        let alpha = q.step / integral
        XCTAssertEqual(map.alpha, alpha, accuracy: 1e-9)
        XCTAssertLessThan(alpha, 0.9, "a sharp DSQ is far from the STE")
        for x in stride(from: -0.99, through: 0.99, by: 0.0371) {
            let i = ((x + q.upper) / q.step).rounded(.down)
            let mi = -q.upper + (i + 0.5) * q.step
            let E = kn * (x - mi)
            let remap = alpha * (integral * (i - 1) + (E + sinh(E) * cosh(E)) / s / (q.step * kn * kn))
            XCTAssertEqual(map.map(x, q), remap, accuracy: 1e-8, "x = \(x)")
        }
        XCTAssertEqual(map.map(-1, q), -1, accuracy: 1e-9, "a symmetric shape fixes the range ends")
        XCTAssertEqual(map.map(1, q), 1, accuracy: 1e-9)
    }
}

/// The MNIST experiment's pieces: schedule, change-point compression, pair metrics.
final class MNISTExperimentPieceTests: XCTestCase {
    func testWarmupCosineSchedule() {
        XCTAssertEqual(warmupCosineRate(step: 0, total: 100, warmup: 10, peak: 0.1), 0)
        XCTAssertEqual(warmupCosineRate(step: 5, total: 100, warmup: 10, peak: 0.1), 0.05, accuracy: 1e-15)
        XCTAssertEqual(warmupCosineRate(step: 10, total: 100, warmup: 10, peak: 0.1), 0.1, accuracy: 1e-15)
        XCTAssertEqual(warmupCosineRate(step: 55, total: 100, warmup: 10, peak: 0.1), 0.05, accuracy: 1e-12)
        XCTAssertEqual(warmupCosineRate(step: 100, total: 100, warmup: 10, peak: 0.1), 0, accuracy: 1e-15)
        XCTAssertEqual(warmupCosineRate(step: 0, total: 10, warmup: 0, peak: 0.1), 0.1, accuracy: 1e-15)
    }

    func testChangePointCompression() {
        func seq(_ bins: [Int16]) -> [ChangePoint] { bins.enumerated().map { ChangePoint(step: Int32($0.offset), bin: $0.element) } }
        XCTAssertEqual(compressedChangePoints(seq([0, 1, 0, 1])).map(\.bin), [0, 1])
        XCTAssertEqual(compressedChangePoints(seq([0, 1, 0, 1])).map(\.step), [0, 3], "the last entry's step is kept")
        XCTAssertEqual(compressedChangePoints(seq([0, 1, 0])).map(\.bin), [0, 1, 0], "three entries are not an oscillation")
        XCTAssertEqual(compressedChangePoints(seq([0, 1, 0, 1, 0, 1])).map(\.bin), [0, 1])
        XCTAssertEqual(compressedChangePoints(seq([2, 0, 1, 0, 1, 2])).map(\.bin), [2, 0, 1, 2])
        XCTAssertEqual(compressedChangePoints(seq([0, 1, 2, 3])).map(\.bin), [0, 1, 2, 3])
    }

    func testPairMetricsOnHandMadeRuns() {
        let q = WeightQuantizer(heUniformBits: 2, fanIn: 6)
        let a = RunRecord(latents: [-0.9, 0.5, 0.0], changes: [
            [ChangePoint(step: 0, bin: 0)],
            [ChangePoint(step: 0, bin: 1), ChangePoint(step: 4, bin: 2)],
            [ChangePoint(step: 0, bin: 1), ChangePoint(step: 2, bin: 2), ChangePoint(step: 3, bin: 1)],
        ], distance: 2, predictions: [1, 2, 3, 4], accuracy: 50, lossCurve: [], steps: 10, seconds: 0)
        var x = a
        XCTAssertEqual(PairMetrics(a, x, quantizers: [q], tensorOf: [0, 0, 0], map: nil).values[0...5].map { $0 },
            [1, 1, 1, 0, 0, 1])
        x.latents[1] = -0.2  // now in cell 0, not 1
        x.changes[1] = [ChangePoint(step: 0, bin: 1), ChangePoint(step: 6, bin: 2), ChangePoint(step: 8, bin: 1)]
        x.changes[2] = [ChangePoint(step: 0, bin: 1), ChangePoint(step: 5, bin: 2), ChangePoint(step: 6, bin: 1)]
        x.predictions = [1, 2, 0, 0]
        let m = PairMetrics(a, x, quantizers: [q], tensorOf: [0, 0, 0], map: nil)
        XCTAssertEqual(m.weightAgreement, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(m.changePointAgreement, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(m.compressedAgreement, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(m.changePointError, (3.0 + 3.0) / 2, accuracy: 1e-12, "weight 2: |2 − 5| + |3 − 6| over 2 points")
        XCTAssertEqual(m.alignmentError, 0.7 / q.upper / 2, accuracy: 1e-6)
        XCTAssertEqual(m.inferenceAgreement, 0.5)
    }
}

/// The small-step additions: the comparisons a sweep and the controls add, the Jitter-equivalent perturbation, the
/// small-step claims' three outcomes.
final class SmallStepTests: XCTestCase {
    func config(sweep: [Double]?, controls: Bool?) -> SchoenbauerMNISTConfig {
        SchoenbauerMNISTConfig(seeds: [0, 1, 2], data: "", trainImages: 1, testImages: 1, batchSize: 1, steps: 100,
            warmupFraction: 0.1, bits: 2, estimator: EstimatorConfig(name: "dsq", sharpness: 3), jitter: 0.05,
            jitterSweep: sweep, sgd: SGDSetup(lr: 0.1, momentum: 0.9, scaledown: [0.5, 0.25], controlsAtEveryStep: controls),
            adam: nil, mapCells: 16, curvePoints: 4)
    }

    func testComparisonsOfASweepAndControls() {
        let plain = comparisons(config(sweep: nil, controls: nil), seed: 0).map(\.name)
        XCTAssertEqual(plain, ["default", "no-warp", "jitter", "scaledown-0.5", "jitter-0.5", "scaledown-0.25", "jitter-0.25"],
            "without the new keys the comparisons (and so the committed files' claim rows) are unchanged")
        let all = comparisons(config(sweep: [0.1], controls: true), seed: 0)
        XCTAssertEqual(all.map(\.name), ["default", "no-warp", "jitter", "jitter-j0.1", "scaledown-0.5", "jitter-0.5",
            "no-warp-0.5", "jitter-0.5-j0.1", "scaledown-0.25", "jitter-0.25", "no-warp-0.25", "jitter-0.25-j0.1"])
        let control = all.first { $0.name == "no-warp-0.25" }!
        XCTAssertFalse(control.other.custom || control.other.mapped)
        XCTAssertEqual(control.other.lrFactor, 0.25)
        XCTAssertEqual(control.other.stepsFactor, 4)
        let sweep = all.first { $0.name == "jitter-0.25-j0.1" }!
        XCTAssertTrue(sweep.other.custom)
        XCTAssertEqual(sweep.other.lrFactor, 0.25 * 1.1, accuracy: 1e-15)
        XCTAssertEqual(sweep.reference, control.reference, "every pair at an η shares its DSQ run")
    }

    func testJitterEquivalent() {
        let sweep = [(j: 0.025, disagreement: 0.02), (j: 0.05, disagreement: 0.04), (j: 0.1, disagreement: 0.06)]
        XCTAssertEqual(jitterEquivalent(0.04, sweep: sweep).value!, 0.05, accuracy: 1e-12)
        XCTAssertEqual(jitterEquivalent(0.05, sweep: sweep).value!, (0.05 * 0.1).squareRoot(), accuracy: 1e-12,
            "halfway in disagreement is the geometric mean in j")
        XCTAssertNil(jitterEquivalent(0.01, sweep: sweep).value)
        XCTAssertEqual(jitterEquivalent(0.01, sweep: sweep).text, "< 0.025")
        XCTAssertEqual(jitterEquivalent(0.2, sweep: sweep).text, "> 0.1")
    }

    func testSmallStepClaimOutcomes() {
        let c = config(sweep: nil, controls: true)
        func results(mappedSmall: [Double], unmappedSmall: [Double]) -> [String: [Double]] {
            let agree = { (d: [Double]) in d.map { 1 - $0 } }
            return ["sgd/default/weight_agreement": agree([0.10, 0.11, 0.12]),
                "sgd/no-warp/weight_agreement": agree([0.11, 0.12, 0.13]),
                "sgd/jitter/weight_agreement": agree([0.05, 0.05, 0.05]),
                "sgd/scaledown-0.25/weight_agreement": agree(mappedSmall),
                "sgd/no-warp-0.25/weight_agreement": agree(unmappedSmall),
                "sgd/jitter-0.25/weight_agreement": agree([0.02, 0.021, 0.019])]
        }
        // The map matters at small η: the control stays up, the excess shrinks, the margin opens.
        let good = smallStepClaims(c, results: results(mappedSmall: [0.02, 0.022, 0.021], unmappedSmall: [0.08, 0.09, 0.085]))
        XCTAssertEqual(good.map(\.outcome), [.held, .held, .held])
        // Both STEs fall to the floor together: the control fails and the margin closes.
        let none = smallStepClaims(c, results: results(mappedSmall: [0.02, 0.022, 0.021], unmappedSmall: [0.019, 0.021, 0.02]))
        XCTAssertEqual(none[0].outcome, .notHeld)
        XCTAssertEqual(none[2].outcome, .notHeld)
        // A margin that opens on the mean but inside the seeds' noise: inconclusive, with a reason.
        let noisy = smallStepClaims(c, results: results(mappedSmall: [0.02, 0.022, 0.021], unmappedSmall: [0.01, 0.05, 0.04]))
        XCTAssertEqual(noisy[2].outcome, .inconclusive)
        XCTAssertFalse(noisy[2].reason.isEmpty)
    }
}

/// AvgPool2d against the definition, and its backward as the adjoint of its forward.
final class AvgPoolTests: XCTestCase {
    func testForwardAndAdjoint() {
        var rng = SplitMix64(seed: 11)
        let x = Tensor(zeros: [2, 3, 4, 6])
        for i in 0..<x.count { x.pointer[i] = rng.nextGaussian() }
        let pool = AvgPool2d()
        let y = pool.forward(x, training: true)
        XCTAssertEqual(y.shape, [2, 3, 2, 3])
        let xs = x.array, ys = y.array
        for p in 0..<6 {
            for i in 0..<2 {
                for j in 0..<3 {
                    let b = p * 24 + 2 * i * 6 + 2 * j
                    XCTAssertEqual(ys[p * 6 + i * 3 + j], (xs[b] + xs[b + 1] + xs[b + 6] + xs[b + 7]) / 4, accuracy: 1e-6)
                }
            }
        }
        let dy = Tensor(zeros: y.shape)
        for i in 0..<dy.count { dy.pointer[i] = rng.nextGaussian() }
        let dx = pool.backward(dy)
        // ⟨dy, pool(x)⟩ = ⟨pool*(dy), x⟩
        let lhs = zip(dy.array, ys).map { Double($0) * Double($1) }.reduce(0, +)
        let rhs = zip(dx.array, xs).map { Double($0) * Double($1) }.reduce(0, +)
        XCTAssertEqual(lhs, rhs, accuracy: 1e-5)
    }
}
