// One strict reading of every YAML file the project reads (experiment grids, overrides, theory and Schoenbauer
// configs, Slurm settings): a key given twice in one mapping is an error naming the file, the key path and both
// lines (YAML parsers otherwise keep the last one silently), and a decoded config refuses keys its type does
// not have, naming the key path and the allowed keys (a typo otherwise changes nothing and says nothing).
import Foundation
import Yams

public struct YAMLConfigError: Error, CustomStringConvertible, Equatable {
    public let file: String, keyPath: String, message: String
    public var description: String { keyPath.isEmpty ? "\(file): \(message)" : "\(file): \(keyPath): \(message)" }
}

/// Parses `text` (from `file`) as YAML, refusing a duplicate key in any mapping.
public func loadStrictYAML(_ text: String, file: String) throws -> Any? {
    let node: Node?
    do { node = try Yams.compose(yaml: text) } catch {
        throw YAMLConfigError(file: file, keyPath: "", message: "not valid YAML: \(error)")
    }
    if let node { try checkDuplicateKeys(node, path: "", file: file) }
    do { return try Yams.load(yaml: text) } catch {
        throw YAMLConfigError(file: file, keyPath: "", message: "not valid YAML: \(error)")
    }
}

private func checkDuplicateKeys(_ node: Node, path: String, file: String) throws {
    switch node {
    case .mapping(let mapping):
        var seen: [String: Int] = [:]
        for (key, value) in mapping {
            // A key that is a list or a mapping is valid YAML, but no config has one, and Yams traps on it.
            guard case .scalar = key else {
                throw YAMLConfigError(file: file, keyPath: path, message:
                    "a key at line \(key.mark.map { $0.line } ?? 0) is a list or a mapping; keys are plain names")
            }
            let name = key.string ?? "\(key)"
            let child = path.isEmpty ? name : "\(path).\(name)"
            if let first = seen[name] {
                throw YAMLConfigError(file: file, keyPath: child, message:
                    "duplicate key (lines \(first) and \(key.mark.map { $0.line } ?? 0)); a YAML key may appear once per mapping")
            }
            seen[name] = key.mark.map { $0.line } ?? 0
            try checkDuplicateKeys(value, path: child, file: file)
        }
    case .sequence(let sequence):
        for (i, item) in sequence.enumerated() { try checkDuplicateKeys(item, path: "\(path)[\(i)]", file: file) }
    default:
        break
    }
}

/// Decodes a YAML config file into `T`: duplicate keys and keys `T` does not have are errors naming the file, the
/// key path and the allowed keys. A type's keys are those its decoded value encodes plus its stored properties'
/// names (an optional left out of the file encodes nothing).
public func decodeStrictYAML<T: Codable>(_ type: T.Type, from text: String, file: String) throws -> T {
    let tree = try loadStrictYAML(text, file: file)
    let value: T
    do { value = try YAMLDecoder().decode(T.self, from: text) } catch {
        throw YAMLConfigError(file: file, keyPath: "", message: "invalid config: \(error)")
    }
    let encoded = try JSONSerialization.jsonObject(with: JSONEncoder().encode(value), options: [.fragmentsAllowed])
    try checkKnownKeys(tree, encoded, Mirror(reflecting: value), path: "", file: file)
    return value
}

private func checkKnownKeys(_ given: Any?, _ known: Any?, _ mirror: Mirror?, path: String, file: String) throws {
    if let map = given as? [String: Any] {
        let encoded = known as? [String: Any] ?? [:]
        let properties = mirror?.children.compactMap(\.label) ?? []
        let allowed = Set(encoded.keys).union(properties)
        for key in map.keys.sorted() {
            let child = path.isEmpty ? key : "\(path).\(key)"
            guard allowed.contains(key) else {
                throw YAMLConfigError(file: file, keyPath: child, message:
                    "unknown key; allowed here: \(allowed.sorted().joined(separator: ", "))")
            }
            let property = mirror?.children.first { $0.label == key }.map { Mirror(reflecting: $0.value) }
            try checkKnownKeys(map[key], encoded[key], property.flatMap(unwrapOptional), path: child, file: file)
        }
    } else if let list = given as? [Any], let encoded = known as? [Any] {
        let items = mirror.map { Array($0.children) } ?? []
        for (i, item) in list.enumerated() where i < encoded.count {
            let m = i < items.count ? unwrapOptional(Mirror(reflecting: items[i].value)) : nil
            try checkKnownKeys(item, encoded[i], m, path: "\(path)[\(i)]", file: file)
        }
    }
}

/// The mirror of the wrapped value for an optional (nil: none), else the mirror itself.
private func unwrapOptional(_ mirror: Mirror) -> Mirror? {
    guard mirror.displayStyle == .optional else { return mirror }
    return mirror.children.first.map { Mirror(reflecting: $0.value) }
}
