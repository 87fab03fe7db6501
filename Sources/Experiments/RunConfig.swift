// The resolved configuration of one run: everything that decides its result, and nothing else.
// Its canonical JSON is the run's stamp (Make reruns a cell exactly when its stamp changes) and is
// recorded in every file the run writes.
import Foundation
import Kernels
import NN


public struct ActivationSpec: Codable, Equatable, Sendable {
    /// nil for the float (plain ReLU) pretraining nets.
    public var bits: Int?
    public var alpha: Float?
    public var rounding: Rounding?
    public var ste: STE?
}

public struct RunConfig: Codable, Equatable, Sendable {
    public var experiment: String
    public var profile: String
    public var runID: String
    public var kind: String
    public var net: String
    public var dataset: String
    public var data: String
    public var augment: Bool
    public var mean: [Double]
    public var std: [Double]
    public var evalBatchSize: Int
    public var seed: Int
    public var activation: ActivationSpec
    /// Phases run one after the other (repel runs: a low-LR phase, then possibly the normal schedule).
    public var phases: [PhaseSpec]
    /// The run whose final checkpoint initialises this one (the pretrain, or a repel run's start point).
    public var initFrom: String?
    public var trainSubset: Int?
    public var testSubset: Int?
    /// LeNet-5 widths of a width-ablation profile; nil (and absent from the JSON) for the classic net.
    public var lenet5Widths: [Int]? = nil
    /// Side the images are zero-padded to (Fashion-MNIST for the CIFAR nets); nil (and absent from the JSON) = as stored.
    public var padTo: Int? = nil
    /// The training subset is the first `trainSubset / classes` images of each class; nil (and absent from the JSON) =
    /// the first `trainSubset` images.
    public var trainSubsetBalanced: Bool? = nil

    public var totalEpochs: Int { phases.reduce(0) { $0 + $1.epochs } }

    /// Canonical JSON (sorted keys): the stamp and the `configuration` provenance attribute.
    public func canonicalJSON() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }
}

extension ExperimentConfig {

    /// α for `bits`: from the table, or fitted (Lloyd / MSE on half-Gaussian data) when the config says `fit`.
    public func alpha(bits: Int) throws -> Float {
        guard let table = alpha else { return fitAlpha(bits: bits, rounding: rounding) }
        guard let value = table[bits] else {
            throw ConfigError(file: file, key: "quantizer.alpha", message: "no α for \(bits)-bit activations; this "
                + "grid has α for bits \(table.keys.sorted().map(String.init).joined(separator: ", ")) "
                + "(add an entry, or remove quantizer.alpha to fit α for every width)")
        }
        return value
    }

    /// Resolves one run id of this (already profiled) config.
    public func runConfig(_ id: RunID, profile: String) throws -> RunConfig {
        guard let net = nets[id.net] else {
            throw ConfigError(file: file, key: "nets", message: "run \(id): net '\(id.net)' is not in this profile")
        }
        let p = profiles[profile]
        var config = RunConfig(experiment: experiment, profile: profile, runID: "\(id)", kind: id.kind.rawValue,
            net: id.net, dataset: net.dataset, data: net.data, augment: net.augment, mean: net.mean, std: net.std,
            evalBatchSize: net.evalBatchSize, seed: id.seed, activation: ActivationSpec(),
            phases: [], initFrom: nil, trainSubset: p?.trainSubset, testSubset: p?.testSubset,
            lenet5Widths: id.net == "lenet5" ? p?.lenet5Widths : nil, padTo: net.padTo,
            trainSubsetBalanced: p?.trainSubsetBalanced == true ? true : nil)
        switch id.kind {
        case .pretrain:
            config.phases = [net.pretrain]
        case .train:
            config.activation = ActivationSpec(bits: id.bits, alpha: try alpha(bits: id.bits!), rounding: rounding, ste: id.ste)
            config.phases = [net.train]
            config.initFrom = "\(runFolder(id.parent!, profile: profile))/checkpoint.h5"
        case .repel:
            guard let spec = repelSpec(for: id) else {
                throw ConfigError(file: file, key: "repel", message: id.isControl
                    ? "run \(id): a control (the start's own STE) needs a repel experiment starting at the \(id.from!.rawValue) minimum of \(id.net) \(id.bits!)-bit and the profile's repel_controls: true"
                    : "run \(id): no repel experiment starts \(id.ste!.rawValue) at the \(id.from!.rawValue) minimum of \(id.net) \(id.bits!)-bit")
            }
            config.activation = ActivationSpec(bits: id.bits, alpha: try alpha(bits: id.bits!), rounding: rounding, ste: id.ste)
            var warmup = net.train
            warmup.epochs = spec.warmupEpochs
            warmup.lr = spec.warmupLR
            warmup.schedule = ScheduleSpec(kind: "constant", milestones: [], gamma: 1)
            // A control runs the low-LR phase only: it is compared with the repel run at the end of that phase.
            config.phases = spec.thenNormalSchedule && !id.isControl ? [warmup, net.train] : [warmup]
            config.initFrom = "\(runFolder(id.parent!, profile: profile))/checkpoint.h5"
        }
        return config
    }

    /// The repel experiment a repel run belongs to (a control: the first one starting at its minimum, when the profile
    /// runs controls).
    public func repelSpec(for id: RunID) -> RepelSpec? {
        guard id.kind == .repel, let from = id.from else { return nil }
        if id.isControl {
            guard controlsRun else { return nil }
            return repel.first { $0.net == id.net && $0.bits == id.bits && $0.from.contains(from) }
        }
        return repel.first { $0.net == id.net && $0.bits == id.bits && $0.ste == id.ste && $0.from.contains(from) }
    }

    /// Whether this profiled config trains a control beside each repel start.
    public var controlsRun: Bool { repelControls }

    /// Every run of the grid (pretrains, Table 1 cells, repel runs), in dependency order.
    public func allRuns() -> (pretrains: [RunID], cells: [RunID], repel: [RunID]) {
        let netNames = nets.keys.sorted { netOrder($0) < netOrder($1) }
        var pretrains: [RunID] = [], cells: [RunID] = [], repel: [RunID] = []
        for net in netNames {
            for seed in seeds { pretrains.append(.pretrain(net: net, seed: seed)) }
            for b in bits { for s in stes { for seed in seeds { cells.append(.train(net: net, bits: b, ste: s, seed: seed)) } } }
        }
        for spec in self.repel where nets[spec.net] != nil {
            for from in spec.from {
                for seed in seeds { repel.append(.repel(net: spec.net, bits: spec.bits, ste: spec.ste, from: from, seed: seed)) }
            }
        }
        if controlsRun {
            for spec in self.repel where nets[spec.net] != nil {
                for from in spec.from {
                    for seed in seeds {
                        let control = RunID.repel(net: spec.net, bits: spec.bits, ste: from, from: from, seed: seed)
                        if !repel.contains(control) { repel.append(control) }
                    }
                }
            }
        }
        return (pretrains, cells, repel)
    }
}

