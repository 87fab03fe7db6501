// What produced a file: written into the root attributes of every output file.
// Stage and arguments (or resolved config), schema version, code version, library versions and
// the content digest of each input file (ContentDigest.swift).
import Crypto
import Foundation

public struct Provenance: Sendable {
    public var stage: String
    /// The stage's arguments or resolved config, as one string (JSON or a command line).
    public var configuration: String
    public var schemaVersion: Int
    /// Input files (paths as given) and their content digests (ContentDigest.swift), in the order given.
    public var inputs: [(path: String, sha256: String)]
    /// Extra library versions ("onednn" → "2.6.3"); HDF5's is always added.
    public var libraries: [String: String]

    public init(stage: String, configuration: String, schemaVersion: Int = 1,
        inputs: [String] = [], libraries: [String: String] = [:]) throws
    {
        self.stage = stage
        self.configuration = configuration
        self.schemaVersion = schemaVersion
        self.inputs = try inputs.map { ($0, try contentDigest(ofFile: $0)) }
        self.libraries = libraries
    }

    /// Root attributes this provenance writes (names are the schema, see README "Files").
    public var attributes: [String: AttributeValue] {
        var libs = libraries
        libs["hdf5"] = hdf5LibraryVersion()
        return [
            "stage": .string(stage),
            "configuration": .string(configuration),
            "schema_version": .int(Int64(schemaVersion)),
            "code_version": .string(codeVersion()),
            "input_files": .strings(inputs.map { $0.path }),
            "input_sha256": .strings(inputs.map { $0.sha256 }),
            "input_digest": .string(contentDigestScheme),
            "library_versions": .strings(libs.keys.sorted().map { "\($0)=\(libs[$0]!)" }),
            "machine": .string(machineDescription()),
            // The command line and time that made the file (`ste inspect` shows them).
            "command": .string(CommandLine.arguments.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")),
            "created_utc": .string(ISO8601DateFormatter().string(from: creationTime())),
        ]
    }

    public func write(to writer: H5Writer) throws { try writer.setAttributes(attributes) }
}

/// When a file is made: now, or $SOURCE_DATE_EPOCH (seconds since 1970, the reproducible-builds convention) when it
/// is set, so that two runs of the same stage can write byte-identical files.
public func creationTime() -> Date {
    if let s = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"], let seconds = Int64(s) {
        return Date(timeIntervalSince1970: TimeInterval(seconds))
    }
    return Date()
}

/// The code version recorded in outputs: $STE_CODE_VERSION if set (the Makefile sets it the same way), else
/// `git rev-parse HEAD` of the working folder, with "-dirty-<12 hex digits>" when the code (Sources, Package.swift)
/// has uncommitted changes — the SHA-256 of that diff, so two different uncommitted changes do not look the same —
/// else "unknown".
public func codeVersion() -> String {
    if let v = ProcessInfo.processInfo.environment["STE_CODE_VERSION"], !v.isEmpty { return v }
    return cachedGitVersion
}

/// The commit of a code version (without its "-dirty-…" mark).
public func commitOfCodeVersion(_ version: String) -> String {
    version.range(of: "-dirty").map { String(version[..<$0.lowerBound]) } ?? version
}

private let cachedGitVersion: String = {
    guard let head = runGit(["rev-parse", "HEAD"]), head.count == 40 else { return "unknown" }
    guard let diff = runGit(["diff", "HEAD", "--", "Sources", "Package.swift"]), !diff.isEmpty else { return head }
    // The same digest as the Makefile's: sha256sum of `git diff HEAD -- Sources Package.swift` (its output ends in a
    // newline, which runGit trims).
    let digest = SHA256.hash(data: Data((diff + "\n").utf8)).map { String(format: "%02x", $0) }.joined()
    return head + "-dirty-" + digest.prefix(12)
}()

private func runGit(_ args: [String]) -> String? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/git")
    process.arguments = args
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle(forWritingAtPath: "/dev/null")
    do { try process.run() } catch { return nil }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { return nil }
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// The machine a file was written on, for provenance: CPU model, logical CPUs, OS and architecture,
/// e.g. "AMD EPYC (2 CPUs), Debian GNU/Linux 12 (bookworm), x86_64".
public func machineDescription() -> String { cachedMachine }

private let cachedMachine: String = {
    func firstValue(in path: String, key: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: key == "PRETTY_NAME" ? "=" : ":", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == key else { continue }
            return parts[1].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return nil
    }
    let cpu = firstValue(in: "/proc/cpuinfo", key: "model name") ?? "unknown CPU"
    let os = firstValue(in: "/etc/os-release", key: "PRETTY_NAME") ?? "unknown OS"
    var uts = utsname()
    uname(&uts)
    let arch = withUnsafeBytes(of: &uts.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    return "\(cpu) (\(ProcessInfo.processInfo.activeProcessorCount) CPUs), \(os), \(arch)"
}()

/// SHA-256 of a file's bytes, lower-case hex, streamed in 4 MiB pieces.
public func sha256Hex(ofFile path: String) throws -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else {
        throw StorageError(file: path, "cannot read input file")
    }
    defer { try? handle.close() }
    var hasher = SHA256()
    while true {
        let chunk = handle.readData(ofLength: 4 << 20)
        if chunk.isEmpty { break }
        hasher.update(data: chunk)
    }
    return hasher.finalize().map { String(format: "%02x", $0) }.joined()
}

/// SHA-256 of bytes in memory, lower-case hex.
public func sha256Hex(_ bytes: some DataProtocol) -> String {
    SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
}
