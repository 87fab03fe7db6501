// Exact row tests of the quantizer and the STE registry at their kinks (style.md §2.11.1):
// x = 0 blocks, x = top = L·α passes (clipped / log-tailed), plus the float32 neighbours of each kink,
// for every rule, 2 and 4 bits, both roundings; quantizer levels including ties.
import XCTest

@testable import Kernels

final class QuantizedReLUTests: XCTestCase {
    /// Runs the backward kernel on `xs` with dy = 1, dx pre-filled with `base` (checks accumulation);
    /// the values are repeated so both the SIMD8 body and the scalar tail see every point.
    private func backward(_ xs: [Float], spec: QuantizerSpec, ste: STE, base: Float = 0) -> [Float] {
        let x = xs + xs + xs
        var dx = [Float](repeating: base, count: x.count)
        let dy = [Float](repeating: 1, count: x.count)
        dx.withUnsafeMutableBufferPointer { d in
            dy.withUnsafeBufferPointer { g in
                x.withUnsafeBufferPointer { quantizedReLUBackward(d, g, $0, spec: spec, ste: ste) }
            }
        }
        let n = xs.count
        for i in 0..<n {  // body and tail agree
            XCTAssertEqual(dx[i].bitPattern, dx[i + n].bitPattern)
            XCTAssertEqual(dx[i].bitPattern, dx[i + 2 * n].bitPattern)
        }
        return Array(dx[0..<n])
    }

    private func forward(_ xs: [Float], spec: QuantizerSpec) -> [Float] {
        let x = xs + xs + xs
        var y = [Float](repeating: .nan, count: x.count)
        y.withUnsafeMutableBufferPointer { o in x.withUnsafeBufferPointer { quantizedReLUForward(o, $0, spec: spec) } }
        return Array(y[0..<xs.count])
    }

    /// The expected STE'(x), written out per rule (independent of the kernel's lane formulas).
    private func expected(_ ste: STE, _ x: Float, top: Float) -> Float {
        switch ste {
        case .identity: return 1
        case .relu: return x > 0 ? 1 : 0
        case .clipped: return x > 0 && x <= top ? 1 : 0
        case .logTailed: return x <= 0 ? 0 : (x <= top ? 1 : 1 / (1 + (x - top)))
        }
    }

    func testSTEKinksForEveryRuleBitsAndRounding() {
        for bits in [2, 4] {
            for rounding in Rounding.allCases {
                let spec = QuantizerSpec(bits: bits, alpha: defaultAlpha(bits: bits)!, rounding: rounding)
                let top = spec.top
                let belowTop = spec.alpha * Float(spec.levels - 1)
                let points: [Float] = [
                    -1, Float(0).nextDown, 0, -0.0, Float(0).nextUp, spec.alpha, belowTop.nextDown, belowTop,
                    belowTop.nextUp, top.nextDown, top, top.nextUp, 2 * top, 100,
                ]
                for ste in STE.allCases {
                    let got = backward(points, spec: spec, ste: ste)
                    for (x, g) in zip(points, got) {
                        XCTAssertEqual(g, expected(ste, x, top: top), "\(ste) b\(bits) \(rounding) at x = \(x)")
                        XCTAssertEqual(ste.derivative(at: x, top: top), g, "scalar derivative \(ste) at \(x)")
                    }
                    // Accumulates: dx = base + dy·STE'(x), never overwrites.
                    let acc = backward(points, spec: spec, ste: ste, base: 0.5)
                    for (x, g) in zip(points, acc) { XCTAssertEqual(g, 0.5 + expected(ste, x, top: top)) }
                }
                // The hard rows of the convention, spelled out.
                XCTAssertEqual(STE.relu.derivative(at: 0, top: top), 0, "x = 0 blocks")
                XCTAssertEqual(STE.clipped.derivative(at: 0, top: top), 0, "x = 0 blocks")
                XCTAssertEqual(STE.clipped.derivative(at: top, top: top), 1, "x = top passes (authors' code)")
                XCTAssertEqual(STE.clipped.derivative(at: top.nextUp, top: top), 0)
                XCTAssertEqual(STE.logTailed.derivative(at: top, top: top), 1)
                XCTAssertLessThan(STE.logTailed.derivative(at: top.nextUp, top: top), 1)
                XCTAssertEqual(STE.logTailed.derivative(at: 2 * top, top: top), 1 / (1 + top))
                XCTAssertEqual(STE.identity.derivative(at: -5, top: top), 1)
            }
        }
    }

