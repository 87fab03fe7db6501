// The fused BatchNorm + quantized-ReLU layer (NN/BatchNormActivation.swift) against the two layers run one
// after the other: outputs, input gradients,
// affine gradients and running statistics must be BIT-identical, for every STE and rounding, with and
// without affine, on planes whose size is and is not a multiple of the 8-lane vector, and with inputs
// that normalise to exactly 0 (the STE kink where ReLU-type rules block).
@testable import Kernels
@testable import NN
import TestSupport
import XCTest

final class FusionTests: XCTestCase {
    func testFusedStepIsBitIdenticalToTheTwoLayers() {
        var rng = SplitMix64(seed: 11)
        for (h, w) in [(4, 4), (5, 5), (10, 10)] {
            for ste in STE.allCases {
                for rounding in Rounding.allCases {
                    for affine in [false, true] {
                        let spec = QuantizerSpec(bits: 2, alpha: 0.5, rounding: rounding)
                        let shape = [3, 4, h, w]
                        let count = shape.reduce(1, *)
                        let x = Tensor((0..<count).map { _ in rng.nextGaussian() }, shape: shape)
                        let dy = Tensor((0..<count).map { _ in rng.nextGaussian() }, shape: shape)
                        let (fusedBN, plainBN) = (BatchNorm(4, affine: affine), BatchNorm(4, affine: affine))
                        if affine {
                            for ch in 0..<4 {
                                let (scale, shift) = (Float(0.5 + 0.25 * Float(ch)), Float(0.1 * Float(ch)))
                                fusedBN.weight!.value[ch] = scale; plainBN.weight!.value[ch] = scale
                                fusedBN.bias!.value[ch] = shift; plainBN.bias!.value[ch] = shift
                            }
                        }
                        let (fusedAct, plainAct) = (QReLU(.quantized(spec, ste)), QReLU(.quantized(spec, ste)))
                        let pair = BatchNormActivation(fusedBN, fusedAct)
                        let what = "\(h)×\(w) \(ste) \(rounding) affine \(affine)"

                        for training in [true, false] {
                            let fused = pair.forward(x, training: training)
                            let plain = plainAct.forward(plainBN.forward(x, training: training), training: training)
                            XCTAssertEqual(bitPatterns(fused), bitPatterns(plain), "forward \(what) training \(training)")
                        }
                        // A training step: dx, affine gradients and running statistics.
                        _ = pair.forward(x, training: true)
                        _ = plainAct.forward(plainBN.forward(x, training: true), training: true)
                        let dxFused = pair.backward(dy)
                        let dxPlain = plainBN.backward(plainAct.backward(dy))
                        XCTAssertEqual(bitPatterns(dxFused), bitPatterns(dxPlain), "backward \(what)")
                        if affine {
                            XCTAssertEqual(bitPatterns(fusedBN.weight!.grad), bitPatterns(plainBN.weight!.grad), "dweight \(what)")
                            XCTAssertEqual(bitPatterns(fusedBN.bias!.grad), bitPatterns(plainBN.bias!.grad), "dbias \(what)")
                        }
                        XCTAssertEqual(bitPatterns(fusedBN.runningMean), bitPatterns(plainBN.runningMean), "running mean \(what)")
                        XCTAssertEqual(bitPatterns(fusedBN.runningVar), bitPatterns(plainBN.runningVar), "running var \(what)")
                    }
                }
            }
        }
    }

