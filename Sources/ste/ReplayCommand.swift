// `ste replay TRAJECTORY.h5 --out OUT.h5`: trains a net on a fixed sequence of batches from a given state and
// records what the long-horizon parity check compares with PyTorch (tools/trajectory.py writes the input and
// runs the PyTorch side): the loss and correct count of every step, and at every `record_every`-th step the
// running statistics, the parameters' and their gradients' L2 norms, and an eval-mode pass over a fixed set.
// Both engines see the same initial state and the same (already augmented) images, so whatever separates
// their trajectories is the engines' arithmetic, not the data or the seed.
import ArgumentParser
import Foundation
import Kernels
import Backends
import NN
import Storage
import Training
import Experiments

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train from a given state on a given sequence of batches; record per-step metrics (parity check).",
        discussion: """
            The input (written by tools/trajectory.py) holds the net (root attributes network, input_channels, \
            bits, alpha, ste, rounding — bits 0 for float activations — lr, momentum, weight_decay, \
            record_every), its initial /params and /buffers (PyTorch state_dict names), the batches \
            /batches/x [steps, n, c, h, w] and /batches/labels [steps, n] (int32), and an eval set /eval/x, \
            /eval/labels.

            Example:
              ste replay /tmp/traj.h5 --out /tmp/traj-ours.h5 --threads 1
            """)

    @Argument(help: "The trajectory file.")
    var input: String

    @Option(help: "Where to write the record.")
    var out: String

    @Option(help: "Compute threads.")
    var threads = 1

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func run() throws {
        setComputeThreads(threads)
        let r = try H5Reader(path: input)
        let network = try replayNetwork(r)
        guard let lr = try r.attribute("lr").doubleValue, let momentum = try r.attribute("momentum").doubleValue,
              let decay = try r.attribute("weight_decay").doubleValue,
              let every = try r.attribute("record_every").intValue, every > 0
        else { throw ValidationError("\(input): attributes lr / momentum / weight_decay / record_every malformed") }
        let (xs, xShape) = try r.read("/batches/x", as: Float.self)
        let (labels, _) = try r.read("/batches/labels", as: Int32.self, shape: [xShape[0], xShape[1]])
        let (evalX, evalShape) = try r.read("/eval/x", as: Float.self)
        let (evalLabels, _) = try r.read("/eval/labels", as: Int32.self, shape: [evalShape[0]])
        let steps = xShape[0], n = xShape[1], image = xShape[2...].reduce(1, *)
        let engine = CPUEngine(network: network, optimizer: .sgd(learningRate: lr, momentum: momentum, weightDecay: decay))
        var record = ReplayRecord(network: network, evalX: evalX, evalShape: evalShape, evalLabels: evalLabels)
        record.record(step: 0)
        let first = steps > 0 ? firstForward(network, x: Tensor(Array(xs[0..<(n * image)]), shape: Array(xShape[1...])))
            : (logits: [], layers: [])
        // /batches/rows (optional): how many rows of each step's batch are used (a short last batch of an epoch).
        let rows = r.contains("/batches/rows") ? try r.read("/batches/rows", as: Int32.self, shape: [steps]).values.map(Int.init)
            : Array(repeating: n, count: steps)
        var losses: [Float] = [], correct: [Int32] = []
        for s in 0..<steps {
            let m = rows[s]
            guard m >= 1 && m <= n else { throw ValidationError("\(input): /batches/rows[\(s)] = \(m) is not in 1...\(n)") }
            let x = Tensor(Array(xs[(s * n * image)..<((s * n + m) * image)]), shape: [m] + Array(xShape[2...]))
            let batch = Batch(x: x, labels: Array(labels[(s * n)..<(s * n + m)]), indices: Array(0..<m))
            let step = engine.trainStep(batch)
            losses.append(step.loss)
            correct.append(Int32(step.correct))
            if (s + 1) % Int(every) == 0 || s + 1 == steps { record.record(step: s + 1) }
        }
        let w = try H5Writer(path: out)
        do {
            try w.write("/loss", losses, shape: [steps])
            try w.write("/correct", correct, shape: [steps])
            for (i, t) in first.layers.enumerated() {
                try w.write("/first_forward/\(i)", t.values, shape: t.shape)
                try w.setAttribute("layer", .string(t.name), on: "/first_forward/\(i)")
            }
            try w.write("/first_logits", first.logits, shape: [steps > 0 ? n : 0, first.logits.count / max(n, 1)])
            try record.write(to: w)
            try Provenance(stage: "replay", configuration: "input: \(input)", inputs: [input]).write(to: w)
            try w.commit()
        } catch {
            w.discard()
            throw error
        }
    }

    /// The net the trajectory names, with its activation, and its initial parameters and buffers.
    private func replayNetwork(_ r: H5Reader) throws -> Network {
        let netName = try r.stringAttribute("network")
        let channels = Int(try r.attribute("input_channels").intValue ?? 3)
        let bits = Int(try r.attribute("bits").intValue ?? 0)
        let activation: Activation
        if bits == 0 {
            activation = .float
        } else {
            guard let alpha = try r.attribute("alpha").doubleValue,
                  let ste = STE(rawValue: try r.stringAttribute("ste")),
                  let rounding = Rounding(rawValue: try r.stringAttribute("rounding"))
            else { throw ValidationError("\(input): attributes alpha / ste / rounding malformed") }
            activation = .quantized(QuantizerSpec(bits: bits, alpha: Float(alpha), rounding: rounding), ste)
        }
        guard networkNames.contains(netName) else {
            throw ValidationError("\(input): unknown network \(netName); known: \(networkNames.joined(separator: ", "))")
        }
        let network = makeNetwork(named: netName, activation: activation, seed: 0, inputChannels: channels)
        for p in network.parameters {
            try r.read(Checkpoint.path("/params", p.name), into: p.value.buffer, shape: p.value.shape)
        }
        for b in network.buffers {
            try r.read(Checkpoint.path("/buffers", b.name), into: b.value.buffer, shape: b.value.shape)
        }
        return network
    }
}

