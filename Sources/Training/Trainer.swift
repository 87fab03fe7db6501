// The training loop, once for every net, engine and experiment: phases (each with its optimizer, started
// fresh, and its learning-rate schedule), a mini-batch step per batch, an evaluation per epoch, the
// history, progress lines. It drives a `TrainingEngine` (Engine.swift) and knows nothing of the grid or
// of files: what happens between epochs (resume states, interrupts) is the caller's, through callbacks.
// Every random choice is a pure function of (seed, epoch, batch) in the batchers, so a loop continued
// from a saved epoch computes what an uninterrupted one would.
import Foundation
import Kernels

/// Epochs trained with one optimizer (started fresh at the phase's first epoch) and one schedule.
public struct TrainingPhase: Sendable, Equatable {
    public var epochs: Int
    public var optimizer: OptimizerSpec
    public var schedule: LearningRateSchedule

    public init(epochs: Int, optimizer: OptimizerSpec, schedule: LearningRateSchedule) {
        (self.epochs, self.optimizer, self.schedule) = (epochs, optimizer, schedule)
    }
}

public final class Trainer {
    /// How a call to `train` ended: every epoch trained; a loss that was not finite in `epoch` (1-based;
    /// nothing of that epoch was recorded); or stopped by `epochEnded` after `epoch`.
    public enum End: Equatable {
        case completed
        case diverged(epoch: Int)
        case stopped(epoch: Int)
    }

    public let engine: TrainingEngine
    public let phases: [TrainingPhase]
    public let trainBatches: Batcher
    public let testBatches: Batcher
    /// The rows of the epochs trained so far (those of a resumed run included).
    public var history = History()
    /// Progress lines are prefixed with it (the run id).
    public let label: String
    public let quiet: Bool
    /// Called before every step with the epoch (1-based) and batch index; throwing stops the loop there
    /// (an interrupt), before the step.
    public var beforeStep: (_ epoch: Int, _ batch: Int) throws -> Void = { _, _ in }
    /// Called after every epoch's row is in `history`; false stops the loop (the caller saved what it needs).
    public var epochEnded: (_ epoch: Int) throws -> Bool = { _ in true }
    /// Training plus test seconds of every epoch so far.
    public private(set) var wallSeconds = 0.0
    /// The phase whose optimizer the engine holds.
    public private(set) var phaseOfOptimizer = 0

    public var totalEpochs: Int { phases.reduce(0) { $0 + $1.epochs } }

    /// The engine must hold phase 0's optimizer.
    public init(engine: TrainingEngine, phases: [TrainingPhase], trainBatches: Batcher, testBatches: Batcher,
        label: String, quiet: Bool)
    {
        precondition(!phases.isEmpty, "a run has at least one phase")
        (self.engine, self.phases, self.trainBatches, self.testBatches) = (engine, phases, trainBatches, testBatches)
        (self.label, self.quiet) = (label, quiet)
    }

    /// Phase index and epoch within that phase of a global epoch (from 0).
    public func phaseIndex(ofEpoch epoch: Int) -> (phase: Int, epoch: Int) {
        var e = epoch
        for (i, p) in phases.enumerated() {
            if e < p.epochs { return (i, e) }
            e -= p.epochs
        }
        return (phases.count - 1, phases.last!.epochs - 1)
    }

    /// Before restoring a state saved after `epochs` epochs: the engine gets a fresh optimizer of the phase
    /// that epoch belongs to (the restored optimizer state then goes into it), and the clock continues.
    public func prepareToContinue(after epochs: Int, history: History) {
        self.history = history
        wallSeconds = history.wallSeconds.last ?? 0
        phaseOfOptimizer = phaseIndex(ofEpoch: max(0, epochs - 1)).phase
        engine.startOptimizer(phases[phaseOfOptimizer].optimizer)
    }

    /// Trains epochs `startEpoch + 1 ... totalEpochs`.
    public func train(from startEpoch: Int) throws -> End {
        let total = totalEpochs
        for epoch in startEpoch..<total {
            let (phase, epochInPhase) = phaseIndex(ofEpoch: epoch)
            if phase != phaseOfOptimizer {  // a new phase starts with a fresh optimizer, as a new run would
                engine.startOptimizer(phases[phase].optimizer)
                phaseOfOptimizer = phase
            }
            let lr = phases[phase].schedule.rate(epoch: epochInPhase, step: 0, stepsPerEpoch: trainBatches.batchesPerEpoch,
                totalEpochs: phases[phase].epochs)
            engine.learningRate = lr
            let start = Date()
            var lastProgress = start
            var lossSum = 0.0, correct = 0, seen = 0
            for i in 0..<trainBatches.batchesPerEpoch {
                try beforeStep(epoch + 1, i)
                let step = engine.trainStep(trainBatches, epoch: epoch, index: i)
                guard step.updated else { return .diverged(epoch: epoch + 1) }
                let rows = trainBatches.count(ofBatch: i)
                lossSum += Double(step.loss) * Double(rows)
                correct += step.correct
                seen += rows
                if !quiet, Date().timeIntervalSince(lastProgress) >= ProgressLine.interval, i + 1 < trainBatches.batchesPerEpoch {
                    lastProgress = Date()
                    ProgressLine(quiet: quiet).step(run: label, epoch: epoch + 1, of: total, batch: i + 1,
                        of: trainBatches.batchesPerEpoch, loss: lossSum / Double(seen),
                        imagesPerSecond: Double(seen) / Date().timeIntervalSince(start))
                }
            }
            let trainSeconds = Date().timeIntervalSince(start)
            let test = engine.evaluate(testBatches, batchStatistics: false)
            wallSeconds += Date().timeIntervalSince(start)
            history.append(epoch: epoch + 1, trainLoss: lossSum / Double(seen), trainAccuracy: 100 * Double(correct) / Double(seen),
                testLoss: test.loss, testAccuracy: test.accuracy, lr: lr, wall: wallSeconds,
                imagesPerSecond: Double(seen) / trainSeconds)
            ProgressLine(quiet: quiet).epoch(run: label, epoch: epoch + 1, of: total,
                loss: lossSum / Double(seen), accuracy: 100 * Double(correct) / Double(seen), testAccuracy: test.accuracy,
                imagesPerSecond: Double(seen) / trainSeconds,
                secondsLeft: wallSeconds / Double(history.count) * Double(total - epoch - 1))
            guard try epochEnded(epoch + 1) else { return .stopped(epoch: epoch + 1) }
        }
        return .completed
    }
}
