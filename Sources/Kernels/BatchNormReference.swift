// The plain batch norm: PyTorch's BatchNorm1d/2d formulas as written, one element at a time in Double, NCHW
// only, no fusion, no vectors, no threads. It is what the fast kernels of BatchNorm.swift,
// BatchNorm1d.swift and BatchNormBlocked.swift — fused with the quantizer and its STE or not — are tested
// against (Tests/KernelsTests/BatchNormReferenceTests.swift); nothing else calls it.

/// Training forward and the running-statistics update of one batch: y = (x − μ)/√(σ²_biased + eps)·w + b
/// per channel; running ← (1 − momentum)·running + momentum·batch (σ²_unbiased for the variance).
public func batchNormReferenceForwardTraining(
    _ x: [Float], shape: BatchNormShape, weight: [Float]?, bias: [Float]?, eps: Float, momentum: Float,
    runningMean: inout [Float], runningVar: inout [Float]
) -> (y: [Double], mean: [Double], invstd: [Double]) {
    precondition(shape.layout == .nchw && x.count == shape.count)
    let (n, c, s) = (shape.n, shape.c, shape.spatial)
    let m = Double(n * s)
    var y = [Double](repeating: 0, count: x.count), mean = [Double](repeating: 0, count: c)
    var invstd = [Double](repeating: 0, count: c)
    for ch in 0..<c {
        var sum = 0.0
        for i in 0..<n { for k in 0..<s { sum += Double(x[(i * c + ch) * s + k]) } }
        let mu = sum / m
        var sq = 0.0
        for i in 0..<n { for k in 0..<s { let d = Double(x[(i * c + ch) * s + k]) - mu; sq += d * d } }
        let variance = sq / m
        let inv = 1 / (variance + Double(eps)).squareRoot()
        (mean[ch], invstd[ch]) = (mu, inv)
        runningMean[ch] = Float((1 - Double(momentum)) * Double(runningMean[ch]) + Double(momentum) * mu)
        runningVar[ch] = Float((1 - Double(momentum)) * Double(runningVar[ch]) + Double(momentum) * variance * m / (m - 1))
        let w = Double(weight?[ch] ?? 1), b = Double(bias?[ch] ?? 0)
        for i in 0..<n {
            for k in 0..<s {
                let j = (i * c + ch) * s + k
                y[j] = (Double(x[j]) - mu) * inv * w + b
            }
        }
    }
    return (y, mean, invstd)
}

/// Eval forward: y = (x − running_mean)/√(running_var + eps)·w + b.
public func batchNormReferenceForwardInference(
    _ x: [Float], shape: BatchNormShape, weight: [Float]?, bias: [Float]?, eps: Float, runningMean: [Float],
    runningVar: [Float]
) -> [Double] {
    precondition(shape.layout == .nchw && x.count == shape.count)
    let (n, c, s) = (shape.n, shape.c, shape.spatial)
    var y = [Double](repeating: 0, count: x.count)
    for i in 0..<n {
        for ch in 0..<c {
            let inv = 1 / (Double(runningVar[ch]) + Double(eps)).squareRoot()
            let w = Double(weight?[ch] ?? 1), b = Double(bias?[ch] ?? 0)
            for k in 0..<s {
                let j = (i * c + ch) * s + k
                y[j] = (Double(x[j]) - Double(runningMean[ch])) * inv * w + b
            }
        }
    }
    return y
}

/// Training backward with batch statistics: with x̂ = (x − μ)·invstd,
/// dx = w·invstd·(dy − mean(dy) − x̂·mean(dy·x̂)), dweight = Σ dy·x̂, dbias = Σ dy (sums over batch and space).
public func batchNormReferenceBackwardTraining(
    _ dy: [Double], _ x: [Float], shape: BatchNormShape, weight: [Float]?, mean: [Double], invstd: [Double]
) -> (dx: [Double], dweight: [Double], dbias: [Double]) {
    precondition(shape.layout == .nchw && x.count == shape.count && dy.count == shape.count)
    let (n, c, s) = (shape.n, shape.c, shape.spatial)
    let m = Double(n * s)
    var dx = [Double](repeating: 0, count: x.count)
    var dweight = [Double](repeating: 0, count: c), dbias = [Double](repeating: 0, count: c)
    for ch in 0..<c {
        var sumDy = 0.0, sumDyXhat = 0.0
        for i in 0..<n {
            for k in 0..<s {
                let j = (i * c + ch) * s + k
                sumDy += dy[j]
                sumDyXhat += dy[j] * (Double(x[j]) - mean[ch]) * invstd[ch]
            }
        }
        (dweight[ch], dbias[ch]) = (sumDyXhat, sumDy)
        let w = Double(weight?[ch] ?? 1)
        for i in 0..<n {
            for k in 0..<s {
                let j = (i * c + ch) * s + k
                let xhat = (Double(x[j]) - mean[ch]) * invstd[ch]
                dx[j] = w * invstd[ch] * (dy[j] - sumDy / m - xhat * sumDyXhat / m)
            }
        }
    }
    return (dx, dweight, dbias)
}
