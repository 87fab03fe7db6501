// Finite-difference checks of every float layer's backward, in jax's form: one random tangent t (input
// and parameters) and one random cotangent c; the central difference ⟨f(x + εt) − f(x − εt), c⟩/(2ε)
// (sums in Double) must equal ⟨t, Jᵀc⟩ from backward within 2e-3 relative (jax's float32 gradient
// tolerance). Not used on the quantizer: the STE is not its derivative.
import Backends
import Kernels
import NN
import TestSupport
import XCTest

final class FiniteDifferenceTests: XCTestCase {

    func dot(_ a: Tensor, _ b: Tensor) -> Double {
        precondition(a.count == b.count)
        var s = 0.0
        for i in 0..<a.count { s += Double(a[i]) * Double(b[i]) }
        return s
    }

    /// Returns (jvp by central differences, vjp by backward) for `layer` at `x`.
    @discardableResult
    func checkVJP(_ layer: Layer, input x: Tensor, eps: Float, seed: UInt64, training: Bool = true,
                  tolerance: Double = 2e-3, _ what: String) -> (Double, Double) {
        var rng = SplitMix64(seed: seed)
        let tx = gaussianTensor(x.shape, &rng)
        let params = layer.parameters
        let tp = params.map { gaussianTensor($0.value.shape, &rng) }
        let y = layer.forward(x, training: training)
        let c = gaussianTensor(y.shape, &rng)
        for p in params { p.grad.zero() }
        let dx = layer.backward(c)
        var vjp = dot(tx, dx)
        for (p, t) in zip(params, tp) { vjp += dot(t, p.grad) }

        func shifted(_ sign: Float) -> Tensor {
            let xs = x.clone()
            for i in 0..<xs.count { xs[i] += sign * eps * tx[i] }
            let saved = params.map { $0.value.clone() }
            for (p, t) in zip(params, tp) { for i in 0..<p.value.count { p.value[i] += sign * eps * t[i] } }
            let out = layer.forward(xs, training: training)
            for (p, s) in zip(params, saved) { p.value.copy(from: s) }
            return out
        }
        let plus = shifted(1), minus = shifted(-1)
        var jvp = 0.0
        for i in 0..<c.count { jvp += (Double(plus[i]) - Double(minus[i])) * Double(c[i]) }
        jvp /= 2 * Double(eps)
        let scale = max(abs(jvp), abs(vjp))
        XCTAssertGreaterThan(scale, 1e-3, "\(what): degenerate check")
        XCTAssertLessThanOrEqual(abs(jvp - vjp), tolerance * scale, "\(what): ⟨J·t, c⟩ = \(jvp), ⟨t, Jᵀ·c⟩ = \(vjp)")
        return (jvp, vjp)
    }

    func testConv2dBothBackends() throws {
        var backends: [ConvolutionBackend] = [ReferenceBackend()]
        if let d = OneDNNBackend.make() { backends.append(d) }
        for backend in backends {
            var rng = SplitMix64(seed: 1)
            for (cin, cout, k, s, p, bias, h) in [(1, 6, 5, 1, 2, false, 12), (6, 16, 5, 1, 0, true, 10),
                                                  (16, 32, 3, 2, 1, false, 8), (3, 8, 3, 1, 1, true, 9)] {
                let conv = Conv2d(cin, cout, kernel: k, stride: s, padding: p, bias: bias, rng: &rng)
                conv.backend = backend
                checkVJP(conv, input: gaussianTensor([3, cin, h, h], &rng), eps: 1e-2, seed: 10,
                         "conv \(cin)→\(cout) k\(k) s\(s) p\(p) bias \(bias) [\(backend.name)]")
            }
        }
    }

    func testLinear() {
        var rng = SplitMix64(seed: 2)
        for bias in [false, true] {
            checkVJP(Linear(40, 12, bias: bias, rng: &rng), input: gaussianTensor([5, 40], &rng), eps: 1e-2, seed: 11,
                     "linear bias \(bias)")
        }
    }

    func testBatchNormTraining() {
        var rng = SplitMix64(seed: 3)
        for affine in [false, true] {
            let bn2 = BatchNorm(4, affine: affine)
            if affine { for p in bn2.parameters { for i in 0..<p.value.count { p.value[i] += 0.3 * rng.nextGaussian() } } }
            checkVJP(bn2, input: gaussianTensor([6, 4, 5, 3], &rng), eps: 1e-3, seed: 12, "BatchNorm2d affine \(affine)")
            checkVJP(BatchNorm(7, affine: affine), input: gaussianTensor([9, 7], &rng), eps: 1e-3, seed: 13,
                     "BatchNorm1d affine \(affine)")
        }
        // Eval mode: a fixed affine map of x.
        let bn = BatchNorm(4)
        _ = bn.forward(gaussianTensor([8, 4, 3, 3], &rng), training: true)
        checkVJP(bn, input: gaussianTensor([2, 4, 3, 3], &rng), eps: 1e-2, seed: 14, training: false, "BatchNorm2d eval")
    }

    func testMaxPoolWithoutTies() {
        // Distinct values 0.01 apart, shuffled: ε·|t| < 0.005 keeps every window's winner.
        let n = 2 * 3 * 6 * 8
        var rng = SplitMix64(seed: 4)
        var values = (0..<n).map { Float($0) * 0.01 - 1 }
        for i in stride(from: n - 1, to: 0, by: -1) { values.swapAt(i, rng.next(below: i + 1)) }
        checkVJP(MaxPool2d(), input: Tensor(values, shape: [2, 3, 6, 8]), eps: 1e-3, seed: 15, "maxpool")
    }

    func testGlobalAvgPoolAndShortcut() {
        var rng = SplitMix64(seed: 5)
        checkVJP(GlobalAvgPool(), input: gaussianTensor([3, 5, 4, 4], &rng), eps: 1e-2, seed: 16, "global avg pool")
        checkVJP(ShortcutOptionA(pad: 4), input: gaussianTensor([2, 8, 8, 8], &rng), eps: 1e-2, seed: 17, "option-A shortcut")
        checkVJP(Flatten(), input: gaussianTensor([2, 3, 2, 2], &rng), eps: 1e-2, seed: 18, "flatten")
    }

    /// A whole float stack (conv → BN → maxpool → flatten → linear), backward through Sequential.
    func testSequentialStack() {
        var rng = SplitMix64(seed: 6)
        let net = Sequential([Conv2d(2, 4, kernel: 3, padding: 1, rng: &rng), BatchNorm(4), MaxPool2d(), Flatten(),
                              Linear(4 * 4 * 4, 5, rng: &rng)])
        checkVJP(net, input: gaussianTensor([4, 2, 8, 8], &rng), eps: 1e-3, seed: 19, tolerance: 5e-3,
                 "conv-bn-pool-linear stack (max pool winners may flip under ε: looser)")
    }
}
