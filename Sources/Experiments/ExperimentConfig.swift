// The experiment grid as data: experiments/table1.yaml decoded (ConfigParser.swift) into typed, validated structs.
// Unknown keys, unknown STE names, bits outside 1–8, non-positive epochs or batch sizes and
// references to missing files are rejected with a message naming the key and the file.
import Datasets
import Foundation
import NN
import Kernels
import Harness

public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let key: String
    public let message: String
    public init(file: String, key: String, message: String) { (self.file, self.key, self.message) = (file, key, message) }
    /// An empty key: the message concerns the whole file.
    public var description: String { key.isEmpty ? "\(file): \(message)" : "\(file): \(key): \(message)" }
}

/// Learning-rate schedule of one phase.
public struct ScheduleSpec: Codable, Equatable, Sendable {
    /// "constant", "multistep" or "cosine".
    public var kind: String
    /// multistep: fractions of the phase's epochs (0.4 = 40 %) at which the LR is multiplied by `gamma`.
    public var milestones: [Double]
    public var gamma: Double
    /// multistep: epochs (from 1) at which the LR is multiplied by `gamma` — the form the paper's Table 2
    /// uses. In YAML both forms are `milestones:`, integers meaning epochs and values in (0, 1) fractions.
    /// nil (and absent from the stamp) when the milestones are fractions.
    public var milestoneEpochs: [Int]? = nil

    public init(kind: String, milestones: [Double], gamma: Double, milestoneEpochs: [Int]? = nil) {
        self.kind = kind
        self.milestones = milestones
        self.gamma = gamma
        self.milestoneEpochs = milestoneEpochs
    }

    /// The milestones as epochs of a phase of `epochs` epochs.
    public func milestoneEpochs(ofPhaseWith epochs: Int) -> [Int] {
        milestoneEpochs ?? milestones.map { Int(($0 * Double(epochs)).rounded()) }
    }

    /// The same schedule on a phase shortened (or lengthened) from `old` to `new` epochs: epoch milestones
    /// scale with it (a profile's 2-epoch smoke run decays where the 50-epoch run would, proportionally).
    public func rescaled(from old: Int, to new: Int) -> ScheduleSpec {
        guard let e = milestoneEpochs, old != new else { return self }
        var out = self
        out.milestoneEpochs = e.map { max(1, Int((Double($0) * Double(new) / Double(old)).rounded())) }
        return out
    }
}

/// One optimisation phase (float pretraining or quantized training).
public struct PhaseSpec: Codable, Equatable, Sendable {
    public var epochs: Int
    public var batchSize: Int
    /// "sgd" or "adam".
    public var optimizer: String
    public var lr: Double
    public var momentum: Double
    public var weightDecay: Double
    public var schedule: ScheduleSpec
}

public struct NetSpec: Codable, Equatable, Sendable {
    public var name: String
    public var dataset: String
    public var data: String
    public var augment: Bool
    /// Per-channel input normalisation (pixel/255 − mean) / std.
    public var mean: [Double]
    public var std: [Double]
    public var evalBatchSize: Int
    public var pretrain: PhaseSpec
    public var train: PhaseSpec
    /// Images are zero-padded (pixel value 0, before normalisation) to this side length; nil = as stored.
    public var padTo: Int? = nil
}



