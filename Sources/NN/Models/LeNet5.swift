// LeNet-5 for MNIST (1×28×28) as in Yin et al., "Understanding Straight-Through Estimator in Training
// Activation Quantized Neural Nets", ICLR 2019 (arXiv 1903.05662), Table 1; definition = ste_torch.py LeNet5.
// Deviations / choices the paper does not state:
// - widths are the classic 6-16-120-84 with 2×2 max pooling (the paper gives no widths);
// - a BatchNorm WITHOUT scale and shift (affine off) before every activation, as the paper says
//   ("we add one prior to each activation layer"); hence no bias in the convs and hidden FCs;
// - conv1 is padded by 2 so 28×28 gives the classic 5×5×16 = 400 features; the output FC has a bias.
// 61,480 parameters (conv/linear only).
// `widths` selects a profile's variant (experiments/table1.yaml); nil is the classic 6-16-120-84:
// - 4 widths (conv1, conv2, fc1, fc2): the classic topology above, scaled;
// - 3 widths (conv1, conv2, fc1): the Caffe layout of the authors' group's own MNIST "LeNet"
//   (20-50-500: conv 5×5 unpadded, 2×2 max pool, conv 5×5, 2×2 max pool, fc 800 → 500 → 10), with the
//   same BN-before-every-activation change and no bias before a BN.
import Kernels

public let lenet5ClassicWidths = [6, 16, 120, 84]

public func makeLeNet5(activation: Activation, seed: UInt64, widths: [Int]? = nil) -> Network {
    let w = widths ?? lenet5ClassicWidths
    precondition((w.count == 4 || w.count == 3) && w.allSatisfy { $0 > 0 }, "LeNet-5 widths \(w)")
    var rng = SplitMix64(seed: seed)
    if w.count == 3 {  // Caffe layout: 28 → 24 → 12 → 8 → 4, so w[1]·16 features
        let conv1 = Conv2d(1, w[0], kernel: 5, rng: &rng)
        conv1.computesInputGradient = false
        let features = Sequential([
            conv1, BatchNorm(w[0]), QReLU(activation), MaxPool2d(),
            Conv2d(w[0], w[1], kernel: 5, rng: &rng), BatchNorm(w[1]), QReLU(activation), MaxPool2d(),
        ])
        let classifier = Sequential([
            Linear(w[1] * 16, w[2], bias: false, rng: &rng), BatchNorm(w[2]), QReLU(activation),
            Linear(w[2], 10, rng: &rng),
        ])
        return Network(name: "lenet5", root: Sequential(named: [
            ("features", features), ("flatten", Flatten()), ("classifier", classifier),
        ]))
    }
    let conv1 = Conv2d(1, w[0], kernel: 5, padding: 2, rng: &rng)
    conv1.computesInputGradient = false
    let features = Sequential([
        conv1, BatchNorm(w[0]), QReLU(activation), MaxPool2d(),
        Conv2d(w[0], w[1], kernel: 5, rng: &rng), BatchNorm(w[1]), QReLU(activation), MaxPool2d(),
    ])
    let classifier = Sequential([
        Linear(w[1] * 25, w[2], bias: false, rng: &rng), BatchNorm(w[2]), QReLU(activation),
        Linear(w[2], w[3], bias: false, rng: &rng), BatchNorm(w[3]), QReLU(activation),
        Linear(w[3], 10, rng: &rng),
    ])
    return Network(name: "lenet5", root: Sequential(named: [
        ("features", features), ("flatten", Flatten()), ("classifier", classifier),
    ]))
}
