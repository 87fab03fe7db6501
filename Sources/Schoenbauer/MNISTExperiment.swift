// Experiment 2 of our Schoenbauer et al. 2024 reproduction: LeNet-5 (NN.makeLeNet5 with float ReLU activations,
// BatchNorm without affine as in the engine) on a subset of MNIST with every Conv2d/Linear weight quantized
// (b bits, mid-rise, per-tensor Δ), the last bias float. Per cell (optimizer, bits, estimator, η) three runs
// from the same seed, in lockstep on the same batches:
//   (a) custom estimator, η, w₀;   (b) STE, αη on the quantized weights, init M(w₀);   (c) STE, η, w₀.
// Float parameters keep η in every run (the map concerns quantized weights only). Per step: the fraction of
// quantized weights agreeing with (a), the same among the weights that left their initial bin in either run
// ("moved agreement"), and the relative L2 distance of the quantized weights; test accuracy at a few steps.
// SGD runs have no momentum and no weight decay (the theorem's setting); Adam is PyTorch's default betas.
// Each η runs for baseSteps·η_max/η steps, i.e. the same training time ηt, so runs at different η compare.
import Dispatch
import Foundation
import Datasets
import Kernels
import NN
import Report
import Storage
import Training

struct MNISTOptimizerConfig: Codable {
    var name: String
    var lrs: [Double]
    var baseSteps: Int
    enum CodingKeys: String, CodingKey { case name, lrs, baseSteps = "base_steps" }
}

struct MNISTConfig: Codable {
    var seed: UInt64
    var data: String
    var trainSubset: Int
    var testSubset: Int
    var batchSize: Int
    var bits: [Int]
    var rangeScale: Double
    var estimators: [EstimatorConfig]
    var optimizers: [MNISTOptimizerConfig]
    var evalsPerRun: Int
    var mapCells: Int
    /// Claim thresholds, fixed before running: a run "tracks" (a) when its final moved agreement is ≥ trackThreshold
    /// and its final test accuracy is within accuracyTolerance (percentage points) of (a)'s.
    var trackThreshold: Double
    var accuracyTolerance: Double

    enum CodingKeys: String, CodingKey {
        case seed, data, bits, estimators, optimizers
        case trainSubset = "train_subset", testSubset = "test_subset", batchSize = "batch_size"
        case rangeScale = "range_scale", evalsPerRun = "evals_per_run", mapCells = "map_cells"
        case trackThreshold = "track_threshold", accuracyTolerance = "accuracy_tolerance"
    }
}

/// One quantized LeNet-5 with its optimizers.
final class QuantizedRun {
    let network: Network
    let quantization: WeightQuantization
    let optimizers: [Optimizer]

    init(seed: UInt64, bits: Int, rangeScale: Double, estimator: WeightEstimator, optimizer: String, lr: Double,
         latentFactor: Double, initMap: EquivalenceMap?) {
        network = makeLeNet5(activation: .float, seed: seed)
        quantization = WeightQuantization(network: network, bits: bits, rangeScale: rangeScale, estimator: estimator)
        if let initMap { quantization.transformLatents { initMap.map($0, $1) } }
        func make(_ p: [Parameter], _ rate: Double) -> Optimizer {
            optimizer == "sgd" ? SGD(parameters: p, learningRate: rate, momentum: 0, weightDecay: 0)
                : Adam(parameters: p, learningRate: rate)
        }
        optimizers = [make(quantization.latentParameters, latentFactor * lr), make(quantization.floatParameters, lr)]
    }

    /// One training step on `batch`; returns the batch loss.
    func step(_ batch: Batch) -> Float {
        quantization.quantizeIntoNetwork()
        quantization.zeroGrad(network)
        let logits = network.forward(batch.x, training: true)
        let dlogits = Tensor(zeros: logits.shape)
        let (loss, _) = batch.labels.withUnsafeBufferPointer {
            softmaxCrossEntropy(logits: logits.readBuffer, labels: $0, batch: batch.count, classes: 10, dlogits: dlogits.buffer)
        }
        network.backward(dlogits)
        quantization.accumulateLatentGradients()
        for o in optimizers { o.step() }
        return loss
    }

    /// Test accuracy (%) in eval mode (BN running statistics) with the quantized weights.
    func accuracy(_ test: Batcher) -> Double {
        quantization.quantizeIntoNetwork()
        var correct = 0
        for i in 0..<test.batchesPerEpoch {
            let b = test.batch(epoch: 0, index: i)
            let logits = network.forward(b.x, training: false)
            correct += b.labels.withUnsafeBufferPointer {
                softmaxCrossEntropy(logits: logits.readBuffer, labels: $0, batch: b.count, classes: 10, dlogits: nil).correct
            }
        }
        return 100 * Double(correct) / Double(test.count)
    }
}

