/// The immutable tables of a byte-level BPE tokenizer: the vocabulary, the ranked merges and the
/// special tokens, plus the merge loop that turns one pre-token into token ids.
///
/// Built once from vocab.json + merges.txt (or by the trainer) and shared by all copies of a
/// `BPETokenizer`; every property is a `let`, so it is `Sendable`.
final class BPEModel: Sendable {
    /// One more than the largest id in the vocabulary.
    let vocabularySize: Int
    /// The vocab.json text of each id, or nil where the ids have a gap.
    let tokens: [String?]
    /// vocab.json as given: token text → id.
    let vocabulary: [String: Int]
    /// The bytes of token `id`: `tokenBytes[tokenByteStarts[id]..<tokenByteStarts[id + 1]]`.
    let tokenBytes: [UInt8]
    let tokenByteStarts: [Int]
    /// The id of the one-byte token for each byte value.
    let byteIDs: [Int32]
    /// `(left, right)` → `rank << 32 | mergedID`; rank is the 0-based merge line (later duplicates win).
    let mergeTable: PairTable
    /// The merges in file order, as they are written back to merges.txt.
    let merges: [(left: Int32, right: Int32)]
    /// Special tokens present in the vocabulary, longest first (so the longest match wins).
    let specials: [(bytes: [UInt8], id: Int32)]
    /// `specialFirstBytes[b]` is true when some special token starts with byte `b`.
    let specialFirstBytes: [Bool]

    /// Checks and indexes a vocabulary and its merges.
    ///
    /// - Parameters:
    ///   - vocabulary: token text (GPT-2's byte-to-character form) → id, as in vocab.json.
    ///   - merges: the merge pairs in rank order, each with its 1-based line in `mergesFile`.
    ///   - specialTokens: texts that `encode(_:allowSpecial: true)` maps to their single id;
    ///     those missing from the vocabulary are ignored.
    init(vocabulary: [String: Int], merges mergeTexts: [(left: String, right: String, line: Int)],
         specialTokens: [String], vocabFile: String, mergesFile: String) throws {
        guard !vocabulary.isEmpty else {
            throw TokenizerError(.malformedVocabulary, file: vocabFile, "the vocabulary is empty")
        }
        // Ids: non-negative, unique, and not absurdly large (they index arrays).
        var maxID = -1
        for (text, id) in vocabulary {
            guard id >= 0, id < Int(Int32.max), id < 100 * vocabulary.count + 1_000 else {
                throw TokenizerError(.malformedVocabulary, file: vocabFile,
                                     "token \(quoted(text)) has id \(id); ids must be 0, 1, 2, … up to about the vocabulary size")
            }
            maxID = max(maxID, id)
        }
        var tokens = [String?](repeating: nil, count: maxID + 1)
        for (text, id) in vocabulary.sorted(by: { $0.value < $1.value }) {
            if let other = tokens[id] {
                throw TokenizerError(.malformedVocabulary, file: vocabFile,
                                     "id \(id) is given to both \(quoted(other)) and \(quoted(text))")
            }
            tokens[id] = text
        }
        let specialSet = Set(specialTokens)
        var tokenBytes: [UInt8] = []
        var starts = [0]
        starts.reserveCapacity(tokens.count + 1)
        for token in tokens {
            if let token {
                if !specialSet.contains(token), let bytes = ByteEncoder.decode(token) {
                    tokenBytes.append(contentsOf: bytes)
                } else {
                    tokenBytes.append(contentsOf: token.utf8)  // special or added token: its text as is
                }
            }
            starts.append(tokenBytes.count)
        }

        var byteIDs = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            let text = String(ByteEncoder.scalars[byte])
            guard let id = vocabulary[text] else {
                throw TokenizerError(.malformedVocabulary, file: vocabFile,
                                     "no token for byte 0x\(String(byte, radix: 16, uppercase: true)) (\(quoted(text))); "
                                         + "a byte-level BPE vocabulary must contain all 256 byte tokens")
            }
            byteIDs[byte] = Int32(id)
        }

        var table = PairTable(capacity: mergeTexts.count)
        var merges: [(left: Int32, right: Int32)] = []
        merges.reserveCapacity(mergeTexts.count)
        for (rank, merge) in mergeTexts.enumerated() {
            func id(_ text: String, _ role: String) throws -> Int32 {
                guard let id = vocabulary[text] else {
                    throw TokenizerError(.unknownToken, file: mergesFile, line: merge.line,
                                         "the \(role) \(quoted(text)) of merge \(quoted(merge.left + " " + merge.right)) "
                                             + "is not in the vocabulary (\(vocabFile)); are the two files from the same tokenizer?")
                }
                return Int32(id)
            }
            let left = try id(merge.left, "left token")
            let right = try id(merge.right, "right token")
            let merged = try id(merge.left + merge.right, "merged token")
            table.set(UInt64(rank) << 32 | UInt64(UInt32(merged)), for: PairTable.key(left, right))
            merges.append((left, right))
        }