/// A profile shrinks the protocol (for tests and quick looks); nil fields keep the paper protocol.
public struct ProfileSpec: Codable, Equatable, Sendable {
    /// An ablation profile's question (the paper protocol with one change); nil for a shrunken check profile.
    public var ablation: String?
    /// What a profile that is neither an ablation nor a shrunken check is (e.g. a subset of the grid at the full
    /// protocol); shown at the top of its report.
    public var about: String?
    public var nets: [String]?
    public var seeds: [Int]?
    public var bits: [Int]?
    public var stes: [String]?
    public var trainSubset: Int?
    public var testSubset: Int?
    public var pretrainEpochs: Int?
    public var trainEpochs: Int?
    /// Net of every repel run (the smoke profile runs them on LeNet-5).
    public var repelNet: String?
    /// Low-LR phase length of every repel run.
    public var repelWarmupEpochs: Int?
    /// LeNet-5 (conv1, conv2, fc1, fc2) widths instead of the classic 6-16-120-84 (width ablation).
    public var lenet5Widths: [Int]?
    /// Learning rate of the quantized training phase instead of the net's `train.lr` (LR ablation).
    public var trainLR: Double?
    /// The training subset is drawn balanced: the first `trainSubset / classes` images of each class, in file order.
    public var trainSubsetBalanced: Bool?
    /// Low-LR phase length of every repel run in optimizer steps, rounded to whole epochs (overrides
    /// `repelWarmupEpochs`): the paper's phase length carried to a data set of another size.
    public var repelWarmupSteps: Int?
    /// Each repel start is also trained with its own STE for the low-LR phase (`<net>-a<b>-<ste>-from-<ste>-s<seed>`):
    /// "repelled" then means worse than this control, not worse than the start.
    public var repelControls: Bool?
    /// Runs whose result files are present and record this profile's configuration are not rerun, whatever the
    /// files' dates: a campaign longer than one machine's stay resumes from its committed runs on another machine.
    public var resumeFromCommitted: Bool?
    /// The claims' criteria (CSV) this profile's runs are judged by, fixed before the runs.
    public var criteria: String?
}


/// A "repelled from a good minimum" experiment (Fig. 2, Appendix C): start at the minimum that the
/// `from` STEs reached in the Table 1 cells of (net, bits), continue with the `ste` STE at `warmupLR` for
/// `warmupEpochs` epochs, then (when `thenNormalSchedule`) the net's normal quantized-training phase.
public struct RepelSpec: Codable, Equatable, Sendable {
    /// The name in the config (`fig2`, `appendix-c`): figure file names and report headings.
    public var name: String
    public var title: String
    public var net: String
    public var bits: Int
    public var ste: STE
    public var from: [STE]
    public var warmupEpochs: Int
    public var warmupLR: Double
    public var thenNormalSchedule: Bool
}

public struct ExperimentConfig: Equatable, Sendable {
    public var file: String
    public var experiment: String
    /// The paper's table (CSV) this experiment is compared with; nil for a transfer to another data set.
    public var reference: String?
    public var seeds: [Int]
    public var bits: [Int]
    public var stes: [STE]
    public var rounding: Rounding
    /// α per bit width; nil means "fit by Lloyd/MSE on half-Gaussian data".
    public var alpha: [Int: Float]?
    public var nets: [String: NetSpec]
    /// Repel experiments in config order.
    public var repel: [RepelSpec]
    public var profiles: [String: ProfileSpec]
    /// Results folder of the unmodified protocol (`results:`; default `results`); profile `<name>` writes to
    /// `<results>/<name>`. Two experiments with the same run ids must name different folders.
    public var results: String = "results"
    /// The paper's qualitative claims (CSV) scored on this experiment's cells; nil = the reference's
    /// `-claims.csv` sibling when it exists.
    public var claims: String? = nil
    /// Which test accuracy of a run is compared with the paper's table: `best-epoch` (the best over the epochs, as
    /// the authors' group code logs it) or `final-epoch`. Both are reported.
    public var paperMetric: String = "final-epoch"

    /// Set by `resolved(profile:)` from the profile's `repel_controls`.
    public var repelControls = false

    /// With overrides: the same profile without them (set by `resolved(profile:)`). A run whose resolved configuration
    /// is the same under both is shared: it lives in that config's folder, so an override or a sweep value retrains
    /// only what it changes (a SET of the quantized phase reuses the float pretrains).
    public private(set) var base: [ExperimentConfig] = []

    /// The results root that holds run `id`: the base config's when the run is shared, else this config's own.
    public func runRoot(_ id: RunID, profile: String) -> String {
        let own = resultsRoot(profile: profile)
        guard let b = base.first, let mine = try? runConfig(id, profile: profile),
            let theirs = try? b.runConfig(id, profile: profile), mine.canonicalJSON() == theirs.canonicalJSON()
        else { return own }
        return b.resultsRoot(profile: profile)
    }

    /// The folder of run `id` (shared runs: the base config's).
    public func runFolder(_ id: RunID, profile: String) -> String { "\(runRoot(id, profile: profile))/\(id.folder)" }

