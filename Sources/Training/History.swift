// Per-epoch training history of a run (history.h5), and the progress lines the training loop prints.
import Foundation
import Storage

public struct History: Sendable, Equatable {
    public var epoch: [Int64] = []
    public var trainLoss: [Double] = []
    public var trainAccuracy: [Double] = []
    public var testLoss: [Double] = []
    public var testAccuracy: [Double] = []
    public var learningRate: [Double] = []
    public var wallSeconds: [Double] = []
    public var imagesPerSecond: [Double] = []
    /// Resident memory of the process at the end of each epoch (MiB; flat after the first epoch when
    /// the step allocates nothing). Empty in files written before the column existed.
    public var residentMiB: [Double] = []
    /// Repel runs: the starting point measured before the first step — the mean mini-batch loss of one
    /// pass over the training set in train mode (as the epochs' `trainLoss`, BN statistics left as they
    /// were) and the test accuracy. nil for other runs.
    public var startTrainLoss: Double? = nil
    public var startTestAccuracy: Double? = nil
    /// The processes that trained the run: one segment for an uninterrupted run, or a run resumed under the
    /// same thread count, device and code; more when a resume was forced (`--resume-anyway`) across a change.
    public var segments: [Segment] = []

    public init() {}

    /// Epochs trained by one setting of thread count, device and code version.
    public struct Segment: Codable, Equatable, Sendable, CustomStringConvertible {
        public var firstEpoch: Int
        public var lastEpoch: Int
        public var threads: Int
        public var device: String
        public var codeVersion: String

        public init(firstEpoch: Int, lastEpoch: Int, threads: Int, device: String, codeVersion: String) {
            (self.firstEpoch, self.lastEpoch, self.threads, self.device, self.codeVersion) =
                (firstEpoch, lastEpoch, threads, device, codeVersion)
        }

        public var description: String {
            "epochs \(firstEpoch)–\(lastEpoch): \(threads) thread\(threads == 1 ? "" : "s"), device \(device), code \(codeVersion)"
        }

        /// Whether epochs computed under `other` continue this segment bit for bit.
        public func sameSetting(as other: Segment) -> Bool {
            threads == other.threads && device == other.device && codeVersion == other.codeVersion
        }
    }

    /// Records that `epoch` was trained under `setting` (extending the last segment when it matches).
    public mutating func record(epoch: Int, under setting: Segment) {
        if var last = segments.last, last.sameSetting(as: setting), last.lastEpoch == epoch - 1 {
            last.lastEpoch = epoch
            segments[segments.count - 1] = last
        } else {
            var s = setting
            (s.firstEpoch, s.lastEpoch) = (epoch, epoch)
            segments.append(s)
        }
    }

    public var count: Int { epoch.count }

    public mutating func append(epoch e: Int, trainLoss tl: Double, trainAccuracy ta: Double, testLoss vl: Double,
        testAccuracy va: Double, lr: Double, wall: Double, imagesPerSecond ips: Double,
        residentMiB rss: Double = currentResidentMiB())
    {
        epoch.append(Int64(e))
        trainLoss.append(tl)
        trainAccuracy.append(ta)
        testLoss.append(vl)
        testAccuracy.append(va)
        learningRate.append(lr)
        wallSeconds.append(wall)
        imagesPerSecond.append(ips)
        // A run resumed from a file without the column keeps it empty rather than misaligned.
        if residentMiB.count == epoch.count - 1 { residentMiB.append(rss) }
    }

    static let columns = ["epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "learning_rate",
        "wall_seconds", "images_per_second"]

    /// Writes the columns under `group` ("/history").
    public func write(to w: H5Writer, group: String = "/history") throws {
        let n = count
        try w.write("\(group)/epoch", epoch, shape: [n])
        try w.write("\(group)/train_loss", trainLoss, shape: [n])
        try w.write("\(group)/train_accuracy", trainAccuracy, shape: [n])
        try w.write("\(group)/test_loss", testLoss, shape: [n])
        try w.write("\(group)/test_accuracy", testAccuracy, shape: [n])
        try w.write("\(group)/learning_rate", learningRate, shape: [n])
        try w.write("\(group)/wall_seconds", wallSeconds, shape: [n])
        try w.write("\(group)/images_per_second", imagesPerSecond, shape: [n])
        if residentMiB.count == n { try w.write("\(group)/resident_mib", residentMiB, shape: [n]) }
        if !segments.isEmpty {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let json = String(decoding: try encoder.encode(segments), as: UTF8.self)
            try w.setAttributes(["segments": .strings(segments.map(\.description)), "segments_json": .string(json)], on: group)
        }
        if let l = startTrainLoss, let a = startTestAccuracy {
            try w.setAttributes(["start_train_loss": .double(l), "start_test_accuracy": .double(a)], on: group)
        }
        try w.setAttribute("units", .strings(["epoch: 1-based", "loss: mean softmax cross-entropy (no weight decay)",
            "accuracy: %", "wall_seconds: cumulative training+test time", "images_per_second: training",
            "resident_mib: process resident set at the end of the epoch"]), on: group)
    }

