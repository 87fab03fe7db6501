// `ste schoenbauer <experiment> --config experiments/schoenbauer/<name>.yaml --out results/schoenbauer/<name>.h5`
// runs one experiment of our Schoenbauer et al. 2024 reproduction (custom weight-gradient estimators vs the STE).
import ArgumentParser
import Backends
import Foundation
import Schoenbauer

struct SchoenbauerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schoenbauer",
        abstract: "Run a Schoenbauer et al. 2024 experiment (custom weight-gradient estimators vs the mapped STE).",
        discussion: "Experiments: " + schoenbauerExperiments.map { $0.name }.joined(separator: ", "))

    @Argument(help: "Experiment name.")
    var experiment: String

    @Option(help: "YAML config.")
    var config: String

    @Option(help: "Output .h5 (figures and the Markdown fragment are written next to it).")
    var out: String

    @Option(help: "Compute threads.")
    var threads: Int = 2

    @Option(help: ArgumentHelp("Score the claims, table and figures again from this result file's recorded comparisons, training nothing (mnist); repeat it to merge the parts trained with --seeds.", valueName: "file"))
    var rescore: [String] = []

    @Option(help: ArgumentHelp("Train only these of the config's seeds (comma-separated): a part of the experiment, run in its own process; --rescore over every part merges them (mnist).", valueName: "seeds"))
    var seeds: String?

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func run() throws {
        guard let entry = schoenbauerExperiments.first(where: { $0.name == experiment }) else {
            throw ValidationError("unknown experiment \(experiment); known: "
                + schoenbauerExperiments.map { $0.name }.joined(separator: ", "))
        }
        guard threads >= 1 else { throw ValidationError("--threads must be ≥ 1") }
        setComputeThreads(threads)
        setvbuf(stdout, nil, _IOLBF, 0)  // progress lines appear as they are printed, also when redirected
        if !rescore.isEmpty {
            guard seeds == nil else { throw ValidationError("--seeds trains a part; --rescore trains nothing: give one") }
            guard let again = entry.rescore else { throw ValidationError("\(experiment) cannot be rescored (it is fast to rerun)") }
            let seconds = try again(config, out, rescore, threads)
            print("schoenbauer \(experiment): rescored \(rescore.joined(separator: ", ")) into \(out) in \(String(format: "%.1f", seconds)) s")
            return
        }
        if let seeds {
            guard let part = entry.runSeeds else { throw ValidationError("\(experiment) has no --seeds (it is fast to run whole)") }
            let list = try seeds.split(separator: ",").map { s -> UInt64 in
                guard let v = UInt64(s.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--seeds \(seeds): comma-separated non-negative integers")
                }
                return v
            }
            let seconds = try part(config, out, list, threads)
            print("schoenbauer \(experiment): wrote \(out) in \(String(format: "%.1f", seconds)) s")
            return
        }
        let seconds = try entry.run(config, out, threads)
        print("schoenbauer \(experiment): wrote \(out) in \(String(format: "%.1f", seconds)) s")
    }
}
