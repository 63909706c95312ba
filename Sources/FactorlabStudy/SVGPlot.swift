import Foundation

/// A hand-written SVG 1.1 line/scatter plot with a logarithmic x axis (decade ticks), a linear y axis,
/// axis titles and a legend. Output depends only on the input (fixed number formatting, no dates),
/// so the same data gives a byte-identical file.
public struct SVGPlot: Sendable {
    public enum Marker: String, CaseIterable, Sendable {
        case circle, square, triangle, diamond, triangleDown, cross
    }

    public struct Series: Sendable {
        public var points: [CurvePoint]
        public var color: String
        public var marker: Marker?
        /// Draw the connecting line; `dashed` for fitted laws.
        public var line: Bool
        public var dashed: Bool
        public var lineWidth: Double
        public var opacity: Double

        public init(points: [CurvePoint], color: String, marker: Marker? = nil, line: Bool = true, dashed: Bool = false,
                    lineWidth: Double = 1.5, opacity: Double = 1) {
            self.points = points
            self.color = color
            self.marker = marker
            self.line = line
            self.dashed = dashed
            self.lineWidth = lineWidth
            self.opacity = opacity
        }
    }

    /// A legend row: a coloured line sample and/or a marker, and its text.
    public struct LegendEntry: Sendable {
        public var text: String
        public var color: String
        public var marker: Marker?
        public var line: Bool
        public var dashed: Bool

