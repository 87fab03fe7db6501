// Weight quantization of a Network's Conv2d and Linear weights without touching the layers: the wrapper keeps
// latent float weights as their own `Parameter`s (these go to the optimizer), writes Q(latent) into the net's
// weight tensors before each forward, and after the backward turns the net's weight gradients into latent
// gradients through the estimator: latent.grad += weight.grad · Q̂′(latent). Biases and anything else stay float.
import Foundation
import Kernels
import NN

public final class WeightQuantization {
    /// One quantized tensor: the net's weight (holds Q(latent) during forward/backward), its latent, its Δ.
    public struct Entry {
        public let weight: Parameter
        public let latent: Parameter
        public let quantizer: WeightQuantizer
    }

    public let entries: [Entry]
    public let estimator: WeightEstimator
    /// The net's parameters that are not quantized (e.g. the last layer's bias): trained as floats.
    public let floatParameters: [Parameter]
    public var latentParameters: [Parameter] { entries.map(\.latent) }
    /// Number of quantized weights.
    public let count: Int

    /// Every Conv2d / Linear weight of `network` is quantized with `bits` bits; its Δ is
    /// rangeScale · 2·max|w₀| / 2^b, so the clipping range is rangeScale times the initial weight range.
    /// The latents start at the net's current weights.
    public init(network: Network, bits: Int, rangeScale: Double, estimator: WeightEstimator) {
        precondition(rangeScale > 0, "range scale \(rangeScale)")
        var quantized: [ObjectIdentifier] = []
        func walk(_ l: Layer) {
            if let c = l as? Conv2d { quantized.append(ObjectIdentifier(c.weight.value)) }
            if let f = l as? Linear { quantized.append(ObjectIdentifier(f.weight.value)) }
            for c in l.children { walk(c.layer) }
        }
        walk(network.root)
        var entries: [Entry] = []
        var floats: [Parameter] = []
        for p in network.parameters {
            guard quantized.contains(ObjectIdentifier(p.value)) else { floats.append(p); continue }
            var largest: Float = 0
            for i in 0..<p.value.count { largest = max(largest, abs(p.value.pointer[i])) }
            let step = rangeScale * 2 * Double(largest) / Double(1 << bits)
            let latent = Parameter(name: p.name, value: p.value.clone(), grad: Tensor(zeros: p.value.shape), decay: p.decay)
            entries.append(Entry(weight: p, latent: latent, quantizer: WeightQuantizer(bits: bits, step: step)))
        }
        self.entries = entries
        self.estimator = estimator
        floatParameters = floats
        count = entries.reduce(0) { $0 + $1.latent.value.count }
    }

    /// weight ← Q(latent), for every quantized tensor (call before each forward).
    public func quantizeIntoNetwork() {
        for e in entries {
            let (w, u, q) = (e.weight.value.pointer, e.latent.value.pointer, e.quantizer)
            for i in 0..<e.latent.value.count { w[i] = Float(q.quantize(Double(u[i]))) }
        }
    }

    /// latent.grad += weight.grad · Q̂′(latent) (call after the net's backward).
    public func accumulateLatentGradients() {
        for e in entries {
            let (g, u, gu, q) = (e.weight.grad.pointer, e.latent.value.pointer, e.latent.grad.pointer, e.quantizer)
            switch estimator {
            case .ste:
                let (lo, hi) = (Float(q.lower), Float(q.upper))
                for i in 0..<e.latent.value.count where u[i] >= lo && u[i] <= hi { gu[i] += g[i] }
            default:
                for i in 0..<e.latent.value.count {
                    gu[i] += g[i] * Float(estimator.derivative(Double(u[i]), q))
                }
            }
        }
    }

    /// Zeroes the net's gradients and the latents' gradients.
    public func zeroGrad(_ network: Network) {
        network.zeroGrad()
        for e in entries { e.latent.grad.zero() }
    }

    /// latent ← f(latent, its quantizer) (e.g. the equivalence map M).
    public func transformLatents(_ f: (Double, WeightQuantizer) -> Double) {
        for e in entries {
            let u = e.latent.value.pointer
            for i in 0..<e.latent.value.count { u[i] = Float(f(Double(u[i]), e.quantizer)) }
        }
    }

    /// The bin index of every quantized weight, tensors concatenated in `entries` order.
    public func bins(into out: inout [Int32]) {
        if out.count != count { out = [Int32](repeating: 0, count: count) }
        var o = 0
        for e in entries {
            let u = e.latent.value.pointer
            for i in 0..<e.latent.value.count { out[o + i] = Int32(e.quantizer.bin(Double(u[i]))) }
            o += e.latent.value.count
        }
    }

    /// Δ of every quantized weight, in `bins` order.
    public func stepPerWeight() -> [Double] {
        entries.flatMap { [Double](repeating: $0.quantizer.step, count: $0.latent.value.count) }
    }
}
