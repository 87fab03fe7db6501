// Every layer's forward and backward against PyTorch (Fixtures/layers.h5, written by
// tools/make_fixtures.py), on every convolution backend; the quantized ReLU for every STE × bits ×
// rounding; and the exact-kink table (PyTorch's own outputs at 0, the decision points, top, and
// their float32 neighbours) compared with exact equality. Also holds the fixture helpers.
import Backends
import Foundation
import Kernels
import NN
import Storage
import Training
import TestSupport
import XCTest

// MARK: - Fixture helpers (shared by the NN parity tests)

/// A fixture file of the test bundle (Tests/NNTests/Fixtures, copied as a resource folder).
func fixtureURL(_ name: String) -> URL? {
    Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: "h5")
        ?? Bundle.module.url(forResource: name, withExtension: "h5", subdirectory: "Fixtures")
}

func openFixture(_ name: String) throws -> H5Reader {
    guard let url = fixtureURL(name) else {
        throw StorageError(file: "Fixtures/\(name).h5", "not found in the test bundle")
    }
    return try H5Reader(path: url.path)
}

func floats(_ r: H5Reader, _ path: String) throws -> [Float] { try r.read(path, as: Float.self).values }

func tensor(_ r: H5Reader, _ path: String) throws -> Tensor {
    let (values, shape) = try r.read(path, as: Float.self)
    return Tensor(values, shape: shape.isEmpty ? [1] : shape)
}

/// A tensor against a PyTorch fixture tensor, elementwise (TestSupport's assertClose), its largest difference printed.
func assertMatchesFixture(
    _ got: Tensor, _ r: H5Reader, _ path: String, rtol: Float, atol: Float,
    file: StaticString = #filePath, line: UInt = #line
) throws {
    let expected = try r.read(path, as: Float.self)
    XCTAssertEqual(got.count, expected.values.count, "\(path): shape \(got.shape) vs \(expected.shape)", file: file, line: line)
    assertClose(got.array, expected.values, rtol: rtol, atol: atol, path, log: true, file: file, line: line)
}

/// Default tolerances (ENGINE.md): forward 1e-5 rel + 1e-6 abs, gradients 1e-4 rel + 1e-5 abs.
enum Tol {
    static let forward: (rtol: Float, atol: Float) = (1e-5, 1e-6)
    static let gradient: (rtol: Float, atol: Float) = (1e-4, 1e-5)
}

// MARK: - Layer parity

final class LayerParityTests: XCTestCase {
    var r: H5Reader!

    override func setUpWithError() throws { r = try openFixture("layers") }

    func testFixturesResolveFromTheBundle() throws {
        XCTAssertNotNil(fixtureURL("layers"))
        XCTAssertNotNil(fixtureURL("nets"))
        XCTAssertFalse(try r.stringAttribute("torch_version").isEmpty)
    }

    private var backends: [(String, ConvolutionBackend)] {
        var list: [(String, ConvolutionBackend)] = [("reference", Compute.reference)]
        if let dnnl = OneDNNBackend.make() { list.append(("onednn", dnnl)) }
        return list
    }

    private func int(_ name: String, _ group: String) throws -> Int {
        guard let v = try r.attribute(name, on: group).intValue else { throw StorageError(file: r.path, object: group, "attr \(name)") }
        return Int(v)
    }

    func testConv2d() throws {
        for (_, kind) in try r.children(of: "/conv2d") where kind == .group {}
        let cases = try r.children(of: "/conv2d").map(\.name)
        XCTAssertEqual(cases.count, 5)
        for name in cases {
            let g = "/conv2d/\(name)"
            for (backendName, backend) in backends {
                var rng = SplitMix64(seed: 1)
                let hasBias = try int("bias", g) == 1
                let conv = Conv2d(try int("in_channels", g), try int("out_channels", g), kernel: try int("kernel", g),
                                  stride: try int("stride", g), padding: try int("padding", g), bias: hasBias, rng: &rng)
                conv.backend = backend
                conv.weight.set(try floats(r, "\(g)/weight"))
                if hasBias { conv.bias!.set(try floats(r, "\(g)/bias")) }
                let y = conv.forward(try tensor(r, "\(g)/x"), training: true)
                try assertMatchesFixture(y, r, "\(g)/y", rtol: Tol.forward.rtol, atol: Tol.forward.atol)
                let dx = conv.backward(try tensor(r, "\(g)/dy"))
                try assertMatchesFixture(dx, r, "\(g)/dx", rtol: Tol.gradient.rtol, atol: Tol.gradient.atol)
                try assertMatchesFixture(conv.weight.grad, r, "\(g)/dweight", rtol: Tol.gradient.rtol, atol: Tol.gradient.atol)
                if hasBias { try assertMatchesFixture(conv.bias!.grad, r, "\(g)/dbias", rtol: Tol.gradient.rtol, atol: Tol.gradient.atol) }
                print("  (conv2d \(name) on \(backendName))")
            }
        }
    }

