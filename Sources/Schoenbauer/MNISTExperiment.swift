// Schoenbauer, Moro, Lew & Howard 2024, "Custom Gradient Estimators are Straight-Through Estimators in Disguise"
// (arXiv 2405.05171): the MNIST experiment, rebuilt on the setup of the authors' experiment files (a strong
// inference that they are the paper's). Per seed, runs of the small ConvNet (ConvNet.swift) with its convolution
// kernels quantized (He-uniform quantizer, Quantizer.swift) are compared pairwise:
//   SGD with momentum:  Default   DSQ (η, w₀)  vs  STE with learning-rate factor α and init M(w₀)
//                       No warp   DSQ (η, w₀)  vs  STE (η, w₀)                   (the files' "no warp" control)
//                       Jitter    DSQ (η, w₀)  vs  DSQ (η·(1+j), w₀)             (the noise floor)
//                       Scaledown the Default pair at η·s for 1/s times the steps (the η → 0 check), with its own
//                                 Jitter floor at η·s
//   Adam, per β₂:       Default   DSQ (η, w₀)  vs  STE (η, w₀)  (Adam needs no map), Jitter and Scaledown as above.
// Learning rate: linear warm-up from 0, then cosine decay to 0. Metrics on the convolution kernels at the end:
// quantized-weight agreement, exact and compressed change-point-sequence agreement, average change-point error,
// weight-alignment error over distance travelled; and inference agreement on the test set.
// Departures from the files, each a choice where they are silent or a deliberate fix:
// - the STE's slope α is applied as a learning-rate factor on the kernels (equivalent under SGD with momentum);
//   the files as read pass α through a misspelt config key, so their STE may have run at slope 1 — we follow the
//   rule as stated;
// - DSQ sharpness, learning rates, steps, batch size, warm-up fraction, jitter and scaledown factors are not in
//   the files (their config is missing): the config states ours;
// - the files' SGD applies the schedule with a positive sign (optax.scale_by_schedule), so it ascends unless the
//   configured rate is negative; we descend;
// - conv biases stay float (whether the files quantize them is not visible); dense kernels N(0, 1/fan_in);
// - validation-curve correlations are not computed (only end-of-run metrics and the training-loss curves).
// Claims are judged against the Jitter floor and η-trends over seeds (see `schoenbauerClaims`).
import Dispatch
import Foundation
import Datasets
import Kernels
import NN
import Harness
import Storage
import Training

struct SGDSetup: Codable {
    var lr: Double
    var momentum: Double
    /// Learning-rate factors s < 1 of the Scaledown pairs; each runs 1/s times the steps.
    var scaledown: [Double]
    /// The unmapped STE (the "no warp" control) at every scaled-down η too, not only at the base η.
    var controlsAtEveryStep: Bool?

    enum CodingKeys: String, CodingKey {
        case lr, momentum, scaledown
        case controlsAtEveryStep = "controls_at_every_step"
    }
}

struct AdamSetup: Codable {
    var lr: Double
    var beta1: Double
    var beta2: [Double]
    var epsilon: Double
    var scaledown: [Double]
}

struct SchoenbauerMNISTConfig: Codable {
    var seeds: [UInt64]
    var data: String
    var trainImages: Int
    var testImages: Int
    var batchSize: Int
    /// Steps of a run at scale 1 (a Scaledown run at factor s runs steps/s).
    var steps: Int
    var warmupFraction: Double
    var bits: Int
    var estimator: EstimatorConfig
    /// j of the Jitter control: the custom estimator against itself at η·(1 + j).
    var jitter: Double
    /// Further perturbations j of a Jitter sweep at every SGD η (with `jitter`): where the mapped STE's disagreement
    /// falls among them is its Jitter-equivalent perturbation j*.
    var jitterSweep: [Double]?
    var sgd: SGDSetup?
    var adam: AdamSetup?
    var mapCells: Int
    /// Points of each run's training-loss curve.
    var curvePoints: Int

