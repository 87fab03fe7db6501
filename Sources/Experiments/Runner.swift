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
        let subset = config.trainSubsetBalanced == true
            ? try LoadedData.balanced(d.train, config.trainSubset!, file: config.data)
            : LoadedData.prefix(d.train, config.trainSubset)
        train = LoadedData.padded(subset, to: config.padTo)
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

    /// The first `n / classes` images of each class, in file order (no random draw: nothing to record).
    static func balanced(_ s: DatasetSplit, _ n: Int, file: String) throws -> DatasetSplit {
        let classes = Int(s.labels.max() ?? 0) + 1
        guard n % classes == 0 else {
            throw ConfigError(file: file, key: "train_subset", message: "a balanced subset of \(n) images does not divide into \(classes) classes")
        }
        var left = [Int](repeating: n / classes, count: classes)
        var picked: [Int] = []
        for i in 0..<s.count where left[Int(s.labels[i])] > 0 {
            left[Int(s.labels[i])] -= 1
            picked.append(i)
        }
        guard picked.count == n else {
            throw ConfigError(file: file, key: "train_subset", message: "too few training images of some class for a balanced subset of \(n)")
        }
        var images: [UInt8] = []
        images.reserveCapacity(n * s.imageSize)
        for i in picked { images.append(contentsOf: s.images[(i * s.imageSize)..<((i + 1) * s.imageSize)]) }
        return DatasetSplit(images: images, labels: picked.map { s.labels[$0] }, count: n, channels: s.channels,
            height: s.height, width: s.width)
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

/// The training and test batchers a run feeds its engine (its data, subsets, padding, normalisation,
/// augmentation and seed): what `ste batches` exports for a twin trained on the same batches.
public func runBatchers(_ config: RunConfig) throws -> (train: Batcher, test: Batcher) {
    let data = try LoadedData(config)
    return (try makeBatcher(data.train, config, batchSize: config.phases[0].batchSize, training: true),
            try makeBatcher(data.test, config, batchSize: config.evalBatchSize, training: false))
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

/// Makes a training engine over a network (nil optimizer: evaluation only).
public typealias EngineFactory = (_ network: Network, _ optimizer: OptimizerSpec?) throws -> TrainingEngine
public let cpuEngineFactory: EngineFactory = { CPUEngine(network: $0, optimizer: $1) }

/// A grid phase as the trainer's typed phase.
func trainingPhase(_ phase: PhaseSpec) -> TrainingPhase {
    TrainingPhase(epochs: phase.epochs, optimizer: phase.optimizer == "adam"
        ? .adam(learningRate: phase.lr, weightDecay: phase.weightDecay)
        : .sgd(learningRate: phase.lr, momentum: phase.momentum, weightDecay: phase.weightDecay),
        schedule: schedule(phase))
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
    /// Builds the engine the run computes on: the CPU engine, unless a caller plugs in another (the loop and
    /// the files do not change). Its `device` is recorded in every history segment.
    public var makeEngine: EngineFactory = cpuEngineFactory
    /// The device of the engine of the latest `run()`.
    public private(set) var device = "cpu"
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
        let phases = config.phases.map(trainingPhase)
        let engine = try makeEngine(network, phases[0].optimizer)
        device = engine.device
        let trainer = Trainer(engine: engine, phases: phases,
            trainBatches: try makeBatcher(data.train, config, batchSize: config.phases[0].batchSize, training: true),
            testBatches: try makeBatcher(data.test, config, batchSize: config.evalBatchSize, training: false),
            label: config.runID, quiet: quiet)
        var startEpoch = 0
        if FileManager.default.fileExists(atPath: resumePath) {
            let reader = try H5Reader(path: resumePath)
            guard try reader.stringAttribute("configuration") == config.canonicalJSON() else {
                throw ConfigError(file: resumePath, key: "configuration", message:
                    "resume state was written by a different configuration; delete \(directory) to start over")
            }
            startEpoch = Int(try reader.attribute("epoch").intValue ?? 0)
            let history = try History.read(from: reader)
            try checkResumable(reader, history)
            trainer.prepareToContinue(after: startEpoch, history: history)
            let host = engine.hostState()
            try Checkpoint.restore(from: resumePath, network: host.network, optimizer: host.optimizer)
            engine.hostStateChanged()
            if !quiet {
                FileHandle.standardError.write(Data("\(config.runID): resuming after epoch \(startEpoch) of \(config.totalEpochs) (\(resumePath))\n".utf8))
            }
        } else if let initFrom = config.initFrom {
            guard FileManager.default.fileExists(atPath: initFrom) else {
                throw ConfigError(file: initFrom, key: "initFrom", message: "the checkpoint this run starts from is missing")
            }
            try Checkpoint.restore(from: initFrom, network: engine.hostState().network, optimizer: nil)
            engine.hostStateChanged()
        }
        if config.kind == RunID.Kind.repel.rawValue && startEpoch == 0 && measuresStart {
            // The starting point, measured as the epochs are: the mean mini-batch loss of one pass over the training
            // set in train mode (batch statistics, running statistics left as they were) and the test accuracy.
            trainer.history.startTrainLoss = engine.evaluate(trainer.trainBatches, batchStatistics: true).loss
            trainer.history.startTestAccuracy = engine.evaluate(trainer.testBatches, batchStatistics: false).accuracy
        }
        let total = config.totalEpochs
        var epochsThisProcess = 0
        trainer.beforeStep = { [unowned self] epoch, batch in
            testPoint?(epoch, batch)
            if let sig = interruptSignal {
                throw Interrupted(run: config.runID, signal: sig, epoch: epoch, total: total, saved: epoch - 1)
            }
        }
        // progress.csv: one line per finished epoch, appended as it finishes (tail -f, pandas, a plotting tool watch the
        // curves live); rewritten from the history on a resume, so it holds exactly the epochs saved.
        let progress = ProgressFile(path: "\(directory)/progress.csv")
        progress.start(with: trainer.history)
        trainer.epochEnded = { [unowned self, unowned trainer] epoch in
            trainer.history.record(epoch: epoch, under: setting)
            try writeState(resumePath, engine, trainer.history, epoch: epoch, diverged: nil)
            progress.append(trainer.history, index: trainer.history.count - 1)
            epochsThisProcess += 1
            if let sig = interruptSignal, epoch < total {  // after the write in progress has been committed
                throw Interrupted(run: config.runID, signal: sig, epoch: epoch + 1, total: total, saved: epoch)
            }
            if let stop = stopAfterEpochs, epochsThisProcess >= stop, epoch < total { return false }
            return true
        }
        switch try trainer.train(from: startEpoch) {
        case .completed:
            try writeFinal(engine, trainer.history, epoch: total, diverged: nil)
            return RunOutcome(epochs: total, diverged: false, divergedEpoch: nil, wallSeconds: trainer.wallSeconds)
        case .stopped(let epoch):
            return RunOutcome(epochs: epoch, diverged: false, divergedEpoch: nil, wallSeconds: trainer.wallSeconds)
        case .diverged(let epoch):
            if !quiet { FileHandle.standardError.write(Data("\n\(config.runID): loss is not finite in epoch \(epoch): recorded as diverged\n".utf8)) }
            try writeFinal(engine, trainer.history, epoch: epoch, diverged: epoch)
            return RunOutcome(epochs: epoch, diverged: true, divergedEpoch: epoch, wallSeconds: trainer.wallSeconds)
        }
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

    private func attributes(epoch: Int, diverged: Int?) -> [String: AttributeValue] {
        var a: [String: AttributeValue] = [
            "run_id": .string(config.runID), "net": .string(config.net),
            "diverged": .int(diverged == nil ? 0 : 1), "diverged_epoch": .int(Int64(diverged ?? 0)),
            "threads": .int(Int64(computeThreads())), "device": .string(device),
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

    private func writeState(_ path: String, _ engine: TrainingEngine, _ history: History, epoch: Int, diverged: Int?)
        throws
    {
        let parent = try parentDigest()
        let (network, optimizer) = engine.hostState()
        try Checkpoint.save(to: path, network: network, optimizer: optimizer, stage: config.kind,
            configuration: config.canonicalJSON(), seed: UInt64(config.seed), epoch: epoch, step: optimizer?.stepCount ?? 0,
            inputs: provenanceInputs(), libraries: libraryVersions(engine)) { w in
            try w.setAttributes(self.attributes(epoch: epoch, diverged: diverged))
            if let parent { try w.setAttribute("parent_tensor_sha256", .string(parent)) }
            try history.write(to: w)
            self.testPoint?(epoch, nil)
        }
    }

    private func writeFinal(_ engine: TrainingEngine, _ history: History, epoch: Int, diverged: Int?) throws {
        let h = try H5Writer(path: historyPath)
        try Provenance(stage: config.kind, configuration: config.canonicalJSON(), inputs: provenanceInputs(),
            libraries: libraryVersions(engine)).write(to: h)
        try h.setAttributes(attributes(epoch: epoch, diverged: diverged))
        try history.write(to: h)
        try h.commit()
        try writeState(checkpointPath, engine, history, epoch: epoch, diverged: diverged)
        unlink(resumePath)
    }

    private func provenanceInputs() -> [String] { [config.data] + (config.initFrom.map { [$0] } ?? []) }
}

/// A run's live curves: `progress.csv` in its folder, a header and one line per epoch saved. Best effort: a failure
/// to write it never stops a run (the history in resume.h5 and history.h5 is the record).
struct ProgressFile {
    let path: String
    static let header = "epoch,train_loss,train_accuracy,test_loss,test_accuracy,learning_rate,wall_seconds,images_per_second\n"

    func line(_ h: History, _ i: Int) -> String {
        func at(_ xs: [Double]) -> String { i < xs.count ? String(xs[i]) : "" }
        return "\(h.epoch[i]),\(at(h.trainLoss)),\(at(h.trainAccuracy)),\(at(h.testLoss)),\(at(h.testAccuracy)),"
            + "\(at(h.learningRate)),\(at(h.wallSeconds)),\(at(h.imagesPerSecond))\n"
    }

    /// The header and the epochs already in `history` (a resumed run), replacing what was there.
    func start(with history: History) {
        let text = ProgressFile.header + (0..<history.count).map { line(history, $0) }.joined()
        try? text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    func append(_ history: History, index: Int) {
        guard let handle = FileHandle(forWritingAtPath: path) else { return }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: Data(line(history, index).utf8))
    }
}

/// Library versions recorded in the provenance of run outputs: the engine's own (the CPU's oneDNN and OpenBLAS, or
/// CUDA's, cuDNN's and cuBLAS's); HDF5's is added by Storage.
func libraryVersions(_ engine: TrainingEngine) -> [String: String] {
    var v = engine.libraries
    #if swift(>=6.3)
    v["swift"] = "6.3+"
    #endif
    return v
}

/// Threads the compute libraries use (set once per process by the CLI).
func computeThreads() -> Int { Parallel.workers }
