// The synthetic data of long-synthetic, on the data model of Long, Yin & Xin's line of work on coarse gradient
// methods for non-linear classification (Long, Yin & Xin 2021, arXiv 2011.11256, and its companion paper by the
// same authors): K ≥ 3 classes lying in mutually orthogonal subspaces of the input space, each class holding
// samples of both signs, so that its convex hull contains the origin and no hyperplane separates it from the
// rest, while a wide enough two-layer quantized net classifies every point. The 2021 paper's own generator is
// not readable; ours (departures): class k spans coordinates k·d..<(k+1)·d of ℝ^{Kd} (any orthonormal basis
// gives the same distribution of runs: the student's Gaussian first layer and its gradient steps are
// rotation-equivariant), its samples are antipodal pairs ±x with x = √K·z on its block, z ~ N(0, I_d)
// (E‖x‖² = n, so initial pre-activations are ≈ N(0, 1), the scale the quantizer's α assumes).
// Also here: the linear baseline that measures non-separability, and the per-start "perfect and kept" score.
import Foundation
import Kernels
import Harness

/// K classes in orthogonal coordinate blocks of ℝ^{Kd}, samples in antipodal pairs, grouped by class.
public struct SubspaceData: Sendable {
    public let classes: Int
    /// Dimension d of each class's subspace; the input dimension is n = K·d.
    public let subspaceDim: Int
    /// Inputs, (count, n) row-major.
    public let x: [Float]
    public let labels: [UInt8]

    public var n: Int { classes * subspaceDim }
    public var count: Int { labels.count }

    public func classCounts() -> [Int] {
        var counts = [Int](repeating: 0, count: classes)
        for l in labels { counts[Int(l)] += 1 }
        return counts
    }

    /// max |⟨x_a, x_b⟩| over samples a, b of different classes (0 for orthogonal subspaces).
    public func maxCrossClassInnerProduct() -> Double {
        var worst = 0.0
        for a in 0..<count {
            for b in (a + 1)..<count where labels[a] != labels[b] {
                var s = 0.0
                for j in 0..<n { s += Double(x[a * n + j]) * Double(x[b * n + j]) }
                worst = max(worst, abs(s))
            }
        }
        return worst
    }

    /// max over classes of ‖class mean‖: 0 means the origin is the mean of the class, so it lies in the class's
    /// convex hull, and then no linear classifier (with bias) can label every point correctly.
    public func maxClassMeanNorm() -> Double {
        var worst = 0.0
        for k in 0..<classes {
            var mean = [Double](repeating: 0, count: n)
            var members = 0
            for s in 0..<count where Int(labels[s]) == k {
                members += 1
                for j in 0..<n { mean[j] += Double(x[s * n + j]) }
            }
            guard members > 0 else { return .infinity }
            worst = max(worst, norm(mean) / Double(members))
        }
        return worst
    }
}

/// Draws the data; `source` (the config file) is named in every error. Throws unless K ≥ 3, d ≥ 1 and every
/// class is populated.
public func makeSubspaceData(pairsPerClass: [Int], subspaceDim d: Int, seed: UInt64, source: String) throws
    -> SubspaceData
{
    let classes = pairsPerClass.count
    guard classes >= 3 else {
        throw ReportError("\(source): the data model needs K ≥ 3 classes (pairs_per_class has \(classes) entries)")
    }
    guard classes <= 256, d >= 1 else { throw ReportError("\(source): need 1 ≤ subspace_dim and K ≤ 256") }
    let n = classes * d
    let scale = Double(classes).squareRoot()
    var x: [Float] = [], labels: [UInt8] = []
    for (k, pairs) in pairsPerClass.enumerated() {
        var rng = SplitMix64(seed: seed, stream: UInt64(k))  // one stream per class
        for _ in 0..<max(0, pairs) {
            var row = [Float](repeating: 0, count: n)
            for i in 0..<d { row[k * d + i] = Float(scale * rng.normal()) }
            x += row
            x += row.map { -$0 }  // the antipode: exact in floating point, so the class mean is exactly 0
            labels += [UInt8(k), UInt8(k)]
        }
    }
    let data = SubspaceData(classes: classes, subspaceDim: d, x: x, labels: labels)
    if let empty = data.classCounts().firstIndex(of: 0) {
        throw ReportError("\(source): class \(empty) is empty (pairs_per_class[\(empty)] = "
            + "\(pairsPerClass[empty])); every class of the data model must hold samples")
    }
    return data
}

/// Training accuracy (best over iterations) of softmax regression with bias, full-batch gradient descent.
func linearBaseline(_ xs: [Float], _ labels: [UInt8], n: Int, classes: Int, iterations: Int, lr: Double) -> Double {
    let count = labels.count
    var W = [Double](repeating: 0, count: classes * (n + 1))
    var best = 0.0
    var p = [Double](repeating: 0, count: classes)
    for _ in 0..<iterations {
        var g = [Double](repeating: 0, count: W.count)
        var correct = 0
        for s in 0..<count {
            var mx = -Double.infinity, arg = 0
            for c in 0..<classes {
                var z = W[c * (n + 1) + n]
                for j in 0..<n { z += W[c * (n + 1) + j] * Double(xs[s * n + j]) }
                p[c] = z
                if z > mx { mx = z; arg = c }
            }
            if arg == Int(labels[s]) { correct += 1 }
            var zsum = 0.0
            for c in 0..<classes { p[c] = exp(p[c] - mx); zsum += p[c] }
            for c in 0..<classes {
                let d = p[c] / zsum - (c == Int(labels[s]) ? 1 : 0)
                for j in 0..<n { g[c * (n + 1) + j] += d * Double(xs[s * n + j]) }
                g[c * (n + 1) + n] += d
            }
        }
        best = max(best, Double(correct) / Double(count))
        for i in 0..<W.count { W[i] -= lr * g[i] / Double(count) }
    }
    return best
}

/// Number of iterates in the final `fraction` of a curve of `count` iterates: ⌈fraction · count⌉, at least one.
public func tailLength(_ count: Int, fraction: Double) -> Int {
    precondition(count > 0 && fraction > 0 && fraction <= 1)
    // The 1e-9 keeps 0.1 · 30 = 3.0000000000000004 from rounding up to 4.
    return max(1, Int((fraction * Double(count) - 1e-9).rounded(.up)))
}

/// Perfect classification reached and kept: every iterate in the final `tailFraction` of a curve of
/// misclassified-point counts (see `tailLength`) misclassifies nothing.
public func perfectOverTail(_ misclassified: [Int], tailFraction: Double) -> Bool {
    misclassified.suffix(tailLength(misclassified.count, fraction: tailFraction)).allSatisfy { $0 == 0 }
}
