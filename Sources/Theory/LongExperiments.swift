// Long, Yin & Xin 2021 (notes §2; abstract only, every setting [N]): coarse gradient descent with monotone
// STEs trains a two-linear-layer network with quantized ReLU for non-linear multi-class classification.
// long-synthetic: data labelled by a random teacher of the same architecture (so the student can classify it
// perfectly) and checked not to be linearly separable; long-mnist: the same network 784 → h → 10 on MNIST.
import Foundation
import Kernels
import Report
import Storage

// MARK: - long-synthetic

public struct LongSyntheticConfig: Codable {
    public var seed: UInt64
    public var n: Int
    public var classes: Int
    public var teacher_hidden: Int
    public var student_hidden: Int
    public var samples: Int
    /// Keep only points whose teacher top-1 logit beats the runner-up by this much.
    public var margin: Double
    public var bits: Int
    public var alpha: Double
    public var stes: [STE]
    public var starts: Int
    public var iterations: Int
    public var lr: Double
    public var record_every: Int
    /// Multinomial logistic regression (with bias), full batch, to check linear non-separability.
    public var linear_iterations: Int
    public var linear_lr: Double
}

public func runLongSynthetic(configPath: String, outPath: String, threads: Int) throws {
    try runExperiment(name: "long-synthetic", configType: LongSyntheticConfig.self, configPath: configPath,
        outPath: outPath, threads: threads)
    { c, ctx in
        let q = QuantizedReLU(bits: c.bits, alpha: c.alpha)
        var rng = SplitMix64(seed: c.seed, stream: 0)
        // Teacher: unit-norm rows of W*, V* ~ N(0, 1).
        let wStar = (0..<c.teacher_hidden).map { _ in rng.unitVector(c.n) }
        let vStar = (0..<c.classes).map { _ in rng.normals(c.teacher_hidden) }
        var xs: [Float] = [], labels: [UInt8] = []
        var drawn = 0
        while labels.count < c.samples {
            drawn += 1
            guard drawn < 1000 * c.samples else { throw ReportError("\(configPath): margin too large, no data") }
            let x = rng.normals(c.n)
            let a = wStar.map { q(dot($0, x)) }
            let logits = vStar.map { dot($0, a) }
            let order = logits.indices.sorted { logits[$0] > logits[$1] }
            guard logits[order[0]] - logits[order[1]] >= c.margin else { continue }
            xs += x.map(Float.init)
            labels.append(UInt8(order[0]))
        }
        let counts = (0..<c.classes).map { k in labels.filter { Int($0) == k }.count }
        // Linear baseline: softmax regression with bias.
        let linearAccuracy = linearBaseline(xs, labels, n: c.n, classes: c.classes, iterations: c.linear_iterations,
            lr: c.linear_lr)

        let all = Array(0..<c.samples)
        let recorded = Array(stride(from: 0, through: c.iterations, by: c.record_every))
        var rows: [[String]] = []
        var accSeries: [Series] = [], lossSeries: [Series] = []
        var perfect: [STE: Int] = [:], reached: [STE: Int] = [:]
        for (t, ste) in c.stes.enumerated() {
            let runs = parallelMap(c.starts, threads: ctx.threads) { s -> (acc: [Double], loss: [Double], hit: Int?) in
                var r = SplitMix64(seed: c.seed, stream: UInt64(1 + s))
                let net = QuantizedTwoLayerNet(n: c.n, h: c.student_hidden, k: c.classes, quantizer: q, ste: ste, rng: &r)
                var acc: [Double] = [], loss: [Double] = []
                var hit: Int? = nil
                xs.withUnsafeBufferPointer { x in
                    labels.withUnsafeBufferPointer { y in
                        for it in 0...c.iterations {
                            // The step reports the loss/accuracy of the iterate before the update.
                            let (l, a): (Double, Double)
                            if it < c.iterations {
                                (l, a) = net.step(x.baseAddress!, y.baseAddress!, indices: all[...], lr: Float(c.lr), momentum: 0)
                            } else {
                                (l, a) = net.evaluate(x.baseAddress!, y.baseAddress!, count: c.samples)
                            }
                            acc.append(a)
                            loss.append(l)
                            if a == 1 && hit == nil { hit = it }
                        }
                    }
                }
                return (acc, loss, hit)
            }
            let hits = runs.compactMap { $0.hit }
            let finalPerfect = runs.filter { $0.acc.last! == 1 }.count
            perfect[ste] = finalPerfect
            reached[ste] = hits.count
            rows.append([
                ste.label, fmtFraction(hits.count, c.starts), fmtFraction(finalPerfect, c.starts),
                hits.isEmpty ? "–" : fmt(quantile(hits.map(Double.init), 0.5)),
                hits.isEmpty ? "–" : "\(hits.max()!)",
                fmt(quantile(runs.map { $0.acc.last! }, 0.5)), fmt(quantile(runs.map { $0.acc.last! }, 0)),
                fmt(quantile(runs.map { $0.loss.last! }, 0.5)),
            ])
            try ctx.write("/\(ste.rawValue)/train_accuracy", runs.flatMap { r in recorded.map { r.acc[$0] } },
                shape: [c.starts, recorded.count])
            try ctx.write("/\(ste.rawValue)/train_loss", runs.flatMap { r in recorded.map { r.loss[$0] } },
                shape: [c.starts, recorded.count])
            try ctx.write("/\(ste.rawValue)/iterations_to_100", runs.map { $0.hit ?? -1 })
            let x = recorded.map(Double.init)
            accSeries.append(Series(ste.label, x: x, y: recorded.map { i in quantile(runs.map { $0.acc[i] }, 0.5) },
                color: Figure.palette[t]))
            accSeries.append(Series("", x: x, y: recorded.map { i in quantile(runs.map { $0.acc[i] }, 0) },
                color: Figure.palette[t], dashed: true, lineWidth: 1))
            lossSeries.append(Series(ste.label, x: x, y: recorded.map { i in quantile(runs.map { $0.loss[i] }, 0.5) },
                color: Figure.palette[t]))
        }
        try ctx.write("/data/x", xs.map(Double.init), shape: [c.samples, c.n])
        try ctx.write("/data/labels", labels.map(Int.init))
        try ctx.write("/linear_baseline_accuracy", [linearAccuracy])
        try ctx.save(Figure(title: "Coarse gradient descent on synthetic \(c.classes)-class data (\(c.bits)-bit quantized ReLU, "
            + "h = \(c.student_hidden), \(c.starts) starts)",
            panels: [
                Panel(title: "training accuracy (solid: median, dashed: worst start)", xLabel: "iteration",
                    yLabel: "accuracy", series: accSeries,
                    references: [ReferenceLine(y: linearAccuracy, label: "best linear classifier")], legendBottom: true),
                Panel(title: "median training loss", xLabel: "iteration", yLabel: "cross-entropy (nats)",
                    series: lossSeries, logY: true),
            ], columns: 2, panelWidth: 460))

        var claims = [
            Claim("The synthetic data are not linearly separable (softmax regression with bias stays below 100 %).",
                held: linearAccuracy < 1, evidence: "best linear training accuracy \(fmt(linearAccuracy))"),
        ]
        for ste in c.stes where ste != .identity {
            claims.append(Claim("Coarse gradient descent with the \(ste.label) STE reaches 100 % training accuracy "
                + "(global minimum) from every random start.",
                held: perfect[ste]! == c.starts, evidence: "\(fmtFraction(perfect[ste]!, c.starts)) at the last iterate"))
            claims.append(Claim("(Weaker) with the \(ste.label) STE some iterate classifies the training set perfectly, "
                + "from every start, within \(c.iterations) iterations.",
                held: reached[ste]! == c.starts, evidence: "\(fmtFraction(reached[ste]!, c.starts)) starts"))
        }
        let setting = """
            Long, Yin & Xin 2021 (abstract only; data generator, network sizes, quantizer, STE class and step \
            sizes unknown [N]). Reconstruction: x ~ N(0, I_\(c.n)); labels from a random teacher of the same \
            architecture, argmax V*σ_α(W*x) with \(c.teacher_hidden) hidden units (unit-norm rows of W*, \
            V* ~ N(0,1)), \(c.classes) classes, keeping the first \(c.samples) points whose top logit beats the \
            runner-up by ≥ \(fmt(c.margin)) (class counts \(counts)). A teacher-labelled set is realizable by \
            construction (the student, \(c.student_hidden) hidden units ≥ \(c.teacher_hidden), contains the \
            teacher), which is what 'the network can classify perfectly' needs; non-linear separability is \
            checked with softmax regression (\(c.linear_iterations) full-batch GD steps, lr \(fmt(c.linear_lr))). \
            Quantizer: \(c.bits)-bit ReLU, α = \(fmt(c.alpha)) (ceil rounding, levels {0, α, …, \((1 << c.bits) - 1)α}). \
            Student: W rows ~ N(0, I/n), V ~ N(0, I/h), no biases; full-batch coarse gradient descent on the \
            softmax cross-entropy, lr \(fmt(c.lr)), \(c.iterations) iterations, \(c.starts) starts. STEs: \
            identity (baseline), ReLU, clipped ReLU (clip at Lα), log-tailed ReLU (1/(x − Lα + 1) above Lα) — \
            the three monotone proxies are our choice of 'a class of STEs with certain monotonicity'.
            """
        let body = markdownTable(
            header: ["STE", "reached 100 % (any iterate)", "100 % at the end", "median iterations to 100 %",
                "max iterations to 100 %", "median final accuracy", "worst final accuracy", "median final loss"],
            rows: rows)
        return Fragment(title: "Long 2021 — synthetic non-linear classification (long-synthetic)", setting: setting,
            claims: claims, body: body)
    }
}

