// What the test targets share instead of copying: temporary folders (entered and left), the repository's
// root, random tensors, bit patterns for bit-for-bit comparisons, and elementwise closeness with tolerances.
import Foundation
import Kernels
import XCTest

/// The repository's root (this file is Tests/TestSupport/TestSupport.swift).
public let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// A fresh folder under the system's temporary folder, removed by `remove()`; when `entered`, the process's
/// working folder moves into it and `remove()` moves back to where it was.
public final class TemporaryFolder {
    public let path: String
    private let previous: String?

    public init(_ label: String, entered: Bool = false) throws {
        path = NSTemporaryDirectory() + "ste-\(label)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        previous = entered ? FileManager.default.currentDirectoryPath : nil
        if entered, !FileManager.default.changeCurrentDirectoryPath(path) {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: path])
        }
    }

    public func remove() {
        if let previous { _ = FileManager.default.changeCurrentDirectoryPath(previous) }
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// The float32 bit patterns of a tensor's elements: equal arrays mean bit-identical tensors.
public func bitPatterns(_ t: Tensor) -> [UInt32] { (0..<t.count).map { t[$0].bitPattern } }

/// A tensor of standard normal values drawn in element order.
public func gaussianTensor(_ shape: [Int], _ rng: inout SplitMix64) -> Tensor {
    Tensor((0..<shape.reduce(1, *)).map { _ in rng.nextGaussian() }, shape: shape)
}

/// `t`'s values in NCHW order (a copy when it is channel-blocked).
public func nchwValues(_ t: Tensor) -> [Float] {
    var buffer = ReusableTensor()
    return t.converted(to: .nchw, reusing: &buffer).array
}

/// A copy of `t` in `layout`.
public func inLayout(_ t: Tensor, _ layout: ActivationLayout) -> Tensor {
    var buffer = ReusableTensor()
    return t.converted(to: layout, reusing: &buffer).clone()
}

/// |got − expected| ≤ atol + rtol·|expected| elementwise (NaN fails), in Double. On failure it names the number
/// of elements off and the five worst (index, got, expected); with `log`, it prints the largest difference of
/// a passing comparison (the parity tests' record). Returns the largest difference.
@discardableResult
public func assertClose(
    _ got: [Float], _ expected: [Double], rtol: Double, atol: Double, _ name: String, log: Bool = false,
    file: StaticString = #filePath, line: UInt = #line
) -> Double {
    guard got.count == expected.count else {
        XCTFail("\(name): \(got.count) elements, expected \(expected.count)", file: file, line: line)
        return .infinity
    }
    var maxDiff = 0.0
    var bad: [(index: Int, excess: Double)] = []
    for i in 0..<got.count {
        let diff = abs(Double(got[i]) - expected[i])
        if !(diff <= atol + rtol * abs(expected[i])) {
            bad.append((i, diff.isNaN ? .infinity : diff - atol - rtol * abs(expected[i])))
        }
        if diff.isNaN { maxDiff = .nan } else if !maxDiff.isNaN { maxDiff = max(maxDiff, diff) }
    }
    if bad.isEmpty {
        if log { print("TENSOR OK \(name): max |diff| \(maxDiff) over \(got.count) (rtol \(rtol), atol \(atol))") }
    } else {
        let worst = bad.sorted { $0.excess > $1.excess }.prefix(5)
            .map { "[\($0.index)] got \(got[$0.index]) expected \(expected[$0.index])" }.joined(separator: "; ")
        XCTFail("\(name): \(bad.count) of \(got.count) elements off (max |diff| \(maxDiff), rtol \(rtol), atol \(atol)); worst: \(worst)",
                file: file, line: line)
    }
    return maxDiff
}

/// The same for float32 expectations.
@discardableResult
public func assertClose(
    _ got: [Float], _ expected: [Float], rtol: Float, atol: Float, _ name: String, log: Bool = false,
    file: StaticString = #filePath, line: UInt = #line
) -> Float {
    Float(assertClose(got, expected.map(Double.init), rtol: Double(rtol), atol: Double(atol), name, log: log,
                      file: file, line: line))
}
