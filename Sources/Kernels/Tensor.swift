// The float32 tensor of the engine: a shape and one 64-byte-aligned, manually managed buffer.
// A class (not [Float]) so kernels run on raw pointers without copy-on-write, exclusivity checks
// or retain/release in inner loops.
// Layout convention, declared once: activations are NCHW (n, c, h, w), conv weights (outC, inC, k, k),
// linear weights (out, in) — the layouts of PyTorch, of the CIFAR records and of the fixtures. The one
// exception is opt-in: a net whose convolutions keep oneDNN's channel-blocked layout (ResNet-20) hands
// its 4-D activations between layers as nChw8c / nChw16c, and says so in `Tensor.layout`.

/// The order of a 4-D activation's elements. `.nchw`: (i, ch, s) at (i·c + ch)·spatial + s.
/// `.channelBlocked(b)` (oneDNN's nChw8c / nChw16c): at ((i·c/b + ch/b)·spatial + s)·b + ch % b.
/// A gradient always has the layout of the tensor it is the gradient of.
public enum ActivationLayout: Hashable, Sendable, CustomStringConvertible {
    case nchw
    case channelBlocked(Int)

    /// Channels per block; nil for NCHW.
    public var block: Int? {
        if case .channelBlocked(let b) = self { return b }
        return nil
    }

    /// Flat index of element (i, ch, s) of an [n, c, spatial] activation.
    @inline(__always)
    public func index(_ i: Int, _ ch: Int, _ s: Int, channels c: Int, spatial: Int) -> Int {
        switch self {
        case .nchw: return (i * c + ch) * spatial + s
        case .channelBlocked(let b): return ((i * (c / b) + ch / b) * spatial + s) * b + ch % b
        }
    }

    public var description: String {
        switch self {
        case .nchw: return "NCHW"
        case .channelBlocked(let b): return "nChw\(b)c"
        }
    }
}

public final class Tensor: @unchecked Sendable {
    public private(set) var shape: [Int]
    public let count: Int
    /// How a rank-4 tensor's elements are ordered (see `ActivationLayout`); NCHW unless a layer says otherwise.
    public var layout: ActivationLayout = .nchw
    /// The elements, row-major. Kernels take `buffer` / `pointer` directly.
    public let pointer: UnsafeMutablePointer<Float>

    /// A zero-filled tensor.
    public convenience init(zeros shape: [Int]) {
        self.init(uninitialized: shape)
        pointer.initialize(repeating: 0, count: count)
    }

    /// A tensor whose elements are whatever the allocator left there: for outputs a kernel overwrites
    /// in full (zero-filling them cost ~9 % of a LeNet-5 step).
    public init(uninitialized shape: [Int]) {
        self.shape = shape
        count = shape.reduce(1, *)
        let bytes = max(64, ((count * 4 + 63) / 64) * 64)
        var raw: UnsafeMutableRawPointer? = nil
        // Not inside precondition(): -Ounchecked does not evaluate precondition conditions at all.
        let status = posix_memalign(&raw, 64, bytes)
        if status != 0 || raw == nil { fatalError("out of memory for \(shape)") }
        pointer = raw!.bindMemory(to: Float.self, capacity: count)
    }

    /// A tensor holding a copy of `values`.
    public convenience init(_ values: [Float], shape: [Int]) {
        precondition(values.count == shape.reduce(1, *), "values \(values.count) vs shape \(shape)")
        self.init(uninitialized: shape)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: count) }
    }

    /// A tensor filled with `value`.
    public convenience init(repeating value: Float, shape: [Int]) {
        self.init(uninitialized: shape)
        pointer.update(repeating: value, count: count)
    }

    deinit { free(pointer) }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    public var readBuffer: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: pointer, count: count) }
    public var array: [Float] { Array(readBuffer) }
    public var rank: Int { shape.count }

    public subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    /// Same elements viewed with another shape of equal count (no copy: the shape is replaced).
    public func reshape(_ newShape: [Int]) {
        precondition(newShape.reduce(1, *) == count, "reshape \(shape) -> \(newShape)")
        shape = newShape
    }

    public func zero() { pointer.update(repeating: 0, count: count) }

    public func copy(from other: Tensor) {
        precondition(other.count == count, "copy \(other.shape) into \(shape)")
        pointer.update(from: other.pointer, count: count)
    }

    public func clone() -> Tensor {
        let t = Tensor(uninitialized: shape)
        t.copy(from: self)
        t.layout = layout
        return t
    }
}

/// A layer's reusable output (or input-gradient) buffer. The tensor is handed out again only when
/// nobody else still holds it, so a caller that keeps a result keeps it intact; otherwise a fresh one
/// is allocated. Contents are NOT cleared: the kernel that fills it must write every element (or
/// call `zero()`). Steady-state training steps then allocate nothing.
public struct ReusableTensor {
    private var tensor: Tensor?
    public init() {}

    public mutating func get(_ shape: [Int], layout: ActivationLayout = .nchw) -> Tensor {
        let count = shape.reduce(1, *)
        if isKnownUniquelyReferenced(&tensor), let t = tensor, t.count == count {
            if t.shape != shape { t.reshape(shape) }
            t.layout = layout
            return t
        }
        let t = Tensor(uninitialized: shape)
        t.layout = layout
        tensor = t
        return t
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
