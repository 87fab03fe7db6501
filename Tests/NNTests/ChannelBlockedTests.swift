// Activations in oneDNN's channel-blocked layout (nChw8c / nChw16c, the layout between ResNet-20's and
// VGG-11's layers) against the same layers on NCHW: data movement and maxima (option-A shortcut, global
// average pooling, max pooling, layout conversion) bit for bit; batch norm to rounding (its per-channel
// sums run in another order) and bit for bit where no sum is involved (eval forward, the BN + quantizer
// fusion within the layout); and whole ResNet-20 and VGG-11 training steps with and without the layout.
import Backends
import Kernels
@testable import NN
import Training
import TestSupport
import XCTest

final class ChannelBlockedTests: XCTestCase {
    func blocked(_ t: Tensor, _ block: Int) -> Tensor { inLayout(t, .channelBlocked(block)) }

    func testLayoutConversionRoundTripsAndIndexes() {
        var rng = SplitMix64(seed: 1)
        let x = gaussianTensor([2, 32, 3, 8], &rng)
        for block in [8, 16] {
            let b = blocked(x, block)
            XCTAssertEqual(b.layout, .channelBlocked(block))
            for (i, ch, s) in [(0, 0, 0), (1, 17, 23), (1, 31, 5), (0, 9, 12)] {
                XCTAssertEqual(b[b.layout.index(i, ch, s, channels: 32, spatial: 24)], x[(i * 32 + ch) * 24 + s])
            }
            var buffer = ReusableTensor()
            let other = b.converted(to: .channelBlocked(24 - block), reusing: &buffer)
            XCTAssertEqual(nchwValues(other), x.array, "block \(block) → \(24 - block)")
            XCTAssertEqual(nchwValues(b), x.array)
        }
        // Planes the SIMD tiles do not cover (2×2): element by element.
        let small = gaussianTensor([2, 16, 2, 2], &rng)
        var buffer = ReusableTensor()
        let smallBlocked = small.converted(to: .channelBlocked(16), reusing: &buffer)
        XCTAssertEqual(smallBlocked[smallBlocked.layout.index(1, 5, 3, channels: 16, spatial: 4)], small[(16 + 5) * 4 + 3])
        XCTAssertEqual(nchwValues(smallBlocked), small.array)
    }

    /// Max pooling on a channel-blocked input, output blocked (8×8 → 4×4: 16 pixels) or NCHW (odd 5×5 →
    /// 2×2), with ties (values on a coarse grid): the same maxima, winners and gradients, bit for bit.
    func testMaxPoolIsExactInBlockedLayout() {
        var rng = SplitMix64(seed: 8)
        for block in [8, 16] {
            for (h, w, blockedOutput) in [(8, 8, true), (5, 5, false), (8, 9, true)] {
                let x = Tensor((0..<(2 * 16 * h * w)).map { _ in (rng.nextGaussian() * 2).rounded() / 2 }, shape: [2, 16, h, w])
                let (a, b) = (MaxPool2d(), MaxPool2d())
                let ya = a.forward(x, training: true), yb = b.forward(blocked(x, block), training: true)
                XCTAssertEqual(yb.layout, blockedOutput ? .channelBlocked(block) : .nchw, "\(h)×\(w) block \(block)")
                XCTAssertEqual(nchwValues(yb), ya.array, "forward \(h)×\(w) block \(block)")
                let dy = gaussianTensor(ya.shape, &rng)
                let dyb = blockedOutput ? blocked(dy, block) : dy
                let dxb = b.backward(dyb)
                XCTAssertEqual(dxb.layout, .channelBlocked(block))
                XCTAssertEqual(nchwValues(dxb), a.backward(dy).array, "backward \(h)×\(w) block \(block)")
            }
        }
    }

