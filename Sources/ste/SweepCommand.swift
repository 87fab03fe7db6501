// `ste sweep`: the folders of a sweep (one reproduction per value of one key, `make sweep`) as one table and one
// figure: sweep-<key>.csv and sweep-<key>.svg in the profile's results folder.
import ArgumentParser
import Experiments
import Foundation
import Report

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Gather a sweep's folders into one table and figure (the swept key against every cell's metrics).",
        discussion: "Example: ste sweep --config experiments/table1.yaml --profile smoke --key nets.lenet5.train.lr --values 0.02,0.2")
    @OptionGroup var grid: GridOptions
    @Option(help: "The swept key (key.path).") var key: String
    @Option(help: "Its values, comma-separated, as given to make sweep.") var values: String

    func run() throws {
        try stage {
            let list = values.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            guard !list.isEmpty else { throw ValidationError("--values: no values") }
            let folders = try list.map { v in
                (v, try ExperimentConfig.load(grid.config, profile: grid.profile, overrides: grid.overrides + ["\(key)=\(v)"])
                    .resolved(profile: grid.profile).resultsRoot(profile: grid.profile))
            }
            let (rows, missing) = try collectSweep(folders)
            for m in missing { print("not run: \(m) (make sweep runs it)") }
            let base = try ExperimentConfig.load(grid.config, profile: grid.profile, overrides: grid.overrides)
                .resolved(profile: grid.profile).resultsRoot(profile: grid.profile)
            print(try writeSweep(key: key, rows: rows, values: list, root: base), terminator: "")
            print("wrote \(base)/sweep-\(key).csv and .svg")
        }
    }
}
