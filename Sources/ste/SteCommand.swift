// The `ste` executable: one subcommand per pipeline stage.
import ArgumentParser

@main
struct Ste: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ste",
        abstract: "Reproduce the experiments of four papers on straight-through estimators (STE).",
        subcommands: [Inspect.self])
}
