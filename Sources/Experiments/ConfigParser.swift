// Reading experiments/*.yaml into the typed grid (ExperimentConfig.swift): every key checked against the keys it may
// have, every value against its type and range, and every error naming the file and the key path.
import Datasets
import Foundation
import NN
import Kernels
import Harness

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
