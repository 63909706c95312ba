import Foundation

/// ROUGE-1, ROUGE-2 and ROUGE-L F-measures exactly as Google's `rouge-score` package computes them
/// with `RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)`: its tokenizer (lowercase,
/// every run of characters other than a-z and 0-9 a separator, words longer than 3 letters Porter-
/// stemmed with NLTK's default `NLTK_EXTENSIONS` mode) and, with several references, the reference of
/// the highest F-measure per type (`score_multi`). `Tools/reference/make_metric_fixtures.py` checks
/// it against the package to 1e-9.
public enum ROUGE {
    public struct Scores: Codable, Equatable, Sendable {
        public var rouge1: Double, rouge2: Double, rougeL: Double
    }

    /// F-measures (0-1) of one prediction against its references.
    public static func score(prediction: String, references: [String]) -> Scores {
        let p = tokenize(prediction)
        var best = Scores(rouge1: 0, rouge2: 0, rougeL: 0)
        for (k, r) in references.map(tokenize).enumerated() {
            let s = Scores(rouge1: ngramF(r, p, 1), rouge2: ngramF(r, p, 2), rougeL: lcsF(r, p))
            // np.argmax keeps the first maximum.
            if k == 0 || s.rouge1 > best.rouge1 { best.rouge1 = s.rouge1 }
            if k == 0 || s.rouge2 > best.rouge2 { best.rouge2 = s.rouge2 }
            if k == 0 || s.rougeL > best.rougeL { best.rougeL = s.rougeL }
        }
        return best
    }

    /// `tokenize.tokenize(text, PorterStemmer())`: lowercase, non-[a-z0-9] runs to spaces, split,
    /// stem words longer than 3 characters, drop empty tokens.
    public static func tokenize(_ text: String) -> [[UInt8]] {
        var tokens: [[UInt8]] = [], current: [UInt8] = []
        for c in text.lowercased().unicodeScalars {
            if ("a"..."z").contains(c) || ("0"..."9").contains(c) {
                current.append(UInt8(c.value))
            } else if !current.isEmpty {
                tokens.append(current)
                current = []
            }
        }
        if !current.isEmpty { tokens.append(current) }
        return tokens.map { $0.count > 3 ? PorterStemmer.stem($0) : $0 }
    }

    static func fmeasure(_ p: Double, _ r: Double) -> Double { p + r > 0 ? 2 * p * r / (p + r) : 0 }

    static func ngramF(_ target: [[UInt8]], _ prediction: [[UInt8]], _ n: Int) -> Double {
        func grams(_ t: [[UInt8]]) -> [[[UInt8]]: Int] {
            var out: [[[UInt8]]: Int] = [:]
            if t.count >= n { for i in 0...(t.count - n) { out[Array(t[i..<(i + n)]), default: 0] += 1 } }
            return out
        }
        let tg = grams(target), pg = grams(prediction)
        let overlap = tg.reduce(0) { $0 + min($1.value, pg[$1.key] ?? 0) }
        let p = Double(overlap) / Double(max(pg.values.reduce(0, +), 1))
        let r = Double(overlap) / Double(max(tg.values.reduce(0, +), 1))
        return fmeasure(p, r)
    }

    static func lcsF(_ target: [[UInt8]], _ prediction: [[UInt8]]) -> Double {
        guard !target.isEmpty, !prediction.isEmpty else { return 0 }
        var previous = [Int](repeating: 0, count: prediction.count + 1), row = previous
        for t in target {
            for j in 1...prediction.count {
                row[j] = t == prediction[j - 1] ? previous[j - 1] + 1 : max(previous[j], row[j - 1])
            }
            swap(&previous, &row)
        }
        let lcs = Double(previous[prediction.count])
        return fmeasure(lcs / Double(prediction.count), lcs / Double(target.count))
    }
}

/// The Porter stemmer as NLTK 3.x implements it in its default mode (`NLTK_EXTENSIONS`), for the
/// lowercase ASCII words ROUGE's tokenizer produces: its irregular forms, its extra rules (`ies` and
/// `ied` of 4 letters, `alli`, `fulli`, `logi`, `bli`, the two-letter cvc), then steps 1a-5b.
enum PorterStemmer {
    typealias Word = [UInt8]

