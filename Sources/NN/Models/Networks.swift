// The nets by name: one registry, read by every module that names a net (the configs, the plan's order, the report,
// the benchmark). A new net is its model file and one line here.
import Kernels

/// One net of the registry: its name, the image side it takes, the channels of the data set it was defined for, its
/// place in the report's order, and how to build it.
public struct NetDescriptor: Sendable {
    public let name: String
    public let inputSide: Int
    public let defaultChannels: Int
    /// In the paper's Table 1 (the report lists those first, in the paper's order); false for the project's extensions.
    public let inPaper: Bool
    let make: @Sendable (_ activation: Activation, _ seed: UInt64, _ channels: Int, _ lenet5Widths: [Int]?) -> Network
}

public let netRegistry: [NetDescriptor] = [
    NetDescriptor(name: "lenet5", inputSide: 28, defaultChannels: 1, inPaper: true) { act, seed, channels, widths in
        precondition(channels == 1, "LeNet-5 takes 1 input channel")
        return makeLeNet5(activation: act, seed: seed, widths: widths)
    },
    NetDescriptor(name: "vgg11", inputSide: 32, defaultChannels: 3, inPaper: true) { act, seed, channels, _ in
        makeVGG11(activation: act, seed: seed, inputChannels: channels)
    },
    NetDescriptor(name: "resnet20", inputSide: 32, defaultChannels: 3, inPaper: true) { act, seed, channels, _ in
        makeResNet(depth: 20, activation: act, seed: seed, inputChannels: channels)
    },
    NetDescriptor(name: "resnet32", inputSide: 32, defaultChannels: 3, inPaper: false) { act, seed, channels, _ in
        makeResNet(depth: 32, activation: act, seed: seed, inputChannels: channels)
    },
]

public let networkNames = netRegistry.map(\.name)

public func netDescriptor(_ name: String) -> NetDescriptor? { netRegistry.first { $0.name == name } }

/// Display order of the nets: the registry's (the paper's Table 1 order first).
public func netOrder(_ net: String) -> Int { netRegistry.firstIndex { $0.name == net } ?? netRegistry.count }

/// Input shape of one image (c, h, w) for `channels` input channels (default: the paper's data set's).
public func inputShape(ofNetwork name: String, channels: Int? = nil) -> [Int]? {
    netDescriptor(name).map { [channels ?? $0.defaultChannels, $0.inputSide, $0.inputSide] }
}

/// A net of the registry by name; any other name is a programming error (callers validate configs).
/// `lenet5Widths`: LeNet-5's (conv1, conv2, fc1, fc2) widths for the width ablation; nil = the classic.
/// `inputChannels`: the data's channels (the CIFAR nets take 1 or 3; LeNet-5 takes 1).
public func makeNetwork(named name: String, activation: Activation, seed: UInt64, lenet5Widths: [Int]? = nil,
                        inputChannels: Int? = nil) -> Network {
    guard let d = netDescriptor(name) else {
        preconditionFailure("unknown network \(name); known: \(networkNames.joined(separator: ", "))")
    }
    return d.make(activation, seed, inputChannels ?? d.defaultChannels, lenet5Widths)
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
