// `ste bench --derivatives`: the STE backward loop (dx += dy · STE'(x), Kernels/QuantizedReLU.swift) timed per
// rule on one thread, the four rules of the STE table next to a tanh-shaped rule (STE'(x) = 1 − tanh² x) written two
// ways: on 8 lanes with Kernels' Lanes.tanh, and per lane through Foundation's Double tanh — what a new rule with a
// transcendental derivative costs each way.
import Dispatch
import Foundation
import Kernels

/// Nanoseconds per element of the backward loop for `derivative` over `count` elements, the median of `reps`.
@inline(__always)
private func nanosecondsPerElement(count: Int, reps: Int, _ derivative: (SIMD8<Float>) -> SIMD8<Float>) -> Double {
    var rng = SplitMix64(seed: RandomStream.synthetic.rawValue)
    let x = (0..<count).map { _ in Float(rng.nextGaussian()) }, dy = (0..<count).map { _ in Float(rng.nextGaussian()) }
    var dx = [Float](repeating: 0, count: count)
    var times: [Double] = []
    for _ in 0..<reps {
        let start = DispatchTime.now()
        x.withUnsafeBytes { xr in
            dy.withUnsafeBytes { gr in
                dx.withUnsafeMutableBytes { dr in
                    for i in 0..<(count / 8) {
                        let v = xr.loadUnaligned(fromByteOffset: i * 32, as: SIMD8<Float>.self)
                        let g = gr.loadUnaligned(fromByteOffset: i * 32, as: SIMD8<Float>.self)
                        let acc = dr.loadUnaligned(fromByteOffset: i * 32, as: SIMD8<Float>.self)
                        dr.storeBytes(of: acc + g * derivative(v), toByteOffset: i * 32, as: SIMD8<Float>.self)
                    }
                }
            }
        }
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / Double(count))
    }
    precondition(dx.allSatisfy(\.isFinite))
    return times.sorted()[reps / 2]
}

/// Prints the table; returns its rows (rule, ns per element).
@discardableResult
func benchmarkSTEDerivatives(count: Int = 1 << 22, reps: Int = 9) -> [(String, Double)] {
    let top = QuantizerSpec(bits: 4, alpha: defaultAlpha(bits: 4)!).top
    var rows: [(String, Double)] = []
    for ste in STE.allCases {
        rows.append((ste.rawValue, ste.withDerivative(top: top) { d in nanosecondsPerElement(count: count, reps: reps, d) }))
    }
    rows.append(("tanh-shaped, Lanes.tanh", nanosecondsPerElement(count: count, reps: reps) { x in
        let t = Lanes.tanh(x)
        return 1 - t * t
    }))
    rows.append(("tanh-shaped, per-lane Double tanh", nanosecondsPerElement(count: count, reps: reps) { x in
        var d = SIMD8<Float>()
        for j in 0..<8 { let t = Foundation.tanh(Double(x[j])); d[j] = Float(1 - t * t) }
        return d
    }))
    let clipped = rows.first { $0.0 == STE.clipped.rawValue }!.1
    print("STE backward loop, 1 thread, \(count) elements, median of \(reps):")
    print("| rule | ns / element | vs clipped |")
    print("|---|---:|---:|")
    for (name, ns) in rows { print("| \(name) | \(String(format: "%.3f", ns)) | \(String(format: "%.1f×", ns / clipped)) |") }
    return rows
}