/// Agreement of the quantized weights of run x with run a (bins), given the initial bins and each weight's Δ.
struct Agreement {
    var fraction: Double, moved: Double, distance: Double

    init(_ a: [Int32], _ x: [Int32], initial: [Int32], steps: [Double]) {
        var same = 0, movedCount = 0, movedSame = 0
        var diff2 = 0.0, norm2 = 0.0
        for i in 0..<a.count {
            let eq = a[i] == x[i]
            if eq { same += 1 }
            if a[i] != initial[i] || x[i] != initial[i] {
                movedCount += 1
                if eq { movedSame += 1 }
            }
            let d = steps[i] * Double(a[i] - x[i])
            let qa = steps[i] * (Double(a[i]) + 0.5)
            diff2 += d * d
            norm2 += qa * qa
        }
        fraction = Double(same) / Double(a.count)
        moved = movedCount == 0 ? 1 : Double(movedSame) / Double(movedCount)
        distance = (diff2 / norm2).squareRoot()
    }
}

struct MNISTCellResult {
    var optimizer: String, bits: Int, estimator: WeightEstimator, lr: Double, alpha: Double, steps: Int
    var agreement: [[Double]], moved: [[Double]], distance: [[Double]]  // [run b, run c][step]
    var loss: [[Double]]  // [a, b, c][step]
    var evalSteps: [Int], accuracy: [[Double]]  // [a, b, c][eval]
    var seconds: Double
}

@Sendable func runSchoenbauerMNIST(configPath: String, outPath: String, threads: Int) throws -> Double {
    try runSchoenbauerExperiment(
        name: "mnist", configType: MNISTConfig.self, configPath: configPath, outPath: outPath, threads: threads,
        extraInputs: { [$0.data] },
        validate: { c in
            guard c.trainSubset > 0, c.testSubset > 0, c.batchSize > 0, c.evalsPerRun >= 1, c.rangeScale > 0,
                !c.bits.isEmpty, c.bits.allSatisfy({ (1...8).contains($0) }), !c.optimizers.isEmpty
            else { throw ReportError("sizes must be positive, bits in 1...8") }
            for o in c.optimizers {
                guard ["sgd", "adam"].contains(o.name), !o.lrs.isEmpty, o.lrs.allSatisfy({ $0 > 0 }), o.baseSteps > 0
                else { throw ReportError("optimizer \(o.name): name sgd|adam, positive lrs and base_steps") }
            }
            for e in c.estimators {
                if try e.make() == .ste { throw ReportError("the custom estimators must not be the STE itself") }
            }
        }
    ) { c, ctx in
        let data = try loadDataset(path: c.data)
        guard data.train.count >= c.trainSubset, data.test.count >= c.testSubset, data.train.channels == 1 else {
            throw ReportError("\(c.data): needs ≥ \(c.trainSubset) train and \(c.testSubset) test MNIST images")
        }
        let size = data.train.imageSize
        let mean = data.mean.map(Float.init), std = data.std.map(Float.init)
        let train = try Batcher(
            images: Array(data.train.images[0..<(c.trainSubset * size)]), labels: Array(data.train.labels[0..<c.trainSubset]),
            count: c.trainSubset, channels: 1, height: data.train.height, width: data.train.width,
            batchSize: c.batchSize, mean: mean, std: std, shuffle: true, seed: c.seed)
        let test = try Batcher(
            images: Array(data.test.images[0..<(c.testSubset * size)]), labels: Array(data.test.labels[0..<c.testSubset]),
            count: c.testSubset, channels: 1, height: data.test.height, width: data.test.width,
            batchSize: 500, mean: mean, std: std, shuffle: false, seed: c.seed)

        var results: [MNISTCellResult] = []
        for oc in c.optimizers {
            let lrs = oc.lrs.sorted(by: >)
            for bits in c.bits {
                for ec in c.estimators {
                    let estimator = try ec.make()
                    let map = EquivalenceMap(estimator: estimator, cells: c.mapCells)
                    for lr in lrs {
                        let r = runMNISTCell(c, train: train, test: test, optimizer: oc.name, bits: bits,
                                             estimator: estimator, map: map, lr: lr,
                                             steps: Int((Double(oc.baseSteps) * lrs[0] / lr).rounded()))
                        print(String(format: "schoenbauer mnist: %@ b%d %@ η=%@ %d steps: moved agreement b %.4f c %.4f, acc a/b/c %.2f/%.2f/%.2f (%.1f s)",
                                     oc.name, bits, estimator.name, fmt(lr), r.steps, r.moved[0].last!, r.moved[1].last!,
                                     r.accuracy[0].last!, r.accuracy[1].last!, r.accuracy[2].last!, r.seconds))
                        results.append(r)
                        let g = "/\(oc.name)/b\(bits)/\(estimator.name)/lr\(fmt(lr))"
                        for (i, run) in ["b", "c"].enumerated() {
                            try ctx.write(g + "/agreement_\(run)", r.agreement[i])
                            try ctx.write(g + "/moved_agreement_\(run)", r.moved[i])
                            try ctx.write(g + "/distance_\(run)", r.distance[i])
                        }
                        for (i, run) in ["a", "b", "c"].enumerated() {
                            try ctx.write(g + "/loss_\(run)", r.loss[i])
                            try ctx.write(g + "/accuracy_\(run)", r.accuracy[i])
                        }
                        try ctx.writer.write(g + "/eval_steps", r.evalSteps.map { Int64($0) }, shape: [r.evalSteps.count])
                        try ctx.writer.setAttributes(
                            ["optimizer": .string(oc.name), "bits": .int(Int64(bits)), "estimator": .string(estimator.description),
                             "lr": .double(lr), "alpha": .double(map.alpha), "steps": .int(Int64(r.steps)),
                             "seconds": .double(r.seconds)], on: g)
                    }
                }
            }
        }
        return try mnistFragment(c, results, ctx)
    }
}

