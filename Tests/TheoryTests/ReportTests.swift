// The SVG figure and Markdown helpers of the Report module (used by the theory and pipeline reports).
import Kernels
import XCTest

@testable import Harness

final class ReportTests: XCTestCase {
    func testMarkdownTable() {
        let t = markdownTable(header: ["a", "b|c"], rows: [["1", "2"]], align: ["l", "r"])
        XCTAssertEqual(t, "| a | b\\|c |\n|---|---:|\n| 1 | 2 |\n")
        XCTAssertEqual(fmt(0.5), "0.5")
        XCTAssertEqual(fmt(1.5e-7), "1.500e-07")
        XCTAssertEqual(fmtFraction(1, 4), "1/4 (25.0 %)")
        XCTAssertTrue(claimsTable([Claim("c", held: false, evidence: "e")]).contains("**not held**"))
    }

    func testFigureDropsUnplottablePointsAndDrawsLegend() {
        let p = Panel(title: "t", xLabel: "x (s)", yLabel: "y", series: [
            Series("one", x: [1, 2, 3, 4], y: [1, 0, 10, 100]),  // 0 is not plottable on a log axis
            Series("two", x: [1, 2], y: [.nan, 5], dashed: true),
        ], logY: true)
        let svg = Figure(p).svg()
        XCTAssertTrue(svg.hasPrefix("<svg"))
        XCTAssertTrue(svg.hasSuffix("</svg>\n"))
        // "one" breaks at y = 0: one single point, then a two-point polyline.
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 1)
        XCTAssertTrue(svg.contains(">one</text>") && svg.contains(">two</text>"))
        XCTAssertTrue(svg.contains(">x (s)</text>"))
        XCTAssertTrue(svg.contains(">10</text>") && svg.contains(">100</text>") || svg.contains(">1e2</text>"))
        XCTAssertEqual(Figure(p).svg(), svg, "deterministic output")
    }

    /// Every point named, and two names of points at the same place not drawn over each other.
    func testPointNamesDoNotOverlap() throws {
        let p = Panel(title: "t", xLabel: "x", yLabel: "y", series: [
            Series("a", x: [1, .nan, 2], y: [0, .nan, 1], markers: true, pointLabels: ["lenet5 2-bit", "", "lenet5 4-bit"]),
            Series("b", x: [1], y: [0], markers: true, pointLabels: ["resnet20 2-bit"]),
        ])
        let svg = Figure(p).svg()
        let pattern = try NSRegularExpression(pattern: #"<text x="([-0-9.]+)" y="([-0-9.]+)" font-size="9" fill="[^"]+">([^<]+)</text>"#)
        var boxes: [String: (x: Double, y: Double)] = [:]
        for m in pattern.matches(in: svg, range: NSRange(svg.startIndex..., in: svg)) {
            let g = { (i: Int) in String(svg[Range(m.range(at: i), in: svg)!]) }
            boxes[g(3)] = (Double(g(1))!, Double(g(2))!)
        }
        XCTAssertEqual(Set(boxes.keys), ["lenet5 2-bit", "lenet5 4-bit", "resnet20 2-bit"])
        let (a, b) = (boxes["lenet5 2-bit"]!, boxes["resnet20 2-bit"]!)
        XCTAssertEqual(a.x, b.x, "both sit right of the same point")
        XCTAssertGreaterThanOrEqual(abs(a.y - b.y), 10, "the second name moved a line away")
    }

    /// A log axis over half a decade that holds a single 1-2-5 value (0.12–0.38: only 0.2) still gets labelled
    /// ticks, at every digit.
    func testNarrowLogAxisGetsTicks() {
        let p = Panel(title: "t", xLabel: "x", yLabel: "loss", series: [Series("a", x: [1, 2, 3], y: [0.38, 0.2, 0.12])],
            logY: true)
        let svg = Figure(p).svg()
        for label in ["0.2", "0.3"] { XCTAssertTrue(svg.contains(">\(label)</text>"), "no tick \(label)") }
    }

    /// The PNG copy beside a figure is the figure's: redrawn where rsvg-convert is installed, removed where it is not,
    /// so that a report regenerated without the converter does not keep a PNG of an older figure.
    func testPNGCopyIsRedrawnOrRemoved() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("png-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let panel = Panel(title: "t", xLabel: "x", yLabel: "y", series: [Series("a", x: [1, 2], y: [1, 2])])
        try Figure(panel).svg().write(toFile: "\(dir)/f.svg", atomically: true, encoding: .utf8)
        try "an older figure".write(toFile: "\(dir)/f.png", atomically: true, encoding: .utf8)
        try writePNG(ofSVG: "\(dir)/f.svg", converter: nil)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/f.png"), "no converter: the stale copy is gone")
        try writePNG(ofSVG: "\(dir)/f.svg", converter: nil)  // nothing to remove: no error
        guard let converter = svgConverter else { return }
        try "an older figure".write(toFile: "\(dir)/f.png", atomically: true, encoding: .utf8)
        try writePNG(ofSVG: "\(dir)/f.svg", converter: converter)
        let png = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/f.png"))
        XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4e, 0x47], "redrawn as a PNG")
    }

    /// A figure title wider than the figure is wrapped at spaces into lines that fit (at the 9 px a character the
    /// renderer assumes), every word kept, and the panels start below the last line; a short title stays one line.
    func testLongFigureTitleWrapsInsteadOfOverflowing() throws {
        let panel = Panel(title: "t", xLabel: "x", yLabel: "y", series: [Series("a", x: [1, 2], y: [1, 2])])
        let title = "Fig. 2 (Fashion-MNIST): identity STE started at other STEs' minima (resnet20, 4-bit; "
            + "lr 1e-05 for 124 epochs, then the normal schedule)"
        let figure = Figure(title: title, panels: [panel, panel], columns: 2, panelWidth: 420)
        let svg = figure.svg()
        let pattern = try NSRegularExpression(pattern: #"<text x="[-0-9.]+" y="([0-9]+)" font-size="15" font-weight="bold" text-anchor="middle">([^<]+)</text>"#)
        let lines = pattern.matches(in: svg, range: NSRange(svg.startIndex..., in: svg)).map {
            (y: Int(svg[Range($0.range(at: 1), in: svg)!])!, text: String(svg[Range($0.range(at: 2), in: svg)!]))
        }
        XCTAssertEqual(lines.count, 2)
        XCTAssertEqual(lines.map(\.text).joined(separator: " "), escapeXML(title), "every word, in order")
        for line in lines { XCTAssertLessThanOrEqual(Double(line.text.count) * 9, 840 - 20, "'\(line.text)' fits") }
        XCTAssertEqual(lines.map(\.y), [20, 38])
        XCTAssertTrue(svg.contains("height=\"348.00\""), "the figure grows by the extra line (30 + 18 + 300)")
        let short = Figure(title: "short", panels: [panel], columns: 1).svg()
        XCTAssertTrue(short.contains("y=\"20\" font-size=\"15\" font-weight=\"bold\" text-anchor=\"middle\">short</text>"))
        XCTAssertTrue(short.contains("height=\"330.00\""))
        XCTAssertEqual(wrapped("a b c", maxCharacters: 3), ["a b", "c"])
        XCTAssertEqual(wrapped("abcdef g", maxCharacters: 3), ["abcdef", "g"], "a word longer than a line stays whole")
    }
}
