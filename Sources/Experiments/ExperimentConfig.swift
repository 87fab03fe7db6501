// The experiment grid as data: experiments/table1.yaml decoded into typed, validated structs.
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

/// Strict YAML → struct conversion with key-naming errors.
/// Typed reads of a parsed YAML tree; every error names the file and the key path (also used by the Slurm settings).
public struct ConfigParser {
    public let file: String
    public init(file: String) { self.file = file }

    public func fail(_ key: String, _ message: String) -> ConfigError { ConfigError(file: file, key: key, message: message) }

    public func map(_ value: Any?, _ key: String, allowed: [String], required: [String]) throws -> [String: Any] {
        guard let dict = value as? [String: Any] else { throw fail(key, "expected a mapping") }
        for k in dict.keys where !allowed.contains(k) {
            throw fail(key.isEmpty ? k : "\(key).\(k)", "unknown key (allowed: \(allowed.joined(separator: ", ")))")
        }
        for k in required where dict[k] == nil { throw fail(key.isEmpty ? k : "\(key).\(k)", "missing") }
        return dict
    }

    public func int(_ v: Any?, _ key: String, positive: Bool = true) throws -> Int {
        guard let i = v as? Int else { throw fail(key, "expected an integer, found \(String(describing: v ?? "nothing"))") }
        if positive && i <= 0 { throw fail(key, "must be positive, found \(i)") }
        return i
    }

    public func double(_ v: Any?, _ key: String) throws -> Double {
        if let d = v as? Double { return d }
        if let i = v as? Int { return Double(i) }
        throw fail(key, "expected a number, found \(String(describing: v ?? "nothing"))")
    }

    public func string(_ v: Any?, _ key: String) throws -> String {
        guard let s = v as? String else { throw fail(key, "expected a string") }
        return s
    }

    public func bits(_ v: Any?, _ key: String) throws -> Int {
        let b = try int(v, key)
        guard (1...8).contains(b) else { throw fail(key, "bits must be in 1...8, found \(b)") }
        return b
    }