    static let irregular: [String: String] = {
        let forms: [String: [String]] = ["sky": ["sky", "skies"], "die": ["dying"], "lie": ["lying"], "tie": ["tying"],
                                         "news": ["news"], "inning": ["innings", "inning"], "outing": ["outings", "outing"],
                                         "canning": ["cannings", "canning"], "howe": ["howe"], "proceed": ["proceed"],
                                         "exceed": ["exceed"], "succeed": ["succeed"]]
        var pool: [String: String] = [:]
        for (key, values) in forms { for v in values { pool[v] = key } }
        return pool
    }()

    static func stem(_ word: Word) -> Word {
        if let irregular = irregular[String(decoding: word, as: UTF8.self)] { return Array(irregular.utf8) }
        if word.count <= 2 { return word }
        var w = step1a(word)
        w = step1b(w)
        w = step1c(w)
        w = step2(w)
        w = step3(w)
        w = step4(w)
        w = step5a(w)
        return step5b(w)
    }

    static func isVowel(_ c: UInt8) -> Bool { c == 0x61 || c == 0x65 || c == 0x69 || c == 0x6F || c == 0x75 }

    /// `_is_consonant`: a y is a consonant when an odd number of y's ends at it after a vowel, or
    /// at the start.
    static func isConsonant(_ w: Word, _ index: Int) -> Bool {
        var i = index
        if isVowel(w[i]) { return false }
        if w[i] == 0x79 {
            var negate = false
            while i > 0 && w[i] == 0x79 { negate.toggle(); i -= 1 }
            return (!isVowel(w[i])) != negate
        }
        return true
    }

    /// The number of vowel-consonant sequences (m in [C](VC)^m[V]).
    static func measure(_ w: Word) -> Int {
        var flags: [Bool] = []
        for (i, c) in w.enumerated() {
            if isVowel(c) { flags.append(false) } else if c == 0x79 { flags.append(i == 0 ? true : !flags[i - 1]) } else { flags.append(true) }
        }
        var m = 0
        for i in 1..<max(flags.count, 1) where !flags[i - 1] && flags[i] { m += 1 }
        return m
    }

    static func containsVowel(_ w: Word) -> Bool { w.indices.contains { !isConsonant(w, $0) } }

    static func endsDoubleConsonant(_ w: Word) -> Bool { w.count >= 2 && w[w.count - 1] == w[w.count - 2] && isConsonant(w, w.count - 1) }

    static func endsCVC(_ w: Word) -> Bool {
        let n = w.count
        if n >= 3, isConsonant(w, n - 3), !isConsonant(w, n - 2), isConsonant(w, n - 1), ![0x77, 0x78, 0x79].contains(w[n - 1]) {
            return true
        }
        return n == 2 && !isConsonant(w, 0) && isConsonant(w, 1)
    }

    static func ends(_ w: Word, _ suffix: String) -> Bool {
        let s = Array(suffix.utf8)
        return w.count >= s.count && Array(w.suffix(s.count)) == s
    }

    static func replacing(_ w: Word, _ suffix: String, _ replacement: String) -> Word {
        Array(w.dropLast(suffix.utf8.count)) + Array(replacement.utf8)
    }

    /// `_apply_rule_list`: the first rule whose suffix matches decides (its condition on the stem
    /// failing leaves the word unchanged); `*d` matches a double consonant.
    typealias Rule = (suffix: String, replacement: String, condition: ((Word) -> Bool)?)
    static func apply(_ w: Word, _ rules: [Rule]) -> Word {
        for rule in rules {
            if rule.suffix == "*d" && endsDoubleConsonant(w) {
                let stem = Array(w.dropLast(2))
                return rule.condition.map { $0(stem) } ?? true ? stem + Array(rule.replacement.utf8) : w
            }
            if ends(w, rule.suffix) {
                let stem = Array(w.dropLast(rule.suffix.utf8.count))
                return rule.condition.map { $0(stem) } ?? true ? stem + Array(rule.replacement.utf8) : w
            }
        }
        return w
    }