    func testLinear() throws {
        for name in ["bias", "nobias"] {
            let g = "/linear/\(name)"
            var rng = SplitMix64(seed: 1)
            let lin = Linear(7, 5, bias: name == "bias", rng: &rng)
            lin.weight.set(try floats(r, "\(g)/weight"))
            if let b = lin.bias { b.set(try floats(r, "\(g)/bias")) }
            try assertMatchesFixture(lin.forward(try tensor(r, "\(g)/x"), training: true), r, "\(g)/y",
                            rtol: Tol.forward.rtol, atol: Tol.forward.atol)
            try assertMatchesFixture(lin.backward(try tensor(r, "\(g)/dy")), r, "\(g)/dx", rtol: Tol.gradient.rtol, atol: Tol.gradient.atol)
            try assertMatchesFixture(lin.weight.grad, r, "\(g)/dweight", rtol: Tol.gradient.rtol, atol: Tol.gradient.atol)
            if let b = lin.bias { try assertMatchesFixture(b.grad, r, "\(g)/dbias", rtol: Tol.gradient.rtol, atol: Tol.gradient.atol) }
        }
    }

    func testBatchNorm() throws {
        for dim in [1, 2] {
            for mode in ["train", "eval"] {
                let g = "/batchnorm\(dim)d/\(mode)"
                let x = try tensor(r, "\(g)/x")
                let bn = BatchNorm(x.shape[1])
                bn.runningMean.copy(from: try tensor(r, "\(g)/running_mean_before"))
                bn.runningVar.copy(from: try tensor(r, "\(g)/running_var_before"))
                try assertMatchesFixture(bn.forward(x, training: mode == "train"), r, "\(g)/y",
                                rtol: Tol.forward.rtol, atol: Tol.forward.atol)
                try assertMatchesFixture(bn.runningMean, r, "\(g)/running_mean_after", rtol: Tol.forward.rtol, atol: Tol.forward.atol)
                try assertMatchesFixture(bn.runningVar, r, "\(g)/running_var_after", rtol: Tol.forward.rtol, atol: Tol.forward.atol)
                try assertMatchesFixture(bn.backward(try tensor(r, "\(g)/dy")), r, "\(g)/dx",
                                rtol: Tol.gradient.rtol, atol: Tol.gradient.atol)
            }
        }
    }

    /// Shape layers move values without arithmetic: exact. The average sums 9 values in another
    /// order than PyTorch, so its mean may differ by float rounding (atol 1e-7 for means near 0).
    func testPoolingReLUAndShortcut() throws {
        let layers: [(String, Layer, Float, Float)] = [
            ("maxpool2d", MaxPool2d(), 0, 0), ("maxpool2d_ties", MaxPool2d(), 0, 0), ("relu", ReLU(), 0, 0),
            ("avgpool_global", GlobalAvgPool(), 1e-6, 1e-7), ("shortcut_optionA", ShortcutOptionA(pad: 2), 0, 0),
        ]
        for (name, layer, rtol, atol) in layers {
            try assertMatchesFixture(layer.forward(try tensor(r, "/\(name)/x"), training: true), r, "/\(name)/y", rtol: rtol, atol: atol)
            try assertMatchesFixture(layer.backward(try tensor(r, "/\(name)/dy")), r, "/\(name)/dx", rtol: rtol, atol: atol)
        }
    }

    func testCrossEntropy() throws {
        let logits = try floats(r, "/cross_entropy/logits")
        let labels = try r.read("/cross_entropy/labels", as: Int64.self).values.map { Int32($0) }
        var d = [Float](repeating: 0, count: logits.count)
        let result = logits.withUnsafeBufferPointer { z in
            labels.withUnsafeBufferPointer { l in
                d.withUnsafeMutableBufferPointer {
                    softmaxCrossEntropy(logits: z, labels: l, batch: labels.count, classes: 10, dlogits: $0)
                }
            }
        }
        assertClose([result.loss], try floats(r, "/cross_entropy/loss"), rtol: 1e-6, atol: 0, "/cross_entropy/loss")
        assertClose(d, try floats(r, "/cross_entropy/dlogits"), rtol: 1e-5, atol: 1e-7, "/cross_entropy/dlogits")
    }