    func testQuantizerOutputsAtKinks() {
        for bits in [2, 4] {
            for rounding in Rounding.allCases {
                let spec = QuantizerSpec(bits: bits, alpha: defaultAlpha(bits: bits)!, rounding: rounding)
                let top = spec.top
                let xs: [Float] = [-3, Float(0).nextDown, 0, Float(0).nextUp, top, top.nextUp, 2 * top, 1e30]
                let y = forward(xs, spec: spec)
                let tinyLevel: Float = rounding == .ceil ? spec.alpha : 0  // ceil(tiny/α) = 1
                XCTAssertEqual(y, [0, 0, 0, tinyLevel, top, top, top, top], "b\(bits) \(rounding)")
                XCTAssertEqual(y[2].sign, .plus, "x = 0 gives +0")
                // Every output is a level kα, 0 ≤ k ≤ L.
                var rng = SplitMix64(seed: 3)
                let random = (0..<1000).map { _ in rng.nextGaussian() * 2 }
                for (x, q) in zip(random, forward(random, spec: spec)) {
                    let k = (q / spec.alpha).rounded()
                    XCTAssertTrue(k >= 0 && k <= Float(spec.levels) && q == k * spec.alpha, "x \(x) → \(q)")
                    XCTAssertEqual(spec.quantize(x), q)
                }
            }
        }
    }

    /// α = 0.5 makes x/α exact, so the ties are exact: ceil's decision points are the integer
    /// multiples of α (x = kα stays at kα), nearest's the half-integers (round half to even).
    func testQuantizerLevelsAndTies() {
        let ceil = QuantizerSpec(bits: 2, alpha: 0.5, rounding: .ceil)
        XCTAssertEqual(
            forward([0.25, 0.5, Float(0.5).nextUp, 0.75, 1.0, Float(1.0).nextUp, 1.5, 1.75], spec: ceil),
            [0.5, 0.5, 1.0, 1.0, 1.0, 1.5, 1.5, 1.5])
        let nearest = QuantizerSpec(bits: 2, alpha: 0.5, rounding: .nearest)
        XCTAssertEqual(
            forward(
                [0.25, Float(0.25).nextUp, 0.5, 0.75, Float(0.75).nextDown, 1.0, 1.25, 1.5, 1.75, -0.25],
                spec: nearest),
            [0, 0.5, 0.5, 1.0, 0.5, 1.0, 1.0, 1.5, 1.5, 0], "half-levels round to even: 0.5→0, 1.5→2, 2.5→2")
        XCTAssertEqual(ceil.levels, 3)
        XCTAssertEqual(QuantizerSpec(bits: 4, alpha: 0.1946).levels, 15)
        XCTAssertEqual(ceil.top, 1.5)
    }

    func testInPlaceForwardAndEmptyBuffers() {
        let spec = QuantizerSpec(bits: 4, alpha: 0.1946)
        var v: [Float] = (0..<21).map { Float($0) / 7 - 1 }
        let expected = forward(v, spec: spec)
        v.withUnsafeMutableBufferPointer { b in quantizedReLUForward(b, UnsafeBufferPointer(b), spec: spec) }
        XCTAssertEqual(v, expected)
        quantizedReLUForward(UnsafeMutableBufferPointer(start: nil, count: 0), UnsafeBufferPointer(start: nil, count: 0),
                             spec: spec)
    }

    func testRegistryNamesAndDefaults() {
        XCTAssertEqual(STE.allCases.map(\.rawValue), ["identity", "relu", "clipped", "log-tailed"])
        XCTAssertEqual(STE(rawValue: "log-tailed"), .logTailed)
        XCTAssertEqual(Rounding.allCases.map(\.rawValue), ["ceil", "nearest"])
        XCTAssertEqual(defaultAlpha(bits: 2), 0.6511)
        XCTAssertEqual(defaultAlpha(bits: 4), 0.1946)
        XCTAssertEqual(defaultAlpha(bits: 1), 1.2221)
        XCTAssertNil(defaultAlpha(bits: 3))
    }
}

/// The scalar STE rules (theory experiments) against the 8-lane table (kernels), at and around every kink.
final class ScalarSTERulesTests: XCTestCase {
    func testScalarRulesMatchTheTable() {
        let top: Float = 3 * 0.6511
        var xs: [Float] = [-1, 0, 1, top, 2 * top, 1e-7, -1e-7]
        for k in [Float(0), top] { xs += [k.nextDown, k.nextUp, k.nextDown.nextDown, k.nextUp.nextUp] }
        for ste in STE.allCases {
            for x in xs {
                XCTAssertEqual(ste.derivative(x, clip: top), ste.derivative(at: x, top: top), "\(ste) at \(x)")
                XCTAssertEqual(Float(ste.derivative(Double(x), clip: Double(top))), ste.derivative(at: x, top: top),
                    accuracy: 1e-6, "\(ste) (Double) at \(x)")
            }
        }
        XCTAssertEqual(STE.allCases.map(\.rawValue), ["identity", "relu", "clipped", "log-tailed"],
            "the names every config, run id and result file uses")
    }
}
