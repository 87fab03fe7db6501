// The fast batch-norm kernels — per-channel planes, [n, c] rows, channel-blocked tiles; plain and fused with
// the quantizer and every STE — against the plain reference of Kernels/BatchNormReference.swift (Double,
// one element at a time): outputs, batch statistics, running statistics, dx, dweight, dbias, training and
// eval. The two differ by rounding only, so the comparison has tolerances; the fused quantizer's output is
// compared exactly wherever the reference pre-activation is not within 1e-4 of a decision point, and the
// inputs are nudged off the STE's kinks (0 and L·α) so that the mask is the same on both sides.
import TestSupport
import XCTest

@testable import Kernels

final class BatchNormReferenceTests: XCTestCase {
    /// The NCHW kernels split their passes over images and sum each channel's per-image partials in image
    /// order, so 1, 2 and 3 workers give the same bits (forward with and without the quantizer, statistics,
    /// running statistics, dx, dweight, dbias) — on LeNet-5's shapes and on one whose images split unevenly.
    func testPlaneKernelsGiveTheSameBitsForAnyWorkerCount() {
        let saved = Parallel.workers
        defer { Parallel.workers = saved }
        var rng = SplitMix64(seed: 31)
        let spec = QuantizerSpec(bits: 2, alpha: 0.5, rounding: .ceil)
        for dims in [[64, 6, 28, 28], [64, 16, 10, 10], [7, 5, 9, 9]] {
            let shape = BatchNormShape(n: dims[0], c: dims[1], spatial: dims[2] * dims[3])
            let x = Tensor((0..<shape.count).map { _ in rng.nextGaussian() * 1.5 + 0.3 }, shape: dims)
            let dy = Tensor((0..<shape.count).map { _ in rng.nextGaussian() }, shape: dims)
            let weight = Tensor((0..<shape.c).map { 0.5 + Float($0) / 10 }, shape: [shape.c])
            let bias = Tensor((0..<shape.c).map { Float($0 % 3) / 10 }, shape: [shape.c])
            var runs: [[[UInt32]]] = []
            for workers in [1, 2, 3] {
                Parallel.workers = workers
                var outputs: [[UInt32]] = []
                for quantizer in [nil, spec] {
                    let y = Tensor(zeros: dims), dx = Tensor(zeros: dims)
                    let (mean, invstd) = (Tensor(zeros: [shape.c]), Tensor(zeros: [shape.c]))
                    let (dweight, dbias) = (Tensor(zeros: [shape.c]), Tensor(zeros: [shape.c]))
                    let runningMean = Tensor(repeating: 0.2, shape: [shape.c]), runningVar = Tensor(repeating: 1.5, shape: [shape.c])
                    batchNormForwardTraining(y.buffer, mean: mean.buffer, invstd: invstd.buffer, x.readBuffer,
                        runningMean: runningMean.buffer, runningVar: runningVar.buffer, weight: weight.readBuffer,
                        bias: bias.readBuffer, shape: shape, eps: 1e-5, momentum: 0.1, quantizer: quantizer)
                    batchNormBackwardTraining(dx.buffer, dweight: dweight.buffer, dbias: dbias.buffer, dy.readBuffer,
                        x.readBuffer, mean: mean.readBuffer, invstd: invstd.readBuffer, weight: weight.readBuffer,
                        shape: shape, accumulate: false, activation: quantizer.map { ($0, STE.clipped) },
                        bias: bias.readBuffer)
                    outputs += [y, mean, invstd, runningMean, runningVar, dx, dweight, dbias].map(bitPatterns)
                }
                runs.append(outputs)
            }
            XCTAssertEqual(runs[1], runs[0], "\(dims): 2 workers vs 1")
            XCTAssertEqual(runs[2], runs[0], "\(dims): 3 workers vs 1")
        }
    }

