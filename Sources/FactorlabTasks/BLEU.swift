import Foundation

/// Corpus BLEU exactly as sacreBLEU 2.x computes it with its defaults (`sacrebleu.corpus_bleu`:
/// tokenize 13a, no lowercasing, max order 4, smoothing `exp`, no effective order), so scores can be
/// compared with published WMT numbers. `Tools/reference/make_metric_fixtures.py` checks it against
/// the sacrebleu package to 1e-9.
public enum BLEU {
    public struct Score: Codable, Equatable, Sendable {
        /// BLEU, 0-100.
        public var score: Double
        /// Modified n-gram precisions (percent, after smoothing), orders 1-4.
        public var precisions: [Double]
        public var brevityPenalty: Double
        public var hypothesisLength: Int
        public var referenceLength: Int
        public var correct: [Int], total: [Int]

        enum CodingKeys: String, CodingKey {
            case score, precisions, brevityPenalty = "brevity_penalty", hypothesisLength = "hypothesis_length"
            case referenceLength = "reference_length", correct, total
        }
    }

    public static let maxOrder = 4

    /// Corpus BLEU of `hypotheses` against `references[k][i]` (reference set k of example i;
    /// every set has one line per hypothesis).
    public static func corpus(hypotheses: [String], references: [[String]]) -> Score {
        var correct = [Int](repeating: 0, count: maxOrder), total = correct
        var sysLen = 0, refLen = 0
        for (i, hyp) in hypotheses.enumerated() {
            let refs = references.map { tokenize13a($0[i]) }
            // Reference n-gram counts: for each n-gram, its largest count in any one reference.
            var refCounts: [[[UInt8]]: Int] = [:]
            var refLens: [Int] = []
            for r in refs {
                let (counts, len) = ngrams(r)
                refLens.append(len)
                for (g, c) in counts { refCounts[g] = max(refCounts[g] ?? 0, c) }
            }
            let (hypCounts, hypLen) = ngrams(tokenize13a(hyp))
            sysLen += hypLen
            refLen += closestLength(hypLen, refLens)
            for (g, c) in hypCounts {
                total[g.count - 1] += c
                if let r = refCounts[g] { correct[g.count - 1] += min(c, r) }
            }
        }
        return compute(correct: correct, total: total, sysLen: sysLen, refLen: refLen)
    }

    /// BLEU from summed sufficient statistics (matches and totals per order, lengths): sums of
    /// per-sentence statistics give the corpus score, which is how a paired bootstrap resamples it.
    public static func fromStatistics(correct: [Int], total: [Int], hypothesisLength: Int, referenceLength: Int) -> Score {
        compute(correct: correct, total: total, sysLen: hypothesisLength, refLen: referenceLength)
    }

    /// sacreBLEU's `compute_bleu` with `exp` smoothing: an order with no match gets precision
    /// 100 / (2^k total) for its k-th such order; log(0) is floored at -9999999999.
    static func compute(correct: [Int], total: [Int], sysLen: Int, refLen: Int) -> Score {
        var bp = 1.0
        if sysLen < refLen { bp = sysLen > 0 ? exp(1 - Double(refLen) / Double(sysLen)) : 0 }
        var precisions = [Double](repeating: 0, count: maxOrder)
        var score = 0.0
        if correct.contains(where: { $0 > 0 }) {
            var smooth = 1.0
            for n in 0..<maxOrder {
                if total[n] == 0 { break }
                if correct[n] == 0 {
                    smooth *= 2
                    precisions[n] = 100 / (smooth * Double(total[n]))
                } else {
                    precisions[n] = 100 * Double(correct[n]) / Double(total[n])
                }
            }
            score = bp * exp(precisions.reduce(0) { $0 + ($1 == 0 ? -9999999999 : log($1)) } / Double(maxOrder))
        }
        return Score(score: score, precisions: precisions, brevityPenalty: bp, hypothesisLength: sysLen, referenceLength: refLen,
                     correct: correct, total: total)
    }

