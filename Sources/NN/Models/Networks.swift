// The three nets of Yin et al. (ICLR 2019, arXiv 1903.05662) Table 1 by name, with their input shapes.
import Kernels

public let networkNames = ["lenet5", "vgg11", "resnet20"]

/// Input shape of one image (c, h, w) for `channels` input channels (default: the paper's data set's).
public func inputShape(ofNetwork name: String, channels: Int? = nil) -> [Int]? {
    switch name {
    case "lenet5": return [channels ?? 1, 28, 28]
    case "vgg11", "resnet20": return [channels ?? 3, 32, 32]
    default: return nil
    }
}

/// "lenet5" | "vgg11" | "resnet20"; any other name is a programming error (callers validate configs).
/// `lenet5Widths`: LeNet-5's (conv1, conv2, fc1, fc2) widths for the width ablation; nil = the classic.
/// `inputChannels`: the data's channels (VGG-11 and ResNet-20 take 1 or 3; LeNet-5 takes 1).
public func makeNetwork(named name: String, activation: Activation, seed: UInt64, lenet5Widths: [Int]? = nil,
                        inputChannels: Int? = nil) -> Network {
    switch name {
    case "lenet5":
        precondition(inputChannels ?? 1 == 1, "LeNet-5 takes 1 input channel")
        return makeLeNet5(activation: activation, seed: seed, widths: lenet5Widths)
    case "vgg11": return makeVGG11(activation: activation, seed: seed, inputChannels: inputChannels ?? 3)
    case "resnet20": return makeResNet20(activation: activation, seed: seed, inputChannels: inputChannels ?? 3)
    default: preconditionFailure("unknown network \(name); known: \(networkNames.joined(separator: ", "))")
    }
}

/// Multiply-adds per image of every Conv2d and Linear in execution order (as ste_torch.py's
/// `forward_macs`): macs[0] is the layer that sees the input. Runs one eval forward on a zero image.
public func forwardMACs(of net: Network, imageShape: [Int]) -> [Int] {
    _ = net.forward(Tensor(zeros: [1] + imageShape), training: false)
    var macs: [Int] = []
    func walk(_ l: Layer) {
        if let c = l as? Conv2d, let g = c.lastGeometry { macs.append(g.macs) }
        if let f = l as? Linear { macs.append(f.inFeatures * f.outFeatures) }
        for c in l.children { walk(c.layer) }
    }
    walk(net.root)
    return macs
}
