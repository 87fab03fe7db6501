// The b-bit uniform quantized ReLU (Yin et al. 2019 §4; exact form from the authors' group code,
// penhunt/full-quantization-DNN nets/quant_uni_type.py) and the registry of straight-through
// estimators (STE) used in its backward pass. The STE is the experimental variable of the
// project: every rule is defined once, in `STE.withDerivative`, next to its doc in `STE`.

/// How x/α is mapped to an integer level before clamping to {0, …, L}.
public enum Rounding: String, Sendable, CaseIterable, Codable {
    /// ⌈x/α⌉ — the authors' code (default). Decision points: the integer multiples of α.
    case ceil
    /// round-half-to-even(x/α), as `torch.round`. Decision points: the half-integer multiples of α.
    case nearest
}

/// The STE registry: the backward rule used in place of the quantizer's (almost everywhere zero)
/// derivative. Raw values are the names used in configs, run ids and report tables.
/// dx = dy · STE'(x), with L = 2^b − 1 and top = L·α. Boundary convention (authors' code, and
/// PyTorch `ste_torch.py`): x = 0 BLOCKS (ReLU mask is x > 0), x = top PASSES (clipped mask is
/// x ≤ top). `top` is computed in float32 as `alpha * Float(levels)` (QuantizerSpec.top).
///
/// To add a rule: add a case here with its formula, and its lane formula in `withDerivative` (a transcendental
/// derivative through Lanes.exp / tanh / sigmoid, LaneMath.swift, not a per-lane libm call).
public enum STE: String, Sendable, CaseIterable, Codable {
    /// d/dx x: dx = dy everywhere.
    case identity
    /// d/dx max(x, 0): dx = dy · 1{x > 0}.
    case relu
    /// d/dx min(max(x, 0), top): dx = dy · 1{0 < x ≤ top}.
    case clipped
    /// Log-tailed ReLU (HWGQ, Cai et al. 2017): x on (0, top], top + log(1 + x − top) above:
    /// dx = dy for 0 < x ≤ top, dy / (1 + x − top) for x > top, 0 for x ≤ 0.
    case logTailed = "log-tailed"

    /// The one table of derivatives: calls `body` with this rule's STE'(x) on 8 lanes, so a kernel
    /// specialises its whole element loop per rule (the switch runs once, outside the loop).
    @inline(__always)
    public func withDerivative<R>(
        top: Float, _ body: (_ derivative: (SIMD8<Float>) -> SIMD8<Float>) -> R
    ) -> R {
        let zero = SIMD8<Float>(repeating: 0), one = SIMD8<Float>(repeating: 1)
        let top8 = SIMD8<Float>(repeating: top)
        switch self {
        case .identity:
            return body { _ in one }
        case .relu:
            return body { x in zero.replacing(with: one, where: x .> zero) }
        case .clipped:
            return body { x in zero.replacing(with: one, where: (x .> zero) .& (x .<= top8)) }
        case .logTailed:
            return body { x in
                let tail = one / (one + (x - top8))  // lanes with x ≤ top are masked out below
                return zero.replacing(with: one, where: x .> zero).replacing(with: tail, where: x .> top8)
            }
        }
    }

    /// STE'(x) for one value (tests, plots); the same formulas as the kernel.
    public func derivative(at x: Float, top: Float) -> Float {
        withDerivative(top: top) { d in d(SIMD8(repeating: x))[0] }
    }

    /// The same rules in scalar arithmetic (Float or Double), for the theory experiments' small models (their
    /// closed forms need Double); KernelsTests checks them against the 8-lane table at and around every kink.
    @inlinable @inline(__always) public func derivative<T: BinaryFloatingPoint>(_ x: T, clip top: T) -> T {
        switch self {
        case .identity: return 1
        case .relu: return x > 0 ? 1 : 0
        case .clipped: return x > 0 && x <= top ? 1 : 0
        case .logTailed: return x <= 0 ? 0 : x <= top ? 1 : 1 / (1 + (x - top))
        }
    }

    /// The name in figures and tables: "identity", "ReLU", "clipped ReLU", "log-tailed ReLU".
    public var label: String {
        switch self {
        case .identity: return "identity"
        case .relu: return "ReLU"
        case .clipped: return "clipped ReLU"
        case .logTailed: return "log-tailed ReLU"
        }
    }
}

/// A quantizer: b bits, resolution α (fixed during training, paper §4), rounding.
/// Levels are {0, α, 2α, …, Lα} with L = 2^b − 1.
public struct QuantizerSpec: Sendable, Equatable, Codable {
    public var bits: Int
    public var alpha: Float
    public var rounding: Rounding

    public init(bits: Int, alpha: Float, rounding: Rounding = .ceil) {
        precondition(bits >= 1 && bits <= 16, "bits must be in 1...16, got \(bits)")
        precondition(alpha > 0 && alpha.isFinite, "alpha must be positive, got \(alpha)")
        self.bits = bits
        self.alpha = alpha
        self.rounding = rounding
    }

    /// L = 2^b − 1: the number of levels above 0.
    public var levels: Int { (1 << bits) - 1 }
    /// The largest output, L·α (float32 product).
    public var top: Float { alpha * Float(levels) }

    /// σ(x) for one value (tests); the same arithmetic as the kernel.
    public func quantize(_ x: Float) -> Float {
        var out: Float = 0
        var input = x
        withUnsafeMutablePointer(to: &out) { o in
            withUnsafePointer(to: &input) { i in
                quantizedReLUForward(
                    UnsafeMutableBufferPointer(start: o, count: 1), UnsafeBufferPointer(start: i, count: 1), spec: self)
            }
        }
        return out
    }
}