    /// The reference length closest to the hypothesis length; ties go to the shorter reference.
    static func closestLength(_ hyp: Int, _ refs: [Int]) -> Int {
        var best = -1, bestDiff = -1
        for r in refs {
            let d = abs(hyp - r)
            if bestDiff == -1 || d < bestDiff || (d == bestDiff && r < best) { (best, bestDiff) = (r, d) }
        }
        return max(best, 0)
    }

    /// Counts of every 1- to 4-gram of a tokenized line (tokens separated by single spaces), and its
    /// token count. Tokens are compared as UTF-8 bytes, as Python compares code points (Swift's
    /// String equality would merge canonically equivalent spellings).
    static func ngrams(_ line: String) -> ([[[UInt8]]: Int], Int) {
        let tokens = line.utf8.split(separator: 0x20).map { Array($0) }
        var counts: [[[UInt8]]: Int] = [:]
        for n in 1...maxOrder where tokens.count >= n {
            for i in 0...(tokens.count - n) { counts[Array(tokens[i..<(i + n)]), default: 0] += 1 }
        }
        return (counts, tokens.count)
    }

    /// sacreBLEU's `13a` tokenizer (mteval-v13a): after `rstrip()`, drop `<skipped>`, join
    /// hyphenated line ends, unescape four HTML entities, then split off punctuation and symbols,
    /// periods and commas not between digits, and dashes after digits; single spaces.
    public static func tokenize13a(_ raw: String) -> String {
        var line = String(String.UnicodeScalarView(Array(raw.unicodeScalars).reversed().drop(while: CoQAEvaluator.isPythonWhitespace).reversed()))
        line = line.replacingOccurrences(of: "<skipped>", with: "").replacingOccurrences(of: "-\n", with: "")
            .replacingOccurrences(of: "\n", with: " ")
        if line.contains("&") {
            line = line.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
                .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
        }
        var s = Array((" " + line + " ").unicodeScalars)
        // 1. ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> ' \1 '
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count * 2)
        for c in s {
            let v = c.value
            if (0x7B...0x7E).contains(v) || (0x5B...0x60).contains(v) || (0x20...0x26).contains(v) || (0x28...0x2B).contains(v)
                || (0x3A...0x40).contains(v) || v == 0x2F {
                out += [" ", c, " "]
            } else {
                out.append(c)
            }
        }
        s = out
        // 2. ([^0-9])([\.,]) -> '\1 \2 ', 3. ([\.,])([^0-9]) -> ' \1 \2', 4. ([0-9])(-) -> '\1 \2 ':
        // each a left-to-right scan of non-overlapping two-character matches, as re.sub does.
        s = substitutePairs(s, { !isDigit($0) && isPeriodOrComma($1) }) { [$0, " ", $1, " "] }
        s = substitutePairs(s, { isPeriodOrComma($0) && !isDigit($1) }) { [" ", $0, " ", $1] }
        s = substitutePairs(s, { isDigit($0) && $1 == "-" }) { [$0, " ", $1, " "] }
        return CoQAEvaluator.splitWhitespace(String(String.UnicodeScalarView(s))).joined(separator: " ")
    }

    static func substitutePairs(_ s: [Unicode.Scalar], _ matches: (Unicode.Scalar, Unicode.Scalar) -> Bool,
                                _ replacement: (Unicode.Scalar, Unicode.Scalar) -> [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count + s.count / 2)
        var i = 0
        while i < s.count {
            if i + 1 < s.count, matches(s[i], s[i + 1]) {
                out += replacement(s[i], s[i + 1])
                i += 2
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return out
    }

    static func isDigit(_ c: Unicode.Scalar) -> Bool { ("0"..."9").contains(c) }
    static func isPeriodOrComma(_ c: Unicode.Scalar) -> Bool { c == "." || c == "," }
}
