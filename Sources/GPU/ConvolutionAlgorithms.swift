// Which cuDNN algorithm runs each pass of a convolution geometry. cuDNN's own heuristics rank the algorithms for the
// geometry (the `_v7` queries); the first that is supported (status success), deterministic and of the wanted math
// (FMA, i.e. plain float32, unless TF32 was asked for) is taken, with the workspace it needs. Without the queries, or
// when none of their answers qualifies, the deterministic algorithms of a fixed list are tried in order, the first
// whose workspace query succeeds being taken. The choice is recorded per geometry and printed by `ste gpu-check`, so
// a result can be traced to the algorithms that computed it.

/// One entry of cuDNN's ranked answer: cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t, whose three variants share
/// one layout (cudnn_cnn.h): int algo @0, int status @4, float time @8, size_t memory @16, int determinism @24,
/// int mathType @28, int reserved[3] @32; 48 bytes with padding.
struct AlgorithmPerformance: Equatable {
    var algorithm: CInt
    var status: CInt
    var memory: Int
    var deterministic: Bool
    var mathType: CInt

    static let stride = 48

    /// Reads `count` entries from the buffer a `_v7` query filled.
    static func read(_ buffer: UnsafeRawPointer, count: Int) -> [AlgorithmPerformance] {
        (0..<count).map { i in
            let entry = buffer + i * stride
            return AlgorithmPerformance(algorithm: entry.load(fromByteOffset: 0, as: CInt.self),
                status: entry.load(fromByteOffset: 4, as: CInt.self), memory: entry.load(fromByteOffset: 16, as: Int.self),
                deterministic: entry.load(fromByteOffset: 24, as: CInt.self) == 1,  // CUDNN_DETERMINISTIC
                mathType: entry.load(fromByteOffset: 28, as: CInt.self))
        }
    }
}

/// The algorithm a pass runs, its workspace, and where the choice came from.
struct AlgorithmChoice: Equatable, CustomStringConvertible {
    var algorithm: CInt
    var workspace: Int
    /// "cuDNN heuristics, rank 2" or "fixed list".
    var source: String

    var description: String { "algorithm \(algorithm) (\(source), workspace \(workspace) B)" }
}

/// The choice for one pass: the first of cuDNN's ranked answers that is supported, deterministic and of `mathType`;
/// else the first of `fallback` whose workspace query (`workspace`: bytes, or nil when unsupported) succeeds; nil when
/// neither gives one.
func chooseAlgorithm(ranked: [AlgorithmPerformance], mathType: CInt, fallback: [CInt], workspace: (CInt) -> Int?)
    -> AlgorithmChoice?
{
    for (rank, p) in ranked.enumerated() where p.status == 0 && p.deterministic && p.mathType == mathType {
        return AlgorithmChoice(algorithm: p.algorithm, workspace: p.memory, source: "cuDNN heuristics, rank \(rank + 1)")
    }
    for a in fallback {
        if let bytes = workspace(a) { return AlgorithmChoice(algorithm: a, workspace: bytes, source: "fixed list") }
    }
    return nil
}

/// Runs a `_v7` query (nil: the library has none) and reads its answers.
func rankedAlgorithms(_ query: CUDNN.AlgorithmQuery?, _ a: Ptr, _ b: Ptr, _ c: Ptr, _ d: Ptr, handle: Ptr)
    -> [AlgorithmPerformance]
{
    guard let query else { return [] }
    let room = 16
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: room * AlgorithmPerformance.stride, alignment: 8)
    defer { buffer.deallocate() }
    buffer.initializeMemory(as: UInt8.self, repeating: 0, count: room * AlgorithmPerformance.stride)
    var returned: CInt = 0
    guard query(handle, a, b, c, d, CInt(room), &returned, buffer) == 0 else { return [] }
    return AlgorithmPerformance.read(buffer, count: Int(min(max(returned, 0), CInt(room))))
}
