import Foundation

/// Number formatting shared by the report, the sentences and the plots (locale-independent).
enum Fmt {
    /// `1.2e16`: two significant digits and a plain exponent.
    static func sci(_ x: Double) -> String {
        guard x.isFinite, x > 0 else { return x == 0 ? "0" : "\(x)" }
        var exponent = Int(floor(log10(x)))
        var mantissa = (x / pow(10, Double(exponent)) * 10).rounded() / 10
        if mantissa >= 10 {
            mantissa /= 10
            exponent += 1
        }
        return String(format: "%.1fe%d", mantissa, exponent)
    }

    /// Three decimals (losses).
    static func loss(_ x: Double) -> String { String(format: "%.3f", x) }

    /// `3.524 ± 0.011`, or `3.524 (single seed)`.
    static func lossWithSpread(_ x: Double, _ spread: Double?) -> String {
        spread.map { "\(loss(x)) ± \(loss($0))" } ?? "\(loss(x)) (single seed)"
    }

    static func fixed(_ x: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", x) }

    /// Integers with thin grouping: `11,471,424`.
    static func int(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// Wall-clock seconds as `3.2 h`, `45 min` or `12 s`.
    static func duration(_ s: Double) -> String {
        if s >= 7200 { return fixed(s / 3600, 1) + " h" }
        if s >= 120 { return fixed(s / 60, 0) + " min" }
        return fixed(s, 0) + " s"
    }

    /// A compute value on `axis`: `1.2e16 FLOPs` or `3.1e4 s`.
    static func compute(_ x: Double, _ axis: ComputeAxis) -> String { sci(x) + " " + axis.unit }

    /// Escapes `|` for Markdown table cells.
    static func cell(_ text: String) -> String { text.replacingOccurrences(of: "|", with: "\\|") }
}