    func testFastKernelsMatchThePlainReference() {
        var rng = SplitMix64(seed: 29)
        let spec = QuantizerSpec(bits: 2, alpha: 0.5, rounding: .ceil)
        // (shape, layout): planes with and without a partial 8-lane vector, BatchNorm1d rows, blocked tiles.
        let cases: [([Int], ActivationLayout)] = [
            ([3, 4, 5, 5], .nchw), ([4, 6, 4, 4], .nchw), ([16, 12, 1, 1], .nchw), ([5, 84, 1, 1], .nchw),
            ([3, 16, 4, 6], .channelBlocked(8)), ([3, 32, 4, 6], .channelBlocked(16)),
        ]
        for (dims, layout) in cases {
            let shape = BatchNormShape(n: dims[0], c: dims[1], spatial: dims[2] * dims[3])
            let tensorShape = dims[2] * dims[3] == 1 && layout == .nchw ? [dims[0], dims[1]] : dims
            for affine in [false, true] {
                for ste in [nil] + STE.allCases.map({ Optional($0) }) {
                    let what = "\(dims) \(layout) affine \(affine) \(ste.map { "\($0)" } ?? "no quantizer")"
                    let c = shape.c
                    let weight: [Float]? = affine ? (0..<c).map { 0.5 + Float($0) / Float(c) } : nil
                    let bias: [Float]? = affine ? (0..<c).map { Float($0 % 3) / 10 } : nil
                    var x = (0..<shape.count).map { _ in rng.nextGaussian() * 1.5 + 0.3 }
                    let dy = (0..<shape.count).map { _ in rng.nextGaussian() }
                    // Reference forward, the inputs nudged until no pre-activation sits near an STE kink.
                    var reference: (y: [Double], mean: [Double], invstd: [Double]) = ([], [], [])
                    var refMean = [Float](repeating: 0.2, count: c), refVar = [Float](repeating: 1.5, count: c)
                    for attempt in 0... {
                        precondition(attempt < 50, "could not move the inputs off the kinks")
                        (refMean, refVar) = ([Float](repeating: 0.2, count: c), [Float](repeating: 1.5, count: c))
                        reference = batchNormReferenceForwardTraining(x, shape: shape, weight: weight, bias: bias, eps: 1e-5,
                            momentum: 0.1, runningMean: &refMean, runningVar: &refVar)
                        let near = reference.y.indices.filter { j in
                            [0, Double(spec.top)].contains { abs(reference.y[j] - $0) < 1e-3 }
                        }
                        if near.isEmpty { break }
                        for j in near { x[j] += 0.01 }
                    }
                    // Fast kernels.
                    let xt = inLayout(Tensor(x, shape: tensorShape), layout)
                    let y = Tensor(uninitialized: tensorShape), mean = Tensor(zeros: [c]), invstd = Tensor(zeros: [c])
                    let runningMean = Tensor(repeating: 0.2, shape: [c]), runningVar = Tensor(repeating: 1.5, shape: [c])
                    let w = weight.map { Tensor($0, shape: [c]) }, b = bias.map { Tensor($0, shape: [c]) }
                    y.layout = layout
                    let fastShape = BatchNormShape(n: shape.n, c: c, spatial: shape.spatial, layout: layout)
                    let quantizer = ste == nil ? nil : spec
                    batchNormForwardTraining(y.buffer, mean: mean.buffer, invstd: invstd.buffer, xt.readBuffer,
                        runningMean: runningMean.buffer, runningVar: runningVar.buffer, weight: w?.readBuffer,
                        bias: b?.readBuffer, shape: fastShape, eps: 1e-5, momentum: 0.1, quantizer: quantizer)
                    assertClose(mean.array, reference.mean, rtol: 1e-5, atol: 1e-6, "mean \(what)")
                    assertClose(invstd.array, reference.invstd, rtol: 1e-5, atol: 1e-6, "invstd \(what)")
                    assertClose(runningMean.array, refMean.map(Double.init), rtol: 1e-5, atol: 1e-6, "running mean \(what)")
                    assertClose(runningVar.array, refVar.map(Double.init), rtol: 1e-5, atol: 1e-6, "running var \(what)")
                    let yPlain = nchwValues(y)
                    if quantizer != nil {
                        var compared = 0
                        for j in 0..<shape.count {
                            let p = reference.y[j]
                            let (below, above) = (spec.quantize(Float(p - 1e-4)), spec.quantize(Float(p + 1e-4)))
                            guard below == above else { continue }  // a decision point within rounding of p
                            XCTAssertEqual(yPlain[j], above, "quantized output \(j) \(what)")
                            compared += 1
                        }
                        XCTAssertGreaterThan(compared, shape.count * 9 / 10, what)
                    } else {
                        assertClose(yPlain, reference.y, rtol: 1e-5, atol: 1e-5, "forward \(what)")
                    }
                    // Backward: dy masked by STE'(pre-activation) when fused.
                    let maskedDy = (0..<shape.count).map { j in
                        Double(dy[j]) * Double(ste?.derivative(at: Float(reference.y[j]), top: spec.top) ?? 1)
                    }
                    let r = batchNormReferenceBackwardTraining(maskedDy, x, shape: shape, weight: weight,
                        mean: reference.mean, invstd: reference.invstd)
                    let dx = Tensor(uninitialized: tensorShape)
                    dx.layout = layout
                    let dweight = affine ? Tensor(zeros: [c]) : nil, dbias = affine ? Tensor(zeros: [c]) : nil
                    let dyt = inLayout(Tensor(dy, shape: tensorShape), layout)
                    batchNormBackwardTraining(dx.buffer, dweight: dweight?.buffer, dbias: dbias?.buffer, dyt.readBuffer,
                        xt.readBuffer, mean: mean.readBuffer, invstd: invstd.readBuffer, weight: w?.readBuffer,
                        shape: fastShape, accumulate: false, activation: ste.map { (spec, $0) }, bias: b?.readBuffer)
                    assertClose(nchwValues(dx), r.dx, rtol: 1e-4, atol: 1e-5, "dx \(what)")
                    if affine {
                        assertClose(dweight!.array, r.dweight, rtol: 1e-4, atol: 1e-4, "dweight \(what)")
                        assertClose(dbias!.array, r.dbias, rtol: 1e-4, atol: 1e-4, "dbias \(what)")
                    }
                    // Eval forward from the running statistics.
                    let e = Tensor(uninitialized: tensorShape)
                    e.layout = layout
                    batchNormForwardInference(e.buffer, xt.readBuffer, runningMean: runningMean.readBuffer,
                        runningVar: runningVar.readBuffer, weight: w?.readBuffer, bias: b?.readBuffer, shape: fastShape,
                        eps: 1e-5, quantizer: nil)
                    let eRef = batchNormReferenceForwardInference(x, shape: shape, weight: weight, bias: bias, eps: 1e-5,
                        runningMean: runningMean.array, runningVar: runningVar.array)
                    assertClose(nchwValues(e), eRef, rtol: 1e-5, atol: 1e-5, "eval \(what)")
                }
            }
        }
    }
}