    /// [n, c] batch norm (BatchNorm1d, LeNet-5's classifier): the channel-vectorised kernels against the
    /// per-channel loops bit for bit — forward (training and eval), dx, affine gradients, running
    /// statistics — with and without the fused quantizer (every STE), channel counts with and without a
    /// partial vector; and the fused pair against BN then QReLU.
    func testRowKernelsAreBitIdenticalToThePerChannelLoops() {
        var rng = SplitMix64(seed: 12)
        defer { batchNormRowKernels = true }
        let spec = QuantizerSpec(bits: 2, alpha: 0.5, rounding: .ceil)
        for (n, c) in [(5, 12), (128, 16), (7, 84)] {
            for affine in [false, true] {
                for activation in [Activation.float] + STE.allCases.map({ Activation.quantized(spec, $0) }) {
                    let what = "[\(n), \(c)] affine \(affine) \(activation)"
                    let x = Tensor((0..<(n * c)).map { _ in rng.nextGaussian() }, shape: [n, c])
                    let dy = Tensor((0..<(n * c)).map { _ in rng.nextGaussian() }, shape: [n, c])
                    var results: [[[UInt32]]] = []
                    for rows in [true, false] {
                        batchNormRowKernels = rows
                        let bn = BatchNorm(c, affine: affine), act = QReLU(activation)
                        let pair = BatchNormActivation(bn, act)
                        if affine {
                            for ch in 0..<c { bn.weight!.value[ch] = 0.5 + Float(ch) / 64; bn.bias!.value[ch] = Float(ch % 3) / 10 }
                        }
                        let y = bitPatterns(pair.forward(x, training: true))
                        let dx = bitPatterns(pair.backward(dy))
                        let eval = bitPatterns(pair.forward(x, training: false))
                        results.append([y, dx, eval, bitPatterns(bn.runningMean), bitPatterns(bn.runningVar)]
                                       + (affine ? [bitPatterns(bn.weight!.grad), bitPatterns(bn.bias!.grad)] : []))
                        if rows, case .quantized = activation {   // fused vs the two layers
                            let (plainBN, plainAct) = (BatchNorm(c, affine: affine), QReLU(activation))
                            if affine {
                                for ch in 0..<c { plainBN.weight!.value[ch] = 0.5 + Float(ch) / 64; plainBN.bias!.value[ch] = Float(ch % 3) / 10 }
                            }
                            XCTAssertEqual(bitPatterns(plainAct.forward(plainBN.forward(x, training: true), training: true)), y,
                                           "fused forward \(what)")
                            XCTAssertEqual(bitPatterns(plainBN.backward(plainAct.backward(dy))), dx, "fused backward \(what)")
                        }
                    }
                    for (k, name) in ["forward", "dx", "eval", "running mean", "running var", "dweight", "dbias"]
                        .enumerated() where k < results[0].count {
                        XCTAssertEqual(results[0][k], results[1][k], "\(name) \(what)")
                    }
                }
            }
        }
    }

    /// Each channel's batch is symmetric around 0, so its mean is exactly 0 and the zeros normalise to
    /// exactly 0, the kink where the ReLU-type STEs block; ties and large values around Lα as well.
    func testFusedStepAtTheKinks() {
        let spec = QuantizerSpec(bits: 2, alpha: 0.5, rounding: .ceil)  // top = 1.5
        let values: [Float] = [0, 1.5, -1.5, 0.5, -0.5, 1, -1, 0, 2, -2, 1.5, -1.5, 0.25, -0.25, 0, 0]
        let x = Tensor(values + values, shape: [2, 2, 2, 4])
        let dy = Tensor((0..<32).map { Float($0 % 7) - 3 }, shape: [2, 2, 2, 4])
        for ste in STE.allCases {
            let (a, b) = (BatchNorm(2), BatchNorm(2))
            let (qa, qb) = (QReLU(.quantized(spec, ste)), QReLU(.quantized(spec, ste)))
            let pair = BatchNormActivation(a, qa)
            XCTAssertEqual(bitPatterns(pair.forward(x, training: true)),
                           bitPatterns(qb.forward(b.forward(x, training: true), training: true)), "\(ste)")
            XCTAssertEqual(bitPatterns(pair.backward(dy)), bitPatterns(b.backward(qb.backward(dy))), "\(ste)")
        }
    }

