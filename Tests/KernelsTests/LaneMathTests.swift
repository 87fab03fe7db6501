// Lanes.exp, Lanes.tanh and Lanes.sigmoid (Sources/Kernels/LaneMath.swift) against Foundation's Double functions:
// a dense grid over each function's working range, the range ends and the special values.
import Foundation
import XCTest
@testable import Kernels

final class LaneMathTests: XCTestCase {
    /// The largest error over `xs`, in ulps of the Double reference rounded to float, and in absolute terms.
    func worst(_ xs: [Float], _ lanes: (SIMD8<Float>) -> SIMD8<Float>, _ reference: (Double) -> Double)
        -> (ulps: Double, absolute: Double, at: Float)
    {
        var result = (ulps: 0.0, absolute: 0.0, at: Float(0))
        for start in stride(from: 0, to: xs.count, by: 8) {
            var v = SIMD8<Float>(repeating: 0)
            for j in 0..<8 { v[j] = xs[min(start + j, xs.count - 1)] }
            let got = lanes(v)
            for j in 0..<8 {
                let want = reference(Double(v[j]))
                let ulp = Double(Float(want).ulp)
                let error = abs(Double(got[j]) - want)
                if error / ulp > result.ulps { result = (error / ulp, max(result.absolute, error), v[j]) }
                result.absolute = max(result.absolute, error)
            }
        }
        return result
    }

    func grid(_ low: Float, _ high: Float, count: Int) -> [Float] {
        (0...count).map { low + (high - low) * Float($0) / Float(count) }
    }

    func testExp() {
        let w = worst(grid(-87, 88.5, count: 400_000) + grid(-1, 1, count: 100_000), Lanes.exp, Foundation.exp)
        XCTAssertLessThanOrEqual(w.ulps, 2, "worst \(w.ulps) ulps at x = \(w.at)")
        XCTAssertEqual(Lanes.exp(SIMD8(repeating: 0))[0], 1)
        XCTAssertEqual(Lanes.exp(SIMD8(repeating: -1000))[0], Float(Foundation.exp(-87.3)), accuracy: 1e-40, "clamped, not 0")
        XCTAssertTrue(Lanes.exp(SIMD8(repeating: 1000))[0].isFinite, "clamped, not ∞")
        XCTAssertTrue(Lanes.exp(SIMD8(repeating: .nan))[0].isNaN)
    }

    func testTanh() {
        let w = worst(grid(-12, 12, count: 400_000) + grid(-0.7, 0.7, count: 100_000), Lanes.tanh, Foundation.tanh)
        XCTAssertLessThanOrEqual(w.ulps, 4, "worst \(w.ulps) ulps at x = \(w.at)")
        XCTAssertLessThanOrEqual(w.absolute, 3e-7)
        XCTAssertEqual(Lanes.tanh(SIMD8(repeating: 0))[0], 0)
        XCTAssertEqual(Lanes.tanh(SIMD8(repeating: 50))[0], 1)
        XCTAssertEqual(Lanes.tanh(SIMD8(repeating: -50))[0], -1)
        XCTAssertTrue(Lanes.tanh(SIMD8(repeating: .nan))[0].isNaN)
        // Odd: the two branches meet at |x| = 0.625 without a step, and tanh(−x) = −tanh(x) exactly.
        let x = SIMD8<Float>(0.6249, 0.625, 0.6251, 1, 3, 1e-3, 1e-20, 9)
        XCTAssertEqual(Lanes.tanh(-x), -Lanes.tanh(x))
    }

    func testSigmoid() {
        let w = worst(grid(-30, 30, count: 400_000), Lanes.sigmoid, { 1 / (1 + Foundation.exp(-$0)) })
        XCTAssertLessThanOrEqual(w.ulps, 4, "worst \(w.ulps) ulps at x = \(w.at)")
        XCTAssertLessThanOrEqual(w.absolute, 3e-7)
        XCTAssertEqual(Lanes.sigmoid(SIMD8(repeating: 0))[0], 0.5)
    }
}