        let specials = specialTokens.compactMap { text in vocabulary[text].map { (bytes: Array(text.utf8), id: Int32($0)) } }
            .filter { !$0.bytes.isEmpty }
            .sorted { $0.bytes.count > $1.bytes.count }
        var firstBytes = [Bool](repeating: false, count: 256)
        for special in specials { firstBytes[Int(special.bytes[0])] = true }

        self.vocabularySize = maxID + 1
        self.tokens = tokens
        self.vocabulary = vocabulary
        self.tokenBytes = tokenBytes
        self.tokenByteStarts = starts
        self.byteIDs = byteIDs
        self.mergeTable = table
        self.merges = merges
        self.specials = specials
        self.specialFirstBytes = firstBytes
    }

    /// Replaces the byte ids in `symbols` by the result of applying the merges, lowest rank first.
    ///
    /// Each round finds the adjacent pair with the lowest rank and merges all its occurrences left to
    /// right (GPT-2's `bpe()`). Long pieces use a heap over positions instead, which gives the same
    /// result for any merge list a trainer produces and stays O(n log n).
    @inline(__always)
    func applyMerges(_ symbols: inout [Int32]) {
        if symbols.count < 2 { return }
        if symbols.count > 64 { applyMergesWithHeap(&symbols); return }
        var n = symbols.count
        symbols.withUnsafeMutableBufferPointer { s in
            while n > 1 {
                var bestRank = UInt32.max
                var bestLeft: Int32 = 0, bestRight: Int32 = 0, bestMerged: Int32 = 0
                for k in 0..<(n - 1) {
                    if let value = mergeTable.value(for: PairTable.key(s[k], s[k + 1])) {
                        let rank = UInt32(truncatingIfNeeded: value >> 32)
                        if rank < bestRank {
                            bestRank = rank
                            bestLeft = s[k]
                            bestRight = s[k + 1]
                            bestMerged = Int32(truncatingIfNeeded: value & 0xFFFF_FFFF)
                        }
                    }
                }
                if bestRank == .max { break }
                var w = 0, r = 0
                while r < n {
                    if r + 1 < n && s[r] == bestLeft && s[r + 1] == bestRight {
                        s[w] = bestMerged
                        r += 2
                    } else {
                        s[w] = s[r]
                        r += 1
                    }
                    w += 1
                }
                n = w
            }
        }
        symbols.removeLast(symbols.count - n)
    }

    /// The heap variant of `applyMerges` for long pieces: a linked list of symbols and a min-heap of
    /// `(rank, position)`; stale heap entries are skipped when popped.
    private func applyMergesWithHeap(_ symbols: inout [Int32]) {
        let n = symbols.count
        var next = (0..<n).map { Int32($0 + 1) }  // n means none
        var prev = (0..<n).map { Int32($0 - 1) }  // -1 means none
        var alive = [Bool](repeating: true, count: n)
        var heap = MinHeap<UInt64>()
        func rank(_ a: Int32, _ b: Int32) -> UInt64? { mergeTable.value(for: PairTable.key(a, b)).map { $0 >> 32 } }
        for k in 0..<(n - 1) {
            if let r = rank(symbols[k], symbols[k + 1]) { heap.push(r << 32 | UInt64(k)) }
        }
        while let top = heap.pop() {
            let position = Int(top & 0xFFFF_FFFF)
            guard alive[position], Int(next[position]) < n else { continue }
            let right = Int(next[position])
            guard let value = mergeTable.value(for: PairTable.key(symbols[position], symbols[right])),
                  value >> 32 == top >> 32 else { continue }  // the pair here changed since the push
            symbols[position] = Int32(truncatingIfNeeded: value & 0xFFFF_FFFF)
            alive[right] = false
            next[position] = next[right]
            if Int(next[right]) < n { prev[Int(next[right])] = Int32(position) }
            if prev[position] >= 0, let r = rank(symbols[Int(prev[position])], symbols[position]) {
                heap.push(r << 32 | UInt64(prev[position]))
            }
            if Int(next[position]) < n, let r = rank(symbols[position], symbols[Int(next[position])]) {
                heap.push(r << 32 | UInt64(position))
            }
        }
        var w = 0
        for k in 0..<n where alive[k] {
            symbols[w] = symbols[k]
            w += 1
        }
        symbols.removeLast(n - w)
    }
}

/// `"text"` with control characters escaped, for error messages.
func quoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        if scalar.value < 0x20 || scalar == "\"" || scalar == "\\" {
            out += scalar.escaped(asASCII: true)
        } else {
            out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
