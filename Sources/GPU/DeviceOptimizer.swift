// The CUDA engine's optimizer: SGD with momentum or Adam, updated on the device, its state in device buffers kept in
// Training's checkpoint layout (the slot names and Adam's defaults come from Training/Optimizer.swift), so a run moves
// between the engines through a checkpoint.
import Kernels
import NN
import Training

final class DeviceOptimizer {
    let spec: OptimizerSpec
    let gpu: ComputeDevice
    var learningRate: Double
    /// Per parameter: SGD's momentum buffer, or Adam's two moments; `hasMomentum`: SGD's buffer exists (PyTorch:
    /// not before the first step).
    private var slots: [[DeviceBuffer]]
    private var hasMomentum: [Bool]
    private var steps = 0
    /// The host optimizer checkpoints read (its state is downloaded into it by `hostOptimizer`).
    private var host: Optimizer?

    init(_ spec: OptimizerSpec, parameters: [Parameter], _ gpu: ComputeDevice) {
        self.spec = spec
        self.gpu = gpu
        let counts = parameters.map(\.value.count)
        switch spec {
        case .sgd(let lr, _, _):
            learningRate = lr
            slots = counts.map { [DeviceBuffer(gpu, floats: $0)] }
        case .adam(let lr, _):
            learningRate = lr
            slots = counts.map { n in Adam.slotNames.map { _ in DeviceBuffer(gpu, floats: n) } }
            slots.flatMap { $0 }.forEach { $0.zero() }
        }
        hasMomentum = counts.map { _ in false }
    }

    var slotNames: [String] {
        switch spec {
        case .sgd: return SGD.slotNames
        case .adam: return Adam.slotNames
        }
    }

    /// One update of every parameter from its gradient, on the device.
    func step(_ parameters: [Parameter], _ state: DeviceState) {
        steps += 1
        for (i, p) in parameters.enumerated() {
            let (w, g, n) = (state.value(p.value).pointer, state.grad(p).pointer, p.value.count)
            switch spec {
            case .sgd(_, let momentum, let wd):
                gpu.sgdUpdate(.elements(n), w: w, g: g, buffer: slots[i][0].pointer, n: n, lr: Float(learningRate),
                    momentum: Float(momentum), weightDecay: p.decay ? Float(wd) : 0, firstStep: hasMomentum[i] ? 0 : 1)
                hasMomentum[i] = momentum != 0
            case .adam(_, let wd):
                let (beta1, beta2, epsilon) = Adam.defaults
                let t = Double(steps)
                gpu.adamUpdate(.elements(n), w: w, g: g, m: slots[i][0].pointer, v: slots[i][1].pointer, n: n,
                    stepSize: Float(learningRate / (1 - pow(beta1, t))),
                    correction2Sqrt: Float((1 - pow(beta2, t)).squareRoot()), oneMinusBeta1: Float(1 - beta1),
                    oneMinusBeta2: Float(1 - beta2), beta2: Float(beta2), eps: Float(epsilon),
                    weightDecay: p.decay ? Float(wd) : 0)
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

    /// The host optimizer's state (restored from a checkpoint) uploaded to the device.
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
                } else if !spec.isAdam {
                    hasMomentum[i] = false
                }
            }
        }
    }
}

extension OptimizerSpec {
    var isAdam: Bool { if case .adam = self { return true } else { return false } }
}

#if canImport(Glibc)
import Glibc
#endif
