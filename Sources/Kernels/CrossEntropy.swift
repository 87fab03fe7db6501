// Softmax cross-entropy over a batch of logits, as PyTorch's F.cross_entropy (mean reduction):
// loss = mean_i [logsumexp(z_i) − z_i[label_i]], dlogits = (softmax(z) − onehot) / n.

/// Mean softmax cross-entropy over the batch. Writes (not accumulates) dlogits = (softmax − onehot)/n
/// when given; returns the loss and the number of rows whose first arg-max equals the label.
/// Row sums are accumulated in Double, so the result does not depend on the class count's rounding.
public func softmaxCrossEntropy(
    logits: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>,
    batch: Int, classes: Int, dlogits: UnsafeMutableBufferPointer<Float>?
) -> (loss: Float, correct: Int) {
    precondition(batch > 0 && classes > 0, "softmaxCrossEntropy: batch \(batch), classes \(classes)")
    precondition(logits.count == batch * classes, "softmaxCrossEntropy: logits \(logits.count) vs \(batch)x\(classes)")
    precondition(labels.count == batch, "softmaxCrossEntropy: labels \(labels.count) vs batch \(batch)")
    if let d = dlogits { precondition(d.count == logits.count, "softmaxCrossEntropy: dlogits \(d.count)") }
    let z = logits.baseAddress!
    let scale = 1 / Double(batch)
    var total = 0.0
    var correct = 0
    for i in 0..<batch {
        let row = z + i * classes
        let label = Int(labels[i])
        precondition(label >= 0 && label < classes, "softmaxCrossEntropy: label \(label) outside 0..<\(classes)")
        var maxIndex = 0
        var maxValue = row[0]
        for j in 1..<classes where row[j] > maxValue {
            maxValue = row[j]
            maxIndex = j
        }
        if maxIndex == label { correct += 1 }
        let m = Double(maxValue)
        var sum = 0.0
        for j in 0..<classes { sum += exp(Double(row[j]) - m) }
        let logSum = m + log(sum)
        total += logSum - Double(row[label])
        if let d = dlogits?.baseAddress {
            let drow = d + i * classes
            for j in 0..<classes {
                let p = exp(Double(row[j]) - logSum)
                drow[j] = Float(((j == label ? p - 1 : p)) * scale)
            }
        }
    }
    return (Float(total * scale), correct)
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
