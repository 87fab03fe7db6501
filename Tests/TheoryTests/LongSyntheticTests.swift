// long-synthetic: the data model (classes populated, orthogonal subspaces, not linearly separable yet classifiable
// by the two-layer quantized net), the "perfect and kept over the last 10 %" score on hand-made curves, the hinge
// minimum as a fixed point of coarse gradient descent, and the outcomes the claims get.
import struct Kernels.SplitMix64
import Harness
import Kernels
import XCTest

@testable import Theory

final class LongSyntheticTests: XCTestCase {
    func testDataModelPopulatesOrthogonalSubspacesWithAntipodalPairs() throws {
        let data = try makeSubspaceData(pairsPerClass: [3, 2, 4], subspaceDim: 2, seed: 9, source: "small.yaml")
        XCTAssertEqual(data.n, 6)
        XCTAssertEqual(data.classCounts(), [6, 4, 8])
        for s in 0..<data.count {
            let k = Int(data.labels[s])
            let row = Array(data.x[(s * 6)..<((s + 1) * 6)])
            for j in 0..<6 where j / 2 != k { XCTAssertEqual(row[j], 0, "sample \(s) leaves its class's block") }
            XCTAssertTrue(row.contains { $0 != 0 })
            // Its antipode is in the same class.
            XCTAssertTrue((0..<data.count).contains { t in
                data.labels[t] == data.labels[s] && (0..<6).allSatisfy { data.x[t * 6 + $0] == -row[$0] }
            })
        }
        XCTAssertEqual(data.maxCrossClassInnerProduct(), 0)
        XCTAssertEqual(data.maxClassMeanNorm(), 0)
        // Same seed, same data.
        let again = try makeSubspaceData(pairsPerClass: [3, 2, 4], subspaceDim: 2, seed: 9, source: "small.yaml")
        XCTAssertEqual(again.x, data.x)
    }

    func testEmptyClassAndTooFewClassesAreErrorsNamingTheConfig() {
        XCTAssertThrowsError(try makeSubspaceData(pairsPerClass: [3, 0, 2], subspaceDim: 2, seed: 1, source: "c.yaml")) {
            XCTAssertTrue("\($0)".hasPrefix("c.yaml: class 1 is empty"), "\($0)")
        }
        XCTAssertThrowsError(try makeSubspaceData(pairsPerClass: [3, 3], subspaceDim: 2, seed: 1, source: "c.yaml")) {
            XCTAssertTrue("\($0)".hasPrefix("c.yaml: the data model needs K ≥ 3 classes"), "\($0)")
        }
    }

    /// Softmax regression stays below 100 % on the data model, and reaches it on a separable set (so the check
    /// can tell the two apart).
    func testSmallInstanceIsNotLinearlySeparable() throws {
        let data = try makeSubspaceData(pairsPerClass: [4, 4, 4], subspaceDim: 2, seed: 3, source: "small.yaml")
        let acc = linearBaseline(data.x, data.labels, n: data.n, classes: 3, iterations: 300, lr: 1)
        XCTAssertLessThan(acc, 1)
        // Drop the antipodes: each class on one side of its own block, linearly separable.
        let half = (0..<data.count).filter { $0 % 2 == 0 }
        let xs = half.flatMap { s in data.x[(s * data.n)..<((s + 1) * data.n)].map { abs($0) } }
        XCTAssertEqual(linearBaseline(xs, half.map { data.labels[$0] }, n: data.n, classes: 3, iterations: 300, lr: 1), 1)
    }

    /// Units ±e_j and a second layer that sums each class's block classify every point with margin ≥ 1: a hinge
    /// global minimum, where a coarse-gradient step changes nothing (what the early stop in trainLongSynthetic uses).
    func testHingeMinimumExistsAndIsAFixedPoint() throws {
        let data = try makeSubspaceData(pairsPerClass: [5, 5, 5], subspaceDim: 2, seed: 4, source: "small.yaml")
        let n = data.n, h = 2 * n, q = QuantizedReLU(bits: 2, alpha: 0.6511)
        var rng = SplitMix64(seed: 1)
        for ste in [STE.relu, .clipped, .logTailed] {
            let net = QuantizedTwoLayerNet(n: n, h: h, k: 3, quantizer: q, ste: ste, loss: .hinge, rng: &rng)
            for r in 0..<h {
                for j in 0..<n { net.W[r * n + j] = j == r / 2 ? (r % 2 == 0 ? 1 : -1) : 0 }
                for c in 0..<3 { net.V[c * h + r] = (r / 2) / 2 == c ? Float(2 / q.alpha) : 0 }
            }
            let before = (Array(UnsafeBufferPointer(start: net.W, count: h * n)),
                Array(UnsafeBufferPointer(start: net.V, count: 3 * h)))
            let (loss, acc) = data.x.withUnsafeBufferPointer { x in
                data.labels.withUnsafeBufferPointer { y in
                    net.step(x.baseAddress!, y.baseAddress!, indices: Array(0..<data.count)[...], lr: 0.1, momentum: 0)
                }
            }
            XCTAssertEqual(loss, 0)
            XCTAssertEqual(acc, 1)
            XCTAssertEqual(Array(UnsafeBufferPointer(start: net.W, count: h * n)), before.0)
            XCTAssertEqual(Array(UnsafeBufferPointer(start: net.V, count: 3 * h)), before.1)
        }
    }

