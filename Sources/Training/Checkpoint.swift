// Training checkpoints in HDF5, Keras-like: /params/<layer>/<name> (layer = the PyTorch state_dict
// key up to its last dot, e.g. /params/features.0/weight), /buffers/<layer>/<name> (BN running
// stats), /optimizer/<kind>/<slot>/<layer>/<name> (momentum buffers, Adam moments) with the
// optimizer's step count as an attribute of /optimizer/<kind>; the run's configuration, seed, epoch
// and step as root attributes next to the Provenance. Written atomically (temp file + rename).
import Kernels
import NN
import Storage

/// Where a restored run continues.
public struct CheckpointInfo: Equatable, Sendable {
    public var configuration: String
    public var seed: UInt64
    /// Completed epochs and steps (global step count) when the checkpoint was taken.
    public var epoch: Int
    public var step: Int

    public init(configuration: String, seed: UInt64, epoch: Int, step: Int) {
        (self.configuration, self.seed, self.epoch, self.step) = (configuration, seed, epoch, step)
    }
}

public enum Checkpoint {
    /// "features.0.weight" → "/params/features.0/weight"; a name without a dot sits under /params/.
    public static func path(_ root: String, _ name: String) -> String {
        guard let dot = name.lastIndex(of: ".") else { return "\(root)/\(name)" }
        return "\(root)/\(name[..<dot])/\(name[name.index(after: dot)...])"
    }

    /// `extra` adds run-specific content (history, attributes) to the same atomic file.
    /// Writes the checkpoint; `extra` may add datasets and attributes before the atomic commit.
    public static func save(
        to file: String, network: Network, optimizer: Optimizer?, stage: String = "train", configuration: String,
        seed: UInt64, epoch: Int, step: Int, inputs: [String] = [], libraries: [String: String] = [:],
        extra: ((H5Writer) throws -> Void)? = nil
    ) throws {
        let w = try H5Writer(path: file)
        do {
            for p in network.parameters {
                try w.write(path("/params", p.name), p.value.readBuffer, shape: p.value.shape)
            }
            for b in network.buffers {
                try w.write(path("/buffers", b.name), b.value.readBuffer, shape: b.value.shape)
            }
            if let optimizer {
                let state = optimizer.exportState()
                let group = "/optimizer/\(state.kind)"
                try w.createGroup(group)
                for (slot, values) in state.slots.sorted(by: { $0.key < $1.key }) {
                    try w.createGroup("\(group)/\(slot)")
                    for p in network.parameters {
                        guard let v = values[p.name] else { continue }
                        try w.write(path("\(group)/\(slot)", p.name), v, shape: p.value.shape)
                    }
                }
                try w.setAttributes(
                    ["step": .int(Int64(state.step)), "learning_rate": .double(optimizer.learningRate)], on: group)
            }
            try Provenance(stage: stage, configuration: configuration, inputs: inputs, libraries: libraries).write(to: w)
            try w.setAttributes(
                [
                    "network": .string(network.name),
                    "seed": .string(String(seed)),  // UInt64 does not fit an Int64 attribute
                    "epoch": .int(Int64(epoch)), "step": .int(Int64(step)),
                ], on: "/")
            try extra?(w)
            try w.commit()
        } catch {
            w.discard()
            throw error
        }
    }

    /// SHA-256 over a checkpoint's tensors — every dataset under /params and /buffers, in name order, as
    /// (name, shape, float32 bytes) — so two files with equal tensors but other wall times or provenance
    /// have the same digest.
    public static func tensorDigest(of file: String) throws -> String {
        let r = try H5Reader(path: file)
        var bytes: [UInt8] = []
        func walk(_ group: String) throws {
            for (name, kind) in try r.children(of: group) {
                let child = "\(group)/\(name)"
                if kind == .group { try walk(child); continue }
                let shape = try r.shape(of: child)
                bytes += Array("\(child) \(shape)\n".utf8)
                try r.read(child, as: Float.self, shape: shape).values.withUnsafeBytes { bytes += $0 }
            }
        }
        for root in ["/params", "/buffers"] where r.contains(root) { try walk(root) }
        return sha256Hex(bytes)
    }

    /// A checkpoint holding NaN or ±Inf is refused where it enters (a diverged run is recorded as such and never
    /// checkpointed, so a non-finite value here means the file was changed or damaged).
    static func requireFinite(_ values: UnsafeBufferPointer<Float>, file: String, object: String) throws {
        guard let i = values.firstIndex(where: { !$0.isFinite }) else { return }
        throw StorageError(file: file, object: object, "holds a non-finite value (\(values[i]) at element \(i)); the file "
            + "was changed or damaged after it was written — retrain the run that wrote it")
    }

    /// Loads parameters, buffers and (when given) the optimizer state into existing objects; every
    /// tensor of the network must be present with its shape. Returns where the run continues.
    @discardableResult
    public static func restore(from file: String, network: Network, optimizer: Optimizer?) throws -> CheckpointInfo {
        let r = try H5Reader(path: file)
        let name = try r.stringAttribute("network")
        guard name == network.name else {
            throw StorageError(file: file, "checkpoint of network \(name), cannot restore into \(network.name)")
        }
        for p in network.parameters {
            try r.read(path("/params", p.name), into: p.value.buffer, shape: p.value.shape)
            try requireFinite(p.value.readBuffer, file: file, object: path("/params", p.name))
        }
        for b in network.buffers {
            try r.read(path("/buffers", b.name), into: b.value.buffer, shape: b.value.shape)
            try requireFinite(b.value.readBuffer, file: file, object: path("/buffers", b.name))
        }
        if let optimizer {
            let group = "/optimizer/\(optimizer.kind)"
            guard r.contains(group) else { throw StorageError(file: file, object: group, "no \(optimizer.kind) state") }
            var slots: [String: [String: [Float]]] = [:]
            for (slot, kind) in try r.children(of: group) where kind == .group {
                var values: [String: [Float]] = [:]
                for p in network.parameters where r.contains(path("\(group)/\(slot)", p.name)) {
                    let object = path("\(group)/\(slot)", p.name)
                    values[p.name] = try r.read(object, as: Float.self, shape: p.value.shape).values
                    try values[p.name]!.withUnsafeBufferPointer { try requireFinite($0, file: file, object: object) }
                }
                slots[slot] = values
            }
            guard let step = try r.attribute("step", on: group).intValue else {
                throw StorageError(file: file, object: group, "attribute step is not an integer")
            }
            do {
                try optimizer.importState(OptimizerState(kind: optimizer.kind, step: Int(step), slots: slots))
            } catch {
                throw StorageError(file: file, object: group, "\(error)")
            }
            if let lr = try r.attribute("learning_rate", on: group).doubleValue { optimizer.learningRate = lr }
        }
        guard let seed = UInt64(try r.stringAttribute("seed")),
              let epoch = try r.attribute("epoch").intValue, let step = try r.attribute("step").intValue
        else { throw StorageError(file: file, "root attributes seed / epoch / step malformed") }
        return CheckpointInfo(configuration: try r.stringAttribute("configuration"), seed: seed,
                              epoch: Int(epoch), step: Int(step))
    }
}
