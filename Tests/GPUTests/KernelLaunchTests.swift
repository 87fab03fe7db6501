// The typed kernel launches (Sources/GPU/KernelLaunches.swift) against the kernels they launch: each function, called
// on a device that records instead of running, passes the arguments its kernel's C signature (parsed from
// KernelSource.swift) declares, in order and kind; every kernel has its function; and no other file launches a kernel
// by name.
import Backends
import Foundation
import TestSupport
import XCTest

@testable import GPU

/// Records launches; everything else is unused here.
private final class RecordingDevice: ComputeDevice {
    var launches: [(name: String, blocks: Int, threads: Int, arguments: [KernelArgument])] = []
    var description: String { "recording" }
    func allocate(bytes: Int) -> UnsafeMutableRawPointer { fatalError() }
    func release(_ pointer: UnsafeMutableRawPointer) {}
    func copy(_ destination: UnsafeMutableRawPointer, _ source: UnsafeRawPointer, bytes: Int, _ direction: CopyDirection) {}
    func zero(_ pointer: UnsafeMutableRawPointer, bytes: Int) {}
    func launch(_ name: String, blocks: Int, threads: Int, _ arguments: [KernelArgument]) {
        launches.append((name, blocks, threads, arguments))
    }
    func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, a: UnsafeRawPointer, lda: Int,
        b: UnsafeRawPointer, ldb: Int, c: UnsafeMutableRawPointer, ldc: Int) {}
    func convolution(_ geometry: Conv2DGeometry) -> DeviceConvolution { fatalError() }
    func synchronize() {}
    func capture(_ body: () -> Void) -> DeviceGraph? { fatalError() }
    var releases: Int { 0 }
    var recordedLibraries: [String: String] { [:] }
}

