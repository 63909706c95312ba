/// GPT-2's pre-tokenizer: splits text into the pieces that BPE then encodes one at a time.
///
/// A hand-written scanner over Unicode scalars that matches, at each position, the first
/// alternative of OpenAI's regular expression that matches there (left to right, greedy):
///
///     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
///
/// - Contractions are lower case only: `they'RE` splits as `they`, `'`, `RE`.
/// - ` ?` is the ASCII space U+0020 only; a tab or NBSP before a word stays a piece of its own.
/// - `\s+(?!\S)` takes a run of whitespace but leaves its last character when a non-space follows,
///   so that `a   b` splits as `a`, `  `, ` b`; at the end of the text the whole run is one piece.
/// - `\s` is Unicode White_Space (tab…CR, space, NEL, NBSP, U+1680, U+2000…U+200A, U+2028, U+2029,
///   U+202F, U+205F, U+3000), which is what Oniguruma (Hugging Face `tokenizers`) uses;
///   `\p{L}` is general category L*, `\p{N}` is N*.
public enum PreTokenizer {
    /// The pre-tokens of `text`, in order; joined they give back `text`.
    public static func split(_ text: String) -> [String] {
        var pieces: [String] = []
        var text = text
        text.withUTF8 { bytes in
            forEachPiece(in: bytes) { range in
                pieces.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self))
            }
        }
        return pieces
    }

    /// Calls `body` with the byte range of each pre-token of the UTF-8 text in `bytes`, in order.
    ///
    /// Never reads outside `bytes`; a malformed byte (impossible in a Swift `String`) counts as one
    /// scalar of the "other" class.
    @inline(__always)
    static func forEachPiece(in bytes: UnsafeBufferPointer<UInt8>, _ body: (Range<Int>) -> Void) {
        let n = bytes.count
        var i = 0
        while i < n {
            let (c, length) = scalar(in: bytes, at: i)
            // 's 't 'm 'd 're 've 'll
            if c == 0x27, i + 1 < n {
                let b1 = bytes[i + 1]
                if b1 == 0x73 || b1 == 0x74 || b1 == 0x6D || b1 == 0x64 {  // s t m d
                    body(i..<(i + 2)); i += 2; continue
                }
                if i + 2 < n {
                    let b2 = bytes[i + 2]
                    if (b1 == 0x72 && b2 == 0x65) || (b1 == 0x76 && b2 == 0x65) || (b1 == 0x6C && b2 == 0x6C) {  // re ve ll
                        body(i..<(i + 3)); i += 3; continue
                    }
                }
            }
            var kind = characterClass(c)
            var runFrom = i + length
            // " ?" before a letter, number or other run.
            if c == 0x20, runFrom < n {
                let (c2, length2) = scalar(in: bytes, at: runFrom)
                let kind2 = characterClass(c2)
                if kind2 != .space {
                    kind = kind2
                    runFrom += length2
                }
            }
            if kind != .space {
                var j = runFrom
                while j < n {
                    let (cj, lj) = scalar(in: bytes, at: j)
                    if characterClass(cj) != kind { break }
                    j += lj
                }
                body(i..<j); i = j; continue
            }
            // Whitespace: \s+(?!\S) then \s+.
            var j = runFrom
            var last = i  // start of the run's last scalar
            while j < n {
                let (cj, lj) = scalar(in: bytes, at: j)
                if characterClass(cj) != .space { break }
                last = j
                j += lj
            }
            let end = (j == n || last == i) ? j : last
            body(i..<end)
            i = end
        }
    }

    enum CharacterClass: UInt8 { case letter, number, space, other }

    @inline(__always)
    static func characterClass(_ c: UInt32) -> CharacterClass {
        if c < 0x10000 { return CharacterClass(rawValue: bmpClasses[Int(c)])! }
        return classify(c)
    }

    /// The class of every scalar in the Basic Multilingual Plane, computed once (64 KiB).
    private static let bmpClasses: [UInt8] = (0..<0x10000).map { classify(UInt32($0)).rawValue }

    private static func classify(_ c: UInt32) -> CharacterClass {
        guard let scalar = Unicode.Scalar(c) else { return .other }  // surrogates
        let properties = scalar.properties
        if properties.isWhitespace { return .space }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }

    /// The scalar value starting at byte `i` and its length in bytes (1…4).
    @inline(__always)
    static func scalar(in bytes: UnsafeBufferPointer<UInt8>, at i: Int) -> (UInt32, Int) {
        let b0 = UInt32(bytes[i])
        if b0 < 0x80 { return (b0, 1) }
        let n = bytes.count
        if b0 & 0xE0 == 0xC0, i + 1 < n {
            return (((b0 & 0x1F) << 6) | (UInt32(bytes[i + 1]) & 0x3F), 2)
        }
        if b0 & 0xF0 == 0xE0, i + 2 < n {
            return (((b0 & 0x0F) << 12) | ((UInt32(bytes[i + 1]) & 0x3F) << 6) | (UInt32(bytes[i + 2]) & 0x3F), 3)
        }
        if b0 & 0xF8 == 0xF0, i + 3 < n {
            let value = ((b0 & 0x07) << 18) | ((UInt32(bytes[i + 1]) & 0x3F) << 12)
                | ((UInt32(bytes[i + 2]) & 0x3F) << 6) | (UInt32(bytes[i + 3]) & 0x3F)
            return (value, 4)
        }
        return (0xFFFD, 1)
    }
}
