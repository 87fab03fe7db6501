// The pretrain and train stages: one run of the grid, resumable.
// After every epoch the full state (parameters, BN statistics, optimizer state, history) is written
// atomically to resume.h5; a restarted run continues from it and ends bit-identical to an
// uninterrupted one, because every random choice is a pure function of (seed, epoch, batch).
// On completion checkpoint.h5 and history.h5 are written and resume.h5 is removed. A loss that turns
// NaN/inf stops the run; it is recorded as diverged (with the epoch), not as a crash.
import Backends
import Datasets
import Foundation
import Kernels
import NN
import Storage
import Training

public struct RunOutcome: Sendable {
    public var epochs: Int
    public var diverged: Bool
    public var divergedEpoch: Int?
    public var wallSeconds: Double
}

/// Loaded dataset with the profile's subsets applied (the first N images, so subsets are nested).
struct LoadedData {
    let train: DatasetSplit
    let test: DatasetSplit

    init(_ config: RunConfig) throws {
        guard FileManager.default.fileExists(atPath: config.data) else {
            throw ConfigError(file: config.data, key: "nets.\(config.net).data",
                message: "dataset file is missing; run `make \(config.data)`")
        }
        let d = try loadDataset(path: config.data)
        train = LoadedData.padded(LoadedData.prefix(d.train, config.trainSubset), to: config.padTo)
        test = LoadedData.padded(LoadedData.prefix(d.test, config.testSubset), to: config.padTo)
    }

    /// Zero-pads every image evenly to side `side` (pixel 0 before normalisation, as torchvision's Pad before
    /// ToTensor + Normalize); nil or the stored side returns the split as it is.
    static func padded(_ s: DatasetSplit, to side: Int?) -> DatasetSplit {
        guard let side, side != s.height || side != s.width else { return s }
        precondition(side >= s.height && side >= s.width, "cannot pad \(s.height)×\(s.width) to \(side)")
        let top = (side - s.height) / 2, left = (side - s.width) / 2
        var out = [UInt8](repeating: 0, count: s.count * s.channels * side * side)
        for plane in 0..<(s.count * s.channels) {
            for i in 0..<s.height {
                let from = (plane * s.height + i) * s.width
                let to = (plane * side + i + top) * side + left
                out[to..<(to + s.width)] = s.images[from..<(from + s.width)]
            }
        }
        return DatasetSplit(images: out, labels: s.labels, count: s.count, channels: s.channels, height: side,
            width: side)
    }

    static func prefix(_ s: DatasetSplit, _ n: Int?) -> DatasetSplit {
        guard let n, n < s.count else { return s }
        return DatasetSplit(images: Array(s.images[0..<(n * s.imageSize)]), labels: Array(s.labels[0..<n]), count: n,
            channels: s.channels, height: s.height, width: s.width)
    }
}

func makeBatcher(_ split: DatasetSplit, _ config: RunConfig, batchSize: Int, training: Bool) throws -> Batcher {
    try Batcher(images: split.images, labels: split.labels, count: split.count, channels: split.channels,
        height: split.height, width: split.width, batchSize: batchSize, mean: config.mean.map(Float.init),
        std: config.std.map(Float.init), shuffle: training,
        augmentation: training && config.augment ? .cropAndFlip(padding: 4) : .none, seed: UInt64(config.seed))
}

func activation(_ config: RunConfig) -> Activation {
    guard let bits = config.activation.bits, let alpha = config.activation.alpha, let ste = config.activation.ste
    else { return .float }
    return .quantized(QuantizerSpec(bits: bits, alpha: alpha, rounding: config.activation.rounding ?? .ceil), ste)
}

func schedule(_ phase: PhaseSpec) -> LearningRateSchedule {
    switch phase.schedule.kind {
    case "multistep":
        let milestones: [Milestone] = phase.schedule.milestoneEpochs.map { $0.map { .epoch($0) } }
            ?? phase.schedule.milestones.map { .fraction($0) }
        return .multiStep(base: phase.lr, milestones: milestones, gamma: phase.schedule.gamma)
    case "cosine": return .cosine(base: phase.lr, minimum: 0, perStep: false)
    default: return .constant(phase.lr)
    }
}