        public init(text: String, color: String, marker: Marker? = nil, line: Bool = false, dashed: Bool = false) {
            self.text = text
            self.color = color
            self.marker = marker
            self.line = line
            self.dashed = dashed
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    public var legend: [LegendEntry]

    public static let width = 760.0
    public static let height = 480.0
    static let left = 72.0, right = 210.0, top = 40.0, bottom = 58.0

    public init(title: String, xLabel: String, yLabel: String, series: [Series], legend: [LegendEntry]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.legend = legend
    }

    /// The SVG document: the frame (title, axes, grid and tick labels), the data, the legend.
    public func render() -> String {
        let f = frame()
        return header(f) + axes(f) + data(f) + legendSVG() + "</svg>\n"
    }

    /// The plotted area and the data ranges mapped onto it (log x, linear y, padded).
    struct Frame {
        let lx0: Double, lx1: Double, y0: Double, y1: Double
        let plotW: Double, plotH: Double
        func px(_ x: Double) -> Double { SVGPlot.left + (log10(x) - lx0) / (lx1 - lx0) * plotW }
        func py(_ y: Double) -> Double { SVGPlot.top + (y1 - y) / (y1 - y0) * plotH }
    }

    func frame() -> Frame {
        let all = series.flatMap(\.points).filter { $0.x > 0 && $0.x.isFinite && $0.loss.isFinite }
        let xs = all.map(\.x)
        let ys = all.map(\.loss)
        var lx0 = log10(xs.min() ?? 1)
        var lx1 = log10(xs.max() ?? 10)
        if lx1 - lx0 < 0.3 {
            let mid = (lx0 + lx1) / 2
            lx0 = mid - 0.15
            lx1 = mid + 0.15
        }
        let xPad = (lx1 - lx0) * 0.04
        lx0 -= xPad
        lx1 += xPad
        var y0 = ys.min() ?? 0
        var y1 = ys.max() ?? 1
        if y1 - y0 < 1e-6 {
            y0 -= 0.05
            y1 += 0.05
        }
        let yPad = (y1 - y0) * 0.06
        y0 -= yPad
        y1 += yPad

        let plotW = Self.width - Self.left - Self.right
        let plotH = Self.height - Self.top - Self.bottom

        return Frame(lx0: lx0, lx1: lx1, y0: y0, y1: y1, plotW: plotW, plotH: plotH)
    }

    func header(_ f: Frame) -> String {
        let plotW = f.plotW
        return """
            <?xml version="1.0" encoding="UTF-8" standalone="no"?>
            <svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="\(n(Self.width))" height="\(n(Self.height))" \
            viewBox="0 0 \(n(Self.width)) \(n(Self.height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
            <rect x="0" y="0" width="\(n(Self.width))" height="\(n(Self.height))" fill="#ffffff"/>
            <text x="\(n(Self.left + plotW / 2))" y="22" text-anchor="middle" font-size="15" font-weight="bold">\(xml(title))</text>

            """
    }

    /// Grid lines, ticks and their labels, axis titles.
    func axes(_ f: Frame) -> String {
        let (lx0, lx1, y0, y1, plotW, plotH) = (f.lx0, f.lx1, f.y0, f.y1, f.plotW, f.plotH)
        let px = f.px, py = f.py
        var out = ""
        // Grid and ticks.
        out += "<g stroke=\"#e4e4e4\" stroke-width=\"1\">\n"
        // Decade ticks, labelled 10^k.
        let majors = (Int(floor(lx0))...Int(ceil(lx1))).filter { Double($0) >= lx0 && Double($0) <= lx1 }
        let inRange = { (decade: Int, m: Int) -> Bool in
            let lx = Double(decade) + log10(Double(m))
            return lx >= lx0 && lx <= lx1
        }
        let decades = Int(floor(lx0))...Int(ceil(lx1))
        let someMinors = decades.reduce(0) { count, d in count + [2, 3, 5].filter { inRange(d, $0) }.count }
        // Label 2, 3, 5 x 10^k when fewer than three decades show; every multiple when that still gives < 2 labels.
        let labelled: Set<Int> = majors.count >= 3 ? [] : (majors.count + someMinors >= 2 ? [2, 3, 5] : Set(2...9))
        var xTicks: [(x: Double, major: Bool, label: String?)] = []
        for decade in decades {
            for m in 1...9 where inRange(decade, m) {
                xTicks.append((pow(10, Double(decade) + log10(Double(m))), m == 1,
                               labelled.contains(m) ? Self.minorLabel(m, decade) : nil))
            }
        }
        for tick in xTicks where tick.major {
            out += "<line x1=\"\(n(px(tick.x)))\" y1=\"\(n(Self.top))\" x2=\"\(n(px(tick.x)))\" y2=\"\(n(Self.top + plotH))\"/>\n"
        }
        let yStep = Self.niceStep((y1 - y0) / 8)
        let yTicks = stride(from: (y0 / yStep).rounded(.up) * yStep, through: y1, by: yStep).map { $0 }
        for y in yTicks {
            out += "<line x1=\"\(n(Self.left))\" y1=\"\(n(py(y)))\" x2=\"\(n(Self.left + plotW))\" y2=\"\(n(py(y)))\"/>\n"
        }
        out += "</g>\n"
        out += "<rect x=\"\(n(Self.left))\" y=\"\(n(Self.top))\" width=\"\(n(plotW))\" height=\"\(n(plotH))\" fill=\"none\" stroke=\"#333333\"/>\n"
        out += "<g stroke=\"#333333\" stroke-width=\"1\">\n"
        for tick in xTicks {
            let length = tick.major ? 6.0 : 3.0
            out += "<line x1=\"\(n(px(tick.x)))\" y1=\"\(n(Self.top + plotH))\" x2=\"\(n(px(tick.x)))\" y2=\"\(n(Self.top + plotH + length))\"/>\n"
        }
        for y in yTicks {
            out += "<line x1=\"\(n(Self.left - 5))\" y1=\"\(n(py(y)))\" x2=\"\(n(Self.left))\" y2=\"\(n(py(y)))\"/>\n"
        }
        out += "</g>\n<g fill=\"#333333\">\n"
        for tick in xTicks {
            let x = n(px(tick.x))
            let y = n(Self.top + plotH + 20)
            if tick.major {
                let exponent = Int(log10(tick.x).rounded())
                out += "<text x=\"\(x)\" y=\"\(y)\" text-anchor=\"middle\">10<tspan dy=\"-6\" font-size=\"9\">\(exponent)</tspan></text>\n"
            } else if let label = tick.label {
                out += "<text x=\"\(x)\" y=\"\(y)\" text-anchor=\"middle\" font-size=\"10\" fill=\"#666666\">\(label)</text>\n"
            }
        }
        let yDigits = max(0, -Int(floor(log10(yStep))))
        for y in yTicks {
            out += "<text x=\"\(n(Self.left - 8))\" y=\"\(n(py(y) + 4))\" text-anchor=\"end\">\(String(format: "%.\(yDigits)f", y))</text>\n"
        }
        out += "<text x=\"\(n(Self.left + plotW / 2))\" y=\"\(n(Self.height - 12))\" text-anchor=\"middle\" font-size=\"13\">\(xml(xLabel))</text>\n"
        out += "<text x=\"18\" y=\"\(n(Self.top + plotH / 2))\" text-anchor=\"middle\" font-size=\"13\" "
            + "transform=\"rotate(-90 18 \(n(Self.top + plotH / 2)))\">\(xml(yLabel))</text>\n</g>\n"

        return out
    }

    /// Lines and markers of every series.
    func data(_ f: Frame) -> String {
        let px = f.px, py = f.py
        var out = ""
        out += "<g fill=\"none\" stroke-linejoin=\"round\" stroke-linecap=\"round\">\n"
        for s in series where s.line && s.points.count > 1 {
            let path = s.points.filter { $0.x > 0 }.map { "\(n(px($0.x))),\(n(py($0.loss)))" }.joined(separator: " ")
            out += "<polyline points=\"\(path)\" stroke=\"\(s.color)\" stroke-width=\"\(n(s.lineWidth))\""
                + (s.dashed ? " stroke-dasharray=\"7,4\"" : "") + (s.opacity < 1 ? " stroke-opacity=\"\(n(s.opacity))\"" : "") + "/>\n"
        }
        out += "</g>\n<g stroke-width=\"1.2\">\n"
        for s in series {
            guard let marker = s.marker else { continue }
            for p in s.points where p.x > 0 {
                out += Self.marker(marker, x: px(p.x), y: py(p.loss), color: s.color, size: 4) + "\n"
            }
        }
        out += "</g>\n"

        return out
    }

    func legendSVG() -> String {
        var out = ""
        let lx = Self.width - Self.right + 16
        out += "<g font-size=\"11\">\n"
        for (i, entry) in legend.enumerated() {
            let y = Self.top + 10 + Double(i) * 18
            if entry.line {
                out += "<line x1=\"\(n(lx))\" y1=\"\(n(y))\" x2=\"\(n(lx + 24))\" y2=\"\(n(y))\" stroke=\"\(entry.color)\" stroke-width=\"2\""
                    + (entry.dashed ? " stroke-dasharray=\"7,4\"" : "") + "/>\n"
            }
            if let marker = entry.marker {
                out += Self.marker(marker, x: lx + 12, y: y, color: entry.color, size: 4) + "\n"
            }
            out += "<text x=\"\(n(lx + 32))\" y=\"\(n(y + 4))\" fill=\"#222222\">\(xml(entry.text))</text>\n"
        }
        out += "</g>\n"
        return out
    }

    /// `m · 10^k` as tick text: plain decimals for small exponents, else `m·10` with a raised exponent.
    static func minorLabel(_ m: Int, _ k: Int) -> String {
        if k >= 0 && k <= 3 { return String(m * Int(pow(10, Double(k)))) }
        if k < 0 && k >= -3 { return String(format: "%.\(-k)f", Double(m) * pow(10, Double(k))) }
        return "\(m)·10<tspan dy=\"-5\" font-size=\"8\">\(k)</tspan>"
    }

    /// 1, 2 or 5 times a power of ten, at least `raw`.
    static func niceStep(_ raw: Double) -> Double {
        let power = pow(10, floor(log10(raw)))
        for m in [1.0, 2.0, 5.0, 10.0] where m * power >= raw { return m * power }
        return 10 * power
    }

    static func marker(_ marker: Marker, x: Double, y: Double, color: String, size s: Double) -> String {
        let style = "fill=\"#ffffff\" stroke=\"\(color)\""
        switch marker {
        case .circle:
            return "<circle cx=\"\(n(x))\" cy=\"\(n(y))\" r=\"\(n(s))\" \(style)/>"
        case .square:
            return "<rect x=\"\(n(x - s))\" y=\"\(n(y - s))\" width=\"\(n(2 * s))\" height=\"\(n(2 * s))\" \(style)/>"
        case .triangle:
            return "<polygon points=\"\(n(x)),\(n(y - s * 1.2)) \(n(x + s * 1.1)),\(n(y + s * 0.8)) \(n(x - s * 1.1)),\(n(y + s * 0.8))\" \(style)/>"
        case .triangleDown:
            return "<polygon points=\"\(n(x)),\(n(y + s * 1.2)) \(n(x + s * 1.1)),\(n(y - s * 0.8)) \(n(x - s * 1.1)),\(n(y - s * 0.8))\" \(style)/>"
        case .diamond:
            return "<polygon points=\"\(n(x)),\(n(y - s * 1.3)) \(n(x + s * 1.1)),\(n(y)) \(n(x)),\(n(y + s * 1.3)) \(n(x - s * 1.1)),\(n(y))\" \(style)/>"
        case .cross:
            return "<path d=\"M\(n(x - s)),\(n(y - s)) L\(n(x + s)),\(n(y + s)) M\(n(x - s)),\(n(y + s)) L\(n(x + s)),\(n(y - s))\" "
                + "stroke=\"\(color)\" stroke-width=\"1.6\" fill=\"none\"/>"
        }
    }
}

/// Two-decimal coordinate.
private func n(_ x: Double) -> String { String(format: "%.2f", x) }

/// Escapes text for XML content and attributes.
func xml(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}