    /// The ResNet block's end fused (bn2 + residual add + act2 in one pass, the gradient at the sum
    /// recomputed in the backward) against the three layers in turn: outputs, input gradient, every
    /// parameter gradient and running statistic bit for bit, identity and option-A shortcuts, every STE
    /// and rounding, training and eval forwards, two steps.
    func testResidualFusionIsBitIdenticalToTheThreeLayers() {
        for (inChannels, outChannels, stride) in [(4, 4, 1), (4, 8, 2)] {
            for ste in STE.allCases {
                for rounding in Rounding.allCases {
                    let activation = Activation.quantized(QuantizerSpec(bits: 2, alpha: 0.6511, rounding: rounding), ste)
                    var rngA = SplitMix64(seed: 3), rngB = SplitMix64(seed: 3)
                    let fused = BasicBlock(inChannels, outChannels, stride: stride, activation: activation, rng: &rngA)
                    let plain = BasicBlock(inChannels, outChannels, stride: stride, activation: activation, rng: &rngB)
                    plain.fusesResidual = false
                    var rng = SplitMix64(seed: 17)
                    let what = "\(inChannels)→\(outChannels) s\(stride) \(ste) \(rounding)"
                    for step in 0..<2 {
                        let shape = [2, inChannels, 10, 10]
                        let x = Tensor((0..<shape.reduce(1, *)).map { _ in rng.nextGaussian() }, shape: shape)
                        let yf = fused.forward(x, training: true), yp = plain.forward(x, training: true)
                        XCTAssertEqual(bitPatterns(yf), bitPatterns(yp), "forward \(what) step \(step)")
                        let dy = Tensor((0..<yf.count).map { _ in rng.nextGaussian() }, shape: yf.shape)
                        XCTAssertEqual(bitPatterns(fused.backward(dy)), bitPatterns(plain.backward(dy)), "dx \(what) step \(step)")
                        for (a, b) in zip(fused.parameters, plain.parameters) {
                            XCTAssertEqual(bitPatterns(a.grad), bitPatterns(b.grad), "\(a.name) grad \(what) step \(step)")
                        }
                        for (a, b) in zip(fused.buffers, plain.buffers) {
                            XCTAssertEqual(bitPatterns(a.value), bitPatterns(b.value), "\(a.name) \(what) step \(step)")
                        }
                    }
                    let x = Tensor((0..<(2 * inChannels * 100)).map { _ in rng.nextGaussian() }, shape: [2, inChannels, 10, 10])
                    XCTAssertEqual(bitPatterns(fused.forward(x, training: false)), bitPatterns(plain.forward(x, training: false)),
                                   "eval \(what)")
                }
            }
        }
    }

    /// Sequential's fusion pass turns a BatchNorm directly followed by a QReLU into one BatchNormActivation
    /// and nothing else; the pair keeps its names, so parameters and buffers (checkpoint names) are unchanged;
    /// the fused net computes what the layers in turn compute, float activation included.
    func testSequentialFusesOnlyBatchNormThenQReLU() {
        let spec = QuantizerSpec(bits: 4, alpha: 0.1946)
        let act = QReLU(.quantized(spec, .clipped)), bn = BatchNorm(2, affine: true)
        let net = Sequential([bn, act, ReLU()])
        XCTAssertEqual(net.steps.count, 2)
        XCTAssertTrue(net.steps[0].layer is BatchNormActivation)
        XCTAssertTrue(net.steps[1].layer is ReLU)
        XCTAssertEqual(net.parameters.map(\.name), ["0.weight", "0.bias"])
        XCTAssertEqual(net.buffers.map(\.name), ["0.running_mean", "0.running_var"])
        XCTAssertEqual(Sequential([ReLU(), bn, ReLU(), act]).steps.count, 4, "no pair, no fusion")
        XCTAssertTrue(Sequential([BatchNorm(4), act]).steps[0].layer is BatchNormActivation, "BatchNorm1d fuses too")
        let x = Tensor((0..<32).map { Float($0) / 7 - 2 }, shape: [2, 2, 2, 4])
        let dy = Tensor((0..<32).map { Float($0 % 5) - 2 }, shape: [2, 2, 2, 4])
        for activation in [Activation.float, .quantized(spec, .clipped), .quantized(spec, .relu)] {
            let (fusedBN, fusedAct) = (BatchNorm(2), QReLU(activation))
            let (plainBN, plainAct, relu) = (BatchNorm(2), QReLU(activation), ReLU())
            let fusedNet = Sequential([fusedBN, fusedAct, ReLU()])
            XCTAssertEqual(bitPatterns(fusedNet.forward(x, training: true)),
                           bitPatterns(relu.forward(plainAct.forward(plainBN.forward(x, training: true), training: true), training: true)),
                           "\(activation)")
            XCTAssertEqual(bitPatterns(fusedNet.backward(dy)), bitPatterns(plainBN.backward(plainAct.backward(relu.backward(dy)))),
                           "\(activation)")
        }
    }
}
