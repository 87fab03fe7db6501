// Learning-rate schedules as pure functions of (epoch, step within the epoch): constant,
// multi-step (torch MultiStepLR: ×γ at each milestone, milestones given as epochs or as fractions
// of the run) and cosine (torch CosineAnnealingLR with T_max = the run's epochs, optionally per step).

/// A milestone of a multi-step schedule: an epoch, or a fraction of the total epochs (0.4 of 200 → 80).
public enum Milestone: Sendable, Equatable, Codable {
    case epoch(Int)
    case fraction(Double)

    public func epoch(totalEpochs: Int) -> Int {
        switch self {
        case .epoch(let e): return e
        case .fraction(let f): return Int((f * Double(totalEpochs)).rounded())
        }
    }
}

public enum LearningRateSchedule: Sendable, Equatable, Codable {
    case constant(Double)
    /// base · γ^(number of milestones ≤ epoch), milestones as in torch's MultiStepLR stepped per epoch.
    case multiStep(base: Double, milestones: [Milestone], gamma: Double)
    /// minimum + (base − minimum)·(1 + cos(π·t/T))/2 with T = total epochs; t = epoch (perStep false,
    /// as CosineAnnealingLR stepped per epoch) or epoch + step/stepsPerEpoch (perStep true).
    case cosine(base: Double, minimum: Double, perStep: Bool)

    /// The rate for the `step`-th batch (from 0) of `epoch` (from 0).
    public func rate(epoch: Int, step: Int, stepsPerEpoch: Int, totalEpochs: Int) -> Double {
        precondition(epoch >= 0 && step >= 0 && stepsPerEpoch > 0 && totalEpochs > 0,
                     "schedule: epoch \(epoch), step \(step), stepsPerEpoch \(stepsPerEpoch), total \(totalEpochs)")
        switch self {
        case .constant(let lr):
            return lr
        case .multiStep(let base, let milestones, let gamma):
            let passed = milestones.filter { $0.epoch(totalEpochs: totalEpochs) <= epoch }.count
            var lr = base
            for _ in 0..<passed { lr *= gamma }  // repeated products, as MultiStepLR's chained form
            return lr
        case .cosine(let base, let minimum, let perStep):
            let t = Double(epoch) + (perStep ? Double(step) / Double(stepsPerEpoch) : 0)
            return minimum + (base - minimum) * (1 + cos(Double.pi * t / Double(totalEpochs))) / 2
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
