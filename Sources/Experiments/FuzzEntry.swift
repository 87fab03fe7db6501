// Entry points for the fuzzer (Sources/ste-fuzz): what a user types or writes — a run id, a `--set` override,
// a whole experiment grid — against the Table 1 grid. Each must end in a value or a thrown error, never a trap.
import Foundation
import Harness

public enum ConfigFuzzing {
    /// `text` as a run id (resolved against `grid` under each of its profiles), as an override of `grid`, and as
    /// a whole YAML grid written to `scratch`.
    public static func run(_ text: String, grid: ExperimentConfig, gridFile: String, scratch: String) {
        if let id = RunID(text) {
            for profile in ["paper"] + grid.profiles.keys.sorted() { _ = try? grid.runConfig(id, profile: profile) }
        } else {
            _ = RunID.whyInvalid(text)
        }
        _ = try? ExperimentConfig.load(gridFile, overrides: [text])
        _ = try? loadStrictYAML(text, file: "fuzz")
        guard FileManager.default.createFile(atPath: scratch, contents: Data(text.utf8)) else { return }
        _ = try? ExperimentConfig.load(scratch)
    }
}
