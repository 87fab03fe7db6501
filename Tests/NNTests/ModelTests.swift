// The three nets: parameter counts (ste_torch.py / the peer README table), parameter and buffer names
// (= PyTorch state_dict keys of ste_torch.py, without num_batches_tracked, in state_dict order), forward
// shapes in train and eval mode, and the activation swap.
import Kernels
import NN
import XCTest

final class ModelTests: XCTestCase {
    /// Generated from ste_torch.py: `[k for k, _ in m.named_parameters()]`, `named_buffers()`.
    static let stateDictKeys: [String: (parameters: [String], buffers: [String])] = [
        "lenet5": (parameters: ["features.0.weight", "features.4.weight", "classifier.0.weight", "classifier.3.weight", "classifier.6.weight", "classifier.6.bias"], buffers: ["features.1.running_mean", "features.1.running_var", "features.5.running_mean", "features.5.running_var", "classifier.1.running_mean", "classifier.1.running_var", "classifier.4.running_mean", "classifier.4.running_var"]),
        "vgg11": (parameters: ["features.0.weight", "features.4.weight", "features.8.weight", "features.11.weight", "features.15.weight", "features.18.weight", "features.22.weight", "features.25.weight", "classifier.weight", "classifier.bias"], buffers: ["features.1.running_mean", "features.1.running_var", "features.5.running_mean", "features.5.running_var", "features.9.running_mean", "features.9.running_var", "features.12.running_mean", "features.12.running_var", "features.16.running_mean", "features.16.running_var", "features.19.running_mean", "features.19.running_var", "features.23.running_mean", "features.23.running_var", "features.26.running_mean", "features.26.running_var"]),
        "resnet20": (parameters: ["stem.0.weight", "blocks.0.conv1.weight", "blocks.0.conv2.weight", "blocks.1.conv1.weight", "blocks.1.conv2.weight", "blocks.2.conv1.weight", "blocks.2.conv2.weight", "blocks.3.conv1.weight", "blocks.3.conv2.weight", "blocks.4.conv1.weight", "blocks.4.conv2.weight", "blocks.5.conv1.weight", "blocks.5.conv2.weight", "blocks.6.conv1.weight", "blocks.6.conv2.weight", "blocks.7.conv1.weight", "blocks.7.conv2.weight", "blocks.8.conv1.weight", "blocks.8.conv2.weight", "fc.weight", "fc.bias"], buffers: ["stem.1.running_mean", "stem.1.running_var", "blocks.0.bn1.running_mean", "blocks.0.bn1.running_var", "blocks.0.bn2.running_mean", "blocks.0.bn2.running_var", "blocks.1.bn1.running_mean", "blocks.1.bn1.running_var", "blocks.1.bn2.running_mean", "blocks.1.bn2.running_var", "blocks.2.bn1.running_mean", "blocks.2.bn1.running_var", "blocks.2.bn2.running_mean", "blocks.2.bn2.running_var", "blocks.3.bn1.running_mean", "blocks.3.bn1.running_var", "blocks.3.bn2.running_mean", "blocks.3.bn2.running_var", "blocks.4.bn1.running_mean", "blocks.4.bn1.running_var", "blocks.4.bn2.running_mean", "blocks.4.bn2.running_var", "blocks.5.bn1.running_mean", "blocks.5.bn1.running_var", "blocks.5.bn2.running_mean", "blocks.5.bn2.running_var", "blocks.6.bn1.running_mean", "blocks.6.bn1.running_var", "blocks.6.bn2.running_mean", "blocks.6.bn2.running_var", "blocks.7.bn1.running_mean", "blocks.7.bn1.running_var", "blocks.7.bn2.running_mean", "blocks.7.bn2.running_var", "blocks.8.bn1.running_mean", "blocks.8.bn1.running_var", "blocks.8.bn2.running_mean", "blocks.8.bn2.running_var"]),
    ]

    /// ResNet-32's keys follow ResNet-20's with 15 blocks (its NetParity test also checks them against PyTorch's).
    static let resNet32Keys: (parameters: [String], buffers: [String]) = (
        ["stem.0.weight"] + (0..<15).flatMap { ["blocks.\($0).conv1.weight", "blocks.\($0).conv2.weight"] } + ["fc.weight", "fc.bias"],
        ["stem.1.running_mean", "stem.1.running_var"] + (0..<15).flatMap { b in
            ["bn1", "bn2"].flatMap { ["blocks.\(b).\($0).running_mean", "blocks.\(b).\($0).running_var"] }
        })

    /// ResNet-32: 461,882, as PyTorch counts it (Tests/NNTests/Fixtures/nets-extensions.h5, parameter_count).
    static let parameterCounts = ["lenet5": 61_480, "vgg11": 9_222_858, "resnet20": 268_346, "resnet32": 461_882]
    let spec = QuantizerSpec(bits: 4, alpha: 0.1946)

    func testParameterCountsAndNames() {
        for name in networkNames {
            let net = makeNetwork(named: name, activation: .quantized(spec, .clipped), seed: 1)
            XCTAssertEqual(net.parameterCount, Self.parameterCounts[name], name)
            let keys = name == "resnet32" ? Self.resNet32Keys : Self.stateDictKeys[name]!
            XCTAssertEqual(net.parameters.map(\.name), keys.parameters, name)
            XCTAssertEqual(net.buffers.map(\.name), keys.buffers, name)
            XCTAssertTrue(net.parameters.allSatisfy(\.decay), name)
        }
    }