    /// Command-line overrides (`key.path=value`) applied to the file, in order; they select their own results folder.
    public var overrides: [String] = []

    /// Results root of a profile: `<results>` for the paper protocol, `<results>/<profile>` otherwise, and below it
    /// `set-<overrides>` when keys were overridden, so a variant never writes into the runs it varies.
    public func resultsRoot(profile: String) -> String {
        let base = profile == "paper" ? results : "\(results)/\(profile)"
        return overrides.isEmpty ? base : "\(base)/\(overrideFolder(overrides))"
    }

    /// Reads the file, applies the profile's `set:` list and then `overrides` (each `key.path=value`, the value in
    /// YAML: `nets.lenet5.train.lr=0.05`, `seeds=[0,1]`), and parses the result with the file's usual checks.
    public static func load(_ path: String, profile: String = "paper", overrides: [String] = []) throws -> ExperimentConfig {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigError(file: path, key: "", message: FileManager.default.fileExists(atPath: path) ? "cannot read the file (permissions, or not UTF-8 text)" : "no such file")
        }
        var root: Any?
        do { root = try loadStrictYAML(text, file: path) } catch let e as YAMLConfigError {
            throw ConfigError(file: path, key: e.keyPath, message: e.message)
        }
        // A profile's `set:` list is a named override set: applied to the file before parsing, like --set.
        var sets: [String] = []
        if profile != "paper", let top = root as? [String: Any], let profiles = top["profiles"] as? [String: Any],
            let p = profiles[profile] as? [String: Any], let list = p["set"]
        {
            guard let strings = list as? [String] else {
                throw ConfigError(file: path, key: "profiles.\(profile).set", message: "expected a list of key.path=value strings")
            }
            sets = strings
        }
        for (i, assignment) in (sets + overrides).enumerated() {
            let source = i < sets.count ? "profiles.\(profile).set" : "--set"
            root = try applyOverride(assignment, to: root, file: path, source: source)
        }
        var config = try ConfigParser(file: path).parseExperiment(root)
        config.overrides = overrides
        return config
    }

    /// The protocol after applying a profile ("paper" is the identity); with overrides, `base` is the same profile
    /// without them.
    public func resolved(profile: String) throws -> ExperimentConfig {
        var out = try resolvedProfile(profile)
        if !overrides.isEmpty {
            out.base = [try ExperimentConfig.load(file, profile: profile).resolvedProfile(profile)]
        }
        return out
    }

    private func resolvedProfile(_ profile: String) throws -> ExperimentConfig {
        if profile == "paper" { return self }
        guard let p = profiles[profile] else {
            throw ConfigError(file: file, key: "profiles", message:
                "unknown profile '\(profile)' (known: paper, \(profiles.keys.sorted().joined(separator: ", ")))")
        }
        // An override of a key the profile also sets would be overruled by the profile, silently: refuse it.
        let profileKeys: [(set: (String) -> Bool, key: String, present: Bool)] = [
            ({ $0 == "seeds" }, "seeds", p.seeds != nil), ({ $0 == "bits" }, "bits", p.bits != nil),
            ({ $0 == "stes" }, "stes", p.stes != nil),
            ({ $0.hasPrefix("nets.") && $0.hasSuffix(".pretrain.epochs") }, "pretrain_epochs", p.pretrainEpochs != nil),
            ({ $0.hasPrefix("nets.") && $0.hasSuffix(".train.epochs") }, "train_epochs", p.trainEpochs != nil),
            ({ $0.hasPrefix("nets.") && $0.hasSuffix(".train.lr") }, "train_lr", p.trainLR != nil),
            ({ $0.hasPrefix("repel.") && $0.hasSuffix(".warmup_epochs") }, "repel_warmup_epochs / repel_warmup_steps",
             p.repelWarmupEpochs != nil || p.repelWarmupSteps != nil),
        ]
        for assignment in overrides {
            let path = String(assignment.prefix { $0 != "=" })
            for k in profileKeys where k.present && k.set(path) {
                throw ConfigError(file: file, key: "--set \(path)", message: "profile '\(profile)' sets \(k.key) itself, which "
                    + "would overrule this override silently; set the profile's key instead (--set 'profiles.\(profile).\(k.key.components(separatedBy: " ").first!)=…')")
            }
        }
        var out = self
        if let nets = p.nets { out.nets = self.nets.filter { nets.contains($0.key) } }
        if let seeds = p.seeds { out.seeds = seeds }
        if let bits = p.bits { out.bits = bits }
        if let stes = p.stes { out.stes = stes.compactMap(STE.init(rawValue:)) }
        for key in out.nets.keys {
            if let e = p.pretrainEpochs {
                let old = out.nets[key]!.pretrain.epochs
                out.nets[key]!.pretrain.epochs = e
                out.nets[key]!.pretrain.schedule = out.nets[key]!.pretrain.schedule.rescaled(from: old, to: e)
            }
            if let e = p.trainEpochs {
                let old = out.nets[key]!.train.epochs
                out.nets[key]!.train.epochs = e
                out.nets[key]!.train.schedule = out.nets[key]!.train.schedule.rescaled(from: old, to: e)
            }
            if let lr = p.trainLR { out.nets[key]!.train.lr = lr }
        }
        for i in out.repel.indices {
            if let n = p.repelNet { out.repel[i].net = n }
            if let e = p.repelWarmupEpochs { out.repel[i].warmupEpochs = e }
            if let steps = p.repelWarmupSteps, let net = out.nets[out.repel[i].net] {
                out.repel[i].warmupEpochs = epochs(ofSteps: steps, net: net, trainSubset: p.trainSubset)
            }
        }
        out.repelControls = p.repelControls == true
        out.profiles = [profile: p]
        return out
    }

    /// Whole epochs nearest to `steps` optimizer steps of `net`'s quantized phase (a partial last batch is a step).
    public func epochs(ofSteps steps: Int, net: NetSpec, trainSubset: Int?) -> Int {
        let images = min(trainSubset ?? Int.max, datasetDescriptor(net.dataset)?.trainImages ?? Int.max)
        let perEpoch = (images + net.train.batchSize - 1) / net.train.batchSize
        return max(1, Int((Double(steps) / Double(perEpoch)).rounded()))
    }
}

