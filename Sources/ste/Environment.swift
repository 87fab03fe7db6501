// The environment variables `ste` reads, checked once at start-up: a value that is set but malformed is an error
// naming the variable, its value and what it may be, never a silent default (STE_THREADS=abc once trained at the
// default thread count without a word). Empty counts as unset (make exports empty ones).
import Foundation

struct EnvironmentError: Error, CustomStringConvertible {
    let description: String
}

enum EnvironmentSettings {
    /// (variable, what it may be, whether a value is allowed).
    static let rules: [(name: String, allowed: String, accepts: (String) -> Bool)] = [
        ("STE_THREADS", "a positive integer", { Int($0).map { $0 >= 1 && $0 <= 4096 } ?? false }),
        ("STE_DEVICE", "cpu, cuda or auto", { ["cpu", "cuda", "auto"].contains($0.lowercased()) }),
        ("STE_TF32", "0 or 1", { $0 == "0" || $0 == "1" }),
        ("STE_PROGRESS", "0 or 1", { $0 == "0" || $0 == "1" }),
        ("RESUME_ANYWAY", "0 or 1", { $0 == "0" || $0 == "1" }),
    ]

    static func validate(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        for rule in rules {
            guard let value = environment[rule.name], !value.isEmpty else { continue }
            guard rule.accepts(value) else {
                throw EnvironmentError(description: "\(rule.name)='\(value)' is not \(rule.allowed) (unset it for the default)")
            }
        }
    }

    /// STE_THREADS when set (validated at start-up), else nil.
    static var threads: Int? {
        ProcessInfo.processInfo.environment["STE_THREADS"].flatMap { Int($0) }
    }
}
