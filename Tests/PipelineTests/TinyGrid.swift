// A tiny MNIST-shaped dataset and a one-net grid (LeNet-5, 3 epochs of 3 batches) for the tests of the
// training stages: resume, repel runs, fault injection.
import Foundation
import Storage
import TestSupport

@testable import Cluster
@testable import Experiments
@testable import Report

enum TinyGrid {
    /// Class-dependent blobs so training has something to learn; deterministic bytes.
    static func writeDataset(_ path: String, train: Int, test: Int) throws {
        let w = try H5Writer(path: path)
        for (name, n) in [("train", train), ("test", test)] {
            var images = [UInt8](repeating: 0, count: n * 28 * 28)
            var labels = [UInt8](repeating: 0, count: n)
            for i in 0..<n {
                let label = (i * 7 + 3) % 10
                labels[i] = UInt8(label)
                for p in 0..<(28 * 28) where (p / 28 + p % 28 + label * 3 + i) % 10 < 3 {
                    images[i * 784 + p] = UInt8((p * 31 + label * 17) % 256)
                }
            }
            try w.write("/\(name)/images", images, shape: [n, 28, 28])
            try w.write("/\(name)/labels", labels, shape: [n])
        }
        try w.setAttributes(["layout": .string("NHW"), "n_train": .int(Int64(train)), "n_test": .int(Int64(test)),
            "mean": .doubles([0.13]), "std": .doubles([0.3])])
        try w.commit()
    }

    static func writeGrid(_ path: String, lr: Double, repel: String = "") throws {
        let phase = """
                  epochs: 3
                  batch_size: 32
                  optimizer: sgd
                  lr: \(lr)
                  momentum: 0.9
                  weight_decay: 1.0e-4
                  schedule: {kind: multistep, milestones: [0.5], gamma: 0.1}
            """
        let text = """
            experiment: resume-test
            reference: \(repositoryRoot)/experiments/reference/yin2019-table1.csv
            seeds: [0]
            bits: [2]
            stes: [clipped]
            quantizer: {rounding: ceil, alpha: {2: 0.6511}}
            nets:
              lenet5:
                dataset: mnist
                data: tiny.h5
                augment: false
                normalize: {mean: [0.1307], std: [0.3081]}
                eval_batch_size: 64
                pretrain:
            \(phase)
                train:
            \(phase)
            \(repel)
            """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// An executor for run `id` of grid.yaml (in the current folder) writing below `root`; parents are read
    /// from `root` too.
    static func executor(_ id: String, root: String) throws -> RunExecutor {
        let config = try ExperimentConfig.load("grid.yaml")
        var run = try config.runConfig(RunID(id)!, profile: "paper")
        if let initFrom = run.initFrom { run.initFrom = initFrom.replacingOccurrences(of: "results/", with: root + "/") }
        return RunExecutor(config: run, resultsRoot: root, quiet: true)
    }

    static func run(_ id: String, root: String, stopAfter: Int? = nil) throws -> RunOutcome {
        let e = try executor(id, root: root)
        e.stopAfterEpochs = stopAfter
        return try e.run()
    }

    /// Every tensor of a checkpoint (parameters, BN statistics, optimizer state) by path.
    static func tensors(_ path: String) throws -> [String: [Float]] {
        let r = try H5Reader(path: path)
        var out: [String: [Float]] = [:]
        func walk(_ group: String) throws {
            for (name, kind) in try r.children(of: group) {
                let child = "\(group)/\(name)"
                if kind == .group { try walk(child) } else if group != "/history" && !child.hasPrefix("/history") {
                    out[child] = try r.read(child, as: Float.self).values
                }
            }
        }
        for g in ["/params", "/buffers", "/optimizer"] where r.contains(g) { try walk(g) }
        return out
    }
}
