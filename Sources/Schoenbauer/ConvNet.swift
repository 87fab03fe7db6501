// The small MNIST ConvNet of Schoenbauer et al.'s experiment files: the flax MNIST example's CNN,
//   Conv 3×3 1→32 (same padding, bias) → ReLU → AvgPool 2 → Conv 3×3 32→64 → ReLU → AvgPool 2
//   → Dense 3136→256 → ReLU → Dense 256→10,
// on 28×28 images scaled to [0, 1] (no mean/std normalisation, as in that example).
// Initialisation: conv kernels He-uniform, U(−m, m) with m = √(6/fan_in) (the quantizer's range); conv and dense
// biases zero; dense kernels N(0, 1/fan_in) (flax's default is LeCun normal, truncated at 2σ: not truncated here).
// The files name the model only through the flax example, so its exact widths are an inference.
import Kernels
import NN

public func makeSchoenbauerConvNet(seed: UInt64) -> Network {
    var rng = SplitMix64(seed: seed)
    let conv1 = Conv2d(1, 32, kernel: 3, padding: 1, bias: true, rng: &rng)
    conv1.computesInputGradient = false
    let conv2 = Conv2d(32, 64, kernel: 3, padding: 1, bias: true, rng: &rng)
    let dense1 = Linear(64 * 7 * 7, 256, rng: &rng)
    let dense2 = Linear(256, 10, rng: &rng)
    for conv in [conv1, conv2] {
        let m = Float((6 / Double(conv.inChannels * 9)).squareRoot()), w = conv.weight.value.pointer
        for i in 0..<conv.weight.value.count { w[i] = m * (2 * rng.nextUniform() - 1) }
        conv.bias!.value.zero()
    }
    for dense in [dense1, dense2] {
        let std = 1 / Float(dense.inFeatures).squareRoot()
        let w = dense.weight.value.pointer
        for i in 0..<dense.weight.value.count { w[i] = std * rng.nextGaussian() }
        dense.bias!.value.zero()
    }
    return Network(name: "schoenbauer-cnn", root: Sequential(named: [
        ("conv1", conv1), ("relu1", ReLU()), ("pool1", AvgPool2d()),
        ("conv2", conv2), ("relu2", ReLU()), ("pool2", AvgPool2d()),
        ("flatten", Flatten()), ("dense1", dense1), ("relu3", ReLU()), ("dense2", dense2),
    ]))
}