    enum CodingKeys: String, CodingKey {
        case seeds, data, steps, bits, estimator, jitter, sgd, adam
        case jitterSweep = "jitter_sweep"
        case trainImages = "train_images", testImages = "test_images", batchSize = "batch_size"
        case warmupFraction = "warmup_fraction", mapCells = "map_cells", curvePoints = "curve_points"
    }
}

/// One training run of the ConvNet with quantized kernels.
struct RunSpec: Hashable {
    var optimizer: String  // "sgd" | "adam"
    var beta2: Double  // Adam only
    var custom: Bool  // DSQ, else the STE
    var mapped: Bool  // STE with factor α and init M(w₀)
    var lrFactor: Double  // 1, 1 + j or s
    var stepsFactor: Double  // 1 or 1/s
    var seed: UInt64

    var label: String {
        (custom ? "dsq" : mapped ? "ste-mapped" : "ste") + " \(optimizer)" + (optimizer == "adam" ? " β₂=\(beta2)" : "")
            + " η×\(fmt(lrFactor)) steps×\(fmt(stepsFactor)) seed \(seed)"
    }
}

/// A change of a weight's quantized value: the step after which it holds `bin`.
struct ChangePoint: Equatable {
    var step: Int32
    var bin: Int16
}

/// What a run leaves for the comparisons.
struct RunRecord {
    var latents: [Float]
    /// Per kernel weight, its quantized-value history: (0, initial bin), then every change.
    var changes: [[ChangePoint]]
    /// Σ over steps and kernel weights of |Δw| / m (m the tensor's range).
    var distance: Double
    var predictions: [UInt8]
    var accuracy: Double
    var lossCurve: [Double]
    var steps: Int
    var seconds: Double
}

/// The learning rate at step t (counting from 0) of a run of `total` steps: linear warm-up from 0 over the first
/// `warmup` steps, then cosine decay to 0 (optax.join_schedules of linear_schedule and cosine_decay_schedule).
func warmupCosineRate(step t: Int, total: Int, warmup: Int, peak: Double) -> Double {
    if t < warmup { return peak * Double(t) / Double(warmup) }
    let decay = max(total - warmup, 1)
    let progress = min(Double(t - warmup), Double(decay)) / Double(decay)
    return peak * 0.5 * (1 + cos(Double.pi * progress))
}

/// A–B–A–B oscillations removed from a change-point sequence (the files' stack rule): whenever the last four
/// entries alternate between two values, the middle two are dropped.
func compressedChangePoints(_ sequence: [ChangePoint]) -> [ChangePoint] {
    var stack: [ChangePoint] = []
    for c in sequence {
        stack.append(c)
        while stack.count >= 4, stack[stack.count - 1].bin == stack[stack.count - 3].bin,
            stack[stack.count - 2].bin == stack[stack.count - 4].bin
        {
            let last = stack.removeLast()
            stack.removeLast(2)
            stack.append(last)
        }
    }
    return stack
}

/// The metrics of one pair (reference a: the custom estimator at η; x: the other run).
struct PairMetrics {
    var weightAgreement: Double
    var changePointAgreement: Double
    var compressedAgreement: Double
    /// Mean |step_a − step_x| over the change points of the weights whose sequences agree exactly (NaN if none moved).
    var changePointError: Double
    var alignmentError: Double
    var inferenceAgreement: Double
    var accuracyA: Double, accuracyX: Double

    static let names = ["weight_agreement", "change_point_agreement", "compressed_change_point_agreement",
        "change_point_error", "alignment_error", "inference_agreement", "accuracy_a", "accuracy_x"]
    var values: [Double] {
        [weightAgreement, changePointAgreement, compressedAgreement, changePointError, alignmentError,
            inferenceAgreement, accuracyA, accuracyX]
    }