func runMNISTCell(_ c: MNISTConfig, train: Batcher, test: Batcher, optimizer: String, bits: Int,
                  estimator: WeightEstimator, map: EquivalenceMap, lr: Double, steps: Int) -> MNISTCellResult {
    let start = DispatchTime.now()
    let runs = [
        QuantizedRun(seed: c.seed, bits: bits, rangeScale: c.rangeScale, estimator: estimator, optimizer: optimizer,
                     lr: lr, latentFactor: 1, initMap: nil),
        QuantizedRun(seed: c.seed, bits: bits, rangeScale: c.rangeScale, estimator: .ste, optimizer: optimizer,
                     lr: lr, latentFactor: map.alpha, initMap: map),
        QuantizedRun(seed: c.seed, bits: bits, rangeScale: c.rangeScale, estimator: .ste, optimizer: optimizer,
                     lr: lr, latentFactor: 1, initMap: nil),
    ]
    let deltas = runs[0].quantization.stepPerWeight()
    var initial: [Int32] = [], bins: [[Int32]] = [[], [], []]
    runs[0].quantization.bins(into: &initial)
    var agreement: [[Double]] = [[], []], moved: [[Double]] = [[], []], distance: [[Double]] = [[], []]
    var loss: [[Double]] = [[], [], []], accuracy: [[Double]] = [[], [], []]
    let evalSteps = (0...c.evalsPerRun).map { steps * $0 / c.evalsPerRun }
    func measure() {
        for i in 0..<3 { runs[i].quantization.bins(into: &bins[i]) }
        for x in 0..<2 {
            let m = Agreement(bins[0], bins[x + 1], initial: initial, steps: deltas)
            agreement[x].append(m.fraction)
            moved[x].append(m.moved)
            distance[x].append(m.distance)
        }
    }
    measure()
    for s in 0..<steps {
        if evalSteps.contains(s) { for i in 0..<3 { accuracy[i].append(runs[i].accuracy(test)) } }
        let batch = train.batch(epoch: s / train.batchesPerEpoch, index: s % train.batchesPerEpoch)
        for i in 0..<3 { loss[i].append(Double(runs[i].step(batch))) }
        measure()
    }
    for i in 0..<3 { accuracy[i].append(runs[i].accuracy(test)) }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    return MNISTCellResult(optimizer: optimizer, bits: bits, estimator: estimator, lr: lr, alpha: map.alpha, steps: steps,
                           agreement: agreement, moved: moved, distance: distance, loss: loss,
                           evalSteps: evalSteps, accuracy: accuracy, seconds: seconds)
}

