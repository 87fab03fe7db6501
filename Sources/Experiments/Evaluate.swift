// The eval stage: a finished run's checkpoint → eval.h5.
// Records the final training loss as a full pass over the training set in eval mode (BN running
// statistics, no weight decay), the mean mini-batch loss of the last training epoch (what the
// paper's "training loss" most likely is; both are kept), and test accuracy and loss.
import Datasets
import Foundation
import Kernels
import NN
import Storage
import Training

public struct EvalResult: Sendable {
    public var trainLossFullPass: Double
    public var trainAccuracyFullPass: Double
    public var trainLossLastEpoch: Double
    public var testLoss: Double
    public var testAccuracy: Double
    public var testCorrect: Int
    public var testTotal: Int
    public var diverged: Bool
}

public func evaluateRun(_ config: RunConfig, resultsRoot: String, makeEngine: EngineFactory = cpuEngineFactory) throws
    -> EvalResult
{
    let dir = "\(resultsRoot)/\(RunID(config.runID)!.folder)"
    let lock = try RunLock(directory: dir, run: config.runID)
    defer { withExtendedLifetime(lock) {} }
    let checkpoint = "\(dir)/checkpoint.h5"
    let reader = try H5Reader(path: checkpoint)
    guard try reader.stringAttribute("configuration") == config.canonicalJSON() else {
        throw ConfigError(file: checkpoint, key: "configuration",
            message: "checkpoint was written by another configuration of \(config.runID); rerun `ste train`")
    }
    let history = try History.read(from: reader)
    let diverged = (try reader.attribute("diverged").intValue ?? 0) != 0
    let data = try LoadedData(config)
    let network = makeNetwork(named: config.net, activation: activation(config), seed: UInt64(config.seed),
        lenet5Widths: config.lenet5Widths, inputChannels: data.train.channels)
    let engine = try makeEngine(network, nil)
    try Checkpoint.restore(from: checkpoint, network: engine.hostState().network, optimizer: nil)
    engine.hostStateChanged()
    var result = EvalResult(trainLossFullPass: .nan, trainAccuracyFullPass: .nan,
        trainLossLastEpoch: history.trainLoss.last ?? .nan, testLoss: .nan, testAccuracy: .nan, testCorrect: 0,
        testTotal: data.test.count, diverged: diverged)
    if !diverged {
        let train = engine.evaluate(try makeBatcher(data.train, config, batchSize: config.evalBatchSize, training: false),
            batchStatistics: false)
        let test = engine.evaluate(try makeBatcher(data.test, config, batchSize: config.evalBatchSize, training: false),
            batchStatistics: false)
        result.trainLossFullPass = train.loss
        result.trainAccuracyFullPass = train.accuracy
        result.testLoss = test.loss
        result.testAccuracy = test.accuracy
        result.testCorrect = test.correct
        result.testTotal = test.total
    }
    let w = try H5Writer(path: "\(dir)/eval.h5")
    try Provenance(stage: "eval", configuration: config.canonicalJSON(), inputs: [checkpoint, config.data],
        libraries: libraryVersions(engine)).write(to: w)
    try w.setAttributes([
        "run_id": .string(config.runID), "net": .string(config.net), "seed": .int(Int64(config.seed)),
        "device": .string(engine.device),
        "diverged": .int(diverged ? 1 : 0),
        "diverged_epoch": try reader.attribute("diverged_epoch"),
        "epochs": .int(Int64(history.count)),
        "wall_seconds": .double(history.wallSeconds.last ?? 0),
        "threads": .int(Int64(computeThreads())),
    ])
    try w.write("/train_loss_full_pass", [result.trainLossFullPass], shape: [])
    try w.write("/train_accuracy_full_pass", [result.trainAccuracyFullPass], shape: [])
    try w.write("/train_loss_last_epoch", [result.trainLossLastEpoch], shape: [])
    try w.write("/test_loss", [result.testLoss], shape: [])
    try w.write("/test_accuracy", [result.testAccuracy], shape: [])
    try w.write("/test_correct", [Int64(result.testCorrect)], shape: [])
    try w.write("/test_total", [Int64(result.testTotal)], shape: [])
    try w.setAttribute("definitions", .strings([
        "train_loss_full_pass: mean cross-entropy over the training set, BN in eval mode, no weight decay",
        "train_loss_last_epoch: mean mini-batch loss of the last training epoch (train mode)",
        "test_accuracy: % correct on the test set, BN in eval mode",
    ]))
    try w.commit()
    return result
}