    /// Layers reuse their output buffers between steps (no allocation in a steady step), but only
    /// buffers nobody else holds: logits kept by the caller survive later forwards, and a training
    /// step after that gives the same gradients as one on a fresh net.
    func testKeptResultsSurviveLaterForwardsAndSteps() {
        for name in ["lenet5", "resnet20"] {
            var rng = SplitMix64(seed: 3)
            let shape = [4] + inputShape(ofNetwork: name)!
            let x1 = Tensor((0..<shape.reduce(1, *)).map { _ in rng.nextGaussian() }, shape: shape)
            let x2 = Tensor((0..<shape.reduce(1, *)).map { _ in rng.nextGaussian() }, shape: shape)
            func step(_ net: Network) -> [Float] {
                net.zeroGrad()
                let logits = net.forward(x2, training: true)
                net.backward(Tensor(logits.array.map { $0 * 0.1 }, shape: logits.shape))
                return net.parameters.flatMap { $0.grad.array }
            }
            let net = makeNetwork(named: name, activation: .quantized(spec, .clipped), seed: 1)
            let kept = net.forward(x1, training: false)
            let snapshot = kept.array
            _ = net.forward(x2, training: false)
            let grads = (0..<3).map { _ in step(net) }  // steady state: buffers reused
            XCTAssertEqual(kept.array, snapshot, "\(name): kept logits overwritten")
            let fresh = makeNetwork(named: name, activation: .quantized(spec, .clipped), seed: 1)
            _ = fresh.forward(x1, training: false)
            let reference = step(fresh)
            XCTAssertEqual(grads[0], reference, name)
            XCTAssertTrue(grads[0].contains { $0 != 0 }, name)
            // Same weights, same batch (training-mode BN uses batch statistics): reused buffers must
            // give bit-identical gradients in every later step.
            XCTAssertEqual(grads[1], grads[0], name)
            XCTAssertEqual(grads[2], grads[0], name)
        }
    }

    func testForwardShapesTrainAndEval() {
        for name in ["lenet5", "resnet20"] {
            let net = makeNetwork(named: name, activation: .quantized(spec, .clipped), seed: 2)
            let x = Tensor(zeros: [3] + inputShape(ofNetwork: name)!)
            var rng = SplitMix64(seed: 3)
            for i in 0..<x.count { x[i] = rng.nextGaussian() }
            for training in [true, false] {
                let y = net.forward(x, training: training)
                XCTAssertEqual(y.shape, [3, 10], "\(name) training \(training)")
                XCTAssertTrue(y.array.allSatisfy(\.isFinite), name)
            }
        }
        let vgg = makeVGG11(activation: .float, seed: 4, widthDivisor: 8)
        XCTAssertEqual(vgg.forward(Tensor(repeating: 0.5, shape: [2, 3, 32, 32]), training: true).shape, [2, 10])
        XCTAssertEqual(vgg.parameters.last?.value.shape, [10], "classifier.bias")
        XCTAssertEqual(vgg.parameters[vgg.parameters.count - 2].value.shape, [10, 64], "classifier.weight at width/8")
    }

    func testBackwardFillsEveryGradientAndZeroGradClears() {
        let net = makeLeNet5(activation: .quantized(spec, .identity), seed: 5)
        let x = Tensor(zeros: [4, 1, 28, 28])
        var rng = SplitMix64(seed: 6)
        for i in 0..<x.count { x[i] = rng.nextGaussian() }
        let y = net.forward(x, training: true)
        net.backward(variedTensor(y.shape))
        for p in net.parameters { XCTAssertTrue(p.grad.array.contains { $0 != 0 }, "\(p.name) has no gradient") }
        net.zeroGrad()
        for p in net.parameters { XCTAssertTrue(p.grad.array.allSatisfy { $0 == 0 }, p.name) }
    }

    func testSetActivationSwapsEveryActivation() {
        let net = makeResNet20(activation: .float, seed: 7)
        let q = Activation.quantized(QuantizerSpec(bits: 2, alpha: 0.6511), .relu)
        net.setActivation(q)
        XCTAssertEqual(net.activation, q)
        // Quantized outputs of the last block take only the levels {0, α, 2α, 3α}.
        let x = Tensor(repeating: 0.3, shape: [2, 3, 32, 32])
        for i in 0..<x.count { x[i] = Float(i % 7) * 0.1 - 0.3 }
        let root = net.root as! Sequential
        let features = Sequential([root.layers[0].layer, root.layers[1].layer])
        let h = features.forward(x, training: true)
        let levels = Set(h.array.map { ($0 / 0.6511).rounded() })
        XCTAssertTrue(levels.isSubset(of: [0, 1, 2, 3]), "\(levels)")
        for v in h.array { XCTAssertEqual(v, (v / 0.6511).rounded() * 0.6511, accuracy: 1e-6) }
    }
}

/// A cotangent that differs across samples and classes (BN would cancel a constant one).
func variedTensor(_ shape: [Int]) -> Tensor {
    let t = Tensor(zeros: shape)
    for i in 0..<t.count { t[i] = 0.1 * (Float(i % 7) - 3) }
    return t
}
