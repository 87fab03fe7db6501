// The experiment grid as data: strict parsing, rejection messages naming the key and the file,
// run ids, stamps, and the verdict rule.
import Datasets
import Foundation
import Storage
import TestSupport
import XCTest

@testable import Cluster
@testable import Experiments
@testable import Report

final class ConfigTests: XCTestCase {
    var dir: String!
    var temporary: TemporaryFolder!

    override func setUpWithError() throws {
        temporary = try TemporaryFolder("config-tests")
        dir = temporary.path
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(repositoryRoot))
    }

    override func tearDownWithError() throws { temporary.remove() }

    func testShippedGridLoadsWithThePaperProtocol() throws {
        let c = try ExperimentConfig.load("experiments/table1.yaml")
        XCTAssertEqual(c.bits, [2, 4])
        XCTAssertEqual(c.stes.map(\.rawValue), ["identity", "relu", "clipped"])
        // The paper's Table 2, exactly: epochs, batch, initial lr, ×0.1 at the listed epochs.
        for (net, epochs, batch, lr, milestones) in [("lenet5", 50, 64, 0.1, [20, 40]), ("vgg11", 200, 128, 0.01, [80, 140]),
            ("resnet20", 200, 128, 0.01, [80, 140])]
        {
            let t = c.nets[net]!.train
            XCTAssertEqual(t.epochs, epochs, net)
            XCTAssertEqual(t.batchSize, batch, net)
            XCTAssertEqual(t.lr, lr, net)
            XCTAssertEqual(t.momentum, 0.9, net)
            XCTAssertEqual(t.schedule.kind, "multistep", net)
            XCTAssertEqual(t.schedule.gamma, 0.1, net)
            XCTAssertEqual(t.schedule.milestoneEpochs, milestones, net)
        }
        // The rates the runner uses land on those epochs: 0.1 until epoch 20, 0.01 until 40, then 0.001.
        let lenet = c.nets["lenet5"]!.train
        let rates = (0..<50).map { schedule(lenet).rate(epoch: $0, step: 0, stepsPerEpoch: 938, totalEpochs: 50) }
        XCTAssertEqual(rates[19], 0.1)
        XCTAssertEqual(rates[20], 0.1 * 0.1, accuracy: 1e-15)
        XCTAssertEqual(rates[39], 0.1 * 0.1, accuracy: 1e-15)
        XCTAssertEqual(rates[40], 0.1 * 0.1 * 0.1, accuracy: 1e-15)
        XCTAssertEqual(c.alpha?[2], 0.6511)
        XCTAssertEqual(c.alpha?[4], 0.1946)
        XCTAssertEqual(c.repel.map(\.name), ["appendix-c", "fig2"])
        let fig2 = c.repel.first { $0.name == "fig2" }!
        XCTAssertEqual(fig2.warmupLR, 1e-5)
        XCTAssertTrue(fig2.thenNormalSchedule)
        let runs = c.allRuns()
        XCTAssertEqual(runs.cells.count, 3 * 2 * 3 * c.seeds.count)
        XCTAssertEqual(runs.pretrains.count, 3 * c.seeds.count)
        XCTAssertEqual(runs.repel.count, 3 * c.seeds.count)
        // Fig. 2: lr 1e-5 for 20 epochs, then ResNet-20's Table 2 row; Appendix C: the lr 1e-5 phase alone.
        let f2 = try c.runConfig(RunID("resnet20-a4-identity-from-clipped-s0")!, profile: "paper")
        XCTAssertEqual(f2.phases.map(\.epochs), [20, 200])
        XCTAssertEqual(f2.phases[1], c.nets["resnet20"]!.train)
        XCTAssertEqual(f2.initFrom, "results/runs/resnet20-a4-clipped-s0/checkpoint.h5")
        let appC = try c.runConfig(RunID("resnet20-a2-relu-from-clipped-s1")!, profile: "paper")
        XCTAssertEqual(appC.phases.map(\.epochs), [20])
        XCTAssertEqual(appC.phases[0].lr, 1e-5)
        XCTAssertEqual(appC.activation.ste, .relu)
        XCTAssertEqual(appC.initFrom, "results/runs/resnet20-a2-clipped-s1/checkpoint.h5")
        XCTAssertThrowsError(try c.runConfig(RunID("resnet20-a2-identity-from-clipped-s0")!, profile: "paper"))
        let smoke = try c.resolved(profile: "smoke")
        XCTAssertEqual(smoke.nets.keys.sorted(), ["lenet5"])
        XCTAssertEqual(smoke.nets["lenet5"]!.train.epochs, 2)
        XCTAssertEqual(smoke.nets["lenet5"]!.train.schedule.milestoneEpochs, [1, 2])  // 20, 40 of 50 scaled to 2
        XCTAssertEqual(smoke.allRuns().repel.map { "\($0)" }, ["lenet5-a2-relu-from-clipped-s0",
            "lenet5-a4-identity-from-relu-s0", "lenet5-a4-identity-from-clipped-s0"])
        // The Caffe-layout ablation changes only its own runs; the classic runs' stamps do not mention widths.
        let caffe = try c.resolved(profile: "lenet5-caffe")
        XCTAssertNotNil(caffe.profiles["lenet5-caffe"]?.ablation)
        let caffeRun = try caffe.runConfig(RunID("lenet5-a2-relu-s0")!, profile: "lenet5-caffe")
        XCTAssertEqual(caffeRun.lenet5Widths, [20, 50, 500])
        XCTAssertEqual(caffeRun.phases, [c.nets["lenet5"]!.train])
        XCTAssertEqual(caffeRun.initFrom, "results/lenet5-caffe/pretrain/lenet5-s0/checkpoint.h5")
        let classic = try c.runConfig(RunID("lenet5-a2-relu-s0")!, profile: "paper")
        XCTAssertNil(classic.lenet5Widths)
        XCTAssertFalse(classic.canonicalJSON().contains("lenet5Widths"))
    }

    /// Each bad config is rejected with a message naming the file and the key.
    func testRejectionsNameKeyAndFile() throws {
        let good = try String(contentsOfFile: "experiments/table1.yaml", encoding: .utf8)
        let cases: [(String, String, String)] = [
            ("experiment: yin2019-table1", "experiment: yin2019-table1\nbogus: 1", "bogus: unknown key"),
            ("stes: [identity, relu, clipped]", "stes: [identity, relu, clipt]", "stes[2]: unknown STE 'clipt'"),
            ("bits: [2, 4]", "bits: [2, 9]", "bits[1]: bits must be in 1...8, found 9"),
            ("      epochs: 50                 # paper (Table 2)", "      epochs: 0", "nets.lenet5.train.epochs: must be positive, found 0"),
            ("    train:\n      epochs: 50                 # paper (Table 2)\n      batch_size: 64             # paper (Table 2)",
                "    train:\n      epochs: 50\n      batch_size: -1", "nets.lenet5.train.batch_size: must be positive, found -1"),
            ("reference: experiments/reference/yin2019-table1.csv", "reference: experiments/reference/nope.csv",
                "reference: file 'experiments/reference/nope.csv' does not exist"),
            ("      lr: 0.1                    # paper (Table 2)", "      learning_rate: 0.1", "nets.lenet5.train.learning_rate: unknown key"),
            ("    lenet5_widths: [20, 50, 500]", "    lenet5_widths: [20, 50]",
                "profiles.lenet5-caffe.lenet5_widths: expected 4 widths"),
            ("milestones: [20, 40]", "milestones: [20, 0.8]", "nets.lenet5.train.schedule.milestones[1]: mixes epochs and fractions"),
            ("milestones: [20, 40]", "milestones: [20, 50]", "nets.lenet5.train.schedule.milestones[1]: mixes epochs and fractions, or an epoch outside 1..<50"),
            ("    from: [clipped]              # paper: the 2-bit clipped-ReLU minimum (88.38 %)", "    from: [relu]", "repel.appendix-c.from: starts from the relu minimum with the same STE"),
            ("    bits: 2                      # paper\n    ste: relu                    # paper: the vanilla-ReLU STE\n    from: [clipped]",
                "    bits: 4\n    ste: identity\n    from: [relu]",
                "repel.fig2.from: resnet20 4-bit identity from relu is already run by repel.appendix-c"),
            ("    repel_net: lenet5", "    repel_net: lenet7", "profiles.smoke.repel_net: unknown net 'lenet7'"),
        ]
        for (old, new, expected) in cases {
            XCTAssertTrue(good.contains(old), "fixture text not found: \(old)")
            let path = dir + "/bad.yaml"
            try good.replacingOccurrences(of: old, with: new).write(toFile: path, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try ExperimentConfig.load(path), expected) { error in
                XCTAssertTrue("\(error)".hasPrefix(path + ": "), "\(error)")
                XCTAssertTrue("\(error)".contains(expected), "expected '\(expected)' in '\(error)'")
            }
        }
        XCTAssertThrowsError(try ExperimentConfig.load(dir + "/absent.yaml")) { error in
            XCTAssertTrue("\(error)".contains("absent.yaml: no such file"), "\(error)")
        }
    }

    /// The report's list of the project's choices comes from the config's `# choice:` marks, with dotted key paths.
    func testChoiceMarksWithTheirKeyPaths() {
        let text = """
            seeds: [0, 1]                # choice: a spread
            bits: [2]                    # paper
            nets:
              lenet5:
                train:
                  weight_decay: 1.0e-4   # choice: the authors' code
              vgg11:
                pretrain:                # choice: the usual recipe
                  epochs: 200
            """
        let marks = choiceMarks(text)
        XCTAssertEqual(marks.map(\.key), ["seeds", "nets.lenet5.train.weight_decay", "nets.vgg11.pretrain"])
        XCTAssertEqual(marks.map(\.value), ["[0, 1]", "1.0e-4", ""])
        XCTAssertEqual(marks.map(\.reason), ["a spread", "the authors' code", "the usual recipe"])
        let shipped = choiceMarks((try? String(contentsOfFile: "experiments/table1.yaml", encoding: .utf8)) ?? "")
        XCTAssertTrue(shipped.contains { $0.key == "nets.lenet5.train.weight_decay" && $0.value == "1.0e-4" }, "\(shipped)")
    }

    /// --set overrides any key (the value in YAML) before the usual checks, selects a results folder of its own,
    /// and is carried into every Make rule of the plan; a profile's `set:` list is a named override set.
    func testOverridesAndProfileSets() throws {
        let base = try ExperimentConfig.load("experiments/table1.yaml")
        let c = try ExperimentConfig.load("experiments/table1.yaml", overrides: ["nets.lenet5.train.lr=0.05", "seeds=[0, 1]"])
        XCTAssertEqual(c.nets["lenet5"]!.train.lr, 0.05)
        XCTAssertEqual(c.seeds, [0, 1])
        XCTAssertEqual(c.nets["resnet20"], base.nets["resnet20"], "nothing else changes")
        XCTAssertEqual(c.resultsRoot(profile: "paper"), "results/set-nets.lenet5.train.lr-0.05+seeds-0,1".filter { $0 != "," })
        XCTAssertEqual(base.resultsRoot(profile: "paper"), "results")
        let smoke = try ExperimentConfig.load("experiments/table1.yaml", profile: "smoke", overrides: ["stes=[relu, log-tailed]"])
            .resolved(profile: "smoke")
        XCTAssertEqual(smoke.stes, [.relu, .logTailed])
        XCTAssertEqual(smoke.resultsRoot(profile: "smoke"), "results/smoke/set-stes-relulog-tailed")
        let plan = try Plan(config: smoke, profile: "smoke").makefile(present: { $0 != "cifar10" })
        XCTAssertTrue(plan.contains("PLAN_ROOT := results/smoke/set-stes-relulog-tailed\n"), plan)
        XCTAssertTrue(plan.contains("--profile smoke --set 'stes=[relu, log-tailed]' --run lenet5-a2-log-tailed-s0"), plan)
        // The same checks as the file: a typo on the path, a bad value, a malformed assignment.
        for (assignment, expected) in [
            ("nets.lenet6.train.lr=0.1", "--set: no key 'nets.lenet6' in the file (known at that level: lenet5, resnet20, vgg11)"),
            ("nets.lenet5.train.lr=fast", "nets.lenet5.train.lr: expected a number"),
            ("nets.lenet5.train.learning_rate=0.1", "nets.lenet5.train.learning_rate: unknown key"),
            ("stes=[relu, clipt]", "stes[1]: unknown STE 'clipt'"),
            ("lr", "--set: 'lr' is not key.path=value"),
        ] {
            XCTAssertThrowsError(try ExperimentConfig.load("experiments/table1.yaml", overrides: [assignment])) { error in
                XCTAssertTrue("\(error)".contains(expected), "expected '\(expected)' in '\(error)'")
            }
        }
        // A profile whose set: list overrides keys the fixed profile keys do not cover.
        let text = try String(contentsOfFile: "experiments/table1.yaml", encoding: .utf8)
            .replacingOccurrences(of: "  smoke:                         # the whole pipeline",
                with: "  lowmom:\n    set: [nets.lenet5.train.momentum=0.5]\n  smoke:                         # the whole pipeline")
        try text.write(toFile: dir + "/sets.yaml", atomically: true, encoding: .utf8)
        let lowmom = try ExperimentConfig.load(dir + "/sets.yaml", profile: "lowmom").resolved(profile: "lowmom")
        XCTAssertEqual(lowmom.nets["lenet5"]!.train.momentum, 0.5)
        XCTAssertEqual(lowmom.resultsRoot(profile: "lowmom"), "results/lowmom", "a profile's set needs no folder of its own")
        XCTAssertEqual(try ExperimentConfig.load(dir + "/sets.yaml").nets["lenet5"]!.train.momentum, 0.9, "only that profile")
    }

    func testRunIDsRoundTripAndRejectGarbage() {
        for text in ["lenet5-s0", "lenet5-a2-clipped-s0", "resnet20-a4-identity-from-clipped-s2", "vgg11-a4-log-tailed-s1"] {
            XCTAssertEqual(RunID(text).map { "\($0)" }, text)
        }
        XCTAssertEqual(RunID("lenet5-a2-clipped-s0")?.parent.map { "\($0)" }, "lenet5-s0")
        XCTAssertEqual(RunID("resnet20-a4-identity-from-relu-s1")?.parent.map { "\($0)" }, "resnet20-a4-relu-s1")
        for bad in ["", "lenet5", "lenet5-a9-clipped-s0", "lenet5-a2-clip-s0", "lenet5-a2-clipped-x0", "lenet5-s-1",
            "lenet5-a2-clipped-from-s0", "lenet5-s01"]
        {
            XCTAssertNil(RunID(bad), bad)
        }
        // The message names what is wrong.
        for (bad, says) in [("lenet5-a2-foo-s0", "unknown STE 'foo' (known: identity, relu, clipped, log-tailed)"),
            ("resnet20-a4-identity-from-clip-s0", "unknown STE 'clip'"), ("lenet5-a9-clipped-s0", "'a9' should be a<bits>"),
            ("lenet5-a2-clipped", "it must end in -s<seed>")]
        {
            XCTAssertTrue(RunID.whyInvalid(bad).contains(says), RunID.whyInvalid(bad))
        }
    }

    /// The campaign profile: the paper's low-LR steps as whole epochs of the subset, a control beside each repel
    /// start (the low-LR phase only), a balanced subset recorded in each run's configuration, the criteria file.
    func testClaimsProfileStepsControlsAndBalancedSubset() throws {
        let c = try ExperimentConfig.load("experiments/fashion.yaml").resolved(profile: "resnet20-claims")
        // 8,000 images at batch 128: 63 steps an epoch (the last batch is partial); 7,820 steps → 124 epochs.
        XCTAssertEqual(c.repel.map(\.warmupEpochs), [124, 124])
        XCTAssertEqual(c.epochs(ofSteps: 7820, net: c.nets["resnet20"]!, trainSubset: nil), 17)  // 469 steps an epoch
        let runs = c.allRuns()
        XCTAssertEqual(runs.pretrains.count, 3)
        XCTAssertEqual(runs.cells.count, 18)
        let controls = runs.repel.filter(\.isControl).map { "\($0)" }
        XCTAssertEqual(Set(controls), Set(["a2-clipped-from-clipped", "a4-relu-from-relu", "a4-clipped-from-clipped"]
            .flatMap { m in (0...2).map { "resnet20-\(m)-s\($0)" } }))
        XCTAssertEqual(runs.repel.count, 18)
        let control = try c.runConfig(RunID("resnet20-a4-relu-from-relu-s1")!, profile: "resnet20-claims")
        let repelled = try c.runConfig(RunID("resnet20-a4-identity-from-relu-s1")!, profile: "resnet20-claims")
        XCTAssertEqual(control.phases.map(\.epochs), [124])
        XCTAssertEqual(repelled.phases.map(\.epochs), [124, 60])
        XCTAssertEqual(control.phases[0], repelled.phases[0])
        XCTAssertEqual(control.initFrom, repelled.initFrom)
        XCTAssertEqual(control.activation.ste, .relu)
        XCTAssertEqual(control.trainSubsetBalanced, true)
        XCTAssertNil(control.testSubset)
        XCTAssertTrue(control.canonicalJSON().contains("\"trainSubsetBalanced\":true"))
        // Other profiles: no controls, and no new key in their runs' configurations (their stamps are unchanged).
        let budget = try ExperimentConfig.load("experiments/fashion.yaml").resolved(profile: "cpu-budget")
        XCTAssertFalse(budget.allRuns().repel.contains(where: \.isControl))
        XCTAssertFalse(try budget.runConfig(RunID("resnet20-a4-relu-s0")!, profile: "cpu-budget").canonicalJSON()
            .contains("Balanced"))
        XCTAssertNil(budget.repelSpec(for: RunID("resnet20-a4-relu-from-relu-s0")!))
        // The balanced subset: the first n/10 images of each class, in file order.
        let labels: [UInt8] = [0, 0, 0, 1, 2, 1, 2, 2, 1, 0, 1, 2]
        let split = DatasetSplit(images: (0..<labels.count).map(UInt8.init), labels: labels, count: labels.count,
            channels: 1, height: 1, width: 1)
        let b = try LoadedData.balanced(split, 6, file: "x.h5")
        XCTAssertEqual(b.labels, [0, 0, 1, 2, 1, 2])
        XCTAssertEqual(b.images, [0, 1, 3, 4, 5, 6])
        XCTAssertThrowsError(try LoadedData.balanced(split, 7, file: "x.h5"))
        XCTAssertThrowsError(try LoadedData.balanced(split, 15, file: "x.h5"))  // 5 of each class: too few
    }

    /// With `resume_from_committed`, a run whose files record its configuration and verify is done whatever the
    /// files' dates (a fresh clone); a file of another configuration, or a damaged one, is not.
    func testPlanTakesCommittedRunsAsDoneByContent() throws {
        let c = try ExperimentConfig.load("experiments/fashion.yaml").resolved(profile: "resnet20-claims")
        var moved = c
        moved.results = dir
        let plan = Plan(config: moved, profile: "resnet20-claims")
        let id = RunID("resnet20-a4-relu-s0")!
        let run = try moved.runConfig(id, profile: "resnet20-claims")
        let folder = "\(moved.resultsRoot(profile: "resnet20-claims"))/\(id.folder)"
        try makeDirectories(folder)
        func write(_ file: String, configuration: String) throws {
            let w = try H5Writer(path: "\(folder)/\(file)")
            try Provenance(stage: "eval", configuration: configuration, inputs: [], libraries: [:]).write(to: w)
            try w.write("/accuracy", [1.0], shape: [1])
            try w.commit()
        }
        XCTAssertFalse(try plan.makefile(present: { $0 != "cifar10" }).contains("# \(id): done"))
        try write("eval.h5", configuration: run.canonicalJSON())
        try write("checkpoint.h5", configuration: run.canonicalJSON())
        let text = try plan.makefile(present: { $0 != "cifar10" })
        XCTAssertTrue(text.contains("# \(id): done"))
        XCTAssertTrue(text.contains("\(folder)/checkpoint.h5:\n"), "a done run's kept checkpoint has no prerequisites")
        XCTAssertTrue(plan.startCheckpoints().contains("\(folder)/checkpoint.h5"))
        try write("eval.h5", configuration: run.canonicalJSON().replacingOccurrences(of: "\"seed\":0", with: "\"seed\":1"))
        try write("checkpoint.h5", configuration: "{}")
        XCTAssertFalse(try plan.makefile(present: { $0 != "cifar10" }).contains("# \(id): done"))
    }

    /// An override of a key the profile sets itself is refused (the profile would overrule it silently), naming the
    /// profile's key to set instead; the profile's own key may be overridden.
    func testOverrideThatTheProfileWouldOverruleIsRefused() throws {
        XCTAssertThrowsError(try ExperimentConfig.load("experiments/table1.yaml", profile: "smoke", overrides: ["seeds=[0,1]"])
            .resolved(profile: "smoke")) { error in
            XCTAssertTrue("\(error)".contains("profiles.smoke.seeds"), "\(error)")
        }
        XCTAssertThrowsError(try ExperimentConfig.load("experiments/table1.yaml", profile: "smoke",
            overrides: ["nets.lenet5.train.epochs=3"]).resolved(profile: "smoke"))
        let ok = try ExperimentConfig.load("experiments/table1.yaml", profile: "smoke", overrides: ["profiles.smoke.seeds=[0,1]"])
            .resolved(profile: "smoke")
        XCTAssertEqual(ok.seeds, [0, 1])
        // Epochs changed without their milestones: the error says how to change both.
        XCTAssertThrowsError(try ExperimentConfig.load("experiments/table1.yaml", overrides: ["nets.lenet5.train.epochs=3"])) { error in
            XCTAssertTrue("\(error)".contains("schedule.milestones=[0.4,0.8]"), "\(error)")
        }
    }

    /// An override shares every run it does not change with the config without it (its folder, its stamp): a SET of the
    /// quantized phase reuses the float pretrains; one of the pretrain retrains them, and everything after.
    func testOverridesShareTheRunsTheyDoNotChange() throws {
        let lr = try ExperimentConfig.load("experiments/table1.yaml", profile: "smoke", overrides: ["nets.lenet5.train.lr=0.05"])
            .resolved(profile: "smoke")
        let pretrain = RunID("lenet5-s0")!, cell = RunID("lenet5-a2-clipped-s0")!, repel = RunID("lenet5-a4-identity-from-relu-s0")!
        XCTAssertEqual(lr.runRoot(pretrain, profile: "smoke"), "results/smoke")
        XCTAssertEqual(lr.runRoot(cell, profile: "smoke"), "results/smoke/set-nets.lenet5.train.lr-0.05")
        XCTAssertEqual(try lr.runConfig(cell, profile: "smoke").initFrom, "results/smoke/pretrain/lenet5-s0/checkpoint.h5")
        XCTAssertEqual(lr.runRoot(repel, profile: "smoke"), "results/smoke/set-nets.lenet5.train.lr-0.05",
            "a repel run starts from a changed cell")
        let plan = try Plan(config: lr, profile: "smoke").makefile(present: { $0 != "cifar10" })
        XCTAssertTrue(plan.contains("results/smoke/set-nets.lenet5.train.lr-0.05/pretrain/lenet5-s0/eval.h5: results/smoke/pretrain/lenet5-s0/eval.h5"), plan)
        let epochs = try ExperimentConfig.load("experiments/table1.yaml", profile: "smoke",
            overrides: ["nets.lenet5.pretrain.lr=0.05"]).resolved(profile: "smoke")
        XCTAssertEqual(epochs.runRoot(pretrain, profile: "smoke"), "results/smoke/set-nets.lenet5.pretrain.lr-0.05")
        XCTAssertEqual(epochs.runRoot(cell, profile: "smoke"), "results/smoke/set-nets.lenet5.pretrain.lr-0.05",
            "a cell of a changed pretrain starts elsewhere: not shared")
        // Without overrides nothing changes.
        let plain = try ExperimentConfig.load("experiments/table1.yaml", profile: "smoke").resolved(profile: "smoke")
        XCTAssertEqual(plain.runRoot(cell, profile: "smoke"), "results/smoke")
        XCTAssertTrue(plain.base.isEmpty)
    }

    /// A stamp changes exactly when that run's resolved configuration changes.
    func testStampsChangeOnlyForTheEditedCell() throws {
        let c = try ExperimentConfig.load("experiments/table1.yaml")
        let id = RunID("lenet5-a2-clipped-s0")!
        let other = RunID("lenet5-a4-clipped-s0")!
        var edited = c
        edited.alpha![2] = 0.7
        XCTAssertNotEqual(try c.runConfig(id, profile: "paper").canonicalJSON(),
            try edited.runConfig(id, profile: "paper").canonicalJSON())
        XCTAssertEqual(try c.runConfig(other, profile: "paper").canonicalJSON(),
            try edited.runConfig(other, profile: "paper").canonicalJSON())
    }

    func testVerdictRule() {
        let key = CellKey(dataset: "mnist", net: "lenet5", bits: 2, ste: "clipped")
        // Binomial SE at 99.2 % on 10,000 images is 0.089 pp; seeds agree closely → tolerance ≈ 0.18 pp.
        let r = CellResult(key: key, accuracies: [99.20, 99.22, 99.18], losses: [5e-3, 6e-3, 5.5e-3], testTotal: 10000)
        XCTAssertEqual(r.accuracyTolerance, 2 * (0.992 * 0.008 / 10000).squareRoot() * 100, accuracy: 1e-9)
        XCTAssertEqual(accuracyVerdict(r, paper: 99.23), .consistent)
        XCTAssertEqual(accuracyVerdict(r, paper: 99.50), .lower)
        XCTAssertEqual(accuracyVerdict(r, paper: 98.90), .higher)
        XCTAssertEqual(lossVerdict(r, paper: 5.4e-3), .consistent)
        XCTAssertEqual(lossVerdict(r, paper: 5.4e-2), .lower)
        // A wide seed spread widens the tolerance.
        let noisy = CellResult(key: key, accuracies: [98.0, 99.0, 100.0], losses: [1, 1, 1], testTotal: 10000)
        XCTAssertEqual(noisy.accuracyTolerance, 2 * 1.0 / 3.0.squareRoot(), accuracy: 1e-9)
    }

    /// Repelled claims are scored from the start (measured before the first step) to the end of the low-LR
    /// phase or of the run, per the claims file's `at` column; a profile that moves the runs to another net
    /// scores them there and says so.
    func testRepelledClaimsAreScoredAtTheirPhase() throws {
        func seed(_ s: Int, start: (Double, Double), lowLR: (Double, Double), end: (Double, Double)) -> RepelOutcome.Seed {
            RepelOutcome.Seed(seed: s, startLoss: start.0, startAccuracy: start.1, lowLRLoss: lowLR.0, lowLRAccuracy: lowLR.1,
                endLoss: end.0, endAccuracy: end.1, lowLREpochs: 20, epochs: 220)
        }
        // Fig. 2 from relu: up within the low-LR phase and at the end. From clipped: flat in the low-LR phase.
        // Appendix C: up in one seed of two, down in the mean.
        let repel: [RepelKey: RepelOutcome] = [
            RepelKey(net: "resnet20", bits: 4, from: "relu", ste: "identity"): RepelOutcome(seeds: [
                seed(0, start: (0.25, 86.6), lowLR: (0.4, 84.0), end: (1.3, 55.0))]),
            RepelKey(net: "resnet20", bits: 4, from: "clipped", ste: "identity"): RepelOutcome(seeds: [
                seed(0, start: (0.04, 91.2), lowLR: (0.039, 91.3), end: (1.2, 56.0))]),
            RepelKey(net: "resnet20", bits: 2, from: "clipped", ste: "relu"): RepelOutcome(seeds: [
                seed(0, start: (0.24, 88.4), lowLR: (0.25, 88.0), end: (0.25, 88.0)),
                seed(1, start: (0.24, 88.4), lowLR: (0.20, 88.9), end: (0.20, 88.9))]),
        ]
        let claims = Dictionary(uniqueKeysWithValues: try evaluateClaims("experiments/reference/yin2019-claims.csv",
            ours: [:], repel: repel).map { ($0.id, $0) })
        XCTAssertEqual(claims["fig2-from-relu-low-lr"]?.held, true)
        XCTAssertEqual(claims["fig2-from-relu-end"]?.held, true)
        XCTAssertEqual(claims["fig2-from-clipped-low-lr"]?.held, false)
        XCTAssertEqual(claims["fig2-from-clipped-end"]?.held, true)
        XCTAssertEqual(claims["appendix-c-from-clipped"]?.held, false)
        XCTAssertTrue(claims["appendix-c-from-clipped"]!.evidence.contains("in 1 of 2"), claims["appendix-c-from-clipped"]!.evidence)
        XCTAssertTrue(claims["appendix-c-from-clipped"]!.statement.contains("Appendix C"))
        XCTAssertNil(claims["order-resnet20-a2"]?.held, "cells not run")
        let elsewhere = try evaluateClaims("experiments/reference/yin2019-claims.csv", ours: [:], repel: repel,
            repelNetOverride: "lenet5")
        XCTAssertTrue(elsewhere.filter { $0.id.hasPrefix("fig2") }.allSatisfy { $0.held == nil && $0.statement.contains("on resnet20") })
    }

    func testReferenceTableIsThePapers() throws {
        let ref = try loadReference("experiments/reference/yin2019-table1.csv")
        XCTAssertEqual(ref.count, 18)
        XCTAssertEqual(ref[CellKey(dataset: "cifar10", net: "resnet20", bits: 2, ste: "clipped")]?.accuracy, 88.39)
        XCTAssertEqual(ref[CellKey(dataset: "mnist", net: "lenet5", bits: 4, ste: "relu")]?.trainLoss, 9.0e-4)
    }
}