    /// A blocked input whose subsampled output the Kernels cannot hold blocked (2×2 planes): NCHW out.
    func testShortcutFallsBackToNCHWForSmallPlanes() {
        var rng = SplitMix64(seed: 7)
        let x = gaussianTensor([2, 16, 4, 4], &rng)
        let (a, b) = (ShortcutOptionA(pad: 8), ShortcutOptionA(pad: 8))
        let ya = a.forward(x, training: true), yb = b.forward(blocked(x, 16), training: true)
        XCTAssertEqual(yb.layout, .nchw)
        XCTAssertEqual(yb.array, ya.array)
        let dy = gaussianTensor(ya.shape, &rng)
        let dx = b.backward(dy)
        XCTAssertEqual(dx.layout, .channelBlocked(16))
        XCTAssertEqual(nchwValues(dx), a.backward(dy).array)
    }

    func testShortcutAndPoolingAreExactInBlockedLayout() {
        var rng = SplitMix64(seed: 2)
        for block in [8, 16] {
            let x = gaussianTensor([3, 16, 8, 8], &rng)
            let (a, b) = (ShortcutOptionA(pad: 8), ShortcutOptionA(pad: 8))
            let ya = a.forward(x, training: true), yb = b.forward(blocked(x, block), training: true)
            XCTAssertEqual(yb.layout, .channelBlocked(block))
            XCTAssertEqual(nchwValues(yb), ya.array, "shortcut forward, block \(block)")
            let dy = gaussianTensor(ya.shape, &rng)
            XCTAssertEqual(nchwValues(b.backward(blocked(dy, block))), a.backward(dy).array, "shortcut backward, block \(block)")
            if block == 8 {   // a pad that splits 8-channel groups: the element-wise path
                let (a4, b4) = (ShortcutOptionA(pad: 4), ShortcutOptionA(pad: 4))
                let y4 = a4.forward(x, training: true)
                XCTAssertEqual(nchwValues(b4.forward(blocked(x, 8), training: true)), y4.array, "shortcut pad 4 forward")
                let d4 = gaussianTensor(y4.shape, &rng)
                XCTAssertEqual(nchwValues(b4.backward(blocked(d4, 8))), a4.backward(d4).array, "shortcut pad 4 backward")
            }

            let (p, q) = (GlobalAvgPool(), GlobalAvgPool())
            let pa = p.forward(x, training: true), pb = q.forward(blocked(x, block), training: true)
            XCTAssertEqual(pb.layout, .nchw)
            XCTAssertEqual(bitPatterns(pb), bitPatterns(pa), "pool forward, block \(block)")
            let dp = gaussianTensor(pa.shape, &rng)
            let gb = q.backward(dp)
            XCTAssertEqual(gb.layout, .channelBlocked(block))
            XCTAssertEqual(nchwValues(gb), p.backward(dp).array, "pool backward, block \(block)")
        }
    }

