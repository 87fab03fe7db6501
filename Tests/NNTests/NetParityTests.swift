// Each net against PyTorch (Fixtures/nets.h5): with the fixture's parameters loaded by state_dict
// name, one training step on the fixture batch must give PyTorch's logits, loss, every parameter
// gradient, the parameters after torch.optim.SGD(lr 0.1, momentum 0.9, weight decay 1e-4), the BN
// running statistics after, and the eval-mode logits; LeNet-5 "a2-clipped-ceil" runs a second step
// (momentum buffer exercised). ResNet-20 runs at 8×8 input and VGG-11 with widths / 8 to keep the
// fixture small. The generator kept every quantizer input ≥ 1e-4·α from a decision point.
// On oneDNN, ResNet-20 keeps its activations channel-blocked: at 8×8 its first two stages run in
// nChw16c and the last in NCHW (2×2 planes), so the layout change inside a block is checked too.
import Backends
import Kernels
import NN
import Storage
import Training
import TestSupport
import XCTest

final class NetParityTests: XCTestCase {
    /// Tolerances of a whole net. Measured max |diff| (oneDNN backend, this machine): logits 7e-7,
    /// grads 8e-6 (VGG first conv), params after 8e-7, BN buffers 3e-7. Summation orders differ
    /// (oneDNN / OpenBLAS vs PyTorch) through up to 20 layers, so logits get 1e-5 rel + 1e-6 abs
    /// (10× the per-layer forward atol) and gradients the per-layer default 1e-4 rel + 1e-5 abs.
    /// Quantized activations do not accumulate error: their outputs are exact levels (no input lies
    /// within 1e-5·α of a decision point).
    static let logits: (rtol: Float, atol: Float) = (1e-5, 1e-6)
    static let grads: (rtol: Float, atol: Float) = (1e-4, 1e-5)
    static let params: (rtol: Float, atol: Float) = (1e-5, 1e-6)
    static let buffers: (rtol: Float, atol: Float) = (1e-5, 1e-6)

    private func makeNet(_ net: String, _ activation: Activation) -> Network {
        switch net {
        case "vgg11_w8": return makeVGG11(activation: activation, seed: 1, widthDivisor: 8)
        default: return makeNetwork(named: net, activation: activation, seed: 1)
        }
    }

    private func activation(_ r: H5Reader, _ g: String, variant: String) throws -> Activation {
        if variant == "float" { return .float }
        let bits = Int(try r.attribute("bits", on: g).intValue!)
        let alpha = Float(try r.attribute("alpha", on: g).doubleValue!)
        let ste = STE(rawValue: try r.stringAttribute("ste", on: g))!
        let rounding = Rounding(rawValue: try r.stringAttribute("rounding", on: g))!
        return .quantized(QuantizerSpec(bits: bits, alpha: alpha, rounding: rounding), ste)
    }

    private func trainStep(_ network: Network, _ x: Tensor, _ labels: [Int32], _ sgd: SGD) -> (Tensor, Float) {
        network.zeroGrad()
        let logits = network.forward(x, training: true)
        let dlogits = Tensor(zeros: logits.shape)
        let loss = logits.readBuffer.withMemoryRebound(to: Float.self) { z in
            labels.withUnsafeBufferPointer {
                softmaxCrossEntropy(logits: z, labels: $0, batch: labels.count, classes: 10, dlogits: dlogits.buffer).loss
            }
        }
        network.backward(dlogits)
        sgd.step()
        return (logits, loss)
    }

    /// Runs the case on the reference backend and on oneDNN (when present).
    private func check(net: String, variant: String, fixture: String = "nets", file: StaticString = #filePath,
                       line: UInt = #line) throws {
        let saved = Compute.backend
        defer { Compute.backend = saved }
        var backends: [(String, ConvolutionBackend)] = [("reference", Compute.reference)]
        if let dnnl = OneDNNBackend.make() { backends.append(("onednn", dnnl)) }
        for (name, backend) in backends {
            print("NetParity \(net)/\(variant) on \(name)")
            Compute.backend = backend
            try checkOnCurrentBackend(net: net, variant: variant, fixture: fixture, file: file, line: line)
        }
    }

