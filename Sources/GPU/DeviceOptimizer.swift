// The CUDA engine's optimizer: SGD with momentum or Adam, updated on the device, its state in device buffers kept in
// Training's checkpoint layout (the slot names and Adam's defaults come from Training/Optimizer.swift), so a run moves
// between the engines through a checkpoint.
import Kernels
import NN
import Training

final class DeviceOptimizer {
    let spec: OptimizerSpec
    let gpu: ComputeDevice
    let layout: FlatLayout
    var learningRate: Double
    /// SGD's momentum buffer, or Adam's two moments, each one flat buffer laid out as the parameters
    /// (DeviceState.layout), zero where a parameter has no state yet; `slots[i][k]`: parameter i's view of slot k.
    private let flat: [DeviceBuffer]
    private var slots: [[DeviceBuffer]]
    /// Per parameter: SGD's momentum buffer exists (PyTorch: not before the first step).
    private var hasMomentum: [Bool]
    private var steps = 0
    /// The host optimizer checkpoints read (its state is downloaded into it by `hostOptimizer`).
    private var host: Optimizer?

    init(_ spec: OptimizerSpec, parameters: [Parameter], layout: FlatLayout, _ gpu: ComputeDevice) {
        (self.spec, self.gpu, self.layout) = (spec, gpu, layout)
        switch spec {
        case .sgd(let lr, _, _): learningRate = lr
        case .adam(let lr, _): learningRate = lr
        }
        let flat = spec.slotNames.map { _ in DeviceBuffer(gpu, floats: layout.total) }
        flat.forEach { $0.zero() }
        self.flat = flat
        slots = parameters.indices.map { i in
            flat.map { DeviceBuffer(viewOf: $0, offset: layout.offsets[i], floats: parameters[i].value.count) }
        }
        hasMomentum = parameters.map { _ in false }
    }

    var slotNames: [String] { spec.slotNames }

    /// One update of every parameter from its gradient, on the device: one launch per group of the flat layout.
    func step(_ parameters: [Parameter], _ state: DeviceState) {
        steps += 1
        for group in layout.groups {
            func at(_ b: DeviceBuffer) -> DevicePointer { b.pointer + 4 * group.offset }
            let (w, g, n) = (at(state.flatValues), at(state.flatGrads), group.count)
            switch spec {
            case .sgd(_, let momentum, let wd):
                // A parameter without a momentum buffer has zeros there, so that momentum · 0 + d = d for it
                // too; the first step of a group whose buffers are all new copies d instead, as PyTorch does.
                let first = group.parameters.allSatisfy { !hasMomentum[$0] }
                gpu.sgdUpdate(.elements(n), w: w, g: g, buffer: at(flat[0]), n: n, lr: Float(learningRate),
                    momentum: Float(momentum), weightDecay: group.decay ? Float(wd) : 0, firstStep: first ? 1 : 0)
                for i in group.parameters { hasMomentum[i] = momentum != 0 }
            case .adam(_, let wd):
                let (beta1, beta2, epsilon) = Adam.defaults
                let t = Double(steps)
                gpu.adamUpdate(.elements(n), w: w, g: g, m: at(flat[0]), v: at(flat[1]), n: n,
                    stepSize: Float(learningRate / (1 - pow(beta1, t))),
                    correction2Sqrt: Float((1 - pow(beta2, t)).squareRoot()), oneMinusBeta1: Float(1 - beta1),
                    oneMinusBeta2: Float(1 - beta2), beta2: Float(beta2), eps: Float(epsilon),
                    weightDecay: group.decay ? Float(wd) : 0)
            }
        }
    }

    /// The state downloaded into Training's optimizer of the same kind (what a checkpoint writes).
    func hostOptimizer(_ parameters: [Parameter]) -> Optimizer {
        func values(_ buffer: DeviceBuffer, _ count: Int) -> [Float] {
            var v = [Float](repeating: 0, count: count)
            v.withUnsafeMutableBytes { buffer.download($0.baseAddress!, bytes: 4 * count) }
            return v
        }
        let optimizer: Optimizer
        switch spec {
        case .sgd(let lr, let momentum, let wd):
            optimizer = SGD(parameters: parameters, learningRate: lr, momentum: momentum, weightDecay: wd)
        case .adam(let lr, let wd):
            optimizer = Adam(parameters: parameters, learningRate: lr, weightDecay: wd)
        }
        var slotValues: [String: [String: [Float]]] = [:]
        for (k, name) in slotNames.enumerated() {
            var m: [String: [Float]] = [:]
            for (i, p) in parameters.enumerated() where spec.isAdam || hasMomentum[i] { m[p.name] = values(slots[i][k], p.value.count) }
            slotValues[name] = m
        }
        do {
            try optimizer.importState(OptimizerState(kind: optimizer.kind, step: steps, slots: slotValues))
        } catch {
            fatalError("CUDA engine: the device's optimizer state does not fit the host optimizer: \(error)")
        }
        optimizer.learningRate = learningRate
        host = optimizer
        return optimizer
    }

    /// The host optimizer's state (restored from a checkpoint) uploaded to the device; a parameter without state
    /// gets zeros.
    func hostChanged(_ parameters: [Parameter]) {
        guard let optimizer = host else { return }
        let exported = optimizer.exportState()
        steps = exported.step
        learningRate = optimizer.learningRate
        for (i, p) in parameters.enumerated() {
            for (k, slot) in slotNames.enumerated() {
                if let v = exported.slots[slot]?[p.name] {
                    v.withUnsafeBytes { slots[i][k].upload($0.baseAddress!, bytes: 4 * v.count) }
                    if !spec.isAdam { hasMomentum[i] = true }
                } else {
                    slots[i][k].zero()
                    if !spec.isAdam { hasMomentum[i] = false }
                }
            }
        }
    }
}

extension OptimizerSpec {
    var isAdam: Bool { if case .adam = self { return true } else { return false } }
    /// The optimizer's state tensors per parameter, by Training's names.
    var slotNames: [String] { isAdam ? Adam.slotNames : SGD.slotNames }
}

#if canImport(Glibc)
import Glibc
#endif