    public static func read(from r: H5Reader, group: String = "/history") throws -> History {
        var h = History()
        h.epoch = try r.read("\(group)/epoch", as: Int64.self).values
        let n = h.epoch.count
        h.trainLoss = try r.read("\(group)/train_loss", as: Double.self, shape: [n]).values
        h.trainAccuracy = try r.read("\(group)/train_accuracy", as: Double.self, shape: [n]).values
        h.testLoss = try r.read("\(group)/test_loss", as: Double.self, shape: [n]).values
        h.testAccuracy = try r.read("\(group)/test_accuracy", as: Double.self, shape: [n]).values
        h.learningRate = try r.read("\(group)/learning_rate", as: Double.self, shape: [n]).values
        h.wallSeconds = try r.read("\(group)/wall_seconds", as: Double.self, shape: [n]).values
        h.imagesPerSecond = try r.read("\(group)/images_per_second", as: Double.self, shape: [n]).values
        if r.contains("\(group)/resident_mib") {
            h.residentMiB = try r.read("\(group)/resident_mib", as: Double.self, shape: [n]).values
        }
        let names = try r.attributeNames(on: group)
        if names.contains("segments_json") {
            h.segments = try JSONDecoder().decode([Segment].self, from: Data(try r.stringAttribute("segments_json", on: group).utf8))
        }
        if names.contains("start_train_loss") {
            h.startTrainLoss = try r.attribute("start_train_loss", on: group).doubleValue
            h.startTestAccuracy = try r.attribute("start_test_accuracy", on: group).doubleValue
        }
        return h
    }
}

/// The process's resident set now, in MiB (Linux /proc/self/statm; 0 where it cannot be read).
public func currentResidentMiB() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Double(fields[1]) else { return 0 }
    return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
}

/// Progress on stderr, one whole line at a time and each starting with the run id, so the lines of cells trained in
/// parallel never overwrite or split each other, in a terminal and in a log alike: a line per epoch, and within a long
/// epoch a line every `interval` seconds (every 60 s by default; STE_PROGRESS=1 makes it every 5 s). Nothing when quiet.
public struct ProgressLine {
    let quiet: Bool
    public static let interval: Double = ProcessInfo.processInfo.environment["STE_PROGRESS"] == "1" ? 5 : 60

    public init(quiet: Bool) { self.quiet = quiet }

    func write(_ line: String) {
        guard !quiet else { return }
        FileHandle.standardError.write(Data((line + "\n").utf8))  // one write: whole lines from parallel processes
    }

    public func epoch(run: String, epoch: Int, of total: Int, loss: Double, accuracy: Double, testAccuracy: Double,
        imagesPerSecond: Double, secondsLeft: Double)
    {
        let eta = secondsLeft >= 3600 ? String(format: "%.1fh", secondsLeft / 3600)
            : secondsLeft >= 60 ? String(format: "%.1fm", secondsLeft / 60) : String(format: "%.0fs", secondsLeft)
        write("\(run) epoch \(epoch)/\(total)  loss " + String(format: "%.4f", loss)
            + "  acc " + String(format: "%.2f", accuracy) + "%  test " + String(format: "%.2f", testAccuracy)
            + "%  " + String(format: "%.0f", imagesPerSecond) + " img/s  ETA " + eta)
    }

    /// Within an epoch: batches done, the running mean loss and the throughput so far.
    public func step(run: String, epoch: Int, of total: Int, batch: Int, of batches: Int, loss: Double, imagesPerSecond: Double) {
        write("\(run) epoch \(epoch)/\(total)  batch \(batch)/\(batches)  loss " + String(format: "%.4f", loss) + "  "
            + String(format: "%.0f", imagesPerSecond) + " img/s")
    }
}
