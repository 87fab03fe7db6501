// CSV in and out, through CSV.swift (RFC 4180 quoting): the papers' reference tables and claims (lines starting
// with "#" are comments), and the tables `ste report` writes beside the HDF5 run files for readers outside Swift:
// table1.csv (per cell), runs.csv (one row per run: its configuration and final metrics) and histories.csv (one row
// per run and epoch).
import CSV
import Experiments
import Foundation
import Training
import Storage

/// The data rows of a CSV file with a header row, each with its line number in the file; comment and blank lines
/// are skipped. A row with fewer fields than the header is an error naming the file and the line.
func readCSV(_ path: String) throws -> [(Int, [String: String])] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw ConfigError(file: path, key: "", message: FileManager.default.fileExists(atPath: path)
            ? "cannot read the file (permissions, or not UTF-8 text)" : "no such file")
    }
    var kept: [String] = [], lineNumbers: [Int] = []
    for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let line = raw.trimmingCharacters(in: .whitespaces)
        if line.isEmpty || line.hasPrefix("#") { continue }
        kept.append(String(raw))
        lineNumbers.append(i + 1)
    }
    guard !kept.isEmpty else { return [] }
    let reader: CSVReader
    do {
        reader = try CSVReader(string: kept.joined(separator: "\n"), hasHeaderRow: true, trimFields: true)
    } catch {
        throw ConfigError(file: path, key: "line \(lineNumbers[0])", message: "not a CSV header: \(error)")
    }
    let header = reader.headerRow ?? []
    var rows: [(Int, [String: String])] = []
    while let fields = reader.next() {
        let line = rows.count + 1 < lineNumbers.count ? lineNumbers[rows.count + 1] : lineNumbers.last!
        guard fields.count >= header.count else {
            throw ConfigError(file: path, key: "line \(line)", message: "expected \(header.count) columns, found \(fields.count)")
        }
        rows.append((line, Dictionary(zip(header, fields), uniquingKeysWith: { first, _ in first })))
    }
    if let error = reader.error {
        throw ConfigError(file: path, key: "line \(lineNumbers[min(rows.count + 1, lineNumbers.count - 1)])",
            message: "malformed CSV: \(error)")
    }
    return rows
}

/// A CSV document (header, then rows; fields quoted where they need it), ending in a newline.
public func csvText(header: [String], rows: [[String]]) -> String {
    let stream = OutputStream(toMemory: ())
    stream.open()
    defer { stream.close() }
    // Writing to memory cannot fail; a failure would be a bug in the writer, not an I/O condition.
    let writer = try! CSVWriter(stream: stream)
    try! writer.write(row: header)
    for row in rows {
        precondition(row.count == header.count, "CSV row of \(row.count) fields under a header of \(header.count)")
        try! writer.write(row: row)
    }
    writer.stream.close()
    let data = stream.property(forKey: .dataWrittenToMemoryStreamKey) as? Data ?? Data()
    return String(decoding: data, as: UTF8.self) + "\n"
}

/// runs.csv: one row per finished run.
public let runsHeader = ["run_id", "kind", "dataset", "net", "bits", "ste", "from_ste", "seed", "profile", "epochs",
    "batch_size", "lr", "optimizer", "test_accuracy", "test_loss", "train_loss_last_epoch", "train_loss_full_pass",
    "train_accuracy_full_pass", "test_total", "diverged", "wall_seconds", "threads", "trained_by", "machine",
    "test_accuracy_best", "best_epoch", "test_accuracy_last5_mean", "test_accuracy_last5_sd",
    // Every resolved setting, so that a sweep over any key is a groupby.
    "momentum", "weight_decay", "schedule", "phases", "alpha", "rounding", "levels", "train_subset", "train_subset_balanced",
    "test_subset", "augment", "pad_to", "eval_batch_size", "init_from", "experiment", "results_folder"]

/// A phase as one field: "60 epochs, batch 128, sgd lr 0.01 momentum 0.9 wd 0.0001, multistep ×0.1 at 24/42".
func phaseText(_ p: PhaseSpec) -> String {
    let schedule = p.schedule.kind == "multistep"
        ? "multistep ×\(p.schedule.gamma) at \(p.schedule.milestoneEpochs(ofPhaseWith: p.epochs).map(String.init).joined(separator: "/"))"
        : p.schedule.kind
    return "\(p.epochs) epochs, batch \(p.batchSize), \(p.optimizer) lr \(p.lr) momentum \(p.momentum) wd \(p.weightDecay), \(schedule)"
}