    init(_ a: RunRecord, _ x: RunRecord, quantizers: [WeightQuantizer], tensorOf: [Int], map: EquivalenceMap?) {
        let n = a.latents.count
        var same = 0, exact = 0, compressed = 0, exactPoints = 0, stepError = 0.0, aligned = 0.0
        for i in 0..<n {
            let q = quantizers[tensorOf[i]]
            let (ua, ux) = (Double(a.latents[i]), Double(x.latents[i]))
            if q.bin(ua) == q.bin(ux) { same += 1 }
            aligned += abs((map?.map(ua, q) ?? ua) - ux) / q.upper
            let (sa, sx) = (a.changes[i], x.changes[i])
            if sa.count == sx.count && zip(sa, sx).allSatisfy({ $0.bin == $1.bin }) {
                exact += 1
                exactPoints += sa.count - 1
                for (p, r) in zip(sa.dropFirst(), sx.dropFirst()) { stepError += Double(abs(p.step - r.step)) }
            }
            let (ca, cx) = (compressedChangePoints(sa), compressedChangePoints(sx))
            if ca.count == cx.count && zip(ca, cx).allSatisfy({ $0.bin == $1.bin }) { compressed += 1 }
        }
        weightAgreement = Double(same) / Double(n)
        changePointAgreement = Double(exact) / Double(n)
        compressedAgreement = Double(compressed) / Double(n)
        changePointError = exactPoints == 0 ? .nan : stepError / Double(exactPoints)
        alignmentError = x.distance > 0 ? aligned / x.distance : .nan
        inferenceAgreement = Double(zip(a.predictions, x.predictions).filter { $0 == $1 }.count) / Double(a.predictions.count)
        accuracyA = a.accuracy
        accuracyX = x.accuracy
    }
}

/// Trains one run; returns its record.
func trainSchoenbauerRun(_ spec: RunSpec, _ c: SchoenbauerMNISTConfig, estimator: WeightEstimator, map: EquivalenceMap,
    train: Batcher, test: Batcher) -> RunRecord
{
    let start = DispatchTime.now()
    let network = makeSchoenbauerConvNet(seed: spec.seed)
    let wq = WeightQuantization(network: network, bits: c.bits, estimator: spec.custom ? estimator : .ste)
    if spec.mapped { wq.transformLatents { map.map($0, $1) } }
    let (peak, optimizers) = runOptimizers(spec, c, wq, latentFactor: spec.mapped ? map.alpha : 1)
    let total = Int((Double(c.steps) * spec.stepsFactor).rounded())
    let warmup = Int((c.warmupFraction * Double(total)).rounded())
    let ranges = wq.entries.map { Float($0.quantizer.upper) }
    var bins: [Int32] = [], newBins: [Int32] = []
    wq.bins(into: &bins)
    var changes = bins.map { [ChangePoint(step: 0, bin: Int16($0))] }
    var previous: [Float] = [], current: [Float] = []
    wq.latents(into: &previous)
    let tensorOf = wq.tensorIndexPerWeight()
    var distance = 0.0
    var curve: [Double] = [], chunkLoss = 0.0, chunkCount = 0
    let chunk = max(1, total / max(1, c.curvePoints))
    for t in 0..<total {
        let rate = warmupCosineRate(step: t, total: total, warmup: warmup, peak: peak)
        for (o, factor) in optimizers { o.learningRate = rate * factor }
        let batch = train.batch(epoch: t / train.batchesPerEpoch, index: t % train.batchesPerEpoch)
        wq.quantizeIntoNetwork()
        wq.zeroGrad(network)
        let logits = network.forward(batch.x, training: true)
        let dlogits = Tensor(zeros: logits.shape)
        let (loss, _) = batch.labels.withUnsafeBufferPointer {
            softmaxCrossEntropy(logits: logits.readBuffer, labels: $0, batch: batch.count, classes: 10, dlogits: dlogits.buffer)
        }
        network.backward(dlogits)
        wq.accumulateLatentGradients()
        for (o, _) in optimizers { o.step() }
        // Change points and distance travelled on the kernels.
        wq.bins(into: &newBins)
        wq.latents(into: &current)
        var moved = 0.0
        for i in 0..<newBins.count {
            if newBins[i] != bins[i] { changes[i].append(ChangePoint(step: Int32(t + 1), bin: Int16(newBins[i]))) }
            moved += Double(abs(current[i] - previous[i]) / ranges[tensorOf[i]])
        }
        distance += moved
        swap(&bins, &newBins)
        swap(&previous, &current)
        chunkLoss += Double(loss)
        chunkCount += 1
        if chunkCount == chunk || t == total - 1 {
            curve.append(chunkLoss / Double(chunkCount))
            (chunkLoss, chunkCount) = (0, 0)
        }
    }
    // Test predictions with the quantized kernels.
    wq.quantizeIntoNetwork()
    let (predictions, correct) = testPredictions(network, test)
    var latents: [Float] = []
    wq.latents(into: &latents)
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    return RunRecord(latents: latents, changes: changes, distance: distance, predictions: predictions,
        accuracy: 100 * Double(correct) / Double(predictions.count), lossCurve: curve, steps: total, seconds: seconds)
}

