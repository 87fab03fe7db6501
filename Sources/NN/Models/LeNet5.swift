// LeNet-5 for MNIST (1×28×28) as in Yin et al., "Understanding Straight-Through Estimator in Training
// Activation Quantized Neural Nets", ICLR 2019 (arXiv 1903.05662), Table 1; definition = ste_torch.py LeNet5.
// Deviations / choices the paper does not state:
// - widths are the classic 6-16-120-84 with 2×2 max pooling (the paper gives no widths);
// - a BatchNorm WITHOUT scale and shift (affine off) before every activation, as the paper says
//   ("we add one prior to each activation layer"); hence no bias in the convs and hidden FCs;
// - conv1 is padded by 2 so 28×28 gives the classic 5×5×16 = 400 features; the output FC has a bias.
// 61,480 parameters (conv/linear only).
import Kernels

public func makeLeNet5(activation: Activation, seed: UInt64) -> Network {
    var rng = SplitMix64(seed: seed)
    let conv1 = Conv2d(1, 6, kernel: 5, padding: 2, rng: &rng)
    conv1.computesInputGradient = false
    let features = Sequential([
        conv1, BatchNorm(6), QReLU(activation), MaxPool2d(),
        Conv2d(6, 16, kernel: 5, rng: &rng), BatchNorm(16), QReLU(activation), MaxPool2d(),
    ])
    let classifier = Sequential([
        Linear(400, 120, bias: false, rng: &rng), BatchNorm(120), QReLU(activation),
        Linear(120, 84, bias: false, rng: &rng), BatchNorm(84), QReLU(activation),
        Linear(84, 10, rng: &rng),
    ])
    return Network(name: "lenet5", root: Sequential(named: [
        ("features", features), ("flatten", Flatten()), ("classifier", classifier),
    ]))
}