    /// Training forward, backward (masked by every STE's rule, plain, residual) and running statistics
    /// against NCHW; eval forwards bit for bit.
    func testBatchNormInBlockedLayoutMatchesNCHW() {
        var rng = SplitMix64(seed: 3)
        let spec = QuantizerSpec(bits: 2, alpha: 0.5, rounding: .ceil)
        for block in [8, 16] {
            for affine in [false, true] {
                for activation in [Activation.float] + STE.allCases.map({ Activation.quantized(spec, $0) }) {
                    let what = "block \(block) affine \(affine) \(activation)"
                    let x = gaussianTensor([3, 32, 4, 6], &rng), dy = gaussianTensor([3, 32, 4, 6], &rng)
                    let (bnA, bnB) = (BatchNorm(32, affine: affine), BatchNorm(32, affine: affine))
                    if affine {
                        for ch in 0..<32 {
                            bnA.weight!.value[ch] = 0.5 + Float(ch) / 32; bnB.weight!.value[ch] = 0.5 + Float(ch) / 32
                            bnA.bias!.value[ch] = Float(ch % 5) / 10; bnB.bias!.value[ch] = Float(ch % 5) / 10
                        }
                    }
                    let (actA, actB) = (QReLU(activation), QReLU(activation))
                    let (pairA, pairB) = (BatchNormActivation(bnA, actA), BatchNormActivation(bnB, actB))
                    let ya = pairA.forward(x, training: true)
                    let yb = pairB.forward(blocked(x, block), training: true)
                    XCTAssertEqual(yb.layout, .channelBlocked(block))
                    assertClose(nchwValues(yb), ya.array, rtol: 1e-5, atol: 1e-6, "forward \(what)")
                    assertClose(bnB.runningMean.array, bnA.runningMean.array, rtol: 1e-6, atol: 1e-7, "running mean \(what)")
                    assertClose(bnB.runningVar.array, bnA.runningVar.array, rtol: 1e-6, atol: 1e-7, "running var \(what)")
                    let dxb = pairB.backward(blocked(dy, block))
                    XCTAssertEqual(dxb.layout, .channelBlocked(block))
                    assertClose(nchwValues(dxb), pairA.backward(dy).array, rtol: 1e-4, atol: 1e-5, "backward \(what)")
                    if affine {
                        assertClose(bnB.weight!.grad.array, bnA.weight!.grad.array, rtol: 1e-4, atol: 1e-5, "dweight \(what)")
                        assertClose(bnB.bias!.grad.array, bnA.bias!.grad.array, rtol: 1e-4, atol: 1e-5, "dbias \(what)")
                    }
                    // Eval: per-channel constants from the (now equal up to rounding) running statistics.
                    bnB.runningMean.copy(from: bnA.runningMean); bnB.runningVar.copy(from: bnA.runningVar)
                    let ea = pairA.forward(x, training: false)
                    let eb = pairB.forward(blocked(x, block), training: false)
                    XCTAssertEqual(nchwValues(eb), ea.array, "eval \(what)")
                    // The block end: bn + residual + quantizer, and the gradient at the sum.
                    guard case .quantized = activation else { continue }
                    let residual = gaussianTensor(x.shape, &rng)
                    let ra = pairA.forward(x, training: true, adding: residual)!
                    let rb = pairB.forward(blocked(x, block), training: true, adding: blocked(residual, block))!
                    assertClose(nchwValues(rb), ra.array, rtol: 1e-5, atol: 1e-6, "residual forward \(what)")
                    let ga = pairA.backwardWithResidual(dy).sum
                    let gb = pairB.backwardWithResidual(blocked(dy, block)).sum
                    assertClose(nchwValues(gb), ga.array, rtol: 1e-5, atol: 1e-6, "residual gradient \(what)")
                }
            }
        }
    }

    /// Within the blocked layout, BN + quantized ReLU fused equals the two layers in turn bit for bit.
    func testFusionIsBitIdenticalInBlockedLayout() {
        var rng = SplitMix64(seed: 4)
        for block in [8, 16] {
            for ste in STE.allCases {
                for rounding in Rounding.allCases {
                    let activation = Activation.quantized(QuantizerSpec(bits: 2, alpha: 0.5, rounding: rounding), ste)
                    let x = blocked(gaussianTensor([2, 16, 8, 4], &rng), block), dy = blocked(gaussianTensor([2, 16, 8, 4], &rng), block)
                    let (a, b) = (BatchNorm(16), BatchNorm(16))
                    let (qa, qb) = (QReLU(activation), QReLU(activation))
                    let pair = BatchNormActivation(a, qa)
                    let fused = pair.forward(x, training: true)
                    let twoLayers = qb.forward(b.forward(x, training: true), training: true)
                    XCTAssertEqual(twoLayers.layout, .channelBlocked(block))
                    XCTAssertEqual(bitPatterns(fused), bitPatterns(twoLayers), "forward block \(block) \(ste) \(rounding)")
                    XCTAssertEqual(bitPatterns(pair.backward(dy)), bitPatterns(b.backward(qb.backward(dy))),
                                   "backward block \(block) \(ste) \(rounding)")
                }
            }
        }
    }

