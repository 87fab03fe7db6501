// A sweep as one result: every value's table1.csv (each value reproduced into its own folder by `make sweep`) in one
// table — the swept key against every cell's test accuracy and training loss, seeds as the spread — and one figure.
import Experiments
import Foundation
import Harness
import Storage

public struct SweepRow: Sendable {
    public var value: String
    public var folder: String
    public var cell: CellResult
}

/// Reads each value's table (missing ones are skipped and named); `folders` pairs each value with its results root.
public func collectSweep(_ folders: [(value: String, root: String)]) throws -> (rows: [SweepRow], missing: [String]) {
    var rows: [SweepRow] = [], missing: [String] = []
    for (value, root) in folders {
        let table = "\(root)/table1.csv"
        guard FileManager.default.fileExists(atPath: table) else { missing.append(table); continue }
        for (_, cell) in try loadTable1(table).sorted(by: { $0.key < $1.key }) {
            rows.append(SweepRow(value: value, folder: root, cell: cell))
        }
    }
    return (rows, missing)
}

public let sweepHeader = ["key", "value", "dataset", "net", "bits", "ste", "n", "test_accuracy_mean", "test_accuracy_std",
    "train_loss_mean", "train_loss_std", "folder"]

/// sweep-<key>.csv, sweep-<key>.svg (one panel per net and bit width: accuracy against the value, one line per STE,
/// bars ± std over seeds) and the Markdown table; written under `root`.
public func writeSweep(key: String, rows: [SweepRow], values: [String], root: String) throws -> String {
    let safeKey = key.filter { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-" }
    try makeDirectories(root)
    try writeAtomically(csvText(header: sweepHeader, rows: rows.map { r in
        let c = r.cell
        return [key, r.value, c.key.dataset, c.key.net, "\(c.key.bits)", c.key.ste, "\(c.n)", fmt(c.accuracyMean, 4),
            fmt(c.accuracyStd, 4), sci(c.lossMean), sci(c.lossStd), r.folder]
    }), to: "\(root)/sweep-\(safeKey).csv")
    // x: the value when every value is a number, else its position.
    let numeric = values.compactMap(Double.init).count == values.count
    func x(_ value: String) -> Double { numeric ? Double(value)! : Double(values.firstIndex(of: value) ?? 0) }
    var panels: [Panel] = []
    let groups = Dictionary(grouping: rows) { "\($0.cell.key.net) \($0.cell.key.bits)-bit" }
    for name in groups.keys.sorted() {
        var series: [Series] = []
        let stes = Set(groups[name]!.map(\.cell.key.ste)).sorted { (steOrder($0), $0) < (steOrder($1), $1) }
        for (i, ste) in stes.enumerated() {
            let color = Figure.palette[i % Figure.palette.count]
            let points = groups[name]!.filter { $0.cell.key.ste == ste }.sorted { x($0.value) < x($1.value) }
            for p in points where p.cell.n > 1 {
                series.append(Series("", x: [x(p.value), x(p.value)], y: [p.cell.accuracyMean - p.cell.accuracyStd,
                    p.cell.accuracyMean + p.cell.accuracyStd], color: color, lineWidth: 1))
            }
            series.append(Series("\(ste) STE", x: points.map { x($0.value) }, y: points.map(\.cell.accuracyMean), color: color,
                markers: true))
        }
        panels.append(Panel(title: "\(name): test accuracy against \(key)", xLabel: numeric ? key : "\(key) (\(values.joined(separator: ", ")))",
            yLabel: "test accuracy (%)", series: series, logX: numeric && values.count > 2 && values.allSatisfy { (Double($0) ?? 0) > 0 }
                && (values.compactMap(Double.init).max()! / values.compactMap(Double.init).min()! >= 10)))
    }
    if !panels.isEmpty {
        try writeFigure(Figure(title: "Sweep of \(key) (mean ± std over seeds)", panels: panels, columns: 2, panelWidth: 460),
            to: "\(root)/sweep-\(safeKey).svg")
    }
    return markdownTable(header: [key, "net", "bits", "STE", "test accuracy %", "n", "training loss"], rows: rows.map { r in
        [r.value, r.cell.key.net, "\(r.cell.key.bits)", r.cell.key.ste, r.cell.accuracyText, "\(r.cell.n)", r.cell.lossText]
    })
}
