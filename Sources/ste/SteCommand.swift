// The `ste` executable: one subcommand per pipeline stage.
import ArgumentParser
import Storage

@main
struct Ste: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ste",
        abstract: "Reproduce the experiments of four papers on straight-through estimators (STE).",
        subcommands: [
            Fetch.self, Decode.self, Plan.self, Pretrain.self, Train.self, Eval.self, ReportCommand.self, Diff.self,
            Inspect.self, TheoryCommand.self, Bench.self, StatusCommand.self, SchoenbauerCommand.self,
        ])

    static func main() {
        prepareHDF5ForProcess()  // before any HDF5 call (see Storage/H5Types.swift)
        main(nil)
    }
}
