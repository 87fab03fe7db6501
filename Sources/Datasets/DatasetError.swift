// The one error type of the fetch/decode stage: which file, what is wrong with it, and (where a
// person can act on it) what to do. Library code throws it; the `ste` commands print
// `error: <file>: <problem>` and `hint: <hint>` and exit non-zero.
import Storage

public struct DatasetError: Error, CustomStringConvertible, Equatable {
    /// The file (or archive member, as `archive:member`) the problem is in.
    public let file: String
    /// What is wrong, in one line: found vs expected.
    public let problem: String
    /// What to do about it, or nil.
    public let hint: String?

    public init(file: String, _ problem: String, hint: String? = nil) {
        self.file = file
        self.problem = problem
        self.hint = hint
    }

    public var description: String { "\(file): \(problem)" }
}

/// The `error:` line and optional `hint:` line for any error this stage lets escape.
public func failureLines(for error: Error) -> [String] {
    switch error {
    case let e as DatasetError:
        return ["error: \(e.description)"] + (e.hint.map { ["hint: \($0)"] } ?? [])
    case let e as DatasetErrors:
        return e.errors.flatMap { failureLines(for: $0) }
    case let e as StorageError:
        var lines = ["error: \(e.description)"]
        if e.message.contains("output folder") {
            lines.append(
                "hint: create the output folder first, or pass --out with a path in a writable folder"
            )
        }
        return lines
    default:
        return ["error: \(readableError(error))"]
    }
}
