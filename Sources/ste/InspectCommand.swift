// `ste inspect FILE.h5`: prints a file's groups, datasets (shape, dtype) and attributes.
import ArgumentParser
import Foundation
import Storage

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print an HDF5 file's groups, dataset shapes and dtypes, and attributes.",
        discussion: """
            Every file the pipeline writes records in its root attributes what produced it: the stage, \
            its configuration, the schema version, the code version, library versions and the SHA-256 \
            of each input file.

            Example:
              ste inspect data/mnist.h5
              ste inspect results/runs/lenet5-a2-clipped-s0/checkpoint.h5 --depth 1
            """)

    @Argument(help: "The HDF5 file to describe.")
    var file: String

    @Option(help: "How many group levels to descend (default: all).")
    var depth: Int?

    @Flag(help: "Also print up to 8 leading values of each dataset.")
    var values = false

    @Flag(help: "Print long attributes whole (the configuration, the command's inputs), not cut at 160 characters.")
    var full = false

    @Flag(help: "Print the file as JSON: every group's and dataset's attributes, each dataset's dtype and shape, and whether its checksums verify.")
    var json = false

    func run() throws {
        let reader = try H5Reader(path: file)
        if json { return try printJSON(reader) }
        print(file)
        try printAttributes(reader, "/", indent: "  ")
        try walk(reader, "/", level: 0)
        let (checked, unchecked) = try reader.verifyAllChecksums()  // throws, naming the dataset, on a mismatch
        if !reader.carriesChecksums {
            print("checksums: none — written before per-dataset checksums (\(checked + unchecked) datasets, not verifiable)")
        } else {
            print("checksums: \(checked) datasets verified" + (unchecked > 0 ? ", \(unchecked) empty" : ""))
        }
    }

    private func walk(_ reader: H5Reader, _ group: String, level: Int) throws {
        let indent = String(repeating: "  ", count: level + 1)
        for child in try reader.children(of: group) {
            let path = (group == "/" ? "" : group) + "/" + child.name
            switch child.kind {
            case .group:
                print("\(indent)\(child.name)/")
                if depth.map({ level + 1 < $0 }) ?? true {
                    try printAttributes(reader, path, indent: indent + "  ")
                    try walk(reader, path, level: level + 1)
                }
            case .dataset:
                let shape = try reader.shape(of: path)
                let dtype = try reader.dtype(of: path)?.rawValue ?? "string"
                print("\(indent)\(child.name)  \(dtype) \(shape)\(try preview(reader, path, dtype))")
                try printAttributes(reader, path, indent: indent + "  ")
            case .other:
                print("\(indent)\(child.name)  (other object)")
            }
        }
    }

    private func preview(_ reader: H5Reader, _ path: String, _ dtype: String) throws -> String {
        guard values else { return "" }
        func head<T: H5Element>(_ type: T.Type) throws -> String {
            let v = try reader.read(path, as: type).values
            return "  = " + v.prefix(8).map { "\($0)" }.joined(separator: " ") + (v.count > 8 ? " …" : "")
        }
        switch dtype {
        case "float32": return try head(Float.self)
        case "float64": return try head(Double.self)
        case "uint8": return try head(UInt8.self)
        case "int32": return try head(Int32.self)
        case "int64": return try head(Int64.self)
        default: return "  = " + (try reader.readStrings(path).prefix(4).joined(separator: " | "))
        }
    }

    private func printJSON(_ reader: H5Reader) throws {
        func plain(_ v: AttributeValue) -> Any {
            switch v {
            case .string(let s): return s
            case .int(let i): return i
            case .double(let d): return d.isFinite ? d : "\(d)"
            case .strings(let a): return a
            case .ints(let a): return a
            case .doubles(let a): return a.map { $0.isFinite ? $0 as Any : "\($0)" as Any }
            }
        }
        var objects: [[String: Any]] = []
        func walk(_ group: String) throws {
            for child in try reader.children(of: group) {
                let path = (group == "/" ? "" : group) + "/" + child.name
                var entry: [String: Any] = ["path": path,
                    "attributes": try reader.attributes(on: path).mapValues(plain)]
                switch child.kind {
                case .group:
                    entry["kind"] = "group"
                    objects.append(entry)
                    try walk(path)
                case .dataset:
                    entry["kind"] = "dataset"
                    entry["shape"] = try reader.shape(of: path)
                    entry["dtype"] = try reader.dtype(of: path)?.rawValue ?? "string"
                    objects.append(entry)
                case .other: break
                }
            }
        }
        try walk("/")
        let (checked, unchecked) = try reader.verifyAllChecksums()
        let root: [String: Any] = ["file": file, "attributes": try reader.attributes(on: "/").mapValues(plain),
            "objects": objects, "checksums": reader.carriesChecksums ? ["verified": checked, "empty": unchecked] as [String: Any]
                : ["none": checked + unchecked] as [String: Any]]
        let data = try JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    private func printAttributes(_ reader: H5Reader, _ path: String, indent: String) throws {
        for (name, value) in try reader.attributes(on: path).sorted(by: { $0.key < $1.key }) {
            var text = value.description
            if !full && text.count > 160 { text = String(text.prefix(157)) + "..." }
            print("\(indent)@\(name) = \(text)")
        }
    }
}