func makeOptimizer(_ phase: PhaseSpec, _ network: Network) -> Optimizer {
    phase.optimizer == "adam"
        ? Adam(parameters: network.parameters, learningRate: phase.lr, weightDecay: phase.weightDecay)
        : SGD(parameters: network.parameters, learningRate: phase.lr, momentum: phase.momentum,
            weightDecay: phase.weightDecay)
}

/// Mean loss (no weight decay), accuracy (%) and counts of `network` over a split, BN in eval mode.
func evaluate(_ network: Network, _ batcher: Batcher, training: Bool = false) -> (loss: Double, accuracy: Double,
    correct: Int, total: Int)
{
    var lossSum = 0.0, correct = 0, total = 0
    for i in 0..<batcher.batchesPerEpoch {
        let batch = batcher.batch(epoch: 0, index: i)
        let logits = network.forward(batch.x, training: training)
        let (loss, right) = batch.labels.withUnsafeBufferPointer {
            softmaxCrossEntropy(logits: logits.readBuffer, labels: $0, batch: batch.count,
                classes: logits.shape[1], dlogits: nil)
        }
        lossSum += Double(loss) * Double(batch.count)
        correct += right
        total += batch.count
    }
    return (lossSum / Double(total), 100 * Double(correct) / Double(total), correct, total)
}

public final class RunExecutor {
    public let config: RunConfig
    public let directory: String
    public let quiet: Bool
    /// Test hook: stop (as if killed) after this many epochs of this process.
    public var stopAfterEpochs: Int?
    /// Test hook: skip a repel run's start measurement (to show that it does not change the run).
    var measuresStart = true
    /// Continue a resume state written under another thread count, device or code version (the output then
    /// lists each segment); a changed parent checkpoint is refused regardless.
    public var resumeAnyway = false
    /// The device this engine computes on (recorded in each segment).
    public var device = "cpu"
    /// Test hook: called at each training step (epoch from 1, batch index) and while each resume state is
    /// being written (batch nil), e.g. to deliver a signal there.
    var testPoint: ((_ epoch: Int, _ batch: Int?) -> Void)?

    public init(config: RunConfig, resultsRoot: String, quiet: Bool) {
        self.config = config
        directory = "\(resultsRoot)/\(RunID(config.runID)!.folder)"
        self.quiet = quiet
    }

    var resumePath: String { "\(directory)/resume.h5" }
    var checkpointPath: String { "\(directory)/checkpoint.h5" }
    var historyPath: String { "\(directory)/history.h5" }

    /// This process's setting, as a history segment (its epochs are filled in as they are trained).
    var setting: History.Segment {
        History.Segment(firstEpoch: 0, lastEpoch: 0, threads: computeThreads(), device: device, codeVersion: codeVersion())
    }