/// The run's peak learning rate and its two optimizers, each with its rate factor: the quantized kernels' latent
/// weights (factor α for the mapped STE) and the float parameters.
private func runOptimizers(_ spec: RunSpec, _ c: SchoenbauerMNISTConfig, _ wq: WeightQuantization, latentFactor: Double)
    -> (peak: Double, optimizers: [(Optimizer, Double)])
{
    if spec.optimizer == "sgd", let s = c.sgd {
        return (s.lr * spec.lrFactor, [
            (SGD(parameters: wq.latentParameters, learningRate: 0, momentum: s.momentum, weightDecay: 0), latentFactor),
            (SGD(parameters: wq.floatParameters, learningRate: 0, momentum: s.momentum, weightDecay: 0), 1),
        ])
    }
    let a = c.adam!
    return (a.lr * spec.lrFactor, [
        (Adam(parameters: wq.latentParameters, learningRate: 0, beta1: a.beta1, beta2: spec.beta2, epsilon: a.epsilon), latentFactor),
        (Adam(parameters: wq.floatParameters, learningRate: 0, beta1: a.beta1, beta2: spec.beta2, epsilon: a.epsilon), 1),
    ])
}

/// The predicted class of every test image (eval mode) and how many are right.
private func testPredictions(_ network: Network, _ test: Batcher) -> (predictions: [UInt8], correct: Int) {
    var predictions: [UInt8] = [], correct = 0
    for i in 0..<test.batchesPerEpoch {
        let b = test.batch(epoch: 0, index: i)
        let logits = network.forward(b.x, training: false)
        for r in 0..<b.count {
            let row = logits.pointer + r * 10
            var best = 0
            for k in 1..<10 where row[k] > row[best] { best = k }
            predictions.append(UInt8(best))
            if best == Int(b.labels[r]) { correct += 1 }
        }
    }
    return (predictions, correct)
}

/// The names of the comparisons in result files ("<family>/<name>/<metric>") at step scale f (1: the base η).
enum PairName {
    /// The STE under test (mapped, under SGD) against DSQ: "default", "scaledown-0.5".
    static func ste(_ f: Double) -> String { f == 1 ? "default" : "scaledown-\(fmt(f))" }
    /// The unmapped STE against DSQ (SGD's "no warp" control): "no-warp", "no-warp-0.5".
    static func unmapped(_ f: Double) -> String { f == 1 ? "no-warp" : "no-warp-\(fmt(f))" }
    /// DSQ against DSQ at η·s·(1 + j), the config's `jitter` without a suffix: "jitter", "jitter-0.5", "jitter-j0.1",
    /// "jitter-0.5-j0.1".
    static func jitter(_ f: Double, j: Double? = nil) -> String {
        (f == 1 ? "jitter" : "jitter-\(fmt(f))") + (j.map { "-j\(fmt($0))" } ?? "")
    }
}

/// A named comparison: the reference run (DSQ at η) and the other run.
struct Comparison {
    var family: String  // "sgd" or "adam-b0.95"
    var name: String  // "default", "no-warp", "jitter", "scaledown-0.5"
    var lrScale: Double  // the η of the pair relative to the family's η
    var reference: RunSpec
    var other: RunSpec
    var mapped: Bool { other.mapped }
}

