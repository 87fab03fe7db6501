// `ste theory <experiment> --config experiments/theory/<experiment>.yaml --out results/theory/<experiment>.h5`
// runs one of the seed papers' theory experiments; `ste theory report --out …` concatenates their fragments.
import ArgumentParser
import Foundation
import Theory

struct TheoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "theory",
        abstract: "Run a theory experiment (Yin 2019, Long 2021, Gongyo 2021) or write the theory report.",
        discussion: "Experiments: " + theoryExperiments.map { $0.name }.joined(separator: ", ")
            + ". `report` concatenates results/theory/<experiment>.md.")

    @Argument(help: "Experiment name, or `report`.")
    var experiment: String

    @Option(help: "YAML config (experiments).")
    var config: String?

    @Option(help: "Output: the .h5 result (experiments) or the Markdown file (report).")
    var out: String

    @Option(help: "Worker threads (default: $STE_THREADS, else 2). Results are identical for any count.")
    var threads: Int = EnvironmentSettings.threads ?? 2

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func run() throws {
        if experiment == "report" {
            let folder = URL(fileURLWithPath: out).deletingLastPathComponent().path
            try writeTheoryReport(folder: folder, out: out)
            return
        }
        guard let entry = theoryExperiments.first(where: { $0.name == experiment }) else {
            throw ValidationError("unknown experiment \(experiment); known: "
                + theoryExperiments.map { $0.name }.joined(separator: ", "))
        }
        guard let config else { throw ValidationError("--config is required for \(experiment)") }
        guard threads >= 1 else { throw ValidationError("--threads must be ≥ 1") }
        try entry.run(config, out, threads)
    }
}