    public func run() throws -> RunOutcome {
        try makeDirectories(directory)
        let lock = try RunLock(directory: directory, run: config.runID, quiet: quiet)
        defer { withExtendedLifetime(lock) {} }
        let data = try LoadedData(config)
        let network = makeNetwork(named: config.net, activation: activation(config), seed: UInt64(config.seed),
            lenet5Widths: config.lenet5Widths, inputChannels: data.train.channels)
        var history = History()
        var optimizer: Optimizer = makeOptimizer(config.phases[0], network)
        var startEpoch = 0
        var phaseOfOptimizer = 0
        if FileManager.default.fileExists(atPath: resumePath) {
            let reader = try H5Reader(path: resumePath)
            guard try reader.stringAttribute("configuration") == config.canonicalJSON() else {
                throw ConfigError(file: resumePath, key: "configuration", message:
                    "resume state was written by a different configuration; delete \(directory) to start over")
            }
            startEpoch = Int(try reader.attribute("epoch").intValue ?? 0)
            history = try History.read(from: reader)
            try checkResumable(reader, history)
            phaseOfOptimizer = phaseIndex(ofEpoch: max(0, startEpoch - 1)).phase
            optimizer = makeOptimizer(config.phases[phaseOfOptimizer], network)
            try Checkpoint.restore(from: resumePath, network: network, optimizer: optimizer)
            if !quiet {
                FileHandle.standardError.write(Data("\(config.runID): resuming after epoch \(startEpoch) of \(config.totalEpochs) (\(resumePath))\n".utf8))
            }
        } else if let initFrom = config.initFrom {
            guard FileManager.default.fileExists(atPath: initFrom) else {
                throw ConfigError(file: initFrom, key: "initFrom", message: "the checkpoint this run starts from is missing")
            }
            try Checkpoint.restore(from: initFrom, network: network, optimizer: nil)
        }
        let trainBatcher = try makeBatcher(data.train, config, batchSize: config.phases[0].batchSize, training: true)
        let testBatcher = try makeBatcher(data.test, config, batchSize: config.evalBatchSize, training: false)
        if config.kind == RunID.Kind.repel.rawValue && startEpoch == 0 && measuresStart {
            (history.startTrainLoss, history.startTestAccuracy) = measureStart(network, trainBatcher, testBatcher)
        }
        var wall = history.wallSeconds.last ?? 0
        var epochsThisProcess = 0
        let total = config.totalEpochs
        for epoch in startEpoch..<total {
            let (phase, epochInPhase) = phaseIndex(ofEpoch: epoch)
            if phase != phaseOfOptimizer {  // repel runs: a new phase starts with a fresh optimizer, as a new run would
                optimizer = makeOptimizer(config.phases[phase], network)
                phaseOfOptimizer = phase
            }
            let spec = config.phases[phase]
            let lr = schedule(spec).rate(epoch: epochInPhase, step: 0, stepsPerEpoch: trainBatcher.batchesPerEpoch,
                totalEpochs: spec.epochs)
            optimizer.learningRate = lr
            let start = Date()
            var lastProgress = start
            var lossSum = 0.0, correct = 0, seen = 0
            var dlogits: Tensor? = nil
            for i in 0..<trainBatcher.batchesPerEpoch {
                testPoint?(epoch + 1, i)
                if let sig = interruptSignal {
                    throw Interrupted(run: config.runID, signal: sig, epoch: epoch + 1, total: total, saved: epoch)
                }
                let batch = trainBatcher.batch(epoch: epoch, index: i)
                network.zeroGrad()
                let logits = network.forward(batch.x, training: true)
                if dlogits?.shape != logits.shape { dlogits = Tensor(zeros: logits.shape) }
                let (loss, right) = batch.labels.withUnsafeBufferPointer {
                    softmaxCrossEntropy(logits: logits.readBuffer, labels: $0, batch: batch.count,
                        classes: logits.shape[1], dlogits: dlogits!.buffer)
                }
                guard loss.isFinite else {
                    return try finishDiverged(network, optimizer, history, epoch: epoch + 1, wall: wall)
                }
                network.backward(dlogits!)
                optimizer.step()
                lossSum += Double(loss) * Double(batch.count)
                correct += right
                seen += batch.count
                if !quiet, Date().timeIntervalSince(lastProgress) >= ProgressLine.interval, i + 1 < trainBatcher.batchesPerEpoch {
                    lastProgress = Date()
                    ProgressLine(quiet: quiet).step(run: config.runID, epoch: epoch + 1, of: total, batch: i + 1,
                        of: trainBatcher.batchesPerEpoch, loss: lossSum / Double(seen),
                        imagesPerSecond: Double(seen) / Date().timeIntervalSince(start))
                }
            }
            let trainSeconds = Date().timeIntervalSince(start)
            let test = evaluate(network, testBatcher)
            wall += Date().timeIntervalSince(start)
            history.append(epoch: epoch + 1, trainLoss: lossSum / Double(seen), trainAccuracy: 100 * Double(correct) / Double(seen),
                testLoss: test.loss, testAccuracy: test.accuracy, lr: lr, wall: wall,
                imagesPerSecond: Double(seen) / trainSeconds)
            ProgressLine(quiet: quiet).epoch(run: config.runID, epoch: epoch + 1, of: total,
                loss: lossSum / Double(seen), accuracy: 100 * Double(correct) / Double(seen), testAccuracy: test.accuracy,
                imagesPerSecond: Double(seen) / trainSeconds,
                secondsLeft: wall / Double(epoch + 1 - startEpoch + (history.count - (epoch + 1 - startEpoch)) ) * Double(total - epoch - 1))
            history.record(epoch: epoch + 1, under: setting)
            try writeState(resumePath, network, optimizer, history, epoch: epoch + 1, diverged: nil)
            epochsThisProcess += 1
            if let sig = interruptSignal, epoch + 1 < total {  // after the write in progress has been committed
                throw Interrupted(run: config.runID, signal: sig, epoch: epoch + 2, total: total, saved: epoch + 1)
            }
            if let stop = stopAfterEpochs, epochsThisProcess >= stop, epoch + 1 < total {
                return RunOutcome(epochs: epoch + 1, diverged: false, divergedEpoch: nil, wallSeconds: wall)
            }
        }
        try writeFinal(network, optimizer, history, epoch: total, diverged: nil)
        return RunOutcome(epochs: total, diverged: false, divergedEpoch: nil, wallSeconds: wall)
    }