func comparisons(_ c: SchoenbauerMNISTConfig, seed: UInt64) -> [Comparison] {
    var out: [Comparison] = []
    func spec(_ opt: String, _ beta2: Double, custom: Bool, mapped: Bool = false, lr: Double = 1, steps: Double = 1) -> RunSpec {
        RunSpec(optimizer: opt, beta2: beta2, custom: custom, mapped: mapped, lrFactor: lr, stepsFactor: steps, seed: seed)
    }
    if let s = c.sgd {
        let a = spec("sgd", 0, custom: true)
        out.append(Comparison(family: "sgd", name: PairName.ste(1), lrScale: 1, reference: a, other: spec("sgd", 0, custom: false, mapped: true)))
        out.append(Comparison(family: "sgd", name: PairName.unmapped(1), lrScale: 1, reference: a, other: spec("sgd", 0, custom: false)))
        out.append(Comparison(family: "sgd", name: PairName.jitter(1), lrScale: 1, reference: a, other: spec("sgd", 0, custom: true, lr: 1 + c.jitter)))
        for j in c.jitterSweep ?? [] {
            out.append(Comparison(family: "sgd", name: PairName.jitter(1, j: j), lrScale: 1, reference: a,
                other: spec("sgd", 0, custom: true, lr: 1 + j)))
        }
        for f in s.scaledown {
            let reference = spec("sgd", 0, custom: true, lr: f, steps: 1 / f)
            out.append(Comparison(family: "sgd", name: PairName.ste(f), lrScale: f, reference: reference,
                other: spec("sgd", 0, custom: false, mapped: true, lr: f, steps: 1 / f)))
            out.append(Comparison(family: "sgd", name: PairName.jitter(f), lrScale: f, reference: reference,
                other: spec("sgd", 0, custom: true, lr: f * (1 + c.jitter), steps: 1 / f)))
            if s.controlsAtEveryStep == true {
                out.append(Comparison(family: "sgd", name: PairName.unmapped(f), lrScale: f, reference: reference,
                    other: spec("sgd", 0, custom: false, lr: f, steps: 1 / f)))
            }
            for j in c.jitterSweep ?? [] {
                out.append(Comparison(family: "sgd", name: PairName.jitter(f, j: j), lrScale: f, reference: reference,
                    other: spec("sgd", 0, custom: true, lr: f * (1 + j), steps: 1 / f)))
            }
        }
    }
    if let ad = c.adam {
        for b2 in ad.beta2 {
            let family = "adam-b\(fmt(b2))"
            let a = spec("adam", b2, custom: true)
            out.append(Comparison(family: family, name: PairName.ste(1), lrScale: 1, reference: a, other: spec("adam", b2, custom: false)))
            out.append(Comparison(family: family, name: PairName.jitter(1), lrScale: 1, reference: a, other: spec("adam", b2, custom: true, lr: 1 + c.jitter)))
            for f in ad.scaledown {
                out.append(Comparison(family: family, name: PairName.ste(f), lrScale: f,
                    reference: spec("adam", b2, custom: true, lr: f, steps: 1 / f),
                    other: spec("adam", b2, custom: false, lr: f, steps: 1 / f)))
                out.append(Comparison(family: family, name: PairName.jitter(f), lrScale: f,
                    reference: spec("adam", b2, custom: true, lr: f, steps: 1 / f),
                    other: spec("adam", b2, custom: true, lr: f * (1 + c.jitter), steps: 1 / f)))
            }
        }
    }
    return out
}

@Sendable func runSchoenbauerMNIST(configPath: String, outPath: String, threads: Int) throws -> Double {
    try runSchoenbauerMNIST(configPath: configPath, outPath: outPath, threads: threads, rescoreFrom: [], seeds: nil)
}

/// The comparisons result files recorded (per seed), the first seed's loss curves and the files' run attributes:
/// what the claims, table and figures are computed from, so that they can be scored again without training. Several
/// files (the parts of one experiment, each trained with `--seeds`) merge into one record when they share the code
/// version that trained them, their comparisons, and no seed.
struct RecordedComparisons {
    /// Per seed: "<family>/<comparison>/<metric>" → value.
    var perSeed: [Int: [String: Double]] = [:]
    /// Per file, its first seed and that seed's loss curves.
    var curvesBySeed: [Int: [String: [Double]]] = [:]
    var runCount = 0
    var runSeconds = 0.0
    var trainedBy = ""

