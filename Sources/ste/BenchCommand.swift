// `ste bench`: training and eval throughput of the three nets on synthetic data, the protocol of the
// PyTorch peer (tools/peer/ste_torch.py): one fixed N(0,1) batch with uniform labels, train step = the
// training loop's (CPUEngine.trainStep: zero grads, forward, softmax cross-entropy, backward, SGD with
// lr 0.01, momentum 0.9, wd 1e-4); eval
// step = forward with BN in eval mode; warm-up steps, then repetitions of ≥ min-time and ≥ 5 steps.
import ArgumentParser
import Backends
import Foundation
import GPU
import Kernels
import NN
import Storage
import Training

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time training and eval steps of LeNet-5, VGG-11 and ResNet-20 on synthetic data.",
        discussion: """
            Prints images/s (median of the repetitions), GFLOP/s and the ratio to the PyTorch peer baseline \
            (tools/peer/README.md: eager PyTorch 2.15, 2 threads, batch 128, 4-bit clipped STE). \
            FLOPs as the peer counts them: forward = 2 × multiply-adds of every conv/linear; \
            train = 3 × forward − 2 × multiply-adds of the first layer.

            Example:
              ste bench --nets lenet5,resnet20 --threads 2 --min-time 3 --json bench.json
            """)

    @Option(help: "Comma-separated nets: lenet5, vgg11, resnet20.")
    var nets = "lenet5,vgg11,resnet20"
    @Option(help: "Batch size.")
    var batch = 128
    @Option(help: "Compute threads (oneDNN OpenMP pool and kernel workers).")
    var threads = 2
    @Option(help: "Seconds per timed repetition (each also runs at least 5 steps).")
    var minTime = 3.0
    @Option(help: "Timed repetitions per mode.")
    var reps = 3
    @Option(help: "Warm-up steps per mode.")
    var warmup = 3
    @Option(help: "Activation bits (alpha = the authors' default for that width).")
    var bits = 4
    @Option(help: "STE: identity, relu, clipped, log-tailed.")
    var ste = "clipped"
    @Flag(help: "Float ReLU activations instead of the quantized ReLU.")
    var floatActivation = false
    @Flag(help: "Also time every conv geometry of the nets alone: oneDNN vs the reference backend.")
    var convs = false
    @Flag(help: "Also time every layer's forward and backward inside training steps (children of each Sequential; a ResNet block counts as one).")
    var layers = false
    @Flag(help: "Only time the STE backward loop per rule (the table's rules and a tanh-shaped rule on Lanes.tanh vs per-lane Double), one thread.")
    var derivatives = false

    @Option(help: "Also write the results as JSON to this file.")
    var json: String?
    @Option(help: ArgumentHelp(
        "Time nothing: summarise the JSON files of a `make bench` folder (ste-…, torch-… and torchc-….json: ours, the "
            + "PyTorch peer eager and compiled) as one table per net and batch size, all repetitions of all rounds pooled.",
        valueName: "dir"))
    var summary: String?
    @Option(help: "fp32 FMA peak per thread in GFLOP/s, for the % of peak; measured at the start (an 8-lane FMA loop on every thread at once) when not given.")
    var peakPerThread: Double?
    @OptionGroup var deviceOptions: DeviceOptions

    /// PyTorch peer, 2 threads, batch 128, median of 9 timings (tools/peer/README.md, "Headline").
    static let pytorchBaseline: [String: (train: Double, eval: Double)] = [
        "lenet5": (6_900, 18_300), "vgg11": (91, 313), "resnet20": (305, 1_180),
    ]

    func validate() throws {
        for n in netList where inputShape(ofNetwork: n) == nil {
            throw ValidationError("unknown net '\(n)'; known: \(networkNames.joined(separator: ", "))")
        }
        guard STE(rawValue: ste) != nil else { throw ValidationError("unknown STE '\(ste)'") }
        guard defaultAlpha(bits: bits) != nil else { throw ValidationError("no default alpha for \(bits) bits") }
        guard batch > 0, threads > 0, minTime > 0, reps > 0, warmup >= 0 else { throw ValidationError("bad sizes") }
    }

    var netList: [String] { nets.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }

    func run() throws {
        if let summary { return try summarize(folder: summary) }
        if derivatives { benchmarkSTEDerivatives(); return }
        setComputeThreads(threads)
        let gpu: CUDADevice? = deviceOptions.choice == .cpu ? nil : try CUDADevice(tf32: deviceOptions.wantsTF32)
        if let gpu { print("device: \(gpu.description), nominal float32 peak \(String(format: "%.1f", gpu.float32PeakGFLOPS)) GFLOP/s") }
        // The CPU's peak, measured unless given; a GPU run reports the device's nominal one instead.
        let cpuPeak = gpu == nil ? peakPerThread ?? measuredFMAPeakPerThread(threads: threads) : 0
        if gpu == nil {
            print("fp32 FMA peak: \(String(format: "%.1f", cpuPeak)) GFLOP/s per thread ("
                  + (peakPerThread == nil ? "measured: 12 independent 8-lane FMA chains on every thread at once)" : "given)"))
        }
        let activation: Activation = floatActivation
            ? .float : .quantized(QuantizerSpec(bits: bits, alpha: defaultAlpha(bits: bits)!), STE(rawValue: ste)!)
        print("backend: \(Compute.backend.name); threads \(threads); batch \(batch); activation \(activation); "
              + "optimizer: Training.SGD (lr 0.01, momentum 0.9, weight decay 1e-4)")
        print("| net | fwd MFLOP/img | train img/s min/med/max | eval img/s min/med/max | train GFLOP/s | eval GFLOP/s "
              + "| train vs PyTorch | eval vs PyTorch |")
        print("|---|---|---|---|---|---|---|---|")
        var rows: [[String: Any]] = []
        for name in netList {
            let shape = inputShape(ofNetwork: name)!
            let net = makeNetwork(named: name, activation: activation, seed: 0)
            let macs = forwardMACs(of: net, imageShape: shape)
            let fwdFlops = 2 * Double(macs.reduce(0, +)), trainFlops = 3 * fwdFlops - 2 * Double(macs[0])
            var rng = SplitMix64(seed: RandomStream.synthetic.rawValue)
            let x = Tensor(zeros: [batch] + shape)
            for i in 0..<x.count { x[i] = rng.nextGaussian() }
            let labels = (0..<batch).map { _ in Int32(rng.next(below: 10)) }
            // The step the training loop runs (Training/Engine.swift): zero grads, forward, loss, backward, update —
            // on the CPU engine, or on the CUDA engine (GPU/CUDAEngine.swift) with --device cuda.
            let sgd = OptimizerSpec.sgd(learningRate: 0.01, momentum: 0.9, weightDecay: 1e-4)
            let steps = Batch(x: x, labels: labels, indices: Array(0..<batch))
            let trainStep: () -> Void, evalStep: () -> Void
            if let gpu {
                // The batch kept on the device, as the peer keeps its own: neither side uploads in the timed steps.
                let engine = try CUDAEngine(network: net, optimizer: sgd, gpu: gpu)
                let resident = engine.resident(steps)
                trainStep = { _ = engine.trainStep(resident) }
                evalStep = { engine.forward(resident) }
            } else {
                let engine = CPUEngine(network: net, optimizer: sgd)
                trainStep = { _ = engine.trainStep(steps) }
                evalStep = { _ = net.forward(x, training: false) }
            }
            let train = time(trainStep), eval = time(evalStep)
            let loader = try loaderImagesPerSecond(shape: shape, augment: shape[0] == 3)
            if layers && gpu == nil { timeLayers(name, trainStep) }
            let (tr, ev) = (median(train), median(eval))
            let base = Self.pytorchBaseline[name]!
            print("| \(name) | \(String(format: "%.3f", fwdFlops / 1e6)) | \(spread(train)) | \(spread(eval)) | "
                  + "\(String(format: "%.1f", tr * trainFlops / 1e9)) | \(String(format: "%.1f", ev * fwdFlops / 1e9)) | "
                  + "\(String(format: "%.2f×", tr / base.train)) | \(String(format: "%.2f×", ev / base.eval)) |")
            print("  data loader alone (\(shape[0] == 3 ? "crop + flip" : "no augmentation"), 1 thread): "
                  + "\(String(format: "%.0f", loader)) img/s")
            rows.append(["net": name, "batch": batch, "loader": loader, "fwd_flops": fwdFlops, "train_flops": trainFlops, "train": train,
                         "device": gpu?.description ?? "cpu", "peak_gflops": gpu?.float32PeakGFLOPS ?? cpuPeak * Double(threads),
                         "eval": eval, "train_gflops": tr * trainFlops / 1e9, "eval_gflops": ev * fwdFlops / 1e9,
                         "pytorch_train": base.train, "pytorch_eval": base.eval])
        }
        if convs { try timeConvolutions() }
        if let json {
            let doc: [String: Any] = [
                "backend": Compute.backend.name, "threads": threads, "batch": batch, "activation": "\(activation)",
                "min_time": minTime, "reps": reps, "warmup": warmup, "results": rows,
                "peak_rss_mib": peakResidentMiB(), "code_version": codeVersion(), "machine": machineDescription(),
            ]
            let data = try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: json), options: .atomic)
        }
    }

    /// ms per call of forward, backward-data and backward-weights for each conv geometry, on the backend
    /// the nets use and on each alternative: oneDNN alone, the direct kernels alone (where they apply),
    /// the reference path.
    func timeConvolutions() throws {
        print("\n| conv geometry | backend | forward ms | backward-data ms | backward-weights ms | implementation |")
        print("|---|---|---|---|---|---|")
        var backends: [ConvolutionBackend] = [Compute.backend]
        if let mixed = Compute.backend as? OneDNNBackend, mixed.usesDirectKernels, let plain = OneDNNBackend.make() {
            plain.usesDirectKernels = false
            backends.append(plain)
        }
        backends += [DirectBackend(), Compute.reference]
        var rng = SplitMix64(seed: 1)
        for name in netList {
            let net = makeNetwork(named: name, activation: .float, seed: 0)
            _ = net.forward(Tensor(zeros: [batch] + inputShape(ofNetwork: name)!), training: false)
            var seen = Set<Conv2DGeometry>(), first = true
            func walk(_ l: Layer) {
                if let c = l as? Conv2d, let g = c.lastGeometry, seen.insert(g).inserted {
                    let x = Tensor(zeros: [g.inputCount]), w = Tensor(zeros: [g.weightCount])
                    let y = Tensor(zeros: [g.outputCount]), dx = Tensor(zeros: [g.inputCount]), dw = Tensor(zeros: [g.weightCount])
                    for i in 0..<x.count { x[i] = rng.nextGaussian() }
                    for i in 0..<w.count { w[i] = rng.nextGaussian() }
                    for backend in backends {
                        if backend is DirectBackend, !(g.directShape.map(DirectConvolution.supports) ?? false) { continue }
                        let conv = backend.convolution(g, bias: false)
                        let f = milliseconds { conv.forward(input: x.pointer, weight: w.pointer, bias: nil, output: y.pointer) }
                        let d = first ? nil : milliseconds {
                            conv.backwardData(outputGrad: y.pointer, weight: w.pointer, inputGrad: dx.pointer)
                        }
                        let b = milliseconds {
                            conv.backwardWeights(input: x.pointer, outputGrad: y.pointer, weightGrad: dw.pointer, biasGrad: nil)
                        }
                        print("| \(name) \(g)\(first ? " (first: no dx)" : "") | \(backend.name) | "
                              + "\(String(format: "%.2f", f)) | \(d.map { String(format: "%.2f", $0) } ?? "–") | "
                              + "\(String(format: "%.2f", b)) | \(conv.implementation) |")
                    }
                    first = false
                }
                for ch in l.children { walk(ch.layer) }
            }
            walk(net.root)
        }
    }

    /// Images/s of the training batcher alone (uint8 → normalised float batches, shuffled, augmented for
    /// CIFAR) over one 10,000-image epoch of random pixels: it must far exceed the training rate.
    func loaderImagesPerSecond(shape: [Int], augment: Bool) throws -> Double {
        let count = 10_000, size = shape.reduce(1, *)
        var rng = SplitMix64(seed: 2)
        let images = (0..<(count * size)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let labels = (0..<count).map { _ in UInt8(rng.next(below: 10)) }
        let batcher = try Batcher(images: images, labels: labels, count: count, channels: shape[0], height: shape[1],
                                  width: shape[2], batchSize: batch, mean: Array(repeating: 0.5, count: shape[0]),
                                  std: Array(repeating: 0.25, count: shape[0]), shuffle: true,
                                  augmentation: augment ? .cropAndFlip(padding: 4) : .none, seed: 0)
        let start = DispatchTime.now().uptimeNanoseconds
        var seen = 0
        for i in 0..<batcher.batchesPerEpoch { seen += batcher.batch(epoch: 0, index: i).count }
        return Double(seen) / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }

    /// ms per training step of each layer, forward and backward, over 20 steps after the timed runs.
    func timeLayers(_ net: String, _ step: () -> Void) {
        LayerTimer.reset()
        LayerTimer.enabled = true
        let steps = 20
        for _ in 0..<steps { step() }
        LayerTimer.enabled = false
        let rows = LayerTimer.report
        let total = rows.reduce(0) { $0 + $1.forward + $1.backward }
        print("\n| \(net) layer (input shape) | forward ms | backward ms | share of layer time |")
        print("|---|---|---|---|")
        for r in rows {
            print("| \(r.label) | \(String(format: "%.3f", 1000 * r.forward / Double(steps))) | "
                  + "\(String(format: "%.3f", 1000 * r.backward / Double(steps))) | "
                  + "\(String(format: "%.1f %%", 100 * (r.forward + r.backward) / total)) |")
        }
        print("")
    }

    /// One table from a `make bench` folder: per net, our and PyTorch's train and eval img/s (medians
    /// over every repetition of every round), the ratios, our GFLOP/s and % of the measured FMA peak.
    /// Pools a `make bench` folder: ste-<net>-b<batch>-r<k>.json (ours), torch-…json (the peer, eager) and
    /// torchc-…json (the peer under torch.compile) — every repetition of every round, per net and batch size.
    func summarize(folder: String) throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".json") }.sorted()
        guard !files.isEmpty else { throw ValidationError("\(folder): no bench JSON files (run make bench)") }
        struct Timings {
            var train: [Double] = [], eval: [Double] = [], loader: [Double] = []
            var trainFlops = 0.0, fwdFlops = 0.0, rss = 0.0, threads = 0
            /// The peak GFLOP/s (all threads, or the GPU) that each run recorded.
            var peaks: [Double] = []
            var device = "cpu"
        }
        struct Key: Hashable, Comparable {
            var net: String, batch: Int
            static func < (a: Key, b: Key) -> Bool {
                (networkNames.firstIndex(of: a.net) ?? 9, a.batch) < (networkNames.firstIndex(of: b.net) ?? 9, b.batch)
            }
        }
        enum Side { case ours, eager, compiled }
        var table: [Side: [Key: Timings]] = [.ours: [:], .eager: [:], .compiled: [:]]
        var compileMode: String?
        for file in files {
            let path = folder + "/" + file
            guard let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any],
                  let rows = doc["results"] as? [[String: Any]] else { throw ValidationError("\(path): not a bench result") }
            let side: Side = file.hasPrefix("torchc-") ? .compiled : file.hasPrefix("torch-") ? .eager : .ours
            if side == .compiled { compileMode = (doc["config"] as? [String: Any])?["compile"] as? String }
            for row in rows {
                guard let net = row["net"] as? String, let train = row["train"] as? [Double], let eval = row["eval"] as? [Double]
                else { continue }
                let key = Key(net: net, batch: row["batch"] as? Int ?? 128)
                var t = table[side]![key] ?? Timings()
                t.train += train
                t.eval += eval
                if let l = row["loader"] as? Double { t.loader.append(l) }
                t.trainFlops = row["train_flops"] as? Double ?? 0
                t.fwdFlops = row["fwd_flops"] as? Double ?? 0
                t.rss = Swift.max(t.rss, doc["peak_rss_mib"] as? Double ?? 0)
                t.threads = doc["threads"] as? Int ?? 0
                if let p = row["peak_gflops"] as? Double { t.peaks.append(p) }
                if side == .ours { t.device = row["device"] as? String ?? "cpu" }
                table[side]![key] = t
            }
        }
        func f0(_ v: Double) -> String { String(format: "%.0f", v) }
        func ratio(_ a: Double, _ b: Double?) -> String { b.map { String(format: "%.2f×", a / $0) } ?? "–" }
        print("| net | batch | threads | train img/s: ours (n) | eager (n) | ×eager | compiled (n) | ×compiled "
              + "| eval img/s: ours (n) | eager (n) | ×eager | compiled (n) | ×compiled | our train GFLOP/s | % of peak | our peak RSS MiB |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for key in table[.ours]!.keys.sorted() {
            let o = table[.ours]![key]!
            let e = table[.eager]![key], c = table[.compiled]![key]
            // Without a runnable peer, the recorded eager baseline (batch 128 only) stands in, marked as such.
            let recorded = e == nil && key.batch == 128 ? Self.pytorchBaseline[key.net] : nil
            let eTrain = e.map { median($0.train) } ?? recorded?.train, eEval = e.map { median($0.eval) } ?? recorded?.eval
            let eN = e.map { "(\($0.train.count))" } ?? (recorded == nil ? "" : "(recorded)")
            let (tr, ev) = (median(o.train), median(o.eval))
            let gflops = tr * o.trainFlops / 1e9
            let peak = o.peaks.last ?? fallbackPeak * Double(o.threads)
            let cTrain: Double? = c.map { median($0.train) }, cEval: Double? = c.map { median($0.eval) }
            let cN: String = c.map { "(\($0.train.count))" } ?? ""
            func value(_ v: Double?, _ n: String) -> String { v.map { "\(f0($0)) \(n)" } ?? "–" }
            var cells: [String] = [key.net, "\(key.batch)", "\(o.threads)", "\(f0(tr)) (\(o.train.count))"]
            cells += [value(eTrain, eN), ratio(tr, eTrain), value(cTrain, cN), ratio(tr, cTrain)]
            cells += ["\(f0(ev)) (\(o.eval.count))", value(eEval, eN), ratio(ev, eEval), value(cEval, cN), ratio(ev, cEval)]
            cells += [String(format: "%.1f", gflops), String(format: "%.0f %%", 100 * gflops / peak), f0(o.rss)]
            print("| " + cells.joined(separator: " | ") + " |")
        }
        let onGPU = table[.ours]!.values.contains { $0.device.hasPrefix("cuda") }
        let ourPeaks = table[.ours]!.values.flatMap { t in t.peaks.map { $0 / Double(Swift.max(1, t.threads)) } }
        print("\nPeer: eager PyTorch and PyTorch under torch.compile(mode=\"\(compileMode ?? "default")\"), same "
              + (onGPU ? "GPU" : "threads") + ", same synthetic protocol (tools/peer/ste_torch.py). Ratios are of medians over "
              + "every repetition of every round; rounds interleave the three sides per net because the machine drifts between "
              + "runs. Peak: " + (onGPU ? "the GPU's nominal float32 peak (SMs × 128 lanes × 2 × clock)."
                  : ourPeaks.isEmpty ? "\(f0(fallbackPeak)) GFLOP/s per thread (the files record none)."
                  : "the fp32 FMA rate each of our runs recorded (measured at its start unless --peak-per-thread gave it), "
                    + "\(String(format: "%.1f", median(ourPeaks))) GFLOP/s per thread, median of \(ourPeaks.count)."))
    }

    /// Per thread, for files from before runs recorded their peak: --peak-per-thread, else the 1-thread FMA rate
    /// tools/peer/README.md measured.
    var fallbackPeak: Double { peakPerThread ?? 90 }

    func peakResidentMiB() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_maxrss) / 1024  // Linux: KiB
    }

    /// Median ms of 5 calls after 2 warm-up calls.
    func milliseconds(_ body: () -> Void) -> Double {
        body(); body()
        let t = (0..<5).map { _ in
            let s = DispatchTime.now().uptimeNanoseconds
            body()
            return Double(DispatchTime.now().uptimeNanoseconds - s) / 1e6
        }
        return median(t)
    }

    /// images/s of each repetition.
    func time(_ step: () -> Void) -> [Double] {
        for _ in 0..<warmup { step() }
        return (0..<reps).map { _ in
            var steps = 0
            let start = DispatchTime.now().uptimeNanoseconds
            var elapsed = 0.0
            while steps < 5 || elapsed < minTime {
                step()
                steps += 1
                elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            }
            return Double(steps * batch) / elapsed
        }
    }

    func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    func spread(_ v: [Double]) -> String {
        [v.min()!, median(v), v.max()!].map { String(format: "%.0f", $0) }.joined(separator: "/")
    }
}
