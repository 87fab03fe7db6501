// The two-linear-layer classifier of Long, Yin & Xin 2021 as we reconstruct it (arXiv 2011.11256, abstract only;
// setting [N]): logits = V σ_α(W x), W ∈ ℝ^{h×n}, V ∈ ℝ^{K×h}, σ_α the b-bit quantized ReLU (levels {0, α, …, Lα}),
// softmax cross-entropy or multi-class hinge loss, trained by coarse gradient descent: the backward pass through σ_α uses the STE's μ′
// (identity, ReLU, clipped ReLU at Lα, log-tailed ReLU). No biases. Float32, raw-pointer loops with SIMD8 for the
// input-dimension dot products (n = 784 on MNIST).
import Foundation
import Kernels

/// The training loss on the logits z of a sample with label y.
public enum TwoLayerLoss: String, Codable, Sendable {
    /// −log softmax(z)_y: its infimum 0 is not attained (the weights grow without bound).
    case crossEntropy = "cross_entropy"
    /// Σ_{c≠y} max(0, 1 + z_c − z_y) (Weston–Watkins multi-class hinge): 0, with a vanishing (coarse) gradient, as
    /// soon as every margin z_y − z_c is ≥ 1, so a global minimum is a point where coarse gradient descent stops.
    case hinge
}

final class QuantizedTwoLayerNet {
    let n: Int, h: Int, k: Int
    let quantizer: QuantizedReLU
    let ste: STE
    let loss: TwoLayerLoss
    // Raw buffers (not arrays): the per-sample loops below must not pay for exclusivity checks or
    // copy-on-write on class-held arrays.
    let W: UnsafeMutablePointer<Float>, V: UnsafeMutablePointer<Float>
    private let gW: UnsafeMutablePointer<Float>, gV: UnsafeMutablePointer<Float>
    private let mW: UnsafeMutablePointer<Float>, mV: UnsafeMutablePointer<Float>
    private let pre: UnsafeMutablePointer<Float>, act: UnsafeMutablePointer<Float>
    private let logits: UnsafeMutablePointer<Float>, dLogits: UnsafeMutablePointer<Float>
    private let dAct: UnsafeMutablePointer<Float>

    init(n: Int, h: Int, k: Int, quantizer: QuantizedReLU, ste: STE, loss: TwoLayerLoss = .crossEntropy,
        rng: inout SplitMix64)
    {
        self.n = n
        self.h = h
        self.k = k
        self.quantizer = quantizer
        self.ste = ste
        self.loss = loss
        func buffer(_ count: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: count)
            p.initialize(repeating: 0, count: count)
            return p
        }
        W = buffer(h * n)
        V = buffer(k * h)
        gW = buffer(h * n)
        gV = buffer(k * h)
        mW = buffer(h * n)
        mV = buffer(k * h)
        pre = buffer(h)
        act = buffer(h)
        dAct = buffer(h)
        logits = buffer(k)
        dLogits = buffer(k)
        // Rows of W ~ N(0, I/n): pre-activations ≈ N(0, 1) for standardised inputs, the scale α assumes.
        for i in 0..<(h * n) { W[i] = Float(rng.normal() / Double(n).squareRoot()) }
        for i in 0..<(k * h) { V[i] = Float(rng.normal() / Double(h).squareRoot()) }
    }

    deinit {
        for p in [W, V, gW, gV, mW, mV, pre, act, dAct, logits, dLogits] { p.deallocate() }
    }

    /// Forward one sample; returns (loss, predicted class) and leaves pre/act and ∂loss/∂logits in dLogits.
    @inline(__always)
    private func forward(_ x: UnsafePointer<Float>, label: Int) -> (Float, Int) {
        for j in 0..<h { pre[j] = dotSIMD(W + j * n, x, n) }
        for j in 0..<h { act[j] = quantizer(pre[j]) }
        var best = 0
        for c in 0..<k {
            var s: Float = 0
            for j in 0..<h { s += V[c * h + j] * act[j] }
            logits[c] = s
            if s > logits[best] { best = c }
        }
        switch loss {
        case .crossEntropy:
            let mx = logits[best]
            var z: Float = 0
            for c in 0..<k {
                logits[c] = exp(logits[c] - mx)
                z += logits[c]
            }
            for c in 0..<k {
                logits[c] /= z
                dLogits[c] = logits[c]
            }
            dLogits[label] -= 1
            return (-log(max(logits[label], 1e-30)), best)
        case .hinge:
            var l: Float = 0
            dLogits[label] = 0
            for c in 0..<k where c != label {
                let violation = 1 + logits[c] - logits[label]
                dLogits[c] = violation > 0 ? 1 : 0
                if violation > 0 {
                    l += violation
                    dLogits[label] -= 1
                }
            }
            return (l, best)
        }
    }

    /// Mean loss and accuracy over samples (no update).
    func evaluate(_ x: UnsafePointer<Float>, _ labels: UnsafePointer<UInt8>, count: Int) -> (loss: Double, accuracy: Double) {
        var loss = 0.0, correct = 0
        for s in 0..<count {
            let (l, p) = forward(x + s * n, label: Int(labels[s]))
            loss += Double(l)
            if p == Int(labels[s]) { correct += 1 }
        }
        return (loss / Double(count), Double(correct) / Double(count))
    }

    /// One coarse-gradient step on the given samples (heavy-ball momentum if `momentum` > 0).
    /// Returns the batch's mean loss and accuracy before the step.
    @discardableResult
    func step(_ x: UnsafePointer<Float>, _ labels: UnsafePointer<UInt8>, indices: ArraySlice<Int>, lr: Float,
        momentum: Float) -> (loss: Double, accuracy: Double)
    {
        gW.update(repeating: 0, count: h * n)
        gV.update(repeating: 0, count: k * h)
        let clip = Float(quantizer.top)
        var loss = 0.0, correct = 0
        for s in indices {
            let xs = x + s * n
            let label = Int(labels[s])
            let (l, p) = forward(xs, label: label)
            loss += Double(l)
            if p == label { correct += 1 }
            for j in 0..<h { dAct[j] = 0 }
            for c in 0..<k {
                let d = dLogits[c]
                for j in 0..<h {
                    gV[c * h + j] += d * act[j]
                    dAct[j] += d * V[c * h + j]
                }
            }
            for j in 0..<h {
                let d = dAct[j] * ste.derivative(pre[j], clip: clip)
                if d != 0 { axpySIMD(d, xs, gW + j * n, n) }
            }
        }
        let scale = lr / Float(indices.count)
        for i in 0..<(h * n) {
            mW[i] = momentum * mW[i] + gW[i]
            W[i] -= scale * mW[i]
        }
        for i in 0..<(k * h) {
            mV[i] = momentum * mV[i] + gV[i]
            V[i] -= scale * mV[i]
        }
        return (loss / Double(indices.count), Double(correct) / Double(indices.count))
    }
}

@inline(__always) func dotSIMD(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD8<Float>(repeating: 0)
    var i = 0
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    while i + 8 <= n {
        acc += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    var s = acc.sum()
    while i < n {
        s += a[i] * b[i]
        i += 1
    }
    return s
}

@inline(__always) func axpySIMD(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    let a = SIMD8<Float>(repeating: alpha)
    let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
    while i + 8 <= n {
        let v = ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            + a * rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        ry.storeBytes(of: v, toByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    while i < n {
        y[i] += alpha * x[i]
        i += 1
    }
}