    /// A repel run's starting point, measured as its epochs are: the mean mini-batch loss of one pass over
    /// the training set in train mode (batch statistics), and the test accuracy. No step is taken and the BN
    /// running statistics are restored afterwards, so the run continues exactly as without the measurement.
    func measureStart(_ network: Network, _ train: Batcher, _ test: Batcher) -> (Double, Double) {
        let saved = network.buffers.map { $0.value.clone() }
        var lossSum = 0.0, seen = 0
        for i in 0..<train.batchesPerEpoch {
            let batch = train.batch(epoch: 0, index: i)
            let logits = network.forward(batch.x, training: true)
            let (loss, _) = batch.labels.withUnsafeBufferPointer {
                softmaxCrossEntropy(logits: logits.readBuffer, labels: $0, batch: batch.count, classes: logits.shape[1],
                    dlogits: nil)
            }
            lossSum += Double(loss) * Double(batch.count)
            seen += batch.count
        }
        for (buffer, copy) in zip(network.buffers, saved) { buffer.value.copy(from: copy) }
        return (lossSum / Double(seen), evaluate(network, test).accuracy)
    }

    /// SHA-256 of the parent checkpoint's tensors (parameters and BN statistics; not the file's bytes, which
    /// hold wall times), computed once per process; nil for a run that starts from scratch.
    private var cachedParentDigest: String??
    func parentDigest() throws -> String? {
        if let d = cachedParentDigest { return d }
        let d = try config.initFrom.map { try Checkpoint.tensorDigest(of: $0) }
        cachedParentDigest = .some(d)
        return d
    }

    /// A resume continues only what it would have computed itself: the same parent checkpoint (always), and
    /// the same thread count, device and code version (unless `resumeAnyway`; the change is then a new segment).
    func checkResumable(_ reader: H5Reader, _ history: History) throws {
        let startOver = "to start over: rm \(resumePath) and run the same command"
        if let parent = try parentDigest() {
            let recorded = try? reader.stringAttribute("parent_tensor_sha256")
            guard recorded == parent else {
                throw ConfigError(file: resumePath, key: "parent", message: "this run started from another "
                    + "\(config.initFrom!) than the one there now (its tensors differ: it was rebuilt since); continuing would "
                    + "give a result no recorded input reproduces; \(startOver)")
            }
        }
        guard let last = history.segments.last, !last.sameSetting(as: setting) else { return }
        var changes: [String] = []
        if last.threads != setting.threads { changes.append("\(last.threads) → \(setting.threads) threads") }
        if last.device != setting.device { changes.append("device \(last.device) → \(setting.device)") }
        if last.codeVersion != setting.codeVersion { changes.append("code \(last.codeVersion) → \(setting.codeVersion)") }
        if resumeAnyway {
            if !quiet {
                FileHandle.standardError.write(Data("\(config.runID): resuming anyway across \(changes.joined(separator: ", ")); the output lists each segment\n".utf8))
            }
            return
        }
        throw ConfigError(file: resumePath, key: "resume", message: "epochs \(last.firstEpoch)–\(last.lastEpoch) were trained "
            + "under another setting (\(changes.joined(separator: ", "))): the result would be neither setting's. Resume under "
            + "the recorded one (THREADS=\(last.threads)), continue anyway with --resume-anyway (make: RESUME_ANYWAY=1; the "
            + "output then records each segment), or \(startOver)")
    }

