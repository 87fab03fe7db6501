// `ste verify`: the chain from data to report, checked. For every HDF5 file under the given paths: its own
// checksums; each input it records still has the recorded content digest (an input that changed after the file
// was written makes the file stale, as `dvc status` says of a stage); and for every runs.csv, that each row's
// run still has its eval file with the same test accuracy (the tables were built from the files present).
// Files written before checksums or content digests cannot be checked that far: they are listed as such.
import Experiments
import Foundation
import Storage
import Training

public struct VerifyFinding: Sendable, Equatable {
    public enum Kind: String, Sendable { case broken, stale, missing, unverifiable }
    public let kind: Kind
    public let file: String
    public let message: String
}

public struct VerifyReport: Sendable {
    public var intact: [String] = []
    public var findings: [VerifyFinding] = []
    /// Broken, stale or missing: `ste verify` exits non-zero.
    public var failed: Bool { findings.contains { $0.kind != .unverifiable } }
}

/// The HDF5 files and runs.csv tables under `paths` (files or folders), sorted.
func filesToVerify(_ paths: [String]) -> [String] {
    var out: [String] = []
    let fm = FileManager.default
    for path in paths {
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else { out.append(path); continue }
        guard isDir.boolValue else { out.append(path); continue }
        let items = (fm.enumerator(atPath: path)?.allObjects as? [String]) ?? []
        for item in items where (item.hasSuffix(".h5") || item.hasSuffix("runs.csv"))
            && !item.split(separator: "/").contains(where: { $0.hasPrefix(".") }) && !item.hasSuffix("resume.h5") {
            out.append(path + "/" + item)
        }
    }
    return out.sorted()
}

/// Verifies every file under `paths`; `digests` caches content digests of inputs shared by many files.
public func verifyResults(_ paths: [String]) -> VerifyReport {
    var report = VerifyReport()
    var digests: [String: Result<String, Error>] = [:]
    func digest(_ input: String) -> Result<String, Error> {
        if let d = digests[input] { return d }
        let d = Result { try contentDigest(ofFile: input) }
        digests[input] = d
        return d
    }
    for file in filesToVerify(paths) {
        let before = report.findings.count
        if file.hasSuffix(".csv") {
            verifyTable(file, &report)
        } else {
            verifyHDF5(file, digest, &report)
        }
        if report.findings.count == before { report.intact.append(file) }
    }
    return report
}

private func verifyHDF5(_ file: String, _ digest: (String) -> Result<String, Error>, _ report: inout VerifyReport) {
    guard FileManager.default.fileExists(atPath: file) else {
        report.findings.append(.init(kind: .missing, file: file, message: "no such file"))
        return
    }
    let reader: H5Reader
    do {
        reader = try H5Reader(path: file)
        _ = try reader.verifyAllChecksums()
    } catch {
        report.findings.append(.init(kind: .broken, file: file, message: "\(error)"))
        return
    }
    if !reader.carriesChecksums {
        report.findings.append(.init(kind: .unverifiable, file: file, message: "written before per-dataset checksums"))
    }
    let names = (try? reader.attributeNames(on: "/")) ?? []
    guard names.contains("input_files"), let inputs = try? reader.attribute("input_files").stringsValue,
          let recorded = try? reader.attribute("input_sha256").stringsValue, inputs.count == recorded.count
    else { return }
    let byContent = names.contains("input_digest")
    for (input, sha) in zip(inputs, recorded) {
        guard FileManager.default.fileExists(atPath: input) else {
            // Checkpoints and decoded data sets are build products the repository does not keep.
            let rebuilt = input.hasSuffix("checkpoint.h5") || input.hasPrefix("data/")
            report.findings.append(rebuilt
                ? .init(kind: .unverifiable, file: file, message: "its input \(input) is not here (not kept in the "
                    + "repository; make reproduce rebuilds it)")
                : .init(kind: .missing, file: file, message: "its input \(input) is missing"))
            continue
        }
        let now: Result<String, Error> = byContent ? digest(input) : Result { try sha256Hex(ofFile: input) }
        switch now {
        case .failure(let error):
            report.findings.append(.init(kind: .broken, file: file, message: "its input \(input) cannot be read: \(error)"))
        case .success(let d) where d != sha:
            report.findings.append(byContent
                ? .init(kind: .stale, file: file, message: "its input \(input) changed after it was written (rerun it)")
                : .init(kind: .unverifiable, file: file, message: "recorded the bytes of \(input) (written before content "
                    + "digests), which differ now: whether its content changed cannot be told"))
        case .success:
            break
        }
    }
}

/// Each row of a runs.csv: its run's eval.h5 (beside the table, in the run's folder) holds the same test accuracy.
private func verifyTable(_ file: String, _ report: inout VerifyReport) {
    let root = URL(fileURLWithPath: file).deletingLastPathComponent().path
    let rows: [(Int, [String: String])]
    do { rows = try readCSV(file) } catch {
        report.findings.append(.init(kind: .broken, file: file, message: "\(error)"))
        return
    }
    for (line, row) in rows {
        guard let id = row["run_id"].flatMap(RunID.init), let accuracy = row["test_accuracy"].flatMap(Double.init) else {
            report.findings.append(.init(kind: .broken, file: file, message: "line \(line): no run_id / test_accuracy"))
            continue
        }
        // A run shared with the base config lives in that config's folder (runs.csv's results_folder says which). A
        // float pretrain has no eval.h5: its row quotes the last epoch of its history.h5.
        let folder = "\(row["results_folder"].flatMap { $0.isEmpty ? nil : $0 } ?? root)/\(id.folder)"
        if id.kind == .pretrain {
            do {
                let h = try History.read(from: try H5Reader(path: "\(folder)/history.h5"))
                if let last = h.testAccuracy.last, abs(last - accuracy) > 1e-9 * max(1, abs(last)) {
                    report.findings.append(.init(kind: .stale, file: file, message:
                        "line \(line): \(id) test accuracy \(accuracy) but \(folder)/history.h5 ends at \(last): rebuild the table (make report)"))
                }
            } catch {
                report.findings.append(.init(kind: .missing, file: file, message: "line \(line): \(error)"))
            }
            continue
        }
        let eval = "\(folder)/eval.h5"
        guard FileManager.default.fileExists(atPath: eval) else {
            report.findings.append(.init(kind: .missing, file: file, message: "line \(line): \(eval) is missing"))
            continue
        }
        do {
            let recorded = try H5Reader(path: eval).read("/test_accuracy", as: Double.self).values.first ?? .nan
            if abs(recorded - accuracy) > 1e-9 * max(1, abs(recorded)) {
                report.findings.append(.init(kind: .stale, file: file, message:
                    "line \(line): \(id) test accuracy \(accuracy) but \(eval) holds \(recorded): rebuild the table (make report)"))
            }
        } catch {
            report.findings.append(.init(kind: .broken, file: file, message: "line \(line): \(error)"))
        }
    }
}
