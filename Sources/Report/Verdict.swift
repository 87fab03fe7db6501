// Comparing this project's Table 1 with the paper's: per-cell statistics and verdicts.
// Accuracy: consistent when the paper value lies within
// max(2·SE over seeds, 2·binomial SE of the test set) of our mean; otherwise lower / higher.
// Training loss is compared on a log scale: consistent when within max(2·SE over seeds of log10(loss),
// log10(2)) — a factor of two — of the paper value (the project's choice: the paper gives one run, and
// losses of 1e-3 move by that much between seeds).
import Experiments
import Foundation
import NN
import Storage

public struct CellKey: Hashable, Comparable, Sendable {
    public var dataset: String
    public var net: String
    public var bits: Int
    public var ste: String

    public static func < (a: CellKey, b: CellKey) -> Bool {
        (netOrder(a.net), a.bits, steOrder(a.ste)) < (netOrder(b.net), b.bits, steOrder(b.ste))
    }
}

func steOrder(_ ste: String) -> Int { ["identity": 0, "relu": 1, "clipped": 2][ste] ?? 9 }

/// Our result for one cell, aggregated over seeds.
public struct CellResult: Sendable {
    public var key: CellKey
    public var n: Int
    public var accuracyMean: Double
    public var accuracyStd: Double
    public var lossMean: Double
    public var lossStd: Double
    public var log10LossStd: Double
    /// Test images per run (10,000 for the full test sets).
    public var testTotal: Int
    public var diverged: Int

    /// Aggregates per-seed values (accuracy in %, training loss) into mean ± sample std.
    public init(key: CellKey, accuracies: [Double], losses: [Double], testTotal: Int, diverged: Int = 0) {
        self.key = key
        n = accuracies.count
        (accuracyMean, accuracyStd) = meanStd(accuracies)
        (lossMean, lossStd) = meanStd(losses)
        log10LossStd = meanStd(losses.map { log10(max($0, 1e-12)) }).1
        self.testTotal = testTotal
        self.diverged = diverged
    }

    public init(key: CellKey, n: Int, accuracyMean: Double, accuracyStd: Double, lossMean: Double, lossStd: Double,
        log10LossStd: Double, testTotal: Int, diverged: Int)
    {
        self.key = key
        self.n = n
        self.accuracyMean = accuracyMean
        self.accuracyStd = accuracyStd
        self.lossMean = lossMean
        self.lossStd = lossStd
        self.log10LossStd = log10LossStd
        self.testTotal = testTotal
        self.diverged = diverged
    }

    /// Tolerance on accuracy, in percentage points.
    public var accuracyTolerance: Double {
        let seedSE = n > 1 ? accuracyStd / Double(n).squareRoot() : 0
        let p = min(max(accuracyMean / 100, 0), 1)
        let binomialSE = 100 * (p * (1 - p) / Double(max(testTotal, 1))).squareRoot()
        return max(2 * seedSE, 2 * binomialSE)
    }

    /// Tolerance on log10(training loss).
    public var log10LossTolerance: Double {
        max(n > 1 ? 2 * log10LossStd / Double(n).squareRoot() : 0, log10(2.0))
    }
}

public struct ReferenceCell: Sendable {
    public var key: CellKey
    public var trainLoss: Double
    public var accuracy: Double
}

public enum Verdict: String, Sendable { case consistent, lower, higher }

public func accuracyVerdict(_ ours: CellResult, paper: Double) -> Verdict {
    let d = ours.accuracyMean - paper
    if abs(d) <= ours.accuracyTolerance { return .consistent }
    return d < 0 ? .lower : .higher
}

public func lossVerdict(_ ours: CellResult, paper: Double) -> Verdict {
    let d = log10(max(ours.lossMean, 1e-12)) - log10(paper)
    if abs(d) <= ours.log10LossTolerance { return .consistent }
    return d < 0 ? .lower : .higher
}

func meanStd(_ values: [Double]) -> (Double, Double) {
    guard !values.isEmpty else { return (.nan, .nan) }
    let mean = values.reduce(0, +) / Double(values.count)
    guard values.count > 1 else { return (mean, 0) }
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
    return (mean, variance.squareRoot())
}

// MARK: - CSV files

/// Reads the reference table (comment lines start with '#').
public func loadReference(_ path: String) throws -> [CellKey: ReferenceCell] {
    let rows = try readCSV(path)
    var out: [CellKey: ReferenceCell] = [:]
    for (line, row) in rows {
        guard let bits = Int(row["bits"] ?? ""), let loss = Double(row["train_loss"] ?? ""),
            let acc = Double(row["test_accuracy"] ?? ""), let dataset = row["dataset"], let net = row["net"],
            let ste = row["ste"]
        else { throw ConfigError(file: path, key: "line \(line)", message: "expected dataset,net,bits,ste,train_loss,test_accuracy") }
        let key = CellKey(dataset: dataset, net: net, bits: bits, ste: ste)
        out[key] = ReferenceCell(key: key, trainLoss: loss, accuracy: acc)
    }
    return out
}

public let table1Header = "dataset,net,bits,ste,n,test_accuracy_mean,test_accuracy_std,train_loss_mean,train_loss_std,log10_train_loss_std,test_total,diverged"

/// Columns after `table1Header`: which accuracy test_accuracy_mean holds, and both metrics.
public let table1MetricHeader = ",accuracy_metric,test_accuracy_final_mean,test_accuracy_final_std,test_accuracy_best_mean,test_accuracy_best_std"

public func table1MetricColumns(_ metric: String, final: CellResult, best: CellResult) -> String {
    ",\(metric),\(fmt(final.accuracyMean, 4)),\(fmt(final.accuracyStd, 4)),\(fmt(best.accuracyMean, 4)),\(fmt(best.accuracyStd, 4))"
}

public func table1Line(_ r: CellResult) -> String {
    let k = r.key
    return "\(k.dataset),\(k.net),\(k.bits),\(k.ste),\(r.n),\(fmt(r.accuracyMean, 4)),\(fmt(r.accuracyStd, 4)),"
        + "\(sci(r.lossMean)),\(sci(r.lossStd)),\(fmt(r.log10LossStd, 4)),\(r.testTotal),\(r.diverged)"
}

/// Reads results/table1.csv as written by `ste report`.
public func loadTable1(_ path: String) throws -> [CellKey: CellResult] {
    var out: [CellKey: CellResult] = [:]
    for (line, row) in try readCSV(path) {
        func num(_ k: String) throws -> Double {
            guard let v = row[k].flatMap(Double.init) else {
                throw ConfigError(file: path, key: "line \(line)", message: "column '\(k)' missing or not a number")
            }
            return v
        }
        guard let dataset = row["dataset"], let net = row["net"], let ste = row["ste"] else {
            throw ConfigError(file: path, key: "line \(line)", message: "expected the columns of \(table1Header)")
        }
        let key = CellKey(dataset: dataset, net: net, bits: Int(try num("bits")), ste: ste)
        out[key] = CellResult(key: key, n: Int(try num("n")), accuracyMean: try num("test_accuracy_mean"),
            accuracyStd: try num("test_accuracy_std"), lossMean: try num("train_loss_mean"),
            lossStd: try num("train_loss_std"), log10LossStd: try num("log10_train_loss_std"),
            testTotal: Int(try num("test_total")), diverged: Int(try num("diverged")))
    }
    return out
}

func fmt(_ v: Double, _ digits: Int) -> String { v.isNaN ? "nan" : String(format: "%.\(digits)f", v) }
func sci(_ v: Double) -> String { v.isNaN ? "nan" : String(format: "%.3e", v) }