    public func ste(_ v: Any?, _ key: String) throws -> STE {
        let s = try string(v, key)
        guard let rule = STE(rawValue: s) else {
            throw fail(key, "unknown STE '\(s)' (known: \(STE.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return rule
    }

    public func list(_ v: Any?, _ key: String) throws -> [Any] {
        guard let l = v as? [Any], !l.isEmpty else { throw fail(key, "expected a non-empty list") }
        return l
    }

    public func parseExperiment(_ root: Any?) throws -> ExperimentConfig {
        let top = try map(root, "", allowed: ["experiment", "reference", "seeds", "bits", "stes", "quantizer", "nets",
            "repel", "profiles", "results", "claims", "paper_metric"], required: ["experiment", "seeds", "bits", "stes", "quantizer", "nets"])
        let reference = try top["reference"].map { try string($0, "reference") }
        if let reference, !FileManager.default.fileExists(atPath: reference) {
            throw fail("reference", "file '\(reference)' does not exist")
        }
        let seeds = try list(top["seeds"], "seeds").enumerated().map { try int($1, "seeds[\($0)]", positive: false) }
        let bits = try list(top["bits"], "bits").enumerated().map { try self.bits($1, "bits[\($0)]") }
        let stes = try list(top["stes"], "stes").enumerated().map { try ste($1, "stes[\($0)]") }
        let q = try map(top["quantizer"], "quantizer", allowed: ["rounding", "alpha"], required: ["rounding", "alpha"])
        let roundingName = try string(q["rounding"], "quantizer.rounding")
        guard let rounding = Rounding(rawValue: roundingName) else {
            throw fail("quantizer.rounding", "unknown rounding '\(roundingName)' (known: ceil, nearest)")
        }
        let alpha = try parseAlpha(q["alpha"], bits: bits)
        let netsMap = try map(top["nets"], "nets", allowed: networkNames, required: [])
        var nets: [String: NetSpec] = [:]
        for (name, value) in netsMap { nets[name] = try parseNet(name, value) }
        guard !nets.isEmpty else { throw fail("nets", "no nets given") }
        let repel = try parseRepel(top["repel"], nets: nets)
        var profiles: [String: ProfileSpec] = [:]
        if let p = top["profiles"] {
            let pm = try map(p, "profiles", allowed: Array(((p as? [String: Any]) ?? [:]).keys), required: [])
            for (name, value) in pm {
                guard name != "paper" else { throw fail("profiles.paper", "'paper' is the unmodified protocol") }
                profiles[name] = try parseProfile("profiles.\(name)", value, nets: nets)
            }
        }
        let paperMetric = try top["paper_metric"].map { try string($0, "paper_metric") } ?? "final-epoch"
        guard ["best-epoch", "final-epoch"].contains(paperMetric) else {
            throw fail("paper_metric", "unknown metric '\(paperMetric)' (known: best-epoch, final-epoch)")
        }
        var config = ExperimentConfig(file: file, experiment: try string(top["experiment"], "experiment"),
            reference: reference, seeds: seeds, bits: bits, stes: stes, rounding: rounding, alpha: alpha,
            nets: nets, repel: repel, profiles: profiles,
            results: try top["results"].map { try string($0, "results") } ?? "results",
            claims: try top["claims"].map { path in
                let p = try string(path, "claims")
                guard FileManager.default.fileExists(atPath: p) else { throw fail("claims", "file '\(p)' does not exist") }
                return p
            })
        config.paperMetric = paperMetric
        return config
    }

    /// quantizer.alpha: a mapping bits → α (one for every bit width of the grid), or "fit" (nil).
    func parseAlpha(_ value: Any?, bits: [Int]) throws -> [Int: Float]? {
        if let s = value as? String {
            guard s == "fit" else { throw fail("quantizer.alpha", "expected a mapping bits → α or 'fit'") }
            return nil
        } else {
            guard let a = value as? [AnyHashable: Any] else {
                throw fail("quantizer.alpha", "expected a mapping bits → α or 'fit'")
            }
            var table: [Int: Float] = [:]
            for (k, v) in a {
                let b = try self.bits(k as? Int ?? Int("\(k)"), "quantizer.alpha.\(k)")
                let value = try double(v, "quantizer.alpha.\(k)")
                guard value > 0 else { throw fail("quantizer.alpha.\(k)", "α must be positive") }
                table[b] = Float(value)
            }
            for b in bits where table[b] == nil { throw fail("quantizer.alpha", "no α for \(b) bits") }
            return table
        }
    }

    /// repel: name → experiment (Fig. 2, Appendix C), each on a net of the grid, never starting from its own STE's
    /// minimum, and no two sharing a run id.
    func parseRepel(_ value: Any?, nets: [String: NetSpec]) throws -> [RepelSpec] {
        var repel: [RepelSpec] = []
        if let r = value {
            guard let entries = r as? [String: Any] else { throw fail("repel", "expected a mapping name → experiment") }
            for name in entries.keys.sorted() {
                let key = "repel.\(name)"
                let m = try map(entries[name], key, allowed: ["title", "net", "bits", "ste", "from", "warmup_epochs",
                    "warmup_lr", "then_normal_schedule"], required: ["title", "net", "bits", "ste", "from",
                    "warmup_epochs", "warmup_lr", "then_normal_schedule"])
                let net = try string(m["net"], "\(key).net")
                guard nets[net] != nil else { throw fail("\(key).net", "unknown net '\(net)'") }
                guard let then = m["then_normal_schedule"] as? Bool else {
                    throw fail("\(key).then_normal_schedule", "expected true or false")
                }
                let spec = RepelSpec(name: name, title: try string(m["title"], "\(key).title"), net: net,
                    bits: try self.bits(m["bits"], "\(key).bits"), ste: try ste(m["ste"], "\(key).ste"),
                    from: try list(m["from"], "\(key).from").enumerated().map { try ste($1, "\(key).from[\($0)]") },
                    warmupEpochs: try int(m["warmup_epochs"], "\(key).warmup_epochs"),
                    warmupLR: try double(m["warmup_lr"], "\(key).warmup_lr"), thenNormalSchedule: then)
                for from in spec.from where from == spec.ste {
                    throw fail("\(key).from", "starts from the \(from.rawValue) minimum with the same STE: nothing to repel")
                }
                // Run ids name (net, bits, STE, from STE): two experiments may not share one.
                for other in repel where other.net == spec.net && other.bits == spec.bits && other.ste == spec.ste {
                    if let shared = other.from.first(where: spec.from.contains) {
                        throw fail("\(key).from", "\(spec.net) \(spec.bits)-bit \(spec.ste.rawValue) from \(shared.rawValue) is already run by repel.\(other.name)")
                    }
                }
                repel.append(spec)
            }
        }
        return repel
    }

    public func parseNet(_ name: String, _ value: Any) throws -> NetSpec {
        let key = "nets.\(name)"
        let m = try map(value, key, allowed: ["dataset", "data", "augment", "normalize", "eval_batch_size", "pretrain",
            "train", "pad_to"], required: ["dataset", "data", "augment", "normalize", "pretrain", "train"])
        let dataset = try string(m["dataset"], "\(key).dataset")
        guard let stored = datasetDescriptor(dataset) else {
            throw fail("\(key).dataset", "unknown dataset '\(dataset)' (known: \(datasetRegistry.map(\.name).sorted().joined(separator: ", ")))")
        }
        let padTo = try m["pad_to"].map { try int($0, "\(key).pad_to") }
        if let padTo, padTo < stored.side || (padTo - stored.side) % 2 != 0 {
            throw fail("\(key).pad_to", "\(padTo) cannot pad \(stored.side)×\(stored.side) images evenly on every side")
        }
        if let side = netDescriptor(name)?.inputSide, side != (padTo ?? stored.side) {
            let fix = side == stored.side ? "remove pad_to" : side > stored.side ? "set pad_to: \(side)" : "use another net"
            throw fail("\(key).pad_to", "\(name) takes \(side)×\(side) images and \(dataset)'s are "
                + "\(stored.side)×\(stored.side)" + (padTo.map { ", padded to \($0)×\($0)" } ?? "") + ": \(fix)")
        }
        guard let augment = m["augment"] as? Bool else { throw fail("\(key).augment", "expected true or false") }
        let norm = try map(m["normalize"], "\(key).normalize", allowed: ["mean", "std"], required: ["mean", "std"])
        let mean = try list(norm["mean"], "\(key).normalize.mean").map { try double($0, "\(key).normalize.mean") }
        let std = try list(norm["std"], "\(key).normalize.std").map { try double($0, "\(key).normalize.std") }
        let channels = stored.channels
        guard mean.count == channels, std.count == channels, std.allSatisfy({ $0 > 0 }) else {
            throw fail("\(key).normalize", "need \(channels) mean and \(channels) positive std values for \(dataset)")
        }
        return NetSpec(name: name, dataset: dataset, data: try string(m["data"], "\(key).data"), augment: augment,
            mean: mean, std: std,
            evalBatchSize: try m["eval_batch_size"].map { try int($0, "\(key).eval_batch_size") } ?? 1000,
            pretrain: try parsePhase("\(key).pretrain", m["pretrain"]),
            train: try parsePhase("\(key).train", m["train"]), padTo: padTo)
    }

    public func parsePhase(_ key: String, _ value: Any?) throws -> PhaseSpec {
        let m = try map(value, key, allowed: ["epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay",
            "schedule"], required: ["epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "schedule"])
        let optimizer = try string(m["optimizer"], "\(key).optimizer")
        guard ["sgd", "adam"].contains(optimizer) else {
            throw fail("\(key).optimizer", "unknown optimizer '\(optimizer)' (known: sgd, adam)")
        }
        let lr = try double(m["lr"], "\(key).lr")
        guard lr > 0 else { throw fail("\(key).lr", "must be positive") }
        let s = try map(m["schedule"], "\(key).schedule", allowed: ["kind", "milestones", "gamma"], required: ["kind"])
        let kind = try string(s["kind"], "\(key).schedule.kind")
        guard ["constant", "multistep", "cosine"].contains(kind) else {
            throw fail("\(key).schedule.kind", "unknown schedule '\(kind)' (known: constant, multistep, cosine)")
        }
        // Milestones are epochs (integers ≥ 1, as the paper's Table 2 gives them) or fractions in (0, 1).
        let epochs = try int(m["epochs"], "\(key).epochs")
        let raw = s["milestones"] as? [Any] ?? []
        var milestones: [Double] = []
        var milestoneEpochs: [Int]? = nil
        if raw.contains(where: { $0 is Int }) {
            milestoneEpochs = try raw.enumerated().map { i, v in
                guard let e = v as? Int, e >= 1, e < epochs else {
                    throw fail("\(key).schedule.milestones[\(i)]", "mixes epochs and fractions, or an epoch outside 1..<\(epochs) (\(v)): give epochs (integers) or fractions in (0, 1); "
                        + "to change \(key).epochs, set its milestones with it (--set '\(key).schedule.milestones=[0.4,0.8]': fractions scale with the epochs), or use a profile's train_epochs / pretrain_epochs, which rescale them")
                }
                return e
            }
        } else {
            milestones = try raw.enumerated().map { try double($1, "\(key).schedule.milestones[\($0)]") }
            for (i, f) in milestones.enumerated() where !(f > 0 && f < 1) {
                throw fail("\(key).schedule.milestones[\(i)]", "a milestone is an epoch (an integer) or a fraction of the epochs in (0, 1), found \(f)")
            }
        }
        return PhaseSpec(epochs: epochs,
            batchSize: try int(m["batch_size"], "\(key).batch_size"), optimizer: optimizer, lr: lr,
            momentum: try double(m["momentum"], "\(key).momentum"),
            weightDecay: try double(m["weight_decay"], "\(key).weight_decay"),
            schedule: ScheduleSpec(kind: kind, milestones: milestones,
                gamma: try s["gamma"].map { try double($0, "\(key).schedule.gamma") } ?? 0.1,
                milestoneEpochs: milestoneEpochs))
    }

    public func parseProfile(_ key: String, _ value: Any, nets: [String: NetSpec]) throws -> ProfileSpec {
        let m = try map(value, key, allowed: ["ablation", "about", "set", "nets", "seeds", "bits", "stes", "train_subset", "test_subset",
            "pretrain_epochs", "train_epochs", "repel_net", "repel_warmup_epochs", "lenet5_widths", "train_lr",
            "train_subset_balanced", "repel_warmup_steps", "repel_controls", "resume_from_committed", "criteria"], required: [])
        func flag(_ name: String) throws -> Bool? {
            guard let v = m[name] else { return nil }
            guard let b = v as? Bool else { throw fail("\(key).\(name)", "expected true or false") }
            return b
        }
        var p = ProfileSpec()
        p.ablation = try m["ablation"].map { try string($0, "\(key).ablation") }
        p.about = try m["about"].map { try string($0, "\(key).about") }
        if let v = m["nets"] {
            p.nets = try list(v, "\(key).nets").enumerated().map { i, n in
                let s = try string(n, "\(key).nets[\(i)]")
                guard nets[s] != nil else { throw fail("\(key).nets[\(i)]", "unknown net '\(s)'") }
                return s
            }
        }
        if let v = m["seeds"] { p.seeds = try list(v, "\(key).seeds").map { try int($0, "\(key).seeds", positive: false) } }
        if let v = m["bits"] { p.bits = try list(v, "\(key).bits").map { try bits($0, "\(key).bits") } }
        if let v = m["stes"] { p.stes = try list(v, "\(key).stes").map { try ste($0, "\(key).stes").rawValue } }
        p.trainSubset = try m["train_subset"].map { try int($0, "\(key).train_subset") }
        p.testSubset = try m["test_subset"].map { try int($0, "\(key).test_subset") }
        p.pretrainEpochs = try m["pretrain_epochs"].map { try int($0, "\(key).pretrain_epochs") }
        p.trainEpochs = try m["train_epochs"].map { try int($0, "\(key).train_epochs") }
        if let v = m["repel_net"] {
            let s = try string(v, "\(key).repel_net")
            guard nets[s] != nil else { throw fail("\(key).repel_net", "unknown net '\(s)'") }
            p.repelNet = s
        }
        p.repelWarmupEpochs = try m["repel_warmup_epochs"].map { try int($0, "\(key).repel_warmup_epochs") }
        p.repelWarmupSteps = try m["repel_warmup_steps"].map { try int($0, "\(key).repel_warmup_steps") }
        if p.repelWarmupSteps != nil && p.repelWarmupEpochs != nil {
            throw fail("\(key).repel_warmup_steps", "give the low-LR phase in steps or in epochs (repel_warmup_epochs), not both")
        }
        p.trainSubsetBalanced = try flag("train_subset_balanced")
        if p.trainSubsetBalanced == true && p.trainSubset == nil {
            throw fail("\(key).train_subset_balanced", "needs train_subset (the size of the balanced subset)")
        }
        p.repelControls = try flag("repel_controls")
        p.resumeFromCommitted = try flag("resume_from_committed")
        if let v = m["criteria"] {
            let path = try string(v, "\(key).criteria")
            guard FileManager.default.fileExists(atPath: path) else { throw fail("\(key).criteria", "file '\(path)' does not exist") }
            p.criteria = path
        }
        if let v = m["train_lr"] {
            let lr = try double(v, "\(key).train_lr")
            guard lr > 0 else { throw fail("\(key).train_lr", "must be positive, found \(lr)") }
            p.trainLR = lr
        }
        if let v = m["lenet5_widths"] {
            let w = try list(v, "\(key).lenet5_widths").map { try int($0, "\(key).lenet5_widths") }
            guard w.count == 4 || w.count == 3 else {
                throw fail("\(key).lenet5_widths", "expected 4 widths (conv1, conv2, fc1, fc2: the classic layout) or 3 (conv1, conv2, fc1: the Caffe layout), got \(w.count)")
            }
            p.lenet5Widths = w
        }
        return p
    }
}