    var seeds: [Int] { perSeed.keys.sorted() }

    init(files: [String]) throws {
        var keys: Set<String>? = nil
        for file in files {
            let r = try H5Reader(path: file)
            func leaves(_ group: String, into out: inout [String: [Double]], prefix: String) throws {
                for (name, kind) in try r.children(of: group) {
                    let path = group + "/" + name, key = prefix.isEmpty ? name : prefix + "/" + name
                    switch kind {
                    case .group: try leaves(path, into: &out, prefix: key)
                    case .dataset: out[key] = try r.read(path, as: Double.self).values
                    case .other: break
                    }
                }
            }
            var results: [String: [Double]] = [:], curves: [String: [Double]] = [:]
            try leaves("/comparisons", into: &results, prefix: "")
            if r.contains("/curves_first_seed") { try leaves("/curves_first_seed", into: &curves, prefix: "") }
            let seeds = try r.read("/seeds", as: Int64.self).values.map(Int.init)
            // A file rescored before keeps the code version that trained it.
            let trained = (try? r.stringAttribute("rescored_from_code_version", on: "/comparisons"))
                ?? (try? r.stringAttribute("code_version")) ?? "unknown"
            if trainedBy.isEmpty { trainedBy = trained }
            guard trained == trainedBy else {
                throw ReportError("\(file): trained by code version \(trained), \(files[0]) by \(trainedBy): parts of one experiment share their code")
            }
            guard keys == nil || keys == Set(results.keys) else {
                throw ReportError("\(file): its comparisons differ from \(files[0])'s: not a part of the same experiment")
            }
            keys = Set(results.keys)
            for (i, seed) in seeds.enumerated() {
                guard perSeed[seed] == nil else { throw ReportError("\(file): seed \(seed) is recorded by another file too") }
                perSeed[seed] = results.compactMapValues { i < $0.count ? $0[i] : nil }
            }
            if let first = seeds.first { curvesBySeed[first] = curves }
            let runs = Int(try r.attribute("runs", on: "/comparisons").intValue ?? 0)
            runCount += runs
            runSeconds += (try r.attribute("mean_run_seconds", on: "/comparisons").doubleValue ?? 0) * Double(runs)
        }
    }

    /// Every comparison's values in the order of `seeds`.
    func results(seeds order: [Int]) -> [String: [Double]] {
        var out: [String: [Double]] = [:]
        for seed in order { for (key, v) in perSeed[seed] ?? [:] { out[key, default: []].append(v) } }
        return out
    }
}