    /// y is bit-exact (same float32 division, ceil/round-half-even, multiply); dx is dy·{0,1} exactly
    /// except log-tailed, where PyTorch divides g/(1+(x−top)) and the kernel multiplies g·(1/(…)): 1 ulp.
    func testQuantizedReLUEverySTEBitsRounding() throws {
        var cases = 0
        for bits in [2, 4] {
            for rounding in Rounding.allCases {
                for ste in STE.allCases {
                    let g = "/qrelu/b\(bits)/\(rounding.rawValue)/\(ste.rawValue)"
                    let alpha = try r.attribute("alpha", on: g).doubleValue!
                    XCTAssertEqual(Float(alpha), defaultAlpha(bits: bits))
                    let layer = QReLU(.quantized(QuantizerSpec(bits: bits, alpha: Float(alpha), rounding: rounding), ste))
                    try assertMatchesFixture(layer.forward(try tensor(r, "\(g)/x"), training: true), r, "\(g)/y", rtol: 0, atol: 0)
                    let dxTol: Float = ste == .logTailed ? 2.5e-7 : 0
                    try assertMatchesFixture(layer.backward(try tensor(r, "\(g)/dy")), r, "\(g)/dx", rtol: dxTol, atol: 0)
                    cases += 1
                }
            }
        }
        XCTAssertEqual(cases, 16)
    }

    func testQuantizerKinksMatchPyTorchExactly() throws {
        for bits in [2, 4] {
            for rounding in Rounding.allCases {
                let g = "/qrelu_kinks/b\(bits)/\(rounding.rawValue)"
                let spec = QuantizerSpec(bits: bits, alpha: defaultAlpha(bits: bits)!, rounding: rounding)
                let x = try floats(r, "\(g)/x")
                XCTAssertTrue(x.contains(0) && x.contains(spec.top) && x.contains(spec.top.nextUp))
                var y = [Float](repeating: .nan, count: x.count)
                y.withUnsafeMutableBufferPointer { o in x.withUnsafeBufferPointer { quantizedReLUForward(o, $0, spec: spec) } }
                assertClose(y, try floats(r, "\(g)/y"), rtol: 0, atol: 0, "\(g)/y")
                for ste in STE.allCases {
                    var dx = [Float](repeating: 0, count: x.count)
                    let ones = [Float](repeating: 1, count: x.count)
                    dx.withUnsafeMutableBufferPointer { d in
                        ones.withUnsafeBufferPointer { o in
                            x.withUnsafeBufferPointer { quantizedReLUBackward(d, o, $0, spec: spec, ste: ste) }
                        }
                    }
                    assertClose(dx, try floats(r, "\(g)/dx_\(ste.rawValue)"), rtol: ste == .logTailed ? 2.5e-7 : 0, atol: 0,
                                "\(g)/dx_\(ste.rawValue)")
                }
            }
        }
    }
}

/// Three optimizer steps on one tensor against torch.optim (layers.h5 /optim/*): SGD with momentum,
/// with Nesterov, without momentum, and Adam (defaults β = (0.9, 0.999), ε = 1e-8), weight decay 1e-4.
final class OptimizerParityTests: XCTestCase {
    func testOptimizersMatchTorchOptim() throws {
        let r = try openFixture("layers")
        for name in ["sgd_momentum", "sgd_nesterov", "sgd_plain", "adam"] {
            let g = "/optim/\(name)"
            let w0 = try floats(r, "\(g)/w0"), grads = try floats(r, "\(g)/grads"), after = try floats(r, "\(g)/after")
            let lr = try r.attribute("lr", on: g).doubleValue!, wd = try r.attribute("weight_decay", on: g).doubleValue!
            let p = Parameter(name: "w", value: Tensor(w0, shape: [20]), grad: Tensor(zeros: [20]), decay: true)
            let opt: Optimizer = name == "adam"
                ? Adam(parameters: [p], learningRate: lr, weightDecay: wd)
                : SGD(parameters: [p], learningRate: lr, momentum: try r.attribute("momentum", on: g).doubleValue!,
                      weightDecay: wd, nesterov: try r.attribute("nesterov", on: g).intValue! == 1)
            for k in 0..<3 {
                p.grad.copy(from: Tensor(Array(grads[(k * 20)..<((k + 1) * 20)]), shape: [20]))
                opt.step()
                // PyTorch fuses some multiply-adds (vectorised fmadd); 1 ulp-level differences only.
                assertClose(p.value.array, Array(after[(k * 20)..<((k + 1) * 20)]), rtol: 1e-6, atol: 1e-7, "\(g) step \(k + 1)")
            }
        }
    }
}