/// The test accuracy over a run's epochs: the best and its epoch (what the authors' group code logs and
/// checkpoints, `best_prec1`: selection on the test set, the paper's practice), and the mean and sample standard
/// deviation of the last five epochs (how much a single final-epoch number can move: for a 4-bit ResNet-20 it can
/// be points, docs/resnet20-4bit-parity.md). Nil for a run without history.
struct EpochSummary {
    let best: Double, bestEpoch: Int, lastFiveMean: Double, lastFiveSD: Double

    init?(_ h: History) {
        let acc = h.testAccuracy
        guard let at = acc.indices.max(by: { acc[$0] < acc[$1] }) else { return nil }
        let last = Array(acc.suffix(5)), mean = last.reduce(0, +) / Double(last.count)
        best = acc[at]
        bestEpoch = h.epoch.indices.contains(at) ? Int(h.epoch[at]) : at + 1
        lastFiveMean = mean
        lastFiveSD = last.count > 1
            ? (last.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(last.count - 1)).squareRoot() : 0
    }

    /// runs.csv's four columns (empty for a run without history).
    static func csvFields(_ h: History) -> [String] {
        guard let e = EpochSummary(h) else { return ["", "", "", ""] }
        return [String(e.best), "\(e.bestEpoch)", String(e.lastFiveMean), String(e.lastFiveSD)]
    }
}

/// `rootOf`: the results root that holds each run (a shared run's: the base config's).
func runsRows(_ runs: [RunID: RunRecord], rootOf: (RunID) -> String) -> [[String]] {
    runs.keys.sorted { $0.description < $1.description }.map { id in
        let r = runs[id]!, c = r.config, first = c.phases.first
        func value(_ key: String) -> String { r.eval[key].map { String($0) } ?? "" }
        return [id.description, id.kind.rawValue, c.dataset, c.net, id.bits.map(String.init) ?? "",
            id.ste?.rawValue ?? "", id.from?.rawValue ?? "", "\(id.seed)", c.profile, "\(c.totalEpochs)",
            first.map { "\($0.batchSize)" } ?? "", first.map { "\($0.lr)" } ?? "", first?.optimizer ?? "",
            value("test_accuracy"), value("test_loss"), value("train_loss_last_epoch"), value("train_loss_full_pass"),
            value("train_accuracy_full_pass"), r.eval["test_total"].map { String(Int($0)) } ?? "",
            r.diverged ? "1" : "0", String(r.wallSeconds), "\(r.threads)", r.trainedBy, r.machine] + EpochSummary.csvFields(r.history)
            + [first.map { "\($0.momentum)" } ?? "", first.map { "\($0.weightDecay)" } ?? "",
               first.map { $0.schedule.kind == "multistep" ? "multistep ×\($0.schedule.gamma) at " + $0.schedule.milestoneEpochs(ofPhaseWith: $0.epochs).map(String.init).joined(separator: "/") : $0.schedule.kind } ?? "",
               c.phases.map(phaseText).joined(separator: " then "),
               c.activation.alpha.map { "\($0)" } ?? "", c.activation.rounding?.rawValue ?? "",
               c.activation.bits.map { "\((1 << $0) - 1)" } ?? "", c.trainSubset.map(String.init) ?? "",
               c.trainSubsetBalanced == true ? "1" : "0", c.testSubset.map(String.init) ?? "", c.augment ? "1" : "0",
               c.padTo.map(String.init) ?? "", "\(c.evalBatchSize)", c.initFrom ?? "", c.experiment, rootOf(id)]
    }
}

/// histories.csv: one row per run and epoch.
public let historiesHeader = ["run_id", "epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
    "learning_rate", "wall_seconds", "images_per_second"]

func historiesRows(_ runs: [RunID: RunRecord]) -> [[String]] {
    runs.keys.sorted { $0.description < $1.description }.flatMap { id -> [[String]] in
        let h = runs[id]!.history
        return h.epoch.indices.map { i in
            func at(_ xs: [Double]) -> String { i < xs.count ? String(xs[i]) : "" }
            return [id.description, "\(h.epoch[i])", at(h.trainLoss), at(h.trainAccuracy), at(h.testLoss),
                at(h.testAccuracy), at(h.learningRate), at(h.wallSeconds), at(h.imagesPerSecond)]
        }
    }
}
