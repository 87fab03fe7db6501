// Weight quantization of a Network's Conv2d kernels without touching the layers: the wrapper keeps
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

    /// Every Conv2d weight (kernel) of `network` is quantized with the He-uniform quantizer of its fan-in and
    /// `bits` bits (Schoenbauer et al.'s experiment files quantize the convolution kernels only); biases and dense
    /// layers stay float. The latents start at the net's current weights.
    public init(network: Network, bits: Int, estimator: WeightEstimator) {
        var kernels: [ObjectIdentifier: Int] = [:]
        func walk(_ l: Layer) {
            if let c = l as? Conv2d { kernels[ObjectIdentifier(c.weight.value)] = c.inChannels * c.kernel * c.kernel }
            for c in l.children { walk(c.layer) }
        }
        walk(network.root)
        var entries: [Entry] = []
        var floats: [Parameter] = []
        for p in network.parameters {
            guard let fanIn = kernels[ObjectIdentifier(p.value)] else { floats.append(p); continue }
            let latent = Parameter(name: p.name, value: p.value.clone(), grad: Tensor(zeros: p.value.shape), decay: p.decay)
            entries.append(Entry(weight: p, latent: latent, quantizer: WeightQuantizer(heUniformBits: bits, fanIn: fanIn)))
        }
        precondition(!entries.isEmpty, "weight quantization: the network has no convolution")
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

    /// Every latent weight, tensors concatenated in `entries` order.
    public func latents(into out: inout [Float]) {
        if out.count != count { out = [Float](repeating: 0, count: count) }
        var o = 0
        for e in entries {
            for i in 0..<e.latent.value.count { out[o + i] = e.latent.value.pointer[i] }
            o += e.latent.value.count
        }
    }

    /// The quantizer of every weight's tensor, in `bins` order, as an index into `entries`.
    public func tensorIndexPerWeight() -> [Int] {
        entries.indices.flatMap { [Int](repeating: $0, count: entries[$0].latent.value.count) }
    }
}
