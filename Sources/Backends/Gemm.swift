// Dense matrix products for the Linear layer, through OpenBLAS (kept at 1 thread; see `Compute`).
import COpenBLAS
import Kernels

/// c[m, n] = alpha · op(a) · op(b) + beta · c, row-major (op = transpose when the flag is set), with the
/// rows of c split over the Kernels' workers, each block one single-threaded OpenBLAS call (one worker:
/// one call): a Linear layer's GEMMs (LeNet-5: 128 × 400 × 120) are too small for OpenBLAS's own threading
/// but worth halving on two cores. Blocks are fixed by the worker count, so results are too.
public func sgemmSplittingRows(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                               a: UnsafePointer<Float>, b: UnsafePointer<Float>, beta: Float,
                               c: UnsafeMutablePointer<Float>) {
    nonisolated(unsafe) let (ap, bp, cp) = (a, b, c)
    // At least ~256k multiply-adds per block: below that the hand-off costs more than it saves.
    Parallel.forEachChunk(m, minimumPerWorker: Swift.max(1, (1 << 18) / Swift.max(1, n * k))) { rows in
        // Rows lo..<hi of op(a): rows of a, or (transposed) columns of a with a's own leading dimension.
        let block = transposeA ? ap + rows.lowerBound : ap + rows.lowerBound * k
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(rows.count), Int32(n), Int32(k), alpha, block, Int32(transposeA ? m : k), bp,
                    Int32(transposeB ? k : n), beta, cp + rows.lowerBound * n, Int32(n))
    }
}

/// Threads of every library in the process, set from this one place: oneDNN's OpenMP pool, the
/// Kernels' Dispatch workers; OpenBLAS stays at 1 thread (its idle spinning and per-GEMM threading
/// cost more than they give next to the other pools).
public func setComputeThreads(_ n: Int) {
    precondition(n >= 1, "thread count \(n)")
    openblas_set_num_threads(1)
    OneDNNBackend.setThreads(n)
    Parallel.workers = n
    // Activations are fresh tensors every step; keep freed blocks in the heap instead of returning them
    // to the kernel (mmap/munmap per tensor cost page faults and zeroing, ~15 % of a LeNet-5 step).
    _ = mallopt(-3 /* M_MMAP_THRESHOLD */, 32 << 20)
    _ = mallopt(-1 /* M_TRIM_THRESHOLD */, Int32.max)
}

/// glibc <malloc.h> (not part of the Glibc module).
@_silgen_name("mallopt") private func mallopt(_ parameter: Int32, _ value: Int32) -> Int32