    /// Phase index and epoch within that phase of a global epoch (from 0).
    func phaseIndex(ofEpoch epoch: Int) -> (phase: Int, epoch: Int) {
        var e = epoch
        for (i, p) in config.phases.enumerated() {
            if e < p.epochs { return (i, e) }
            e -= p.epochs
        }
        return (config.phases.count - 1, config.phases.last!.epochs - 1)
    }

    private func finishDiverged(_ network: Network, _ optimizer: Optimizer, _ history: History, epoch: Int, wall: Double)
        throws -> RunOutcome
    {
        if !quiet { FileHandle.standardError.write(Data("\n\(config.runID): loss is not finite in epoch \(epoch): recorded as diverged\n".utf8)) }
        try writeFinal(network, optimizer, history, epoch: epoch, diverged: epoch)
        return RunOutcome(epochs: epoch, diverged: true, divergedEpoch: epoch, wallSeconds: wall)
    }

    private func attributes(epoch: Int, diverged: Int?, optimizer: Optimizer) -> [String: AttributeValue] {
        var a: [String: AttributeValue] = [
            "run_id": .string(config.runID), "net": .string(config.net),
            "diverged": .int(diverged == nil ? 0 : 1), "diverged_epoch": .int(Int64(diverged ?? 0)),
            "threads": .int(Int64(computeThreads())),
        ]
        if let b = config.activation.bits {
            a["bits"] = .int(Int64(b))
            a["alpha"] = .double(Double(config.activation.alpha!))
            a["ste"] = .string(config.activation.ste!.rawValue)
            a["rounding"] = .string(config.activation.rounding!.rawValue)
            a["levels"] = .int(Int64((1 << b) - 1))
            a["ste_boundary_convention"] = .string("x <= 0 blocks; clipped passes 0 < x <= L*alpha")
        }
        return a
    }

    private func writeState(_ path: String, _ network: Network, _ optimizer: Optimizer, _ history: History, epoch: Int,
        diverged: Int?) throws
    {
        let parent = try parentDigest()
        try Checkpoint.save(to: path, network: network, optimizer: optimizer, stage: config.kind,
            configuration: config.canonicalJSON(), seed: UInt64(config.seed), epoch: epoch, step: optimizer.stepCount,
            inputs: provenanceInputs(), libraries: libraryVersions()) { w in
            try w.setAttributes(self.attributes(epoch: epoch, diverged: diverged, optimizer: optimizer))
            if let parent { try w.setAttribute("parent_tensor_sha256", .string(parent)) }
            try history.write(to: w)
            self.testPoint?(epoch, nil)
        }
    }

    private func writeFinal(_ network: Network, _ optimizer: Optimizer, _ history: History, epoch: Int, diverged: Int?)
        throws
    {
        let h = try H5Writer(path: historyPath)
        try Provenance(stage: config.kind, configuration: config.canonicalJSON(), inputs: provenanceInputs(),
            libraries: libraryVersions()).write(to: h)
        try h.setAttributes(attributes(epoch: epoch, diverged: diverged, optimizer: optimizer))
        try history.write(to: h)
        try h.commit()
        try writeState(checkpointPath, network, optimizer, history, epoch: epoch, diverged: diverged)
        unlink(resumePath)
    }

    private func provenanceInputs() -> [String] { [config.data] + (config.initFrom.map { [$0] } ?? []) }
}

/// Library versions recorded in the provenance of run outputs (HDF5's is added by Storage).
func libraryVersions() -> [String: String] {
    var v = computeLibraryVersions()
    #if swift(>=6.3)
    v["swift"] = "6.3+"
    #endif
    return v
}

/// Threads the compute libraries use (set once per process by the CLI).
func computeThreads() -> Int { Parallel.workers }
