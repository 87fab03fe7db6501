// The report stage's inputs: every finished run's eval.h5 and history.h5 (RunRecord), the float pretrains, and the
// cells aggregated over seeds.
import Experiments
import Foundation
import Harness
import Storage
import Training

public struct RunRecord: Sendable {
    public var id: RunID
    public var config: RunConfig
    public var eval: [String: Double]
    public var history: History
    public var diverged: Bool
    public var wallSeconds: Double
    public var threads: Int
    /// Provenance of the training stage (history.h5): the commit that trained the run and the machine.
    public var trainedBy: String
    public var machine: String
}

/// Reads the finished runs of the (profiled) grid; runs without eval.h5 are absent.
public func collectRuns(_ config: ExperimentConfig, profile: String) throws -> [RunID: RunRecord] {
    let all = config.allRuns()
    var out: [RunID: RunRecord] = [:]
    for id in all.cells + all.repel {
        let dir = config.runFolder(id, profile: profile)
        guard FileManager.default.fileExists(atPath: "\(dir)/eval.h5") else { continue }
        let r = try H5Reader(path: "\(dir)/eval.h5")
        var eval: [String: Double] = [:]
        for name in ["train_loss_full_pass", "train_accuracy_full_pass", "train_loss_last_epoch", "test_loss",
            "test_accuracy"]
        {
            eval[name] = try r.read("/\(name)", as: Double.self, shape: []).values[0]
        }
        eval["test_total"] = Double(try r.read("/test_total", as: Int64.self, shape: []).values[0])
        let historyReader = try H5Reader(path: "\(dir)/history.h5")
        let history = try History.read(from: historyReader)
        out[id] = RunRecord(id: id, config: try config.runConfig(id, profile: profile), eval: eval, history: history,
            diverged: (try r.attribute("diverged").intValue ?? 0) != 0,
            wallSeconds: try r.attribute("wall_seconds").doubleValue ?? 0,
            threads: Int(try r.attribute("threads").intValue ?? 0),
            trainedBy: (try? historyReader.stringAttribute("code_version")) ?? "unknown",
            machine: (try? historyReader.stringAttribute("machine")) ?? "not recorded")
    }
    return out
}

/// The finished float pretrains as records for runs.csv and histories.csv: they have no eval.h5, so their metrics are
/// the last epoch's of history.h5 (test accuracy in eval mode, mean mini-batch training loss).
public func collectPretrainRecords(_ config: ExperimentConfig, profile: String) throws -> [RunID: RunRecord] {
    var out: [RunID: RunRecord] = [:]
    for id in config.allRuns().pretrains {
        let path = "\(config.runFolder(id, profile: profile))/history.h5"
        guard FileManager.default.fileExists(atPath: path) else { continue }
        let reader = try H5Reader(path: path)
        let h = try History.read(from: reader)
        let run = try config.runConfig(id, profile: profile)
        guard h.count == run.totalEpochs, let acc = h.testAccuracy.last else { continue }
        out[id] = RunRecord(id: id, config: run, eval: ["test_accuracy": acc, "test_loss": h.testLoss.last ?? .nan,
            "train_loss_last_epoch": h.trainLoss.last ?? .nan], history: h,
            diverged: (try reader.attribute("diverged").intValue ?? 0) != 0, wallSeconds: h.wallSeconds.last ?? 0,
            threads: Int(try reader.attribute("threads").intValue ?? 0),
            trainedBy: (try? reader.stringAttribute("code_version")) ?? "unknown",
            machine: (try? reader.stringAttribute("machine")) ?? "not recorded")
    }
    return out
}

/// The float nets the quantized cells start from, per (dataset, net): the final epoch of each pretrain's
/// history.h5 (test accuracy on the test set in eval mode, mean training loss of the last epoch), over seeds.
public struct FloatBaseline: Sendable {
    public var dataset: String, net: String
    public var accuracies: [Double], losses: [Double]
}

/// A run's best test accuracy over its epochs (the authors' group code's `best_prec1`); the final one when the
/// history is empty.
func bestEpochAccuracy(_ r: RunRecord) -> Double { r.history.testAccuracy.max() ?? r.eval["test_accuracy"]! }

/// The finished pretrains' histories by seed.
func collectPretrainHistories(_ config: ExperimentConfig, profile: String) throws -> [Int: History] {
    var out: [Int: History] = [:]
    for id in config.allRuns().pretrains {
        let path = "\(config.runFolder(id, profile: profile))/history.h5"
        guard FileManager.default.fileExists(atPath: path) else { continue }
        let h = try History.read(from: try H5Reader(path: path))
        if h.count == (try config.runConfig(id, profile: profile)).totalEpochs { out[id.seed] = h }
    }
    return out
}

public func collectFloatBaselines(_ config: ExperimentConfig, profile: String) throws -> [FloatBaseline] {
    var out: [FloatBaseline] = []
    let pretrains = config.allRuns().pretrains
    for net in config.nets.keys.sorted() {
        var b = FloatBaseline(dataset: config.nets[net]!.dataset, net: net, accuracies: [], losses: [])
        for id in pretrains where id.net == net {
            let path = "\(config.runFolder(id, profile: profile))/history.h5"
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let h = try History.read(from: try H5Reader(path: path))
            guard let acc = h.testAccuracy.last, let loss = h.trainLoss.last,
                h.epoch.count == (try config.runConfig(id, profile: profile)).totalEpochs else { continue }
            b.accuracies.append(acc)
            b.losses.append(loss)
        }
        if !b.accuracies.isEmpty { out.append(b) }
    }
    return out
}

/// Aggregates per cell over seeds. Diverged runs count as n but contribute no accuracy (reported apart).
public func aggregateCells(_ runs: [RunID: RunRecord], lossKind: String = "train_loss_last_epoch",
    accuracy: (RunRecord) -> Double = { $0.eval["test_accuracy"]! }) -> [CellKey: CellResult]
{
    var groups: [CellKey: [RunRecord]] = [:]
    for (id, r) in runs where id.kind == .train {
        groups[CellKey(dataset: r.config.dataset, net: id.net, bits: id.bits!, ste: id.ste!.rawValue), default: []].append(r)
    }
    var out: [CellKey: CellResult] = [:]
    for (key, records) in groups {
        let ok = records.filter { !$0.diverged }.sorted { $0.id.seed < $1.id.seed }
        out[key] = CellResult(key: key, accuracies: ok.map(accuracy),
            losses: ok.map { $0.eval[lossKind]! }, testTotal: Int(ok.first?.eval["test_total"] ?? 10000),
            diverged: records.count - ok.count)
    }
    return out
}
