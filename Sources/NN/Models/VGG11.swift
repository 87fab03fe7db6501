// VGG-11 for CIFAR-10 (3×32×32) as in Yin et al., "Understanding Straight-Through Estimator in Training
// Activation Quantized Neural Nets", ICLR 2019 (arXiv 1903.05662), Table 1; definition = ste_torch.py VGG11,
// which follows the authors' group code (penhunt/full-quantization-DNN, nets/vgg_type.py).
// Deviations from that code: BN without scale and shift (affine off, as the paper's text says) and no conv
// bias (a BN follows every conv); the authors' code has affine BN and conv bias.
// Head: a single Linear(512, 10) with bias (CIFAR VGG variant, no hidden FCs). 9,222,858 parameters.
// `widthDivisor` divides every conv width (and the head's input) for small test fixtures only.
// `inputChannels`: 3 for CIFAR-10; 1 for grey images zero-padded to 32×32 (Fashion-MNIST; the project's transfer).
// Implementation note (no effect on the function): activations stay in oneDNN's channel-blocked layout
// where it computes in one (down to 4×4 planes; `Network.setKeepsChannelBlocks`).
import Kernels

/// Conv widths, "M" = 2×2 max pool (VGG configuration A).
public let vgg11Configuration: [Int?] = [64, nil, 128, nil, 256, 256, nil, 512, 512, nil, 512, 512, nil]

public func makeVGG11(activation: Activation, seed: UInt64, widthDivisor: Int = 1, inputChannels: Int = 3) -> Network {
    precondition(widthDivisor >= 1 && 64 % widthDivisor == 0, "VGG-11 width divisor \(widthDivisor)")
    var rng = SplitMix64(seed: seed)
    var layers: [Layer] = []
    var channels = inputChannels
    for entry in vgg11Configuration {
        guard let width = entry.map({ $0 / widthDivisor }) else { layers.append(MaxPool2d()); continue }
        let conv = Conv2d(channels, width, kernel: 3, padding: 1, rng: &rng)
        conv.computesInputGradient = !layers.isEmpty
        layers += [conv, BatchNorm(width), QReLU(activation)]
        channels = width
    }
    let net = Network(name: widthDivisor == 1 ? "vgg11" : "vgg11_w\(widthDivisor)", root: Sequential(named: [
        ("features", Sequential(layers)), ("flatten", Flatten()),
        ("classifier", Linear(channels, 10, rng: &rng)),
    ]))
    net.setKeepsChannelBlocks(true)
    return net
}