/// The α of the authors' code (`bit_alpha`), Lloyd-fitted to a half-normal input; nil for other widths
/// (use `fitAlpha(bits:rounding:)`).
public func defaultAlpha(bits: Int) -> Float? {
    switch bits {
    case 1: return 1.2221
    case 2: return 0.6511
    case 4: return 0.1946
    default: return nil
    }
}

extension QuantizerSpec {
    /// Calls `body` with σ on 8 lanes: the one definition of the quantizer's arithmetic, shared by the
    /// quantized ReLU and the fused batch-norm + quantizer pass (the rounding switch runs once, outside
    /// the caller's loop). Computed as PyTorch does: r = x / α (a true float32 division, not x·(1/α)),
    /// rounded, clamped to [0, L], times α.
    @inline(__always)
    public func withQuantizer<R>(_ body: (_ quantize: (SIMD8<Float>) -> SIMD8<Float>) -> R) -> R {
        let alpha8 = SIMD8<Float>(repeating: alpha)
        let zero = SIMD8<Float>(repeating: 0), levels8 = SIMD8<Float>(repeating: Float(levels))
        @inline(__always) func clampScale(_ level: SIMD8<Float>) -> SIMD8<Float> {
            var r = level.replacing(with: zero, where: level .<= zero)  // also maps −0 to +0
            r = r.replacing(with: levels8, where: r .> levels8)
            return r * alpha8
        }
        switch rounding {
        case .ceil: return body { v in clampScale((v / alpha8).rounded(.up)) }
        case .nearest: return body { v in clampScale((v / alpha8).rounded(.toNearestOrEven)) }
        }
    }
}

/// y = σ_α(x): ceil: 0 for x ≤ 0, min(⌈x/α⌉, L)·α for x > 0; nearest: clamp(round-half-even(x/α), 0, L)·α.
/// `y` and `x` may be the same memory. Element-wise, split over the workers.
public func quantizedReLUForward(
    _ y: UnsafeMutableBufferPointer<Float>, _ x: UnsafeBufferPointer<Float>, spec: QuantizerSpec
) {
    precondition(y.count == x.count, "quantizedReLUForward: y \(y.count) vs x \(x.count)")
    guard let yp = y.baseAddress, let xp = x.baseAddress else { return }
    let n = x.count
    nonisolated(unsafe) let (xr, yr) = (UnsafeRawPointer(xp), UnsafeMutableRawPointer(yp))
    // The rule is chosen inside each worker's closure, so its loop is specialised (Kernels/BatchNorm.swift,
    // batchNormBackwardTrainingPlanes, says why).
    Parallel.forEachChunk(n / 8, minimumPerWorker: 16_384) { vectors in
        spec.withQuantizer { quantize in
            for i in vectors {
                let v = xr.loadUnaligned(fromByteOffset: i * 32, as: SIMD8<Float>.self)
                yr.storeBytes(of: quantize(v), toByteOffset: i * 32, as: SIMD8<Float>.self)
            }
        }
    }
    spec.withQuantizer { quantize in
        let tail = n / 8 * 8
        if tail < n {
            var v = SIMD8<Float>(repeating: 0)
            for j in 0..<(n - tail) { v[j] = xp[tail + j] }
            let q = quantize(v)
            for j in 0..<(n - tail) { yp[tail + j] = q[j] }
        }
    }
}

/// dx += dy · STE'(x)  (accumulates; `accumulate: false` writes dx = dy · STE'(x) without reading dx).
/// `x` is the quantizer's input.
public func quantizedReLUBackward(
    _ dx: UnsafeMutableBufferPointer<Float>, _ dy: UnsafeBufferPointer<Float>,
    _ x: UnsafeBufferPointer<Float>, spec: QuantizerSpec, ste: STE, accumulate: Bool = true
) {
    precondition(
        dx.count == x.count && dy.count == x.count,
        "quantizedReLUBackward: dx \(dx.count), dy \(dy.count), x \(x.count)")
    guard let dxp = dx.baseAddress, let dyp = dy.baseAddress, let xp = x.baseAddress else { return }
    let n = x.count
    nonisolated(unsafe) let (xr, dyr, dxr) = (UnsafeRawPointer(xp), UnsafeRawPointer(dyp), UnsafeMutableRawPointer(dxp))
    Parallel.forEachChunk(n / 8, minimumPerWorker: 16_384) { vectors in
        ste.withDerivative(top: spec.top) { derivative in   // inside each worker, as in quantizedReLUForward
            for i in vectors {
                let v = xr.loadUnaligned(fromByteOffset: i * 32, as: SIMD8<Float>.self)
                let g = dyr.loadUnaligned(fromByteOffset: i * 32, as: SIMD8<Float>.self)
                let acc = accumulate ? dxr.loadUnaligned(fromByteOffset: i * 32, as: SIMD8<Float>.self) : .zero
                dxr.storeBytes(of: acc + g * derivative(v), toByteOffset: i * 32, as: SIMD8<Float>.self)
            }
        }
    }
    ste.withDerivative(top: spec.top) { derivative in
        let tail = n / 8 * 8
        if tail < n {
            var v = SIMD8<Float>(repeating: 0)
            for j in 0..<(n - tail) { v[j] = xp[tail + j] }
            let d = derivative(v)
            for j in 0..<(n - tail) { dxp[tail + j] = (accumulate ? dxp[tail + j] : 0) + dyp[tail + j] * d[j] }
        }
    }
}
