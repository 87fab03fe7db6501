// Minimal SVG line plots: a `Figure` is a grid of `Panel`s, each with a title, axis labels (with units),
// a legend and linear or logarithmic axes. No dependencies; the output is plain, deterministic SVG text
// (same input → same bytes), readable in a browser and convertible with rsvg-convert.
import Foundation

/// One polyline (optionally with markers). Non-finite points, and non-positive ones on a log axis,
/// break the line instead of being drawn.
public struct Series: Sendable {
    public var name: String
    public var x: [Double]
    public var y: [Double]
    /// CSS colour; nil picks the next colour of the palette.
    public var color: String?
    public var dashed: Bool
    public var markers: Bool
    public var lineWidth: Double
    /// 1 = opaque; thin per-seed lines behind a mean use less.
    public var opacity: Double
    /// A name per point, set beside it (empty: none; "" for a point without one). Labels that would overlap are
    /// moved down (or up) until they do not.
    public var pointLabels: [String]

    /// A series with an empty name is drawn but not listed in the legend.
    public init(_ name: String, x: [Double], y: [Double], color: String? = nil, dashed: Bool = false,
        markers: Bool = false, lineWidth: Double = 1.6, opacity: Double = 1, pointLabels: [String] = [])
    {
        precondition(x.count == y.count, "series \(name): \(x.count) x values vs \(y.count) y values")
        precondition(pointLabels.isEmpty || pointLabels.count == x.count, "series \(name): \(pointLabels.count) point labels vs \(x.count) points")
        self.pointLabels = pointLabels
        self.name = name
        self.x = x
        self.y = y
        self.color = color
        self.dashed = dashed
        self.markers = markers
        self.lineWidth = lineWidth
        self.opacity = opacity
    }
}

/// A horizontal reference line (e.g. y = 0 or a target value).
public struct ReferenceLine: Sendable {
    public var y: Double
    public var label: String
    /// nil: grey.
    public var color: String?
    public init(y: Double, label: String = "", color: String? = nil) {
        self.y = y
        self.label = label
        self.color = color
    }
}

public struct Panel: Sendable {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    public var logX: Bool
    public var logY: Bool
    /// Fixed axis ranges; nil fits the data.
    public var xRange: ClosedRange<Double>?
    public var yRange: ClosedRange<Double>?
    public var references: [ReferenceLine]
    public var showLegend: Bool
    /// Legend in the bottom-right corner; otherwise the corner of the plot area that covers the fewest data
    /// points and reference lines.
    public var legendBottom: Bool

    public init(title: String, xLabel: String, yLabel: String, series: [Series], logX: Bool = false,
        logY: Bool = false, xRange: ClosedRange<Double>? = nil, yRange: ClosedRange<Double>? = nil,
        references: [ReferenceLine] = [], showLegend: Bool = true, legendBottom: Bool = false)
    {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.logX = logX
        self.logY = logY
        self.xRange = xRange
        self.yRange = yRange
        self.references = references
        self.showLegend = showLegend
        self.legendBottom = legendBottom
    }
}

public struct Figure: Sendable {
    public var title: String
    public var panels: [Panel]
    public var columns: Int
    public var panelWidth: Double
    public var panelHeight: Double

    public init(title: String, panels: [Panel], columns: Int = 2, panelWidth: Double = 420,
        panelHeight: Double = 300)
    {
        self.title = title
        self.panels = panels
        self.columns = max(1, min(columns, panels.count))
        self.panelWidth = panelWidth
        self.panelHeight = panelHeight
    }

    /// A single-panel figure.
    public init(_ panel: Panel, width: Double = 560, height: Double = 380) {
        self.init(title: "", panels: [panel], columns: 1, panelWidth: width, panelHeight: height)
    }

    public static let palette = [
        "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
        "#7f7f7f", "#bcbd22",
    ]

