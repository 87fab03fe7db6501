// The CPU's fp32 multiply-add throughput as this process sees it, for the "% of peak" of `ste bench`: measured
// rather than nominal, because the host's clock under load differs from the one the CPU reports.
import Dispatch

/// GFLOP/s per thread of fp32 multiply-adds at full throughput: every compute thread at once runs 12
/// independent 8-lane FMA chains (enough to hide the FMA latency on two pipes), so the rate reflects the
/// clock the host gives under load (tools/peer/README.md, "Peak of this CPU": not the nominal one). The best
/// of `trials` rounds of about 15 ms: right after start-up the threads sometimes share one core for a while
/// (one round in two of a `make bench` measured exactly half the rate).
public func measuredFMAPeakPerThread(threads: Int, trials: Int = 8) -> Double {
    (0..<trials).map { _ in fmaRatePerThread(threads: threads) }.max()!
}

private func fmaRatePerThread(threads: Int) -> Double {
    let iterations = 8_000_000
    var rates = [Double](repeating: 0, count: threads), sink = [Float](repeating: 0, count: threads)
    rates.withUnsafeMutableBufferPointer { r in
        sink.withUnsafeMutableBufferPointer { s in
            nonisolated(unsafe) let (rate, out) = (r.baseAddress!, s.baseAddress!)
            Parallel.forEachPart(threads) { part in
                let m = SIMD8<Float>(repeating: 1e-7 * Float(part + 1)), c = SIMD8<Float>(repeating: 0.5)
                var a = (SIMD8<Float>(repeating: 1), SIMD8<Float>(repeating: 2), SIMD8<Float>(repeating: 3),
                         SIMD8<Float>(repeating: 4), SIMD8<Float>(repeating: 5), SIMD8<Float>(repeating: 6))
                var b = a
                let start = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<iterations {
                    a.0 = a.0.addingProduct(m, c); a.1 = a.1.addingProduct(m, c); a.2 = a.2.addingProduct(m, c)
                    a.3 = a.3.addingProduct(m, c); a.4 = a.4.addingProduct(m, c); a.5 = a.5.addingProduct(m, c)
                    b.0 = b.0.addingProduct(m, c); b.1 = b.1.addingProduct(m, c); b.2 = b.2.addingProduct(m, c)
                    b.3 = b.3.addingProduct(m, c); b.4 = b.4.addingProduct(m, c); b.5 = b.5.addingProduct(m, c)
                }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                rate[part] = Double(iterations) * 12 * 16 / seconds / 1e9
                out[part] = (a.0 + a.1 + a.2 + a.3 + a.4 + a.5 + b.0 + b.1 + b.2 + b.3 + b.4 + b.5).sum()
            }
        }
    }
    precondition(sink.allSatisfy { $0.isFinite }, "FMA loop went non-finite")
    return rates.reduce(0, +) / Double(threads)
}