/// `key.path=value` applied to a YAML tree: every mapping on the path must exist (a typo is an error naming the
/// known keys); the last key may be new (the parser then checks it as it checks the file). The value is YAML.
func applyOverride(_ assignment: String, to root: Any?, file: String, source: String) throws -> Any? {
    guard let eq = assignment.firstIndex(of: "="), eq != assignment.startIndex else {
        throw ConfigError(file: file, key: source, message: "'\(assignment)' is not key.path=value")
    }
    let path = assignment[..<eq].split(separator: ".").map(String.init)
    let text = String(assignment[assignment.index(after: eq)...])
    let value: Any?
    do { value = try loadStrictYAML(text, file: file) } catch let e as YAMLConfigError {
        throw ConfigError(file: file, key: source, message: "'\(text)' is not a YAML value: \(e.message)")
    }
    func set(_ node: Any?, _ rest: ArraySlice<String>, _ done: [String]) throws -> Any? {
        guard let key = rest.first else { return value }
        guard var dict = node as? [String: Any] else {
            throw ConfigError(file: file, key: source, message: "'\(done.joined(separator: "."))' is not a mapping, so '\(assignment)' cannot set a key in it")
        }
        if rest.count > 1 && dict[key] == nil {
            throw ConfigError(file: file, key: source, message: "no key '\((done + [key]).joined(separator: "."))' in the file (known at that level: \(dict.keys.sorted().joined(separator: ", ")))")
        }
        dict[key] = try set(dict[key], rest.dropFirst(), done + [key])
        return dict
    }
    return try set(root, path[...], [])
}

/// The folder of an override set: `set-` and the assignments, `=` as `-`, joined by `+`, other characters dropped.
public func overrideFolder(_ overrides: [String]) -> String {
    let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")
    return "set-" + overrides.map { String($0.replacingOccurrences(of: "=", with: "-").filter { allowed.contains($0) }) }
        .joined(separator: "+")
}
