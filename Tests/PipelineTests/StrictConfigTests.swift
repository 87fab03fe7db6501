// Every YAML the project reads goes through one strict reading (Harness/StrictYAML.swift): the committed configs
// all pass it, a duplicate key and an unknown key are errors naming the file, the key path and (for unknown keys)
// the allowed ones, and a run id whose bit width has no α is an error, not a trap.
import Foundation
import TestSupport
import XCTest

@testable import Cluster
@testable import Experiments
@testable import Harness
@testable import Schoenbauer
@testable import Theory

final class StrictConfigTests: XCTestCase {
    var temporary: TemporaryFolder!
    override func setUpWithError() throws {
        temporary = try TemporaryFolder("strict-config-tests")
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(repositoryRoot))
    }
    override func tearDownWithError() throws { temporary.remove() }

    func testEveryCommittedConfigReadsStrictly() throws {
        for grid in ["experiments/table1.yaml", "experiments/fashion.yaml"] {
            let config = try ExperimentConfig.load(grid)
            for profile in config.profiles.keys { _ = try ExperimentConfig.load(grid, profile: profile) }
        }
        _ = try SlurmSettings.load("experiments/slurm.yaml")
        _ = try loadExperimentConfig(YinFig1Config.self, from: "experiments/theory/yin-fig1.yaml")
        _ = try loadExperimentConfig(YinCGDConfig.self, from: "experiments/theory/yin-cgd.yaml")
        _ = try loadExperimentConfig(YinSpuriousConfig.self, from: "experiments/theory/yin-spurious.yaml")
        _ = try loadExperimentConfig(LongSyntheticConfig.self, from: "experiments/theory/long-synthetic.yaml")
        _ = try loadExperimentConfig(LongMNISTConfig.self, from: "experiments/theory/long-mnist.yaml")
        _ = try loadExperimentConfig(GongyoScaleConfig.self, from: "experiments/theory/gongyo-scale.yaml")
        _ = try loadExperimentConfig(GongyoMisspecifiedConfig.self, from: "experiments/theory/gongyo-misspecified.yaml")
        _ = try loadExperimentConfig(SimulationConfig.self, from: "experiments/schoenbauer/simulation.yaml")
        for file in ["mnist", "mnist-full", "mnist-small-steps"] {
            _ = try loadExperimentConfig(SchoenbauerMNISTConfig.self, from: "experiments/schoenbauer/\(file).yaml")
        }
    }

    private func write(_ name: String, _ text: String) throws -> String {
        let path = temporary.path + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testADuplicateKeyIsNamedWithBothLines() throws {
        let grid = try String(contentsOfFile: "experiments/table1.yaml", encoding: .utf8)
        let path = try write("dup.yaml", grid + "\nseeds: [5]\n")
        XCTAssertThrowsError(try ExperimentConfig.load(path)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(path): seeds: duplicate key (lines "), "\(error)")
        }
        let nested = try write("nested.yaml", "a:\n  b: 1\n  c: 2\n  b: 3\n")
        XCTAssertThrowsError(try loadStrictYAML(try String(contentsOfFile: nested, encoding: .utf8), file: nested)) { error in
            XCTAssertEqual("\(error)", "\(nested): a.b: duplicate key (lines 2 and 4); a YAML key may appear once per mapping")
        }
        let theory = try write("dup-theory.yaml", try String(contentsOfFile: "experiments/theory/yin-cgd.yaml", encoding: .utf8)
            + "\neta: 0.5\n")
        XCTAssertThrowsError(try loadExperimentConfig(YinCGDConfig.self, from: theory)) { error in
            XCTAssertTrue("\(error)".contains(": eta: duplicate key"), "\(error)")
        }
    }

    func testAnUnknownKeyInADecodedConfigListsTheAllowedOnes() throws {
        let text = try String(contentsOfFile: "experiments/theory/yin-cgd.yaml", encoding: .utf8)
        let path = try write("typo.yaml", text.replacingOccurrences(of: "\neta:", with: "\netaa:"))
        XCTAssertThrowsError(try loadExperimentConfig(YinCGDConfig.self, from: path)) { error in
            XCTAssertTrue("\(error)".contains("invalid config") || "\(error)".contains("etaa: unknown key"), "\(error)")
        }
        let extra = try write("extra.yaml", text + "\nwarmup: 3\n")
        XCTAssertThrowsError(try loadExperimentConfig(YinCGDConfig.self, from: extra)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(extra): warmup: unknown key; allowed here: "), "\(error)")
            XCTAssertTrue("\(error)".contains("eta"), "\(error)")
        }
    }

    func testARunIdWithoutAnAlphaIsAnError() throws {
        let config = try ExperimentConfig.load("experiments/table1.yaml")
        XCTAssertThrowsError(try config.runConfig(RunID("lenet5-a3-clipped-s0")!, profile: "paper")) { error in
            XCTAssertTrue("\(error)".contains("no α for 3-bit activations"), "\(error)")
        }
    }
}