func mnistFragment(_ c: MNISTConfig, _ results: [MNISTCellResult], _ ctx: SchoenbauerContext) throws -> SchoenbauerFragment {
    let colors = Figure.palette
    var rows: [[String]] = []
    for r in results {
        rows.append([r.optimizer, "\(r.bits)", r.estimator.name, fmt(r.alpha), fmt(r.lr), "\(r.steps)",
                     String(format: "%.4f / %.4f", r.moved[0].last!, r.moved[1].last!),
                     String(format: "%.4f / %.4f", r.agreement[0].last!, r.agreement[1].last!),
                     String(format: "%.4f / %.4f", r.distance[0].last!, r.distance[1].last!),
                     String(format: "%.2f / %.2f / %.2f", r.accuracy[0].last!, r.accuracy[1].last!, r.accuracy[2].last!),
                     String(format: "%.1f", r.seconds)])
    }
    // Claims, per optimizer: which run should track (a), at the smallest η of that optimizer.
    func tracks(_ r: MNISTCellResult, run x: Int) -> Bool {
        r.moved[x].last! >= c.trackThreshold && abs(r.accuracy[x + 1].last! - r.accuracy[0].last!) <= c.accuracyTolerance
    }
    func describe(_ r: MNISTCellResult, run x: Int) -> String {
        "\(r.optimizer) b\(r.bits) \(r.estimator.name) η=\(fmt(r.lr)): moved agreement \(String(format: "%.3f", r.moved[x].last!)), "
            + "acc \(String(format: "%.2f", r.accuracy[x + 1].last!)) vs \(String(format: "%.2f", r.accuracy[0].last!))"
    }
    var claims: [Claim] = []
    for (name, run, text) in [("sgd", 0, "SGD: after swapping in the STE with learning rate αη and init M(w₀), the model trains almost exactly as with the custom estimator"),
                              ("adam", 1, "Adam: plain STE with the same η and init w₀ trains almost exactly as with the custom estimator")] {
        let cells = results.filter { $0.optimizer == name }
        guard let smallest = cells.map(\.lr).min() else { continue }
        let final = cells.filter { $0.lr == smallest }
        claims.append(Claim(
            text + " (smallest η; moved agreement ≥ \(fmt(c.trackThreshold)), accuracy within \(fmt(c.accuracyTolerance)) pp)",
            held: final.allSatisfy { tracks($0, run: run) },
            evidence: final.map { describe($0, run: run) }.joined(separator: "; ")))
        if name == "sgd" {
            claims.append(Claim(
                "SGD control: plain STE (η, w₀) does not track the custom estimator (smallest η; fails the same test)",
                held: final.allSatisfy { !tracks($0, run: 1) },
                evidence: final.map { describe($0, run: 1) }.joined(separator: "; ")))
        }
        // η → 0 trend: final moved disagreement of the tracking run non-increasing as η decreases, per (bits, estimator).
        var trendEvidence: [String] = [], trendHeld = true, trendAny = false
        for bits in c.bits {
            for est in Set(cells.map { $0.estimator.name }).sorted() {
                let series = cells.filter { $0.bits == bits && $0.estimator.name == est }.sorted { $0.lr > $1.lr }
                guard series.count >= 2 else { continue }
                trendAny = true
                let dis = series.map { 1 - $0.moved[run].last! }
                let ok = zip(dis, dis.dropFirst()).allSatisfy { $0.0 >= $0.1 } && dis.last! < dis.first!
                trendHeld = trendHeld && ok
                trendEvidence.append("b\(bits) \(est): "
                    + series.map { "η=\(fmt($0.lr)) → \(String(format: "%.3f", 1 - $0.moved[run].last!))" }.joined(separator: ", "))
            }
        }
        if trendAny {
            claims.append(Claim(
                "\(name == "sgd" ? "SGD" : "Adam"): agreement of \(run == 0 ? "(b)" : "(c)") with (a) grows as η → 0 (moved disagreement at equal time ηt strictly lower at the smallest η than at the largest, and never higher at a smaller η)",
                held: trendHeld, evidence: trendEvidence.joined(separator: "; ")))
        }
    }

    // Figures: per optimizer, rows (bits, estimator) × columns (moved agreement, distance) over time ηt.
    for name in Set(results.map(\.optimizer)).sorted() {
        var panels: [Panel] = []
        let cells = results.filter { $0.optimizer == name }
        let lrs = Array(Set(cells.map(\.lr))).sorted(by: >)
        for bits in c.bits {
            for est in Set(cells.map { $0.estimator.name }).sorted() {
                var agree: [Series] = [], dist: [Series] = []
                for r in cells where r.bits == bits && r.estimator.name == est {
                    let color = colors[lrs.firstIndex(of: r.lr)! % colors.count]
                    let t = (0...r.steps).map { Double($0) * r.lr / lrs[0] }
                    agree.append(Series("(b) η=\(fmt(r.lr))", x: t, y: r.moved[0], color: color))
                    agree.append(Series("(c) η=\(fmt(r.lr))", x: t, y: r.moved[1], color: color, dashed: true))
                    dist.append(Series("(b) η=\(fmt(r.lr))", x: t, y: r.distance[0], color: color))
                    dist.append(Series("(c) η=\(fmt(r.lr))", x: t, y: r.distance[1], color: color, dashed: true))
                }
                panels.append(Panel(title: "\(name) \(bits)-bit \(est): moved agreement with (a)",
                                    xLabel: "steps × η/η_max", yLabel: "fraction", series: agree, yRange: 0...1))
                panels.append(Panel(title: "\(name) \(bits)-bit \(est): ‖Q_a − Q_x‖/‖Q_a‖", xLabel: "steps × η/η_max",
                                    yLabel: "relative L2", series: dist))
            }
        }
        try ctx.save(Figure(title: "LeNet-5 / MNIST, \(name): (b) STE αη + M(w₀) solid, (c) STE η + w₀ dashed, vs (a) custom",
                            panels: panels, columns: 2), suffix: "agreement-\(name)")
    }
    var accPanels: [Panel] = []
    for name in Set(results.map(\.optimizer)).sorted() {
        for bits in c.bits {
            let cells = results.filter { $0.optimizer == name && $0.bits == bits }
            guard let smallest = cells.map(\.lr).min() else { continue }
            var series: [Series] = []
            for (k, r) in cells.filter({ $0.lr == smallest }).enumerated() {
                let x = r.evalSteps.map(Double.init)
                series.append(Series("(a) \(r.estimator.name)", x: x, y: r.accuracy[0], color: colors[3 * k], markers: true))
                series.append(Series("(b) STE αη, M(w₀)", x: x, y: r.accuracy[1], color: colors[3 * k + 1], dashed: true, markers: true))
                series.append(Series("(c) STE η, w₀", x: x, y: r.accuracy[2], color: colors[3 * k + 2], dashed: true, markers: true))
            }
            accPanels.append(Panel(title: "\(name) \(bits)-bit, η=\(fmt(smallest))", xLabel: "step", yLabel: "test accuracy (%)",
                                   series: series))
        }
    }
    try ctx.save(Figure(title: "Test accuracy (\(c.testSubset) MNIST test images) of runs (a), (b), (c)", panels: accPanels, columns: 2),
                 suffix: "accuracy")

    let setting = """
        LeNet-5 of the engine (6-16-120-84, BatchNorm without affine before each ReLU, float activations) on the first \
        \(c.trainSubset) MNIST training images (batch \(c.batchSize), seeded shuffle, the same batches for all runs); test \
        accuracy on the first \(c.testSubset) test images. All 5 conv/linear weight tensors quantized to \
        {\(c.bits.map(String.init).joined(separator: ", "))} bits (mid-rise levels Δ(k+½), per-tensor Δ = \(fmt(c.rangeScale))·2·max|w₀|/2^b); \
        the output bias stays float. Estimators: \(c.estimators.compactMap { try? $0.make().description }.joined(separator: "; ")); \
        STE = 1 in the clipping range, 0 outside, like the custom ones. Optimizers: \
        \(c.optimizers.map { "\($0.name) η ∈ {\($0.lrs.map { fmt($0) }.joined(separator: ", "))}, \($0.baseSteps) steps at the largest η and ∝ 1/η below" }.joined(separator: "; ")). \
        SGD has no momentum and no weight decay (the theorem's setting); Adam β = (0.9, 0.999), ε = 1e-8, no weight decay. \
        "Moved agreement" = fraction of weights with the same quantized value as (a) among those that left their initial bin in \
        either run (the plain agreement counts the many weights that never move). The paper's MNIST ConvNet and its \
        hyper-parameters are not known [N]; every value here is our choice (config file).
        """
    let body = markdownTable(
        header: ["opt", "bits", "estimator", "α", "η", "steps", "moved agr. b / c", "agreement b / c", "distance b / c",
                 "test acc a / b / c (%)", "s"],
        rows: rows)
    return SchoenbauerFragment(title: "Schoenbauer et al. 2024 — LeNet-5 / MNIST with quantized weights",
                               setting: setting, claims: claims, body: body)
}