    public func svg() -> String {
        let rows = (panels.count + columns - 1) / columns
        let width = panelWidth * Double(columns)
        // Bold 15 px Helvetica averages under 9 px a character: a longer title is wrapped, not cut at the edges.
        let titleLines = title.isEmpty ? [] : wrapped(title, maxCharacters: max(20, Int((width - 20) / 9)))
        let titleHeight: Double = titleLines.isEmpty ? 0 : 30 + 18 * Double(titleLines.count - 1)
        let height = titleHeight + panelHeight * Double(rows)
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(f(width))" height="\(f(height))" \
            viewBox="0 0 \(f(width)) \(f(height))" font-family="Helvetica, Arial, sans-serif">
            <rect x="0" y="0" width="\(f(width))" height="\(f(height))" fill="white"/>

            """
        for (i, line) in titleLines.enumerated() {
            out += "<text x=\"\(f(width / 2))\" y=\"\(20 + 18 * i)\" font-size=\"15\" font-weight=\"bold\" "
                + "text-anchor=\"middle\">\(escapeXML(line))</text>\n"
        }
        for (i, panel) in panels.enumerated() {
            let x0 = panelWidth * Double(i % columns)
            let y0 = titleHeight + panelHeight * Double(i / columns)
            out += renderPanel(panel, x0: x0, y0: y0, w: panelWidth, h: panelHeight)
        }
        out += "</svg>\n"
        return out
    }

    public func write(to path: String) throws {
        do {
            try svg().write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw ReportError("cannot write figure \(path): \(error)")
        }
    }

    // MARK: - Rendering

    private func renderPanel(_ p: Panel, x0: Double, y0: Double, w: Double, h: Double) -> String {
        let g = PanelGeometry(p, x0: x0, y0: y0, w: w, h: h)
        var out = "<g>\n"
        out += "<text x=\"\(f(x0 + w / 2))\" y=\"\(f(y0 + 17))\" font-size=\"13\" font-weight=\"bold\" "
            + "text-anchor=\"middle\">\(escapeXML(p.title))</text>\n"
        out += "<rect x=\"\(f(g.left))\" y=\"\(f(g.top))\" width=\"\(f(g.right - g.left))\" "
            + "height=\"\(f(g.bottom - g.top))\" fill=\"none\" stroke=\"#444\" stroke-width=\"1\"/>\n"
        out += axes(g, x0: x0)
        // Clip the data to the plot area.
        let clipID = "clip\(Int(x0))_\(Int(y0))"
        out += "<clipPath id=\"\(clipID)\"><rect x=\"\(f(g.left))\" y=\"\(f(g.top))\" "
            + "width=\"\(f(g.right - g.left))\" height=\"\(f(g.bottom - g.top))\"/></clipPath>\n"
        out += "<g clip-path=\"url(#\(clipID))\">\n"
        let (references, placed) = referenceLines(g)
        out += references
        let (series, pointLabels) = seriesLines(g)
        out += series
        out += "</g>\n"
        out += pointNames(pointLabels, g, avoiding: placed)
        out += legend(g)
        out += "</g>\n"
        return out
    }

    /// Ticks, grid and axis labels.
    private func axes(_ g: PanelGeometry, x0: Double) -> String {
        var out = ""
        for (v, label) in ticks(lo: g.xlo, hi: g.xhi, log: g.p.logX) {
            let X = g.sx(v)
            out += "<line x1=\"\(f(X))\" y1=\"\(f(g.top))\" x2=\"\(f(X))\" y2=\"\(f(g.bottom))\" "
                + "stroke=\"#e5e5e5\" stroke-width=\"1\"/>\n"
            out += "<text x=\"\(f(X))\" y=\"\(f(g.bottom + 14))\" font-size=\"10\" "
                + "text-anchor=\"middle\">\(escapeXML(label))</text>\n"
        }
        for (v, label) in ticks(lo: g.ylo, hi: g.yhi, log: g.p.logY) {
            let Y = g.sy(v)
            out += "<line x1=\"\(f(g.left))\" y1=\"\(f(Y))\" x2=\"\(f(g.right))\" y2=\"\(f(Y))\" "
                + "stroke=\"#e5e5e5\" stroke-width=\"1\"/>\n"
            out += "<text x=\"\(f(g.left - 4))\" y=\"\(f(Y + 3.5))\" font-size=\"10\" "
                + "text-anchor=\"end\">\(escapeXML(label))</text>\n"
        }
        out += "<text x=\"\(f((g.left + g.right) / 2))\" y=\"\(f(g.bottom + 32))\" font-size=\"11\" "
            + "text-anchor=\"middle\">\(escapeXML(g.p.xLabel))</text>\n"
        let yMid = (g.top + g.bottom) / 2
        out += "<text x=\"\(f(x0 + 14))\" y=\"\(f(yMid))\" font-size=\"11\" text-anchor=\"middle\" "
            + "transform=\"rotate(-90 \(f(x0 + 14)) \(f(yMid)))\">\(escapeXML(g.p.yLabel))</text>\n"
        return out
    }

    /// The reference lines; labels of nearby ones are set side by side instead of on top of each other (their boxes
    /// are returned, for the point names to avoid).
    private func referenceLines(_ g: PanelGeometry) -> (String, [(y: Double, start: Double, end: Double)]) {
        var out = ""
        var placed: [(y: Double, start: Double, end: Double)] = []
        for r in g.p.references where g.usable(r.y, log: g.p.logY) {
            let Y = g.sy(g.ty(r.y)), color = r.color ?? "#555"
            out += "<line x1=\"\(f(g.left))\" y1=\"\(f(Y))\" x2=\"\(f(g.right))\" y2=\"\(f(Y))\" "
                + "stroke=\"\(color)\" stroke-width=\"1\" stroke-dasharray=\"2,3\"/>\n"
            if !r.label.isEmpty {
                let width = 5.2 * Double(r.label.count)
                var x = g.left + 4
                while let clash = placed.first(where: { abs($0.y - Y) < 10 && x < $0.end && x + width > $0.start }) {
                    x = clash.end + 8
                }
                placed.append((Y, x, x + width))
                out += "<text x=\"\(f(x))\" y=\"\(f(Y - 3))\" font-size=\"9\" "
                    + "fill=\"\(color)\">\(escapeXML(r.label))</text>\n"
            }
        }
        return (out, placed)
    }

    /// Every series' polylines (broken at points that cannot be drawn) and markers; the named points' positions.
    private func seriesLines(_ g: PanelGeometry) -> (String, [(Double, Double, String, String)]) {
        let p = g.p
        var out = ""
        var pointLabels: [(Double, Double, String, String)] = []
        for (k, s) in p.series.enumerated() {
            let color = s.color ?? Figure.palette[k % Figure.palette.count]
            var segments: [[(Double, Double)]] = [[]]
            for (a, b) in zip(s.x, s.y) {
                if g.usable(a, log: p.logX) && g.usable(b, log: p.logY) {
                    segments[segments.count - 1].append((g.sx(g.tx(a)), g.sy(g.ty(b))))
                } else if !segments[segments.count - 1].isEmpty {
                    segments.append([])
                }
            }
            let dash = s.dashed ? " stroke-dasharray=\"6,4\"" : ""
            for seg in segments where seg.count >= 2 {
                let pts = seg.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " ")
                let alpha = s.opacity < 1 ? " stroke-opacity=\"\(f(s.opacity))\"" : ""
                out += "<polyline points=\"\(pts)\" fill=\"none\" stroke=\"\(color)\" "
                    + "stroke-width=\"\(f(s.lineWidth))\"\(dash)\(alpha) stroke-linejoin=\"round\"/>\n"
            }
            if s.markers || segments.allSatisfy({ $0.count < 2 }) {
                for seg in segments {
                    for (X, Y) in seg {
                        out += "<circle cx=\"\(f(X))\" cy=\"\(f(Y))\" r=\"2.6\" fill=\"\(color)\"/>\n"
                    }
                }
            }
            for (i, label) in s.pointLabels.enumerated() where !label.isEmpty
                && g.usable(s.x[i], log: p.logX) && g.usable(s.y[i], log: p.logY)
            {
                pointLabels.append((g.sx(g.tx(s.x[i])), g.sy(g.ty(s.y[i])), label, color))
            }
        }
        return (out, pointLabels)
    }

    /// Point names, right of their point; one that would overlap a name already set moves down a line (up, at the
    /// bottom), so that near points keep legible names.
    private func pointNames(_ pointLabels: [(Double, Double, String, String)], _ g: PanelGeometry,
        avoiding placed: [(y: Double, start: Double, end: Double)]) -> String
    {
        var out = ""
        var boxes: [(x0: Double, x1: Double, y: Double)] = placed.map { ($0.start, $0.end, $0.y - 3) }
        for (X, Y, label, color) in pointLabels {
            let width = 5.2 * Double(label.count)
            let x = X + 5 + width <= g.right - 2 ? X + 5 : max(g.left + 2, X - 5 - width)  // left of it at the right edge
            var y = Y + 3
            var step = 10.0
            for _ in 0..<40 {
                guard boxes.contains(where: { abs($0.y - y) < 10 && x < $0.x1 && x + width > $0.x0 }) else { break }
                if y + step > g.bottom - 2 { step = -10; y = Y + 3 }
                y += step
            }
            boxes.append((x, x + width, y))
            out += "<text x=\"\(f(x))\" y=\"\(f(y))\" font-size=\"9\" fill=\"\(color)\">\(escapeXML(label))</text>\n"
        }
        return out
    }

    /// The legend, in the corner of the plot area whose box covers the fewest drawn points (reference lines count
    /// as points across the width); ties keep the first of top right, bottom right, top left, bottom left.
    private func legend(_ g: PanelGeometry) -> String {
        let p = g.p
        let named = p.series.enumerated().filter { !$0.element.name.isEmpty }
        guard p.showLegend && !named.isEmpty else { return "" }
        var out = ""
        let longest = named.map { $0.element.name.count }.max() ?? 0
        let lw = min(Double(longest) * 5.8 + 34, g.right - g.left - 8)
        let lh = Double(named.count) * 14 + 6
        var drawn: [(Double, Double)] = []
        for s in p.series {
            for (a, b) in zip(s.x, s.y) where g.usable(a, log: p.logX) && g.usable(b, log: p.logY) {
                drawn.append((g.sx(g.tx(a)), g.sy(g.ty(b))))
            }
        }
        for r in p.references where g.usable(r.y, log: p.logY) {
            for k in 0...20 { drawn.append((g.left + (g.right - g.left) * Double(k) / 20, g.sy(g.ty(r.y)))) }
        }
        let corners = [(g.right - lw - 4, g.top + 4), (g.right - lw - 4, g.bottom - lh - 4), (g.left + 4, g.top + 4),
            (g.left + 4, g.bottom - lh - 4)]
        func covered(_ c: (Double, Double)) -> Int {
            drawn.filter { $0.0 >= c.0 - 3 && $0.0 <= c.0 + lw + 3 && $0.1 >= c.1 - 3 && $0.1 <= c.1 + lh + 3 }.count
        }
        let (lx, ly) = p.legendBottom ? corners[1] : corners.min { covered($0) < covered($1) }!
        out += "<rect x=\"\(f(lx))\" y=\"\(f(ly))\" width=\"\(f(lw))\" height=\"\(f(lh))\" "
            + "fill=\"white\" fill-opacity=\"0.85\" stroke=\"#bbb\"/>\n"
        for (row, (k, s)) in named.enumerated() {
            let color = s.color ?? Figure.palette[k % Figure.palette.count]
            let Y = ly + 12 + Double(row) * 14
            let dash = s.dashed ? " stroke-dasharray=\"6,4\"" : ""
            out += "<line x1=\"\(f(lx + 5))\" y1=\"\(f(Y - 3.5))\" x2=\"\(f(lx + 25))\" "
                + "y2=\"\(f(Y - 3.5))\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>\n"
            out += "<text x=\"\(f(lx + 30))\" y=\"\(f(Y))\" font-size=\"10\">"
                + "\(escapeXML(s.name))</text>\n"
        }
        return out
    }

    /// Tick positions (in transformed units) and their labels.
    private func ticks(lo: Double, hi: Double, log: Bool) -> [(Double, String)] {
        if log && hi - lo < 1.5 {
            // Less than ~1.5 decades: ticks at 1, 2, 5 × 10^e, or at every digit when that gives fewer than two
            // (a range such as 0.12–0.38 holds only 0.2 of 1, 2, 5).
            func ticksAt(_ mantissas: [Double]) -> [(Double, String)] {
                var out: [(Double, String)] = []
                for e in Int(floor(lo))...Int(ceil(hi)) {
                    for m in mantissas {
                        let v = log10(m) + Double(e)
                        guard v >= lo - 1e-9 && v <= hi + 1e-9 else { continue }
                        let value = m * pow(10, Double(e))
                        out.append((v, abs(e) >= 4 ? String(format: "%.0fe%d", m, e) : fmtPlain(value)))
                    }
                }
                return out
            }
            let coarse = hi - lo < 0.5 ? [] : ticksAt([1, 2, 5])
            if coarse.count >= 2 { return coarse }
            let fine = ticksAt([1, 2, 3, 4, 5, 6, 7, 8, 9])
            if fine.count >= 2 { return fine }
            // Narrower than one digit step (e.g. 0.0175–0.0245): evenly spaced values, placed on the log axis.
            let (a, b) = (pow(10, lo), pow(10, hi))
            let raw = (b - a) / 4
            let mag = pow(10, floor(log10(raw)))
            let step = [1.0, 2.0, 2.5, 5.0, 10.0].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
            var v = ceil(a / step) * step
            var out: [(Double, String)] = []
            while v <= b * (1 + 1e-12) {
                out.append((log10(v), formatTick(v, step: step)))
                v += step
            }
            if out.count >= 2 { return out }
        }
        if log {
            let a = Int(floor(lo)), b = Int(ceil(hi))
            let step = max(1, (b - a) / 6)
            return stride(from: a, through: b, by: step).compactMap { e in
                let v = Double(e)
                guard v >= lo - 1e-9 && v <= hi + 1e-9 else { return nil }
                return (v, e == 0 ? "1" : e == 1 ? "10" : "1e\(e)")
            }
        }
        let raw = (hi - lo) / 5
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2.0, 2.5, 5.0, 10.0].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var v = ceil(lo / step) * step
        var out: [(Double, String)] = []
        while v <= hi + step * 1e-9 {
            let clean = abs(v) < step * 1e-9 ? 0 : v
            out.append((clean, formatTick(clean, step: step)))
            v += step
        }
        return out
    }

    private func fmtPlain(_ v: Double) -> String {
        var t = String(format: "%.4f", v)
        while t.hasSuffix("0") { t.removeLast() }
        if t.hasSuffix(".") { t.removeLast() }
        return t
    }

    private func formatTick(_ v: Double, step: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e5 || a < 1e-3 { return String(format: "%.2g", v) }
        var decimals = 0
        while decimals < 4 {
            let scaledStep = step * pow(10, Double(decimals))
            if abs(scaledStep - scaledStep.rounded()) < 1e-6 { break }
            decimals += 1
        }
        return String(format: "%.\(min(decimals, 4))f", v)
    }

    private func f(_ v: Double) -> String { String(format: "%.2f", v) }
}

public struct ReportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

/// `text` in lines of at most `maxCharacters`, broken at spaces (a word longer than a line stays whole).
func wrapped(_ text: String, maxCharacters: Int) -> [String] {
    var lines: [String] = [], line = ""
    for word in text.split(separator: " ", omittingEmptySubsequences: false) {
        if !line.isEmpty && line.count + 1 + word.count > maxCharacters {
            lines.append(line)
            line = String(word)
        } else {
            line += (line.isEmpty ? "" : " ") + word
        }
    }
    return lines + [line]
}

func escapeXML(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;")
}

/// The SVG converter used for PNG copies of the figures, when one is installed (Debian: librsvg2-bin).
public let svgConverter: String? = {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let path = "\(dir)/rsvg-convert"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}()

/// Writes <name>.png beside <name>.svg (white background, written under a temporary name and renamed) when
/// rsvg-convert is installed; otherwise removes a <name>.png left there, which would show an older figure than the SVG.
public func writePNG(ofSVG svgPath: String, converter: String? = svgConverter) throws {
    let png = (svgPath.hasSuffix(".svg") ? String(svgPath.dropLast(4)) : svgPath) + ".png"
    guard let converter else {
        guard unlink(png) == 0 || errno == ENOENT else {
            throw ReportError("\(png): cannot remove this copy of an older figure (no rsvg-convert to redraw it): \(String(cString: strerror(errno)))")
        }
        return
    }
    let dir = (png as NSString).deletingLastPathComponent
    let tmp = (dir.isEmpty ? "" : dir + "/") + "." + (png as NSString).lastPathComponent + ".tmp-\(getpid())"
    let process = Process()
    process.executableURL = URL(fileURLWithPath: converter)
    process.arguments = ["-b", "white", svgPath, "-o", tmp]
    process.standardError = FileHandle(forWritingAtPath: "/dev/null")
    do { try process.run() } catch { throw ReportError("\(png): cannot run \(converter): \(error)") }
    process.waitUntilExit()
    guard process.terminationStatus == 0, rename(tmp, png) == 0 else {
        unlink(tmp)
        throw ReportError("\(png): \(converter) could not convert \(svgPath) (exit \(process.terminationStatus))")
    }
}

/// A panel's plot area inside its cell and its data ranges (fitted to the drawable points and reference lines, or
/// the panel's fixed ranges), with the maps from data to pixels.
private struct PanelGeometry {
    let p: Panel
    let left: Double, right: Double, top: Double, bottom: Double
    let xlo: Double, xhi: Double, ylo: Double, yhi: Double

    init(_ p: Panel, x0: Double, y0: Double, w: Double, h: Double) {
        self.p = p
        (left, right, top, bottom) = (x0 + 66, x0 + w - 14, y0 + 28, y0 + h - 46)
        let tx: (Double) -> Double = p.logX ? { log10($0) } : { $0 }
        let ty: (Double) -> Double = p.logY ? { log10($0) } : { $0 }
        func usable(_ v: Double, log: Bool) -> Bool { v.isFinite && (!log || v > 0) }
        var xs: [Double] = [], ys: [Double] = []
        for s in p.series {
            for (a, b) in zip(s.x, s.y) where usable(a, log: p.logX) && usable(b, log: p.logY) {
                xs.append(tx(a)); ys.append(ty(b))
            }
        }
        for r in p.references where usable(r.y, log: p.logY) { ys.append(ty(r.y)) }
        var (xlo, xhi) = (xs.min() ?? 0, xs.max() ?? 1)
        var (ylo, yhi) = (ys.min() ?? 0, ys.max() ?? 1)
        if let r = p.xRange { (xlo, xhi) = (tx(r.lowerBound), tx(r.upperBound)) }
        if let r = p.yRange { (ylo, yhi) = (ty(r.lowerBound), ty(r.upperBound)) }
        if xhi <= xlo { xlo -= 0.5; xhi += 0.5 }
        if yhi <= ylo { let d = max(abs(ylo) * 0.1, 0.5); ylo -= d; yhi += d }
        if p.yRange == nil && !p.logY { let pad = (yhi - ylo) * 0.05; ylo -= pad; yhi += pad }
        if p.yRange == nil && p.logY { ylo -= 0.05 * (yhi - ylo); yhi += 0.05 * (yhi - ylo) }
        (self.xlo, self.xhi, self.ylo, self.yhi) = (xlo, xhi, ylo, yhi)
    }

    func tx(_ v: Double) -> Double { p.logX ? log10(v) : v }
    func ty(_ v: Double) -> Double { p.logY ? log10(v) : v }
    func usable(_ v: Double, log: Bool) -> Bool { v.isFinite && (!log || v > 0) }
    func sx(_ v: Double) -> Double { left + (v - xlo) / (xhi - xlo) * (right - left) }
    func sy(_ v: Double) -> Double { bottom - (v - ylo) / (yhi - ylo) * (bottom - top) }
}