/// `rescoreFrom`: result files of this config (one, or the parts trained with `seeds`) whose recorded comparisons
/// are scored again (claims, table, figures), nothing trained. `seeds`: train only these of the config's seeds (a
/// part, run beside the others in its own process).
func runSchoenbauerMNIST(configPath: String, outPath: String, threads: Int, rescoreFrom: [String], seeds: [UInt64]?) throws -> Double {
    let recorded = rescoreFrom.isEmpty ? nil : try RecordedComparisons(files: rescoreFrom)
    return try runSchoenbauerExperiment(
        name: "mnist", configType: SchoenbauerMNISTConfig.self, configPath: configPath, outPath: outPath, threads: threads,
        commandSuffix: seeds.map { " --seeds " + $0.map(String.init).joined(separator: ",") } ?? "",
        extraInputs: { [$0.data] },  // a rescore too: the measurements were made on it
        validate: { c in
            guard !c.seeds.isEmpty, c.trainImages > 0, c.testImages > 0, c.batchSize > 0, c.steps > 0, c.curvePoints > 0,
                (0..<1).contains(c.warmupFraction), (1...8).contains(c.bits), c.jitter > 0, c.sgd != nil || c.adam != nil
            else { throw ReportError("seeds, sizes and steps must be positive, warmup_fraction in [0, 1), bits in 1...8, jitter > 0, sgd or adam given") }
            let factors = (c.sgd?.scaledown ?? []) + (c.adam?.scaledown ?? [])
            guard factors.allSatisfy({ $0 > 0 && $0 < 1 }) else { throw ReportError("scaledown factors must lie in (0, 1)") }
            if let s = c.sgd, !(s.lr > 0 && (0..<1).contains(s.momentum)) { throw ReportError("sgd: lr > 0, momentum in [0, 1)") }
            if let a = c.adam, !(a.lr > 0 && !a.beta2.isEmpty && a.beta2.allSatisfy({ (0..<1).contains($0) })) {
                throw ReportError("adam: lr > 0 and beta2 values in [0, 1)")
            }
            if let sweep = c.jitterSweep {
                guard c.sgd != nil, sweep.allSatisfy({ $0 > 0 && $0 != c.jitter }), Set(sweep).count == sweep.count else {
                    throw ReportError("jitter_sweep: distinct values > 0 other than jitter, and an sgd section")
                }
            }
            if try c.estimator.make() == .ste { throw ReportError("the custom estimator must not be the STE itself") }
            if let seeds, seeds.isEmpty || !seeds.allSatisfy(c.seeds.contains) || Set(seeds).count != seeds.count {
                throw ReportError("--seeds \(seeds.map(String.init).joined(separator: ",")): distinct seeds of the config's \(c.seeds)")
            }
        }
    ) { config, ctx in
        var c = config
        if let recorded {
            guard Set(recorded.seeds) == Set(c.seeds.map(Int.init)) else {
                throw ReportError("\(rescoreFrom.joined(separator: ", ")): recorded seeds \(recorded.seeds), the config's \(c.seeds): not this config's result")
            }
            let order = c.seeds.map(Int.init)
            var section = try writeMNISTResult(c, results: recorded.results(seeds: order),
                curves: recorded.curvesBySeed[order[0]] ?? [:], runCount: recorded.runCount, runSeconds: recorded.runSeconds,
                extra: ["rescored_from_code_version": .string(recorded.trainedBy)], ctx)
            let source = rescoreFrom.count == 1 ? "this file recorded" : "its \(rescoreFrom.count) parts (one process per seed) recorded"
            section.setting += "\n\nThe claims, table and figures were scored again from the comparisons \(source) "
                + "when it was trained (code version `\(recorded.trainedBy.prefix(12))`, \(recorded.runCount) runs, "
                + String(format: "%.0f", recorded.runSeconds) + " s of training); nothing was retrained."
            return section
        }
        if let seeds { c.seeds = seeds }
        let trained = try trainMNISTComparisons(c)
        var section = try writeMNISTResult(c, results: trained.results, curves: trained.curves, runCount: trained.runCount,
            runSeconds: trained.runSeconds, extra: [:], ctx)
        if seeds != nil {
            section.setting += "\n\nA part: seeds \(c.seeds.map(String.init).joined(separator: ", ")) of the config's "
                + "\(config.seeds.map(String.init).joined(separator: ", ")); its verdicts are not the experiment's. "
                + "`--rescore` over every part writes the experiment's result."
        }
        return section
    }
}

/// Writes the comparisons, the first seed's loss curves, the seeds and the run attributes into the result file;
/// returns the report section scored from them.
private func writeMNISTResult(_ c: SchoenbauerMNISTConfig, results: [String: [Double]], curves: [String: [Double]],
    runCount: Int, runSeconds: Double, extra: [String: AttributeValue], _ ctx: SchoenbauerContext) throws -> SchoenbauerFragment
{
    let estimator = try c.estimator.make()
    let map = EquivalenceMap(estimator: estimator, cells: c.mapCells)
    let kernelWeights = WeightQuantization(network: makeSchoenbauerConvNet(seed: 0), bits: c.bits, estimator: .ste)
        .tensorIndexPerWeight().count
    for (key, values) in results { try ctx.write("/comparisons/" + key, values) }
    for (key, values) in curves { try ctx.write("/curves_first_seed/" + key, values) }
    try ctx.writer.write("/seeds", c.seeds.map { Int64($0) }, shape: [c.seeds.count])
    try ctx.writer.setAttributes(["alpha": .double(map.alpha), "estimator": .string(estimator.description),
        "kernel_weights": .int(Int64(kernelWeights)), "runs": .int(Int64(runCount)),
        "mean_run_seconds": .double(runSeconds / Double(max(runCount, 1)))].merging(extra) { $1 }, on: "/comparisons")
    return try schoenbauerFragment(c, results: results, alpha: map.alpha, estimator: estimator,
        kernelWeights: kernelWeights, runCount: runCount, ctx)
}

