// Work splitting for the hand-written kernels: a fixed number of Dispatch workers, each owning a
// contiguous block of items, so every output element is computed by one worker in a fixed order
// and results do not depend on thread timing (same worker count → bit-identical results).
import Dispatch

public enum Parallel {
    /// Workers used by the kernels; set once at start-up together with oneDNN's OpenMP threads.
    public nonisolated(unsafe) static var workers = 2

    /// Runs `body(part)` for part in 0..<parts concurrently and returns when all are done. Dispatch by
    /// default; Backends installs oneDNN's OpenMP pool here so the process has ONE worker pool (an idle
    /// OpenMP thread spin-waits, and would compete with Dispatch workers for the same cores).
    public nonisolated(unsafe) static var runner: (_ parts: Int, _ body: (Int) -> Void) -> Void = { parts, body in
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let b = body
            DispatchQueue.concurrentPerform(iterations: parts) { b($0) }
        }
    }

    /// Calls `body(part)` for part in 0..<parts, concurrently when there is more than one (the caller
    /// chose `parts` and what each part covers).
    @inlinable
    public static func forEachPart(_ parts: Int, _ body: (Int) -> Void) {
        if parts <= 1 { body(0) } else { runner(parts, body) }
    }

    /// Calls `body(part, parts)` once per worker in one parallel region over a set of tensors of `elements`
    /// elements in all, each part then taking `share(part, of: parts, count:)` of every tensor; one part
    /// (inline) below ~16k elements, where the hand-off costs more than the pass. The optimizer's update and
    /// the gradients' zeroing split alike, so each worker touches the lines it touched last.
    @inlinable
    public static func forEachShare(ofElements elements: Int, _ body: (_ part: Int, _ parts: Int) -> Void) {
        let parts = Swift.max(1, Swift.min(workers, elements / 16_384))
        forEachPart(parts) { body($0, parts) }
    }

    /// Part `part` of `parts` contiguous, near-equal slices of 0..<count.
    @inlinable
    public static func share(_ part: Int, of parts: Int, count: Int) -> Range<Int> {
        (count * part / parts)..<(count * (part + 1) / parts)
    }

    /// Calls `body` on `min(workers, count / minimumPerWorker)` contiguous sub-ranges of 0..<count.
    @inlinable
    public static func forEachChunk(_ count: Int, minimumPerWorker: Int = 1, _ body: (Range<Int>) -> Void) {
        let parts = Swift.max(1, Swift.min(workers, count / Swift.max(1, minimumPerWorker)))
        if parts <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        runner(parts) { part in
            let range = share(part, of: parts, count: count)
            if !range.isEmpty { body(range) }
        }
    }
}