    func testPerfectOverTailOnHandMadeCurves() {
        XCTAssertEqual(tailLength(3001, fraction: 0.1), 301)
        XCTAssertEqual(tailLength(30, fraction: 0.1), 3)  // not 4: 0.1 · 30 = 3.0000000000000004
        XCTAssertEqual(tailLength(5, fraction: 0.1), 1)
        XCTAssertTrue(perfectOverTail([5, 3, 0, 0, 0, 0, 0, 0, 0, 0], tailFraction: 0.1))
        XCTAssertFalse(perfectOverTail([5, 0, 0, 0, 0, 0, 0, 0, 0, 1], tailFraction: 0.1), "lost at the end")
        XCTAssertFalse(perfectOverTail([4, 3, 2, 2, 1, 1, 1, 1, 1, 1], tailFraction: 0.1), "never reached")
        // 30 iterates: the last 3 count; an error just before them does not, one inside them does.
        var curve = [Int](repeating: 0, count: 30)
        curve[26] = 2
        XCTAssertTrue(perfectOverTail(curve, tailFraction: 0.1))
        curve[27] = 1
        XCTAssertFalse(perfectOverTail(curve, tailFraction: 0.1))
        // Reached early, oscillating later: only the last 2 of 20 iterates decide.
        XCTAssertTrue(perfectOverTail([9, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0], tailFraction: 0.1))
        XCTAssertFalse(perfectOverTail([9, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0], tailFraction: 0.1))
    }

    func testClaimOutcomes() {
        func run(_ miss: [Int], _ loss: [Double]) -> LongSyntheticRun { LongSyntheticRun(misclassified: miss, loss: loss) }
        let good = run([9, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0], [3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        let lost = run([9, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1], [3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0.1])
        let blewUp = run([9, 5, 7, 8, 9, 9, 8, 9, 9, 9, 9], [3, 4, 5, 5, 6, 6, 6, 6, 6, 6, 7])
        let c = LongSyntheticConfig(seed: 0, pairs_per_class: [1, 1, 1], subspace_dim: 1, student_hidden: 4,
            loss: .hinge, other_loss: nil, bits: 2, alpha: 0.65, stes: [.identity, .relu, .clipped], starts: 2, lr: 0.05,
            iterations: 10, large_lr: 2, large_lr_iterations: 10, tail_fraction: 0.1, record_every: 1,
            linear_iterations: 1, linear_lr: 1)
        let small = LongSyntheticSetting(name: "small_step", loss: .hinge, lr: 0.05, iterations: 10,
            runs: [(.identity, [lost, lost]), (.relu, [good, good]), (.clipped, [good, lost])])
        let large = LongSyntheticSetting(name: "large_step", loss: .hinge, lr: 2, iterations: 10,
            runs: [(.relu, [blewUp, good]), (.clipped, [blewUp, blewUp])])
        // Per paper STE two claims, reaching 100 % and keeping it: the clipped STE's "lost" run reached it and lost it.
        let claims = longSyntheticClaims(small: small, large: large, config: c)
        XCTAssertEqual(claims.map(\.outcome), [.unverifiable, .held, .held, .held, .notHeld, .held, .outsideHypotheses])
        XCTAssertTrue(claims[1].text.contains("reaches perfect classification"), claims[1].text)
        XCTAssertTrue(claims[2].text.contains("converges there"), claims[2].text)
        XCTAssertTrue(claims[5].text.hasSuffix("(runs that did not diverge)."))
        XCTAssertTrue(claims[6].reason.contains("in 3 of 4 runs the loss ended above where it started"), claims[6].reason)
        // With the other loss beside it: the same outcome stays; a different one makes the claim unverifiable.
        let other = LongSyntheticSetting(name: "small_step_cross_entropy", loss: .crossEntropy, lr: 0.05, iterations: 10,
            runs: [(.relu, [good, lost]), (.clipped, [lost, lost])])
        let both = longSyntheticClaims(small: small, large: large, otherLoss: other, config: c)
        XCTAssertEqual(both.map(\.outcome), [.unverifiable, .held, .unverifiable, .held, .notHeld, .held, .outsideHypotheses])
        XCTAssertTrue(both[2].reason.contains("held under the hinge loss, not held under the cross entropy loss"), both[2].reason)
        // The other loss at a smaller step keeping 100 % from every start: the failure was a step-size effect, held.
        let smaller = LongSyntheticSetting(name: "smaller_step_cross_entropy_0.0125", loss: .crossEntropy, lr: 0.0125,
            iterations: 40, runs: [(.relu, [good, good])])
        let stepTest = longSyntheticClaims(small: small, large: large, otherLoss: other, smallerSteps: [smaller], config: c)
        XCTAssertEqual(stepTest[2].outcome, .held)
        XCTAssertTrue(stepTest[2].evidence.contains("step-size effect"), stepTest[2].evidence)
    }
}