/// Trains every run the comparisons of each seed need (each once) and measures the pairs: per comparison and metric
/// the per-seed values, the first seed's loss curves, the number of runs and their training time.
private func trainMNISTComparisons(_ c: SchoenbauerMNISTConfig) throws
    -> (results: [String: [Double]], curves: [String: [Double]], runCount: Int, runSeconds: Double)
{
    let data = try loadDataset(path: c.data)
    guard data.train.count >= c.trainImages, data.test.count >= c.testImages, data.train.channels == 1,
        data.train.height == 28, data.train.width == 28
    else { throw ReportError("\(c.data): needs ≥ \(c.trainImages) train and \(c.testImages) test 28×28 MNIST images") }
    let size = data.train.imageSize
    let estimator = try c.estimator.make()
    let map = EquivalenceMap(estimator: estimator, cells: c.mapCells)
    let quantizers = WeightQuantization(network: makeSchoenbauerConvNet(seed: 0), bits: c.bits, estimator: .ste)
    let tensorOf = quantizers.tensorIndexPerWeight()
    var results: [String: [Double]] = [:]  // "<family>/<comparison>/<metric>" → per seed
    var runSeconds = 0.0, runCount = 0
    var curves: [String: [Double]] = [:]
    for seed in c.seeds {
        // Images scaled to [0, 1] as in the flax example (mean 0, std 1 after /255); the shuffle follows the seed.
        let train = try Batcher(
            images: Array(data.train.images[0..<(c.trainImages * size)]), labels: Array(data.train.labels[0..<c.trainImages]),
            count: c.trainImages, channels: 1, height: 28, width: 28, batchSize: c.batchSize, mean: [0], std: [1],
            shuffle: true, seed: seed)
        let test = try Batcher(
            images: Array(data.test.images[0..<(c.testImages * size)]), labels: Array(data.test.labels[0..<c.testImages]),
            count: c.testImages, channels: 1, height: 28, width: 28, batchSize: 500, mean: [0], std: [1],
            shuffle: false, seed: seed)
        var records: [RunSpec: RunRecord] = [:]
        func record(_ s: RunSpec) -> RunRecord {
            if let r = records[s] { return r }
            let r = trainSchoenbauerRun(s, c, estimator: estimator, map: map, train: train, test: test)
            print(String(format: "schoenbauer mnist: %@: %d steps, test accuracy %.2f %%, %.1f s", s.label, r.steps, r.accuracy, r.seconds))
            runSeconds += r.seconds
            runCount += 1
            records[s] = r
            return r
        }
        for cmp in comparisons(c, seed: seed) {
            let (a, x) = (record(cmp.reference), record(cmp.other))
            let m = PairMetrics(a, x, quantizers: quantizers.entries.map(\.quantizer), tensorOf: tensorOf,
                map: cmp.mapped ? map : nil)
            for (name, v) in zip(PairMetrics.names, m.values) { results["\(cmp.family)/\(cmp.name)/\(name)", default: []].append(v) }
            results["\(cmp.family)/\(cmp.name)/lr_scale", default: []].append(cmp.lrScale)
            if seed == c.seeds[0] {
                curves["\(cmp.family)/\(cmp.name)/loss_a"] = a.lossCurve
                curves["\(cmp.family)/\(cmp.name)/loss_x"] = x.lossCurve
            }
        }
    }
    return (results, curves, runCount, runSeconds)
}