    /// A convolution handed a blocked layout it does not compute in (block 8 where oneDNN chose 16, or the
    /// other way round) reorders it to NCHW and its gradient back: the same numbers as from NCHW.
    func testConvolutionTakesAForeignBlockedLayout() throws {
        guard let dnnl = OneDNNBackend.make() else { throw XCTSkip("oneDNN (libdnnl.so.2) could not be loaded; `make deps` installs libdnnl-dev") }
        var rng = SplitMix64(seed: 9)
        let (a, b) = (Conv2d(16, 16, kernel: 3, padding: 1, rng: &rng), Conv2d(16, 16, kernel: 3, padding: 1, rng: &rng))
        b.weight.value.copy(from: a.weight.value)
        (a.backend, b.backend) = (dnnl, dnnl)
        b.keepsChannelBlocks = true
        let x = gaussianTensor([2, 16, 8, 8], &rng)
        let native = b.forward(x, training: false).layout
        let nativeBlock = try XCTUnwrap(native.block, "oneDNN computes this convolution in NCHW here")
        let foreign = nativeBlock == 16 ? 8 : 16
        let ya = a.forward(x, training: true), yb = b.forward(blocked(x, foreign), training: true)
        XCTAssertEqual(yb.layout, native)
        XCTAssertEqual(nchwValues(yb), ya.array)
        let dy = gaussianTensor(ya.shape, &rng)
        let dxb = b.backward(blocked(dy, nativeBlock))
        XCTAssertEqual(dxb.layout, .channelBlocked(foreign))
        XCTAssertEqual(nchwValues(dxb), a.backward(dy).array)
        XCTAssertEqual(b.weight.grad.array, a.weight.grad.array)
    }

    /// Eval's forward of a 16 → 16 convolution on nChw16c activations (oneDNN's inference-only NHWC kernel,
    /// over the same bytes, where it has one) against the training forward: equal to rounding, and
    /// repeatable bit for bit; activations handed over in NCHW take the training primitive.
    func testInferenceForwardMatchesTrainingForward() throws {
        guard let dnnl = OneDNNBackend.make() else { throw XCTSkip("oneDNN (libdnnl.so.2) could not be loaded; `make deps` installs libdnnl-dev") }
        var rng = SplitMix64(seed: 10)
        for (batch, side) in [(3, 8), (8, 32)] {
            let conv = Conv2d(16, 16, kernel: 3, padding: 1, rng: &rng)
            conv.backend = dnnl
            conv.keepsChannelBlocks = true
            let x = blocked(gaussianTensor([batch, 16, side, side], &rng), 16)
            let train = conv.forward(x, training: true).clone()
            let eval = conv.forward(x, training: false).clone()
            let kernel = (dnnl.convolution(Conv2DGeometry(batch: batch, inChannels: 16, height: side, width: side,
                outChannels: 16, kernel: 3, stride: 1, padding: 1), bias: false) as? OneDNNConvolution)?.inferenceImplementation
            let what = "\(batch)×16×\(side)×\(side), eval kernel \(kernel ?? "the training one")"
            XCTAssertEqual(eval.layout, train.layout, what)
            assertClose(nchwValues(eval), nchwValues(train), rtol: 1e-5, atol: 1e-5, what)
            XCTAssertEqual(conv.forward(x, training: false).array, eval.array, "repeat \(what)")
            let plain = Tensor(nchwValues(x), shape: x.shape)
            XCTAssertEqual(nchwValues(conv.forward(plain, training: false)), nchwValues(train), "NCHW input \(what)")
        }
    }

    /// ResNet-20 on oneDNN with activations kept channel-blocked (its default) against the same net on
    /// NCHW: two SGD steps' logits, gradients, parameters, BN statistics (the second step with the
    /// momentum of the first), and the eval logits.
    func testResNet20StepInBlockedLayoutMatchesNCHW() throws {
        try checkStepsMatchNCHW(batch: 4) { makeResNet20(activation: $0, seed: 5) }
    }

