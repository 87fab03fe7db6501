// Tests of the Schoenbauer et al. 2024 pieces: quantizer levels and clamping, estimator shapes and bounds,
// the equivalence map (α and M against closed forms, boundaries fixed, monotone), and the weight-quantization
// wrapper's forward/backward on a tiny Linear.
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
    /// A tiny Linear 3→2 with bias: forward uses Q(latent); backward gives latent.grad = weight.grad·Q̂′(latent).
    func testForwardBackwardOnTinyLinear() {
        var rng = SplitMix64(seed: 7)
        let linear = Linear(3, 2, bias: true, rng: &rng)
        let net = Network(name: "tiny", root: Sequential([linear]))
        let latent: [Float] = [0.30, -0.10, 0.45, -0.55, 0.05, 0.20]
        linear.weight.set(latent)
        let estimator = WeightEstimator.cosine(amplitude: 0.6)
        let wq = WeightQuantization(network: net, bits: 2, rangeScale: 1, estimator: estimator)
        XCTAssertEqual(wq.entries.count, 1)
        XCTAssertEqual(wq.floatParameters.map(\.name), ["0.bias"])
        let q = wq.entries[0].quantizer
        XCTAssertEqual(q.step, 2 * 0.55 / 4, accuracy: 1e-7)
        // A latent outside the range (clipped: estimator 0).
        wq.entries[0].latent.value.pointer[5] = 0.9
        var lat = latent
        lat[5] = 0.9

        wq.quantizeIntoNetwork()
        let quantized = lat.map { Float(q.quantize(Double($0))) }
        XCTAssertEqual(linear.weight.value.array, quantized)
        let x = Tensor([1, 2, -1, 0.5, -0.5, 2], shape: [2, 3])
        let y = net.forward(x, training: true)
        let b = linear.bias!.value.array
        for n in 0..<2 {
            for o in 0..<2 {
                var expected = b[o]
                for i in 0..<3 { expected += quantized[o * 3 + i] * x.array[n * 3 + i] }
                XCTAssertEqual(y.array[n * 2 + o], expected, accuracy: 1e-5)
            }
        }
        wq.zeroGrad(net)
        let dy = Tensor([1, -2, 0.5, 3], shape: [2, 2])
        net.backward(dy)
        wq.accumulateLatentGradients()
        for o in 0..<2 {
            for i in 0..<3 {
                var dW: Float = 0
                for n in 0..<2 { dW += dy.array[n * 2 + o] * x.array[n * 3 + i] }
                XCTAssertEqual(linear.weight.grad.array[o * 3 + i], dW, accuracy: 1e-5)
                let expected = dW * Float(estimator.derivative(Double(lat[o * 3 + i]), q))
                XCTAssertEqual(wq.entries[0].latent.grad.array[o * 3 + i], expected, accuracy: 1e-5)
            }
        }
        XCTAssertEqual(wq.entries[0].latent.grad.array[5], 0)  // outside the range
        XCTAssertNotEqual(wq.entries[0].latent.grad.array[0], 0)
        // Accumulates: a second backward doubles the latent gradient.
        let before = wq.entries[0].latent.grad.array
        wq.accumulateLatentGradients()
        XCTAssertEqual(wq.entries[0].latent.grad.array, before.map { 2 * $0 })
        // The latents are what the optimizer sees; the net's weight keeps Q(latent).
        XCTAssertEqual(wq.entries[0].latent.value.array, lat)
    }

    func testBinsAndTransform() {
        var rng = SplitMix64(seed: 3)
        let net = Network(name: "tiny", root: Sequential([Linear(4, 2, bias: false, rng: &rng)]))
        let wq = WeightQuantization(network: net, bits: 4, rangeScale: 1.25, estimator: .ste)
        var before: [Int32] = []
        wq.bins(into: &before)
        XCTAssertEqual(before.count, 8)
        let map = EquivalenceMap(estimator: .cosine(amplitude: 0.8))
        wq.transformLatents { map.map($0, $1) }
        var after: [Int32] = []
        wq.bins(into: &after)
        XCTAssertEqual(before, after, "M keeps every weight in its bin")
    }
}
