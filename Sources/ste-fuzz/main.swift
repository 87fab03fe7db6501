// `ste-fuzz TARGET [FILES… | -- LIBFUZZER-ARGS…]`: the parsers a user's input reaches, under a coverage-guided
// fuzzer. TARGET is runid-config (run ids, overrides, YAML grids), decoders (IDX, gzip, tar, CIFAR-10) or hdf5.
// Built plainly, it replays files (the committed corpus, every input that once failed) through TARGET once each:
// a trap there fails `make test`. Built with -sanitize=fuzzer (make fuzz), `--` hands the rest to libFuzzer's
// driver, which mutates the corpus for as long as asked.
import Datasets
import Experiments
import Foundation
import Storage

let arguments = Array(CommandLine.arguments.dropFirst())
guard let target = arguments.first, ["runid-config", "decoders", "hdf5"].contains(target) else {
    FileHandle.standardError.write(Data("usage: ste-fuzz runid-config|decoders|hdf5 [FILES… | -- LIBFUZZER-ARGS…]\n".utf8))
    exit(2)
}
/// The fuzzing session's state, global so that libFuzzer's C callback can reach it without capturing.
enum Session {
    nonisolated(unsafe) static var target = ""
    nonisolated(unsafe) static var scratch = ""
    nonisolated(unsafe) static var grid: ExperimentConfig?
    static let gridFile = "experiments/table1.yaml"

    static func runOne(_ bytes: [UInt8]) {
        switch target {
        case "runid-config":
            ConfigFuzzing.run(String(decoding: bytes, as: UTF8.self), grid: grid!, gridFile: gridFile, scratch: scratch + ".yaml")
        case "decoders": DecoderFuzzing.run(bytes, scratch: scratch)
        default: HDF5Fuzzing.run(bytes, scratch: scratch + ".h5")
        }
    }
}

let scratchFolder = NSTemporaryDirectory() + "ste-fuzz-\(getpid())"
try? FileManager.default.createDirectory(atPath: scratchFolder, withIntermediateDirectories: true)
Session.target = target
Session.scratch = scratchFolder + "/input"
guard let grid = try? ExperimentConfig.load(Session.gridFile) else {
    FileHandle.standardError.write(Data("ste-fuzz: run from the repository root (\(Session.gridFile) is needed)\n".utf8))
    exit(2)
}
Session.grid = grid

typealias Callback = @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
typealias Driver = @convention(c) (UnsafeMutablePointer<Int32>, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>, Callback) -> Int32

if let dash = arguments.firstIndex(of: "--") {
    guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "LLVMFuzzerRunDriver") else {  // this executable's own symbols
        FileHandle.standardError.write(Data("ste-fuzz: not built with -sanitize=fuzzer (make fuzz builds it)\n".utf8))
        exit(2)
    }
    let driver = unsafeBitCast(symbol, to: Driver.self)
    var argv: [UnsafeMutablePointer<CChar>?] = (["ste-fuzz"] + arguments[(dash + 1)...]).map { strdup($0) } + [nil]
    var argc = Int32(argv.count - 1)
    let status = argv.withUnsafeMutableBufferPointer { buffer -> Int32 in
        var base = buffer.baseAddress
        return driver(&argc, &base) { data, size in
            Session.runOne(size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : [])
            return 0
        }
    }
    try? FileManager.default.removeItem(atPath: scratchFolder)
    exit(status)
}

var files: [String] = []
for path in arguments.dropFirst() {
    var isDir: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
        files += ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 }
    } else {
        files.append(path)
    }
}
for file in files {
    guard let data = FileManager.default.contents(atPath: file) else {
        FileHandle.standardError.write(Data("ste-fuzz: cannot read \(file)\n".utf8))
        exit(1)
    }
    Session.runOne([UInt8](data))
}
try? FileManager.default.removeItem(atPath: scratchFolder)
print("ste-fuzz \(target): \(files.count) inputs replayed, no trap")
