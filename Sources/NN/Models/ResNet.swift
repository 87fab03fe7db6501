// The CIFAR ResNet family of He et al. 2016 (depth 6n + 2: n basic blocks per stage), of which Yin et al. use ResNet-20
// (n = 3); ResNet-32 (n = 5) is the family's next depth, an extension of the project's, not in the paper.
// ResNet-20 for CIFAR-10 (3×32×32) as in Yin et al., "Understanding Straight-Through Estimator in Training
// Activation Quantized Neural Nets", ICLR 2019 (arXiv 1903.05662), Table 1; definition = ste_torch.py ResNet20,
// which follows He et al. 2016 (CIFAR ResNet) and the authors' group code (penhunt/full-quantization-DNN).
// Stem conv3×3 3→16, BN, act; 3 stages × 3 basic blocks, widths 16/32/64, strides 1/2/2, option-A
// shortcut (x[:, :, ::2, ::2] + zero-padded channels), activation after the add; global average pool;
// Linear(64, 10) with bias. 268,346 parameters. `inputChannels`: 3 for CIFAR-10; 1 for grey images zero-padded to
// 32×32 (Fashion-MNIST; the project's transfer).
// Deviations from the authors' code: BN without scale and shift (affine off, as the paper's text says);
// the shortcut subsamples by slicing (their 1×1 avg-pool with stride 2 is the same thing); each block has
// two activation modules (theirs shares one module, which is the same function with a fixed α).
// Implementation note (no effect on the function): activations stay in oneDNN's channel-blocked layout
// where it computes in one, from the stem to the pooling (`Network.setKeepsChannelBlocks`).
import Kernels

/// Stages as (width, first stride); `resNetBlocksPerStage(depth:)` blocks each.
public let resNet20Stages: [(width: Int, stride: Int)] = [(16, 1), (32, 2), (64, 2)]
public let resNet20BlocksPerStage = 3

/// Basic blocks per stage of the CIFAR ResNet of `depth` (6n + 2): 3 for ResNet-20, 5 for ResNet-32.
public func resNetBlocksPerStage(depth: Int) -> Int {
    precondition(depth >= 8 && (depth - 2) % 6 == 0, "a CIFAR ResNet has depth 6n + 2, got \(depth)")
    return (depth - 2) / 6
}

public func makeResNet20(activation: Activation, seed: UInt64, inputChannels: Int = 3) -> Network {
    makeResNet(depth: 20, activation: activation, seed: seed, inputChannels: inputChannels)
}

/// The CIFAR ResNet of `depth` (20, 32, …), named "resnet<depth>".
public func makeResNet(depth: Int, activation: Activation, seed: UInt64, inputChannels: Int = 3) -> Network {
    var rng = SplitMix64(seed: seed)
    let stemConv = Conv2d(inputChannels, 16, kernel: 3, stride: 1, padding: 1, rng: &rng)
    stemConv.computesInputGradient = false
    let stem = Sequential([stemConv, BatchNorm(16), QReLU(activation)])
    var blocks: [Layer] = []
    var channels = 16
    for stage in resNet20Stages {
        for i in 0..<resNetBlocksPerStage(depth: depth) {
            blocks.append(BasicBlock(channels, stage.width, stride: i == 0 ? stage.stride : 1, activation: activation,
                                     rng: &rng))
            channels = stage.width
        }
    }
    let net = Network(name: "resnet\(depth)", root: Sequential(named: [
        ("stem", stem), ("blocks", Sequential(blocks)), ("pool", GlobalAvgPool()),
        ("fc", Linear(channels, 10, rng: &rng)),
    ]))
    net.setKeepsChannelBlocks(true)
    return net
}