    /// VGG-11 (widths / 4: 16 to 128 channels) likewise: blocked through its max pools down to 4×4 planes.
    func testVGG11StepInBlockedLayoutMatchesNCHW() throws {
        try checkStepsMatchNCHW(batch: 2) { makeVGG11(activation: $0, seed: 5, widthDivisor: 4) }
    }

    private func checkStepsMatchNCHW(batch: Int, _ make: (Activation) -> Network) throws {
        guard let dnnl = OneDNNBackend.make() else { throw XCTSkip("oneDNN (libdnnl.so.2) could not be loaded; `make deps` installs libdnnl-dev") }
        let saved = Compute.backend
        defer { Compute.backend = saved }
        Compute.backend = dnnl
        let spec = QuantizerSpec(bits: 4, alpha: 0.1946, rounding: .ceil)
        for activation in [Activation.float, .quantized(spec, .clipped)] {
            let (blockedNet, nchwNet) = (make(activation), make(activation))
            nchwNet.setKeepsChannelBlocks(false)
            var rng = SplitMix64(seed: 6)
            let x = gaussianTensor([batch, 3, 32, 32], &rng)
            let labels: [Int32] = Array([3, 1, 4, 1].prefix(batch))
            // The blocked path must actually run: the first layer hands its output over channel-blocked.
            var first: Layer = blockedNet.root
            while let s = first as? Sequential { first = s.layers[0].layer }
            XCTAssertNotEqual(first.forward(x, training: false).layout, .nchw, "oneDNN computes the first conv in NCHW here")
            let sgdB = SGD(parameters: blockedNet.parameters, learningRate: 0.1, momentum: 0.9, weightDecay: 1e-4)
            let sgdN = SGD(parameters: nchwNet.parameters, learningRate: 0.1, momentum: 0.9, weightDecay: 1e-4)
            for step in 1...2 {
                // Each step from the same state: a net trained with lr 0.1 on 4 images amplifies the
                // rounding-level differences of one step into ~1e-3 relative gradient differences by the next.
                for (p, q) in zip(blockedNet.parameters, nchwNet.parameters) { p.value.copy(from: q.value) }
                for (b, c) in zip(blockedNet.buffers, nchwNet.buffers) { b.value.copy(from: c.value) }
                let what = "\(activation) step \(step)"
                let (lb, lossB) = trainStep(blockedNet, x, labels, sgdB)
                let (ln, lossN) = trainStep(nchwNet, x, labels, sgdN)
                assertClose(lb.array, ln.array, rtol: 1e-5, atol: 1e-6, "logits \(what)")
                assertClose([lossB], [lossN], rtol: 1e-5, atol: 0, "loss \(what)")
                for (p, q) in zip(blockedNet.parameters, nchwNet.parameters) {
                    assertClose(p.grad.array, q.grad.array, rtol: 1e-4, atol: 1e-5, "grad \(p.name) \(what)")
                    assertClose(p.value.array, q.value.array, rtol: 1e-5, atol: 1e-6, "\(p.name) \(what)")
                }
                for (b, c) in zip(blockedNet.buffers, nchwNet.buffers) {
                    assertClose(b.value.array, c.value.array, rtol: 1e-5, atol: 1e-6, "\(b.name) \(what)")
                }
            }
            assertClose(blockedNet.forward(x, training: false).array, nchwNet.forward(x, training: false).array,
                        rtol: 1e-5, atol: 1e-6, "eval logits \(activation)")
        }
    }

    private func trainStep(_ network: Network, _ x: Tensor, _ labels: [Int32], _ sgd: SGD) -> (Tensor, Float) {
        network.zeroGrad()
        let logits = network.forward(x, training: true)
        let dlogits = Tensor(zeros: logits.shape)
        let loss = labels.withUnsafeBufferPointer {
            softmaxCrossEntropy(logits: logits.readBuffer, labels: $0, batch: labels.count, classes: 10,
                                dlogits: dlogits.buffer).loss
        }
        network.backward(dlogits)
        sgd.step()
        return (logits.clone(), loss)
    }
}