/// Training accuracy (best over iterations) of softmax regression with bias, full-batch gradient descent.
func linearBaseline(_ xs: [Float], _ labels: [UInt8], n: Int, classes: Int, iterations: Int, lr: Double) -> Double {
    let count = labels.count
    var W = [Double](repeating: 0, count: classes * (n + 1))
    var best = 0.0
    var p = [Double](repeating: 0, count: classes)
    for _ in 0..<iterations {
        var g = [Double](repeating: 0, count: W.count)
        var correct = 0
        for s in 0..<count {
            var mx = -Double.infinity, arg = 0
            for c in 0..<classes {
                var z = W[c * (n + 1) + n]
                for j in 0..<n { z += W[c * (n + 1) + j] * Double(xs[s * n + j]) }
                p[c] = z
                if z > mx { mx = z; arg = c }
            }
            if arg == Int(labels[s]) { correct += 1 }
            var zsum = 0.0
            for c in 0..<classes { p[c] = exp(p[c] - mx); zsum += p[c] }
            for c in 0..<classes {
                let d = p[c] / zsum - (c == Int(labels[s]) ? 1 : 0)
                for j in 0..<n { g[c * (n + 1) + j] += d * Double(xs[s * n + j]) }
                g[c * (n + 1) + n] += d
            }
        }
        best = max(best, Double(correct) / Double(count))
        for i in 0..<W.count { W[i] -= lr * g[i] / Double(count) }
    }
    return best
}

