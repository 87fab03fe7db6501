// Every closed form of the theory module against a Monte Carlo estimate at random points (fixed seeds).
// Tolerance: |closed − MC| ≤ 5 standard errors of the MC mean + 1e-12 per component (a correct formula
// fails with probability < 1e-6 per component; the seeds are fixed, so the outcome is deterministic).
import struct Kernels.SplitMix64
import Kernels
import XCTest

@testable import Theory

final class ClosedFormTests: XCTestCase {
    let samples = 60_000

    func assertAgrees(_ closed: Double, _ mc: (mean: Double, se: Double), _ what: String,
        file: StaticString = #filePath, line: UInt = #line)
    {
        let tol = 5 * mc.se + 1e-12
        XCTAssert(abs(closed - mc.mean) <= tol,
            "\(what): closed form \(closed) vs Monte Carlo \(mc.mean) ± \(mc.se)", file: file, line: line)
    }

    func randomYin(_ rng: inout SplitMix64, m: Int, n: Int) -> Yin2019 {
        Yin2019(vStar: rng.normals(m), wStar: rng.unitVector(n))
    }

    func testYinLemmasAgainstMonteCarlo() {
        var rng = SplitMix64(seed: 2019)
        let yin = randomYin(&rng, m: 4, n: 6)
        let model = yin.model
        for point in 0..<3 {
            let v = rng.normals(4)
            let w = rng.normals(6, scale: point == 0 ? 0.4 : 1.3)
            let (_, gw) = yin.gradient(v: v, w: w)
            let mc = model.monteCarlo(
                v: v, w: w, stes: [.identity, .relu, .clipped], direction: gw, samples: samples, rng: &rng)
            assertAgrees(yin.loss(v: v, w: w), mc.loss, "Lemma 1 f")
            let gv = yin.gradient(v: v, w: w).v
            for i in 0..<4 { assertAgrees(gv[i], mc.gradV[i], "Lemma 2 ∂f/∂v[\(i)]") }
            let gid = yin.expectedIdentityGradient(v: v, w: w)
            let grelu = yin.expectedReluGradient(v: v, w: w)
            let gclip = model.expectedCoarseGradient(.clipped, v: v, w: w)
            for j in 0..<6 {
                assertAgrees(gid[j], mc.coarseW[0][j], "Lemma 9 E g_id[\(j)]")
                assertAgrees(grelu[j], mc.coarseW[1][j], "Lemma 4 E g_relu[\(j)]")
                assertAgrees(gclip[j], mc.coarseW[2][j], "clipped ReLU E g_crelu[\(j)]")
            }
            assertAgrees(yin.identityCorrelation(v: v, w: w), mc.projection[0], "Lemma 10")
            assertAgrees(yin.reluCorrelation(v: v, w: w), mc.projection[1], "Lemma 5")
            XCTAssertGreaterThanOrEqual(yin.reluCorrelation(v: v, w: w), 0)
            // The clipped-ReLU correlation (K₂ term) is ≥ 0 as well.
            XCTAssertGreaterThanOrEqual(dot(gclip, gw), -1e-15)
        }
    }

    /// ∂f/∂w cannot be sampled (the sample loss is piecewise constant in w): check it against central
    /// differences of the Lemma 1 loss, which the test above checks against Monte Carlo.
    func testLossGradientWAgainstFiniteDifferences() {
        var rng = SplitMix64(seed: 7)
        let yin = randomYin(&rng, m: 3, n: 5)
        for _ in 0..<5 {
            let v = rng.normals(3), w = rng.normals(5)
            let g = yin.gradient(v: v, w: w).w
            let h = 1e-6
            for j in 0..<5 {
                var wp = w, wm = w
                wp[j] += h
                wm[j] -= h
                let fd = (yin.loss(v: v, w: wp) - yin.loss(v: v, w: wm)) / (2 * h)
                XCTAssertEqual(g[j], fd, accuracy: 1e-7 + 1e-6 * abs(fd), "∂f/∂w[\(j)]")
            }
        }
    }

    func testGeneralModelReducesToYin() {
        var rng = SplitMix64(seed: 11)
        let yin = randomYin(&rng, m: 5, n: 4)
        let model = yin.model
        for _ in 0..<10 {
            let v = rng.normals(5), w = rng.normals(4, scale: 2)
            XCTAssertEqual(model.loss(v: v, w: w), yin.loss(v: v, w: w), accuracy: 1e-12)
            let (gv, gw) = yin.gradient(v: v, w: w)
            let pairs: [([Double], [Double])] = [
                (model.gradientV(v: v, w: w), gv), (model.gradientW(v: v, w: w), gw),
                (model.expectedCoarseGradient(.relu, v: v, w: w), yin.expectedReluGradient(v: v, w: w)),
                (model.expectedCoarseGradient(.identity, v: v, w: w), yin.expectedIdentityGradient(v: v, w: w)),
            ]
            for (a, b) in pairs { for i in 0..<a.count { XCTAssertEqual(a[i], b[i], accuracy: 1e-12) } }
            // Clipped ReLU → ReLU as the clip level grows.
            let far = BinaryTeacherModel(vStar: yin.vStar, wStar: yin.wStar, clip: 1e6)
            let gc = far.expectedCoarseGradient(.clipped, v: v, w: w)
            let gr = yin.expectedReluGradient(v: v, w: w)
            for i in 0..<4 { XCTAssertEqual(gc[i], gr[i], accuracy: 1e-10) }
        }
    }

    func testMisspecifiedModelAgainstMonteCarlo() {
        var rng = SplitMix64(seed: 2021)
        let model = BinaryTeacherModel(
            filters: [[1, 0, 0], [0, 1, 0], [0, 0, 1]], weights: [[1, 0.5], [1, -0.3], [0.8, 1]])
        for scale in [0.3, 1.0, 3.0] {
            let v = rng.normals(2)
            let w = rng.normals(3).map { $0 * scale }
            let mc = model.monteCarlo(v: v, w: w, stes: [.identity, .relu, .clipped], samples: samples, rng: &rng)
            assertAgrees(model.loss(v: v, w: w), mc.loss, "f (K = 3)")
            let gv = model.gradientV(v: v, w: w)
            for i in 0..<2 { assertAgrees(gv[i], mc.gradV[i], "∂f/∂v[\(i)] (K = 3)") }
            for (t, ste) in [STE.identity, .relu, .clipped].enumerated() {
                let g = model.expectedCoarseGradient(ste, v: v, w: w)
                for j in 0..<3 { assertAgrees(g[j], mc.coarseW[t][j], "E g_\(ste.rawValue)[\(j)] (K = 3)") }
            }
        }
    }

    func testSpuriousMinimizer() {
        var rng = SplitMix64(seed: 3)
        var checked = (minima: 0, notMinima: 0)
        for m in [2, 2, 5, 5, 8, 8, 3, 3, 6, 6] {
            let vStar = rng.normals(m).map { $0 + 0.5 }
            let yin = Yin2019(vStar: vStar, wStar: rng.unitVector(6))
            let (v, w) = yin.spuriousMinimizer(scale: 1.7)
            let (gv, gw) = yin.gradient(v: v, w: w)
            XCTAssertLessThan(norm(gv) + norm(gw), 1e-12, "spurious point is critical")
            XCTAssertLessThan(norm(yin.expectedReluGradient(v: v, w: w)), 1e-12, "E g_relu vanishes (Thm 1)")
            let s = sum(vStar)
            let expected = 2 * s * s * Double(m - 1) / (pow(Double(m + 1), 2) * (2 * Double.pi).squareRoot())
            XCTAssertEqual(norm(yin.expectedIdentityGradient(v: v, w: w)), expected, accuracy: 1e-12)
            // A local minimum exactly when Proposition 1's condition holds (then vᵀv* < 0 there):
            // every small perturbation raises f; otherwise some lowers it.
            let f0 = yin.loss(v: v, w: w)
            var lower = 0
            for _ in 0..<50 {
                let dv = rng.normals(m, scale: 1e-4), dw = rng.normals(6, scale: 1e-2)
                if yin.loss(v: add(v, dv), w: add(w, dw)) < f0 { lower += 1 }
            }
            XCTAssertEqual(dot(v, vStar) < 0, yin.saddlesExist)
            if yin.saddlesExist {
                XCTAssertEqual(lower, 0)
                checked.minima += 1
            } else {
                XCTAssertGreaterThan(lower, 0)
                checked.notMinima += 1
            }
        }
        XCTAssertGreaterThan(checked.minima, 0)
        XCTAssertGreaterThan(checked.notMinima, 0)
    }

    func testSaddlesExistExactlyUnderProposition1() {
        var rng = SplitMix64(seed: 5)
        var seen = (with: 0, without: 0)
        for _ in 0..<300 {
            let m = 2 + rng.next(below: 6)
            let shift = rng.normal()
            let yin = Yin2019(vStar: rng.normals(m).map { $0 + shift }, wStar: rng.unitVector(4))
            let saddle = yin.saddle()
            XCTAssertEqual(saddle != nil, yin.saddlesExist)
            if let (t, v) = saddle {
                seen.with += 1
                let w = [cos(t), sin(t), 0, 0]
                // Put w at angle t from w* by rotating w* within a plane.
                var e = rng.unitVector(4)
                axpy(-dot(e, yin.wStar), yin.wStar, &e)
                e = e.map { $0 / norm(e) }
                let wt = add(scaled(yin.wStar, cos(t)), scaled(e, sin(t)))
                _ = w
                let (gv, gw) = yin.gradient(v: v, w: wt)
                XCTAssertLessThan(norm(gv) + norm(gw), 1e-12)
            } else {
                seen.without += 1
            }
        }
        XCTAssertGreaterThan(seen.with, 10)
        XCTAssertGreaterThan(seen.without, 10)
    }

    func testScaleSymmetryOfCoarseGradients() {
        var rng = SplitMix64(seed: 13)
        let yin = randomYin(&rng, m: 3, n: 4)
        let model = yin.model
        let v = rng.normals(3), w = rng.normals(4)
        for ste in [STE.identity, .relu] {
            let a = model.expectedCoarseGradient(ste, v: v, w: w)
            let b = model.expectedCoarseGradient(ste, v: v, w: scaled(w, 5))
            for j in 0..<4 { XCTAssertEqual(a[j], b[j], accuracy: 1e-13) }
        }
        let a = model.expectedCoarseGradient(.clipped, v: v, w: w)
        let b = model.expectedCoarseGradient(.clipped, v: v, w: scaled(w, 5))
        XCTAssertGreaterThan(norm(sub(a, b)), 1e-3)
    }

    func testQuantizedReLULevels() {
        let q = QuantizedReLU(bits: 2, alpha: 0.5)
        XCTAssertEqual(q(-1.0), 0)
        XCTAssertEqual(q(0.0), 0)
        XCTAssertEqual(q(0.1), 0.5)
        XCTAssertEqual(q(0.5), 0.5)
        XCTAssertEqual(q(0.51), 1.0)
        XCTAssertEqual(q(1.2), 1.5)
        XCTAssertEqual(q(9.0), 1.5)
        XCTAssertEqual(STE.clipped.derivative(1.5, clip: q.top), 1)
        XCTAssertEqual(STE.clipped.derivative(1.6, clip: q.top), 0)
        XCTAssertEqual(STE.logTailed.derivative(2.5, clip: q.top), 0.5, accuracy: 1e-12)
    }
}