/// The first batch's train-mode logits from the initial state (no update), and the same forward layer by layer
/// (stem, each block): where two engines part, these show. The running statistics are left as they were.
private func firstForward(_ network: Network, x: Tensor) -> (logits: [Float], layers: [(name: String, values: [Float], shape: [Int])]) {
    let saved = network.buffers.map { $0.value.clone() }
    let logits = network.forward(x, training: true).array
    for (buffer, copy) in zip(network.buffers, saved) { buffer.value.copy(from: copy) }
    var layers: [(name: String, values: [Float], shape: [Int])] = []
    var h = x
    for (name, child) in network.root.children {
        let members = name == "blocks" ? child.children.map(\.layer) : [child]
        for (i, layer) in members.enumerated() {
            h = layer.forward(h, training: true)
            var scratch = ReusableTensor()
            let plain = h.converted(to: .nchw, reusing: &scratch)
            layers.append((name == "blocks" ? "blocks.\(i)" : name, plain.array, plain.shape))
        }
    }
    for (buffer, copy) in zip(network.buffers, saved) { buffer.value.copy(from: copy) }
    return (logits, layers)
}

/// What a replay records every `record_every` steps: the running statistics, each parameter's and its gradient's
/// L2 norm, and an eval-mode pass over the fixed set.
private struct ReplayRecord {
    let network: Network
    let evalX: [Float], evalShape: [Int], evalLabels: [Int32]
    var steps: [Int32] = [], evalLoss: [Double] = [], evalCorrect: [Int32] = []
    var buffers: [String: [Float]] = [:], paramNorms: [String: [Double]] = [:], gradNorms: [String: [Double]] = [:]

    init(network: Network, evalX: [Float], evalShape: [Int], evalLabels: [Int32]) {
        (self.network, self.evalX, self.evalShape, self.evalLabels) = (network, evalX, evalShape, evalLabels)
    }

