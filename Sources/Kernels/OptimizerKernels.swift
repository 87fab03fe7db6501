// Element loops of the optimizers, in PyTorch's arithmetic order (torch/optim/sgd.py and adam.py,
// `_single_tensor_*`, the path PyTorch takes for CPU tensors). The Training module's `SGD` and
// `Adam` own the state and call these once per parameter tensor.

/// PyTorch SGD on one tensor: d = g + wd·w; buf = d on the first step, else μ·buf + d;
/// d = d + μ·buf if nesterov else buf; w −= lr·d. (Dampening 0.) With momentum 0 `buffer` is unused.
public func sgdUpdate(
    _ weight: UnsafeMutableBufferPointer<Float>, grad: UnsafeBufferPointer<Float>,
    momentumBuffer buffer: UnsafeMutableBufferPointer<Float>,
    learningRate: Float, momentum: Float, weightDecay: Float, nesterov: Bool, firstStep: Bool
) {
    precondition(grad.count == weight.count, "sgdUpdate: grad \(grad.count) vs weight \(weight.count)")
    precondition(momentum == 0 || buffer.count == weight.count, "sgdUpdate: buffer \(buffer.count)")
    guard let w = weight.baseAddress, let g = grad.baseAddress else { return }
    let n = weight.count
    if momentum == 0 {
        for i in 0..<n { w[i] -= learningRate * (g[i] + weightDecay * w[i]) }
        return
    }
    let b = buffer.baseAddress!
    for i in 0..<n {
        let d = g[i] + weightDecay * w[i]
        let v = firstStep ? d : momentum * b[i] + d
        b[i] = v
        w[i] -= learningRate * (nesterov ? d + momentum * v : v)
    }
}

/// PyTorch Adam (no amsgrad) on one tensor, `step` counted from 1: d = g + wd·w;
/// m = m + (1−β1)(d − m); v = β2·v + (1−β2)·d²; w −= (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + ε).
/// Hyperparameters are Double like PyTorch's Python floats; each scalar (1−β1, 1−β2, the bias
/// corrections, the step size) is computed in Double and rounded to Float once, as PyTorch does.
public func adamUpdate(
    _ weight: UnsafeMutableBufferPointer<Float>, grad: UnsafeBufferPointer<Float>,
    expAvg: UnsafeMutableBufferPointer<Float>, expAvgSq: UnsafeMutableBufferPointer<Float>,
    step: Int, learningRate: Double, beta1: Double, beta2: Double, epsilon: Double, weightDecay: Double
) {
    let n = weight.count
    precondition(grad.count == n && expAvg.count == n && expAvgSq.count == n, "adamUpdate: sizes differ")
    precondition(step >= 1, "adamUpdate: step counts from 1, got \(step)")
    guard let w = weight.baseAddress, let g = grad.baseAddress else { return }
    let m = expAvg.baseAddress!, v = expAvgSq.baseAddress!
    let t = Double(step)
    let stepSize = Float(learningRate / (1 - pow(beta1, t)))
    let correction2Sqrt = Float((1 - pow(beta2, t)).squareRoot())
    let oneMinusBeta1 = Float(1 - beta1), oneMinusBeta2 = Float(1 - beta2), b2 = Float(beta2)
    let eps = Float(epsilon), wd = Float(weightDecay)
    for i in 0..<n {
        let d = g[i] + wd * w[i]
        m[i] += oneMinusBeta1 * (d - m[i])
        v[i] = b2 * v[i] + oneMinusBeta2 * d * d
        w[i] -= stepSize * (m[i] / (v[i].squareRoot() / correction2Sqrt + eps))
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