    static func positive(_ w: Word) -> Bool { measure(w) > 0 }

    static func step1a(_ w: Word) -> Word {
        if ends(w, "ies") && w.count == 4 { return replacing(w, "ies", "ie") }
        return apply(w, [("sses", "ss", nil), ("ies", "i", nil), ("ss", "ss", nil), ("s", "", nil)])
    }

    static func step1b(_ w: Word) -> Word {
        if ends(w, "ied") { return replacing(w, "ied", w.count == 4 ? "ie" : "i") }
        if ends(w, "eed") {
            let stem = Array(w.dropLast(3))
            return measure(stem) > 0 ? stem + Array("ee".utf8) : w
        }
        var intermediate: Word?
        for suffix in ["ed", "ing"] where ends(w, suffix) {
            let stem = Array(w.dropLast(suffix.utf8.count))
            if containsVowel(stem) { intermediate = stem; break }
        }
        guard let s = intermediate else { return w }
        let last = s.last.map { String(UnicodeScalar($0)) } ?? ""
        return apply(s, [("at", "ate", nil), ("bl", "ble", nil), ("iz", "ize", nil),
                         ("*d", last, { _ in !["l", "s", "z"].contains(last) }),
                         ("", "e", { measure($0) == 1 && endsCVC($0) })])
    }

    static func step1c(_ w: Word) -> Word {
        apply(w, [("y", "i", { $0.count > 1 && isConsonant($0, $0.count - 1) })])
    }

    static func step2(_ w: Word) -> Word {
        if ends(w, "alli") && positive(Array(w.dropLast(4))) { return step2(replacing(w, "alli", "al")) }
        let rules: [Rule] = [
            ("ational", "ate", positive), ("tional", "tion", positive), ("enci", "ence", positive), ("anci", "ance", positive),
            ("izer", "ize", positive), ("bli", "ble", positive), ("alli", "al", positive), ("entli", "ent", positive),
            ("eli", "e", positive), ("ousli", "ous", positive), ("ization", "ize", positive), ("ation", "ate", positive),
            ("ator", "ate", positive), ("alism", "al", positive), ("iveness", "ive", positive), ("fulness", "ful", positive),
            ("ousness", "ous", positive), ("aliti", "al", positive), ("iviti", "ive", positive), ("biliti", "ble", positive),
            ("fulli", "ful", positive), ("logi", "log", { _ in positive(Array(w.dropLast(3))) }),
        ]
        return apply(w, rules)
    }

    static func step3(_ w: Word) -> Word {
        apply(w, [("icate", "ic", positive), ("ative", "", positive), ("alize", "al", positive), ("iciti", "ic", positive),
                  ("ical", "ic", positive), ("ful", "", positive), ("ness", "", positive)])
    }

    static func step4(_ w: Word) -> Word {
        let m1: (Word) -> Bool = { measure($0) > 1 }
        let rules: [Rule] = [
            ("al", "", m1), ("ance", "", m1), ("ence", "", m1), ("er", "", m1), ("ic", "", m1), ("able", "", m1), ("ible", "", m1),
            ("ant", "", m1), ("ement", "", m1), ("ment", "", m1), ("ent", "", m1),
            ("ion", "", { measure($0) > 1 && ($0.last == 0x73 || $0.last == 0x74) }),
            ("ou", "", m1), ("ism", "", m1), ("ate", "", m1), ("iti", "", m1), ("ous", "", m1), ("ive", "", m1), ("ize", "", m1),
        ]
        return apply(w, rules)
    }

    static func step5a(_ w: Word) -> Word {
        guard ends(w, "e") else { return w }
        let stem = Array(w.dropLast())
        let m = measure(stem)
        return m > 1 || (m == 1 && !endsCVC(stem)) ? stem : w
    }

    static func step5b(_ w: Word) -> Word {
        apply(w, [("ll", "l", { _ in measure(Array(w.dropLast())) > 1 })])
    }
}

/// The stemmer on its own, for tests against NLTK (ROUGE stems only words longer than 3 letters).
public enum PorterStemmerProbe {
    public static func stem(_ word: String) -> [UInt8] { PorterStemmer.stem(Array(word.utf8)) }
}
