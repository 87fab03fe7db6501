// yin-cgd: Theorem 1 (Yin et al. 2019, final version) assumes ‖wᵗ‖ ≥ c_w at every iterate. The runs are split by
// that hypothesis; its claims are held / not held on the runs inside it, and outside the paper's hypotheses on the
// others, whatever those runs did.
import Harness
import Kernels
import XCTest

@testable import Theory

final class Theorem1ScoringTests: XCTestCase {
    func trajectory(loss: [Double], wNorm: [Double], finalGradient: Double = 1e-9) -> Trajectory {
        Trajectory(loss: loss, wNorm: wNorm, coarseNorm: [1] + Array(repeating: finalGradient, count: loss.count - 1),
            v: [], w: [])
    }

    func testSplitByWeightNorm() {
        let split = splitByWeightNorm([0.2, 0.1, 0.05, 3], cW: 0.1)
        XCTAssertEqual(split.inside, [0, 1, 3], "min‖w‖ = c_w keeps the hypothesis")
        XCTAssertEqual(split.outside, [2])
        XCTAssertTrue(lossIncreased([3, 2, 2.5]))
        XCTAssertFalse(lossIncreased([3, 2, 2 + 1e-13]), "rounding below 1e-12 is not an increase")
    }

    func testIncreaseBelowCwIsOutsideNotNotHeld() {
        let inside = trajectory(loss: [3, 2, 1], wNorm: [1, 0.8, 0.5])
        let below = trajectory(loss: [3, 4, 1], wNorm: [1, 0.05, 0.3])
        let claims = theorem1Claims(ste: .relu, runs: [inside, below], cW: 0.1)
        XCTAssertEqual(claims.map(\.outcome), [.held, .held, .outsideHypotheses])
        XCTAssertTrue(claims[0].evidence.hasPrefix("f increased (by > 1e-12) in 0 of the 1 runs inside"), claims[0].evidence)
        XCTAssertTrue(claims[2].evidence.hasPrefix("f increased in 1 of these 1 runs"), claims[2].evidence)
        XCTAssertTrue(claims[2].reason.contains("1 of the 2 runs went below c_w = 0.1"), claims[2].reason)
    }

    func testIncreaseInsideTheHypothesesIsNotHeld() {
        let up = trajectory(loss: [3, 3.5, 1], wNorm: [1, 0.9, 0.7])
        let stuck = trajectory(loss: [3, 2, 1], wNorm: [1, 0.9, 0.7], finalGradient: 0.1)
        let claims = theorem1Claims(ste: .clipped, runs: [up, stuck], cW: 0.1)
        XCTAssertEqual(claims.map(\.outcome), [.notHeld, .notHeld], "no run outside: no outside claim")
    }

    func testAllRunsOutsideGiveNoHeldOrNotHeldClaim() {
        let a = trajectory(loss: [3, 4, 1], wNorm: [1, 0.01, 0.3]), b = trajectory(loss: [3, 2, 1], wNorm: [0.05, 1, 1])
        XCTAssertEqual(theorem1Claims(ste: .relu, runs: [a, b], cW: 0.1).map(\.outcome), [.outsideHypotheses])
    }
}