    mutating func record(step: Int) {
        func norm(_ t: Tensor) -> Double { t.readBuffer.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }
        steps.append(Int32(step))
        for b in network.buffers { buffers[b.name, default: []] += b.value.array }
        for p in network.parameters {
            paramNorms[p.name, default: []].append(norm(p.value))
            gradNorms[p.name, default: []].append(step == 0 ? 0 : norm(p.grad))
        }
        let image = evalShape[1...].reduce(1, *)
        var lossSum = 0.0, right = 0
        let evalBatch = 500
        for start in stride(from: 0, to: evalShape[0], by: evalBatch) {
            let count = min(evalBatch, evalShape[0] - start)
            let x = Tensor(Array(evalX[(start * image)..<((start + count) * image)]), shape: [count] + Array(evalShape[1...]))
            let logits = network.forward(x, training: false)
            let (loss, ok) = Array(evalLabels[start..<(start + count)]).withUnsafeBufferPointer {
                softmaxCrossEntropy(logits: logits.readBuffer, labels: $0, batch: count, classes: logits.shape[1], dlogits: nil)
            }
            lossSum += Double(loss) * Double(count)
            right += ok
        }
        evalLoss.append(lossSum / Double(evalShape[0]))
        evalCorrect.append(Int32(right))
    }

    func write(to w: H5Writer) throws {
        try w.write("/record/step", steps, shape: [steps.count])
        try w.write("/record/eval_loss", evalLoss, shape: [evalLoss.count])
        try w.write("/record/eval_correct", evalCorrect, shape: [evalCorrect.count])
        for b in network.buffers {
            try w.write(Checkpoint.path("/record/buffers", b.name), buffers[b.name]!, shape: [steps.count, b.value.count])
        }
        for p in network.parameters {
            try w.write(Checkpoint.path("/record/param_norm", p.name), paramNorms[p.name]!, shape: [steps.count])
            try w.write(Checkpoint.path("/record/grad_norm", p.name), gradNorms[p.name]!, shape: [steps.count])
        }
    }
}

/// `ste batches --run ID --epochs N --out F.h5`: what a run's training batches are made of, for a twin trained
/// on the same batches (tools/trajectory.py --protocol): per epoch, the dataset index of every row in batch
/// order, and each row's crop offsets and flip (RandomCrop(padding) + RandomHorizontalFlip, torchvision's
/// definition: out[i][j] = padded[i + top + p][(flip ? w − 1 − j : j) + left + p]).
struct Batches: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a run's training batch order and augmentation draws (for a twin on the same batches).",
        discussion: "Example: ste batches --config experiments/fashion.yaml --profile cpu-budget --run resnet20-a4-relu-s0 --epochs 20 --out /tmp/b.h5")

    @OptionGroup var options: RunOptions

    @Option(help: "Epochs to export (default: the run's).")
    var epochs: Int?

    @Option(help: "Where to write them.")
    var out: String

    func run() throws {
        try stage {
            let (_, run) = try options.resolve(expect: [.pretrain, .train, .repel])
            let (train, _) = try runBatchers(run)
            let total = epochs ?? run.totalEpochs
            guard total >= 1 else { throw ValidationError("--epochs must be at least 1") }
            let w = try H5Writer(path: out)
            do {
                for epoch in 0..<total {
                    let order = train.permutation(epoch: epoch)
                    var top: [Int32] = [], left: [Int32] = [], flip: [UInt8] = []
                    for b in 0..<train.batchesPerEpoch {
                        let rows = min(train.batchSize, train.count - b * train.batchSize)
                        for d in train.augmentationDraws(epoch: epoch, index: b, count: rows) {
                            top.append(Int32(d.top)); left.append(Int32(d.left)); flip.append(d.flip ? 1 : 0)
                        }
                    }
                    try w.write("/epoch\(epoch)/index", order.map { Int32($0) }, shape: [order.count])
                    if !top.isEmpty {
                        try w.write("/epoch\(epoch)/top", top, shape: [top.count])
                        try w.write("/epoch\(epoch)/left", left, shape: [left.count])
                        try w.write("/epoch\(epoch)/flip", flip, shape: [flip.count])
                    }
                }
                try w.setAttributes(["epochs": .int(Int64(total)), "batch_size": .int(Int64(train.batchSize)),
                                     "train_count": .int(Int64(train.count))], on: "/")
                try Provenance(stage: "batches", configuration: run.canonicalJSON()).write(to: w)
                try w.commit()
            } catch {
                w.discard()
                throw error
            }
        }
    }
}
