// Every STE of the Swift table (Kernels/QuantizedReLU.swift, enum STE) has its rule in each other place that
// computes one: the CUDA C kernels (Sources/GPU/KernelSource.swift, through steCode) and the PyTorch twin
// (tools/ste_nets.py) — and neither falls back to another rule for a code or name it does not know. A new
// STE added to the enum alone fails here, naming what is missing.
import Foundation
import Kernels
import TestSupport
import XCTest

@testable import GPU

final class STECompletenessTests: XCTestCase {
    func testTheCUDAKernelsHaveACaseForEverySTEAndTrapOnOthers() throws {
        let codes = STE.allCases.map(steCode)
        XCTAssertEqual(Set(codes).count, STE.allCases.count, "steCode gives two STEs one code")
        XCTAssertEqual(Set(codes), Set((0..<Int32(STE.allCases.count)).map { $0 }), "codes are 0..<count")
        let source = cudaKernelSource
        guard let start = source.range(of: "float ste_derivative("), let end = source.range(of: "\n}", range: start.upperBound..<source.endIndex)
        else { return XCTFail("ste_derivative not found in the kernel source") }
        let body = String(source[start.upperBound..<end.lowerBound])
        for (ste, code) in zip(STE.allCases, codes) {
            XCTAssertTrue(body.contains("case \(code):"), "the CUDA kernels have no rule for \(ste.rawValue) (code \(code))")
        }
        XCTAssertTrue(body.contains("default: __trap();"), "an unknown STE code must trap in the CUDA kernels")
    }

    func testThePyTorchTwinKnowsEverySTEAndRefusesOthers() throws {
        let path = repositoryRoot + "/tools/ste_nets.py"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("STES = (") }) else {
            return XCTFail("\(path): no STES tuple")
        }
        let names = line.split(separator: "\"").enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
        XCTAssertEqual(names, STE.allCases.map(\.rawValue), "\(path): STES must list the Swift table's STEs in order")
        for ste in STE.allCases where ste != .identity {
            XCTAssertTrue(text.contains("ctx.ste == \"\(ste.rawValue)\""), "\(path): no backward rule for \(ste.rawValue)")
        }
        XCTAssertTrue(text.contains("raise ValueError(f\"unknown STE"), "\(path): an unknown STE must be refused")
    }
}