final class KernelLaunchTests: XCTestCase {
    /// Kernel name → its parameters' kinds ("pointer", "long", "int", "float"), from the CUDA C source.
    func signatures() throws -> [String: [String]] {
        let source = cudaKernelSource
        let pattern = try NSRegularExpression(pattern: #"__global__ void (\w+)\(([^)]*)\)"#)
        var out: [String: [String]] = [:]
        for m in pattern.matches(in: source, range: NSRange(source.startIndex..., in: source)) {
            let name = String(source[Range(m.range(at: 1), in: source)!])
            out[name] = source[Range(m.range(at: 2), in: source)!].split(separator: ",").map { parameter in
                let words = parameter.split(whereSeparator: \.isWhitespace)
                if parameter.contains("*") { return "pointer" }
                return String(words[words.count - 2])
            }
        }
        return out
    }

    func kind(_ a: KernelArgument) -> String {
        switch a {
        case .pointer: return "pointer"
        case .long: return "long"
        case .int: return "int"
        case .float: return "float"
        }
    }

    func testEveryKernelHasATypedLaunchWithItsSignature() throws {
        let d = RecordingDevice()
        let p = UnsafeMutableRawPointer(bitPattern: 0x1000)
        d.quantizedReluForward(.elements(10), y: p, x: p, n: 10, levels: 3, alpha: 1, rounding: 0)
        d.quantizedReluBackward(.elements(10), dx: p, dy: p, x: p, n: 10, ste: 0, top: 1)
        d.reluForward(.elements(10), y: p, x: p, n: 10)
        d.reluBackward(.elements(10), dx: p, dy: p, x: p, n: 10)
        d.channelPartialSums(.blocks(8), partial: p, x: p, mean: nil, n: 1, c: 4, spatial: 1, parts: 2)
        d.channelSumsFinish(.elements(4), out: p, partial: p, c: 4, parts: 2)
        d.batchNormMean(.elements(4), mean: p, partial: p, c: 4, parts: 2, count: 10)
        d.batchNormVariance(.elements(4), invstd: p, runningMean: p, runningVar: p, mean: p, partial: p, c: 4, parts: 2,
            count: 10, eps: 1e-5, momentum: 0.1)
        d.batchNormApply(.elements(10), y: p, x: p, residual: nil, mean: p, invstd: p, weight: p, bias: p, total: 10,
            c: 1, spatial: 1, quantizeOutput: 0, levels: 0, alpha: 1, rounding: 0)
        d.batchNormEvalInvstd(.elements(4), invstd: p, runningVar: p, c: 4, eps: 1e-5)
        d.batchNormBackwardPartialSums(.blocks(8), partial: p, dy: p, x: p, mean: p, invstd: p, weight: p, bias: p,
            n: 1, c: 4, spatial: 1, parts: 2, ste: 0, top: 1)
        d.batchNormBackwardSumsFinish(.elements(4), sums: p, weightGrad: p, biasGrad: p, partial: p, c: 4, parts: 2)
        d.batchNormBackwardApply(.elements(10), dx: p, sums: p, dy: p, x: p, mean: p, invstd: p, weight: p, bias: p,
            total: 10, n: 1, c: 1, spatial: 1, ste: 0, top: 1)
        d.batchNormResidualGradient(.elements(10), dsum: p, dy: p, x: p, residual: p, mean: p, invstd: p, weight: p,
            bias: p, total: 10, c: 1, spatial: 1, ste: 0, top: 1)
        d.channelBiasAdd(.elements(10), y: p, bias: p, total: 10, c: 1, spatial: 1)
        d.maxPool2Forward(.elements(10), y: p, argmax: p, x: p, n: 1, c: 1, h: 2, w: 2)
        d.maxPool2Backward(.elements(10), dx: p, dy: p, argmax: p, n: 1, c: 1, h: 2, w: 2)
        d.globalAveragePoolForward(.elements(10), y: p, x: p, planes: 10, spatial: 4)
        d.globalAveragePoolBackward(.elements(10), dx: p, dy: p, planes: 10, spatial: 4)
        d.shortcutOptionAForward(.elements(10), y: p, x: p, n: 1, c: 1, h: 2, w: 2, pad: 1)
        d.shortcutOptionABackward(.elements(10), dx: p, dy: p, n: 1, c: 1, h: 2, w: 2, pad: 1)
        d.add(.elements(10), y: p, a: p, b: p, n: 10)
        d.accumulate(.elements(10), y: p, a: p, n: 10)
        d.gatherBatch(.elements(10), x: p, labels: p, images: p, imageLabels: p, lookup: p, plan: p, count: 1, c: 1, h: 2,
            w: 5)
        d.softmaxCrossEntropy(.blocks(1, threads: 128), rowLoss: p, rowCorrect: p, dlogits: nil, logits: p, labels: p,
            batch: 2, classes: 10)
        d.sgdUpdate(.elements(10), w: p, g: p, buffer: p, n: 10, lr: 0.1, momentum: 0.9, weightDecay: 0, firstStep: 1)
        d.adamUpdate(.elements(10), w: p, g: p, m: p, v: p, n: 10, stepSize: 1e-3, correction2Sqrt: 1,
            oneMinusBeta1: 0.1, oneMinusBeta2: 0.001, beta2: 0.999, eps: 1e-8, weightDecay: 0)

        let kernels = try signatures()
        XCTAssertEqual(kernels.count, 27, "the kernel source's __global__ functions were not all found")
        XCTAssertEqual(Set(d.launches.map(\.name)), Set(kernels.keys), "a kernel without a typed launch, or one launched twice")
        for launch in d.launches {
            XCTAssertEqual(launch.arguments.map(kind), kernels[launch.name], "\(launch.name): arguments against the C signature")
        }
        let softmax = d.launches.first { $0.name == "softmax_cross_entropy" }!
        XCTAssertEqual([softmax.blocks, softmax.threads], [1, 128])
        let relu = d.launches.first { $0.name == "relu_forward" }!
        XCTAssertEqual([relu.blocks, relu.threads], [1, 256], "one thread per element, blocks of 256")
    }

    func testNoOtherFileLaunchesAKernelByName() throws {
        let folder = repositoryRoot + "/Sources/GPU"
        for file in try FileManager.default.contentsOfDirectory(atPath: folder) where file != "KernelLaunches.swift" {
            let text = try String(contentsOfFile: folder + "/" + file, encoding: .utf8)
            XCTAssertNil(text.range(of: #"\.launch\(\s*""#, options: .regularExpression),
                "\(file) launches a kernel by name: add or use its typed function in KernelLaunches.swift")
        }
    }
}

/// The cuDNN algorithm choice (Sources/GPU/ConvolutionAlgorithms.swift): cuDNN's ranked answers filtered to supported,
/// deterministic, FMA-math algorithms; the fixed list in order when none qualifies; the perf structs read at the C
/// layout's offsets.
final class ConvolutionAlgorithmTests: XCTestCase {
    let fma: CInt = 3

    func perf(_ algorithm: CInt, status: CInt = 0, memory: Int = 64, deterministic: Bool = true, math: CInt = 3)
        -> AlgorithmPerformance
    {
        AlgorithmPerformance(algorithm: algorithm, status: status, memory: memory, deterministic: deterministic, mathType: math)
    }

    func testTheFirstQualifyingRankedAlgorithmIsTaken() {
        let ranked = [perf(6, deterministic: false), perf(7, math: 1), perf(2, status: 9), perf(0, memory: 128), perf(1)]
        let choice = chooseAlgorithm(ranked: ranked, mathType: fma, fallback: [1]) { _ in 0 }
        XCTAssertEqual(choice, AlgorithmChoice(algorithm: 0, workspace: 128, source: "cuDNN heuristics, rank 4"),
            "non-deterministic, tensor-op and unsupported answers are skipped")
    }

    func testTheFixedListInOrderWhenNoAnswerQualifies() {
        let unsupported: Set<CInt> = [1]
        let choice = chooseAlgorithm(ranked: [perf(6, deterministic: false)], mathType: fma, fallback: [1, 4, 5]) { a in
            unsupported.contains(a) ? nil : Int(a) * 10
        }
        XCTAssertEqual(choice, AlgorithmChoice(algorithm: 4, workspace: 40, source: "fixed list"))
        XCTAssertNil(chooseAlgorithm(ranked: [], mathType: fma, fallback: [1]) { _ in nil })
    }

    func testPerfStructsAreReadAtTheirCOffsets() {
        // Two cudnnConvolutionFwdAlgoPerf_t as C lays them out: algo, status, time, (pad), memory, determinism, mathType.
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 96, alignment: 8)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0xAB, count: 96)
        for (i, (algo, status, memory, det, math)) in [(CInt(1), CInt(0), 4096, CInt(1), CInt(3)), (5, 9, 0, 0, 0)].enumerated() {
            let e = buffer + i * 48
            e.storeBytes(of: algo, toByteOffset: 0, as: CInt.self)
            e.storeBytes(of: status, toByteOffset: 4, as: CInt.self)
            e.storeBytes(of: Float(-1), toByteOffset: 8, as: Float.self)
            e.storeBytes(of: memory, toByteOffset: 16, as: Int.self)
            e.storeBytes(of: det, toByteOffset: 24, as: CInt.self)
            e.storeBytes(of: math, toByteOffset: 28, as: CInt.self)
        }
        XCTAssertEqual(AlgorithmPerformance.read(buffer, count: 2), [perf(1, memory: 4096),
            perf(5, status: 9, memory: 0, deterministic: false, math: 0)])
    }
}