    private func checkOnCurrentBackend(net: String, variant: String, fixture: String, file: StaticString, line: UInt) throws {
        let r = try openFixture(fixture)
        let g = "/\(net)/\(variant)"
        let network = makeNet(net, try activation(r, g, variant: variant))
        // Names: the Swift net's parameters and buffers are exactly the PyTorch state_dict keys.
        let fixtureParams = Set(try r.children(of: "/\(net)/params").map(\.name))
        let fixtureBuffers = Set(try r.children(of: "/\(net)/buffers").map(\.name))
        XCTAssertEqual(Set(network.parameters.map(\.name)), fixtureParams, "\(net) parameter names", file: file, line: line)
        XCTAssertEqual(Set(network.buffers.map(\.name)), fixtureBuffers, "\(net) buffer names", file: file, line: line)
        XCTAssertEqual(network.parameterCount, Int(try r.attribute("parameter_count", on: "/\(net)").intValue!))
        for p in network.parameters { p.set(try floats(r, "/\(net)/params/\(p.name)")) }
        for b in network.buffers { b.value.copy(from: try tensor(r, "/\(net)/buffers/\(b.name)")) }

        let x = try tensor(r, "\(g)/x")
        let labels = try r.read("\(g)/labels", as: Int64.self).values.map { Int32($0) }
        let sgd = SGD(parameters: network.parameters, learningRate: 0.1, momentum: 0.9, weightDecay: 1e-4)
        let (logits, loss) = trainStep(network, x, labels, sgd)
        try assertMatchesFixture(logits, r, "\(g)/logits", rtol: Self.logits.rtol, atol: Self.logits.atol, file: file, line: line)
        assertClose([loss], try floats(r, "\(g)/loss"), rtol: 1e-5, atol: 0, "\(g)/loss", file: file, line: line)
        for p in network.parameters {
            try assertMatchesFixture(p.grad, r, "\(g)/grads/\(p.name)", rtol: Self.grads.rtol, atol: Self.grads.atol, file: file, line: line)
        }
        // The extensions' fixtures (nets-extensions.h5) hold the forward and the gradients only.
        for p in network.parameters where r.contains("\(g)/params_after") {
            try assertMatchesFixture(p.value, r, "\(g)/params_after/\(p.name)", rtol: Self.params.rtol, atol: Self.params.atol,
                            file: file, line: line)
        }
        for b in network.buffers where r.contains("\(g)/buffers_after") {
            try assertMatchesFixture(b.value, r, "\(g)/buffers_after/\(b.name)", rtol: Self.buffers.rtol, atol: Self.buffers.atol,
                            file: file, line: line)
        }
        try assertMatchesFixture(network.forward(x, training: false), r, "\(g)/eval_logits", rtol: Self.logits.rtol,
                        atol: Self.logits.atol, file: file, line: line)
        let steps = Int(try r.attribute("steps", on: g).intValue!)
        if steps >= 2 {
            let (_, loss2) = trainStep(network, x, labels, sgd)
            assertClose([loss2], try floats(r, "\(g)/loss2"), rtol: 1e-4, atol: 0, "\(g)/loss2", file: file, line: line)
            for p in network.parameters {
                try assertMatchesFixture(p.value, r, "\(g)/params_after2/\(p.name)", rtol: Self.params.rtol,
                                atol: Self.params.atol, file: file, line: line)
            }
            for b in network.buffers {
                try assertMatchesFixture(b.value, r, "\(g)/buffers_after2/\(b.name)", rtol: Self.buffers.rtol,
                                atol: Self.buffers.atol, file: file, line: line)
            }
        }
    }

    func testLeNet5TwoStepsA2ClippedCeil() throws { try check(net: "lenet5", variant: "a2-clipped-ceil") }
    func testLeNet5Float() throws { try check(net: "lenet5", variant: "float") }
    func testLeNet5A4ReLUNearest() throws { try check(net: "lenet5", variant: "a4-relu-nearest") }
    func testResNet20A2ClippedCeil() throws { try check(net: "resnet20", variant: "a2-clipped-ceil") }
    func testVGG11Width8A4IdentityCeil() throws { try check(net: "vgg11_w8", variant: "a4-identity-ceil") }
    /// ResNet-32, the registry's first net beyond the paper's (Sources/NN/Models/Networks.swift), at 8×8 input.
    func testResNet32A2ClippedCeil() throws { try check(net: "resnet32", variant: "a2-clipped-ceil", fixture: "nets-extensions") }

    /// Every case in the file is covered by a test above.
    func testAllFixtureCasesAreTested() throws {
        let r = try openFixture("nets")
        var found: [String] = []
        for (net, _) in try r.children(of: "/") {
            for (v, kind) in try r.children(of: "/\(net)") where kind == .group && v != "params" && v != "buffers" {
                found.append("\(net)/\(v)")
            }
        }
        XCTAssertEqual(found.sorted(), ["lenet5/a2-clipped-ceil", "lenet5/a4-relu-nearest", "lenet5/float",
                                        "resnet20/a2-clipped-ceil", "vgg11_w8/a4-identity-ceil"])
    }
}