// MARK: - long-mnist

public struct LongMNISTConfig: Codable {
    public var seed: UInt64
    public var data: String
    public var hidden: Int
    public var bits: [Int]
    /// α per bit width (same order as `bits`).
    public var alphas: [Double]
    public var stes: [STE]
    public var epochs: Int
    public var batch_size: Int
    public var lr: Double
    public var momentum: Double
    /// Training-loss curve: mean over this many consecutive minibatches.
    public var loss_window: Int
}

public func runLongMNIST(configPath: String, outPath: String, threads: Int) throws {
    let dataPath = try loadConfig(LongMNISTConfig.self, from: configPath).data
    try runExperiment(name: "long-mnist", configType: LongMNISTConfig.self, configPath: configPath,
        outPath: outPath, threads: threads, extraInputs: [dataPath])
    { c, ctx in
        guard c.bits.count == c.alphas.count else { throw ReportError("\(configPath): bits and alphas differ in length") }
        let reader = try H5Reader(path: c.data)
        let trainImages = try reader.read("/train/images", as: UInt8.self, shape: [-1, 28, 28])
        let trainLabels = try reader.read("/train/labels", as: UInt8.self, shape: [trainImages.shape[0]])
        let testImages = try reader.read("/test/images", as: UInt8.self, shape: [-1, 28, 28])
        let testLabels = try reader.read("/test/labels", as: UInt8.self, shape: [testImages.shape[0]])
        // Standardise with the usual MNIST pixel mean/std (0.1307, 0.3081).
        func standardise(_ v: [UInt8]) -> [Float] { v.map { (Float($0) / 255 - 0.1307) / 0.3081 } }
        let xTrain = standardise(trainImages.values), xTest = standardise(testImages.values)
        let nTrain = trainLabels.values.count, nTest = testLabels.values.count
        let n = 784
        let batchesPerEpoch = nTrain / c.batch_size
        // One shuffled order per epoch, shared by all runs (own Fisher–Yates on SplitMix64).
        var orderRng = SplitMix64(seed: c.seed, stream: 1)
        let orders: [[Int]] = (0..<c.epochs).map { _ in
            var o = Array(0..<nTrain)
            for i in stride(from: nTrain - 1, to: 0, by: -1) { o.swapAt(i, orderRng.int(below: i + 1)) }
            return o
        }
        let configs = c.bits.indices.flatMap { b in c.stes.map { (b, $0) } }
        let runs = parallelMap(configs.count, threads: ctx.threads) { r -> (loss: [Double], test: [Double], train: [Double]) in
            let (b, ste) = configs[r]
            var rng = SplitMix64(seed: c.seed, stream: 100)  // same init for every STE and bit width
            let net = QuantizedTwoLayerNet(n: n, h: c.hidden, k: 10,
                quantizer: QuantizedReLU(bits: c.bits[b], alpha: c.alphas[b]), ste: ste, rng: &rng)
            var curve: [Double] = [], test: [Double] = [], train: [Double] = []
            xTrain.withUnsafeBufferPointer { x in
                trainLabels.values.withUnsafeBufferPointer { y in
                    xTest.withUnsafeBufferPointer { xt in
                        testLabels.values.withUnsafeBufferPointer { yt in
                            test.append(net.evaluate(xt.baseAddress!, yt.baseAddress!, count: nTest).accuracy)
                            var window = 0.0, inWindow = 0
                            for e in 0..<c.epochs {
                                for bi in 0..<batchesPerEpoch {
                                    let idx = orders[e][(bi * c.batch_size)..<((bi + 1) * c.batch_size)]
                                    let (l, _) = net.step(x.baseAddress!, y.baseAddress!, indices: idx,
                                        lr: Float(c.lr), momentum: Float(c.momentum))
                                    window += l
                                    inWindow += 1
                                    if inWindow == c.loss_window {
                                        curve.append(window / Double(inWindow))
                                        window = 0
                                        inWindow = 0
                                    }
                                }
                                test.append(net.evaluate(xt.baseAddress!, yt.baseAddress!, count: nTest).accuracy)
                            }
                            train.append(net.evaluate(x.baseAddress!, y.baseAddress!, count: nTrain).loss)
                        }
                    }
                }
            }
            return (curve, test, train)
        }
        var rows: [[String]] = []
        var panels: [Panel] = []
        var claims: [Claim] = []
        for (b, bits) in c.bits.enumerated() {
            var lossSeries: [Series] = [], accSeries: [Series] = []
            for (t, ste) in c.stes.enumerated() {
                let r = runs[configs.firstIndex { $0.0 == b && $0.1 == ste }!]
                let g = "/bits\(bits)/\(ste.rawValue)"
                try ctx.write(g + "/train_loss_curve", r.loss)
                try ctx.write(g + "/test_accuracy_per_epoch", r.test)
                try ctx.write(g + "/final_train_loss", r.train)
                rows.append([
                    "\(bits)", ste.label, fmt(r.test.last! * 100), fmt(r.train[0]), fmt(r.loss.first!), fmt(r.loss.last!),
                ])
                lossSeries.append(Series(ste.label, x: r.loss.indices.map { Double(($0 + 1) * c.loss_window) }, y: r.loss,
                    color: Figure.palette[t]))
                accSeries.append(Series(ste.label, x: r.test.indices.map(Double.init), y: r.test.map { $0 * 100 },
                    color: Figure.palette[t], markers: true))
            }
            panels.append(Panel(title: "\(bits)-bit: training loss", xLabel: "minibatch iteration",
                yLabel: "cross-entropy (nats, mean over \(c.loss_window) batches)", series: lossSeries, logY: true))
            panels.append(Panel(title: "\(bits)-bit: test accuracy", xLabel: "epoch", yLabel: "test accuracy (%)",
                series: accSeries, legendBottom: true))
            for ste in c.stes where ste != .identity {
                let r = runs[configs.firstIndex { $0.0 == b && $0.1 == ste }!]
                claims.append(Claim("\(bits)-bit, \(ste.label) STE: coarse gradient descent trains the quantized "
                    + "network (training loss falls; test accuracy > 90 %) [criterion ours].",
                    held: r.loss.last! < r.loss.first! && r.test.last! > 0.9,
                    evidence: "loss \(fmt(r.loss.first!)) → \(fmt(r.loss.last!)), test accuracy \(fmt(r.test.last! * 100)) %"))
            }
        }
        try ctx.save(Figure(title: "MNIST, 784 → \(c.hidden) quantized ReLU → 10, coarse SGD (batch \(c.batch_size), "
            + "lr \(fmt(c.lr)), momentum \(fmt(c.momentum)))", panels: panels, columns: 2, panelWidth: 460))
        let setting = """
            Long, Yin & Xin 2021's MNIST experiment (network width, quantizer, optimiser and results unknown [N]). \
            Reconstruction: the same two-linear-layer network as long-synthetic, 784 → \(c.hidden) → 10, no \
            biases, inputs standardised with mean 0.1307 / std 0.3081, quantized ReLU at \(c.bits) bits with \
            α = \(c.alphas) (the MSE-optimal uniform steps for a unit Gaussian, notes §1.5); minibatch coarse \
            SGD, batch \(c.batch_size), lr \(fmt(c.lr)), momentum \(fmt(c.momentum)), \(c.epochs) epochs, one \
            shuffled order per epoch shared by all runs, the same initial weights for every STE. Data: \(c.data).
            """
        let body = markdownTable(
            header: ["bits", "STE", "test accuracy (%)", "final training loss (full set)", "first-window loss",
                "last-window loss"], rows: rows)
        return Fragment(title: "Long 2021 — MNIST (long-mnist)", setting: setting, claims: claims, body: body)
    }
}
