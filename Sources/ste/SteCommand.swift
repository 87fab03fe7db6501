// The `ste` executable: one subcommand per pipeline stage.
import ArgumentParser
import Foundation
import Storage

@main
struct Ste: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ste",
        abstract: "Reproduce the experiments of four papers on straight-through estimators (STE).",
        version: "ste-repro \(codeVersion())",
        subcommands: [
            Fetch.self, Decode.self, Plan.self, Pretrain.self, Train.self, Eval.self, ReportCommand.self, Diff.self,
            Inspect.self, TheoryCommand.self, Bench.self, StatusCommand.self, SchoenbauerCommand.self, GPUCheck.self, Replay.self, Batches.self, Verify.self,
            SweepCommand.self,
        ])

    static func main() {
        prepareHDF5ForProcess()  // before any HDF5 call (see Storage/H5Types.swift)
        do {
            try EnvironmentSettings.validate()
            var command = try parseAsRoot()
            try command.run()
        } catch {
            // Help, --version and exit codes the stages chose (they printed their own message) as ArgumentParser
            // does; every other error with one spelling, "error: …", whether the parser or a stage raised it.
            if error is ExitCode || exitCode(for: error) == .success { exit(withError: error) }
            let message = fileErrorDescription(error) ?? fullMessage(for: error)
            let text = message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message
            FileHandle.standardError.write(Data("error: \(text)\n".utf8))
            Foundation.exit(exitCode(for: error).rawValue)
        }
    }
}
