import Foundation

extension BPETokenizer {
    /// Trains a byte-level BPE vocabulary on `texts`, the way GPT-2's was made.
    ///
    /// The texts are cut at special tokens, split with GPT-2's ``PreTokenizer``, and the distinct
    /// pre-tokens counted; then, starting from the 256 byte tokens, the most frequent adjacent pair
    /// is merged into a new token until the vocabulary has `vocabularySize` tokens. Ties go to the
    /// pair with the smaller ids (the earlier tokens). This is Hugging Face `tokenizers`' BpeTrainer
    /// algorithm, so with the same texts it gives the same merges (see the tests).
    ///
    /// Ids: 0…255 are the byte tokens in the order of their ``ByteEncoder`` characters, then the
    /// merged tokens in the order they were made, then the special tokens (GPT-2's layout, where
    /// `<|endoftext|>` is the last id, 50256).
    ///
    /// - Parameters:
    ///   - texts: the training documents.
    ///   - vocabularySize: the number of tokens wanted, including the 256 byte tokens and the special
    ///     tokens. Training stops earlier if no pair occurs `max(1, minFrequency)` times any more.
    ///   - specialTokens: tokens added at the end of the vocabulary; their occurrences in `texts` are
    ///     cut out and not learned from.
    ///   - minFrequency: stop when the most frequent pair occurs fewer times than this.
    /// - Throws: ``TokenizerError`` of kind `.invalidArgument` if `vocabularySize` is below
    ///   256 + the number of special tokens.
    public static func train(texts: [String], vocabularySize: Int, specialTokens: [String] = [endOfText],
                             minFrequency: Int = 0) throws -> BPETokenizer {
        var trainer = try BPETrainer(vocabularySize: vocabularySize, specialTokens: specialTokens, minFrequency: minFrequency)
        for text in texts {
            var text = text
            text.withUTF8 { trainer.addText($0) }
        }
        return try trainer.train()
    }

    /// Trains on text files (UTF-8; a leading byte-order mark is dropped); see
    /// ``train(texts:vocabularySize:specialTokens:minFrequency:)``. Each file is one document.
    ///
    /// - Throws: ``TokenizerError`` of kind `.fileUnreadable` naming a file that cannot be read.
    public static func train(files: [URL], vocabularySize: Int, specialTokens: [String] = [endOfText],
                             minFrequency: Int = 0) throws -> BPETokenizer {
        var trainer = try BPETrainer(vocabularySize: vocabularySize, specialTokens: specialTokens, minFrequency: minFrequency)
        for file in files {
            let data = try readFile(file, what: "training text")
            data.withUnsafeBytes { trainer.addText($0.bindMemory(to: UInt8.self)) }
        }
        return try trainer.train()
    }
}

/// Counts pre-tokens over a corpus, then learns merges with incremental pair counts.
///
/// Words are the distinct pre-tokens, each with its count and its current symbols (token ids).
/// `pairCounts` holds, for every adjacent pair, the number of times it occurs in the corpus. A
/// merge rewrites only the words that contain the pair and adjusts the counts of the pairs around
/// each occurrence, so a merge costs time in proportion to its occurrences, not to the corpus.
/// A max-heap of candidates, updated lazily (an entry whose count is stale is re-pushed with the
/// current count when popped), finds the most frequent pair.
struct BPETrainer {
    let vocabularySize: Int
    let specialTokens: [String]
    let minFrequency: Int
    private let specialBytes: [[UInt8]]
    /// The distinct pre-tokens (at least two bytes long) and how often each occurs.
    private var words = ByteSequenceMap(capacity: 1 << 14)
    private var wordCounts: [Int] = []

    init(vocabularySize: Int, specialTokens: [String], minFrequency: Int) throws {
        let specials = Array(Set(specialTokens.filter { !$0.isEmpty })).sorted()
        guard vocabularySize >= 256 + specials.count else {
            throw TokenizerError(.invalidArgument,
                                 "train: vocabularySize \(vocabularySize) is too small; it must be at least 256 byte tokens "
                                     + "+ \(specials.count) special token(s) = \(256 + specials.count)")
        }
        self.vocabularySize = vocabularySize
        self.specialTokens = specialTokens.filter { !$0.isEmpty }.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        self.minFrequency = minFrequency
        self.specialBytes = specials.map { Array($0.utf8) }.sorted { $0.count > $1.count }
    }

    /// Counts the pre-tokens of one document (UTF-8), cutting out special tokens first.
    mutating func addText(_ bytes: UnsafeBufferPointer<UInt8>) {
        var segmentStart = 0
        var i = 0
        while i < bytes.count {
            if let special = specialBytes.first(where: { matches($0, bytes, at: i) }) {
                addSegment(UnsafeBufferPointer(rebasing: bytes[segmentStart..<i]))
                i += special.count
                segmentStart = i
            } else {
                i += 1
            }
        }
        addSegment(UnsafeBufferPointer(rebasing: bytes[segmentStart..<bytes.count]))
    }

    private func matches(_ special: [UInt8], _ bytes: UnsafeBufferPointer<UInt8>, at i: Int) -> Bool {
        guard special.count <= bytes.count - i, bytes[i] == special[0] else { return false }
        for k in 1..<special.count where bytes[i + k] != special[k] { return false }
        return true
    }

    private mutating func addSegment(_ bytes: UnsafeBufferPointer<UInt8>) {
        PreTokenizer.forEachPiece(in: bytes) { range in
            guard range.count > 1 else { return }  // a single byte has no pair to learn from
            let index = words.findOrInsert(UnsafeBufferPointer(rebasing: bytes[range]))
            if index == wordCounts.count { wordCounts.append(0) }
            wordCounts[index] += 1
        }
    }

    /// A pair waiting in the heap. `<` means "comes out first": higher count, then smaller pair
    /// (left id, then right id), then the older entry.
    private struct Candidate: Comparable {
        var count: Int
        let pair: UInt64
        let sequence: Int
        /// Index into `positionLists`: the words this entry will rewrite.
        let positions: Int

        static func < (a: Candidate, b: Candidate) -> Bool {
            if a.count != b.count { return a.count > b.count }
            if a.pair != b.pair { return a.pair < b.pair }
            return a.sequence < b.sequence
        }
    }

    /// Learns the merges and builds the tokenizer.
    ///
    /// Longer than the usual 80 lines on purpose: the merge loop keeps the heap, the pair
    /// counts, the position lists and the word table consistent with each other inside one
    /// iteration, and splitting it would pass all four around as inout state to every piece.
    func train() throws -> BPETokenizer {
        // Token ids 0…255: byte tokens in character order.
        var tokenBytes: [[UInt8]] = ByteEncoder.bytesInScalarOrder.map { [$0] }
        var tokenIndex = ByteSequenceMap(capacity: vocabularySize)
        var idOfByte = [Int32](repeating: 0, count: 256)
        for (id, bytes) in tokenBytes.enumerated() {
            idOfByte[Int(bytes[0])] = Int32(id)
            bytes.withUnsafeBufferPointer { _ = tokenIndex.findOrInsert($0) }
        }

        // Words as runs of symbols in one flat array.
        let wordCount = words.count
        var symbols: [Int32] = []
        symbols.reserveCapacity(words.keyBytes.count)
        var wordStart = [Int](repeating: 0, count: wordCount)
        var wordLength = [Int](repeating: 0, count: wordCount)
        for w in 0..<wordCount {
            wordStart[w] = symbols.count
            for b in words.key(w) { symbols.append(idOfByte[Int(b)]) }
            wordLength[w] = symbols.count - wordStart[w]
        }

        // Initial pair counts and, for each pair, the words that contain it.
        var pairCounts: [UInt64: Int] = [:]
        var initialPositions: [UInt64: [Int32]] = [:]
        for w in 0..<wordCount {
            let start = wordStart[w]
            for k in start..<(start + wordLength[w] - 1) {
                let pair = PairTable.key(symbols[k], symbols[k + 1])
                pairCounts[pair, default: 0] += wordCounts[w]
                if initialPositions[pair]?.last != Int32(w) { initialPositions[pair, default: []].append(Int32(w)) }
            }
        }
        var positionLists: [[Int32]] = []
        var heap = MinHeap<Candidate>()
        var sequence = 0
        // Sorted so that the run is reproducible (dictionary order changes from run to run).
        for (pair, list) in initialPositions.sorted(by: { $0.key < $1.key }) where pairCounts[pair, default: 0] > 0 {
            heap.push(Candidate(count: pairCounts[pair]!, pair: pair, sequence: sequence, positions: positionLists.count))
            sequence += 1
            positionLists.append(list)
        }
        initialPositions = [:]

        var merges: [(left: Int32, right: Int32)] = []
        let targetMergedTokens = vocabularySize - specialTokens.count
        while tokenBytes.count < targetMergedTokens, var top = heap.pop() {
            let current = pairCounts[top.pair, default: 0]
            if top.count != current {
                top.count = current
                heap.push(top)
                continue
            }
            if top.count < 1 || top.count < minFrequency { break }

            let left = Int32(truncatingIfNeeded: top.pair >> 32)
            let right = Int32(truncatingIfNeeded: top.pair & 0xFFFF_FFFF)
            let newBytes = tokenBytes[Int(left)] + tokenBytes[Int(right)]
            let newID = Int32(newBytes.withUnsafeBufferPointer { tokenIndex.findOrInsert($0) })
            if Int(newID) == tokenBytes.count { tokenBytes.append(newBytes) }  // else an existing token is reused
            merges.append((left, right))

            var newPositions: [UInt64: [Int32]] = [:]
            let list = positionLists[top.positions]
            positionLists[top.positions] = []
            for w32 in list {
                let w = Int(w32)
                let count = wordCounts[w]
                let start = wordStart[w], end = start + wordLength[w]
                var write = start, read = start
                while read < end {
                    if read + 1 < end && symbols[read] == left && symbols[read + 1] == right {
                        if write > start {
                            let before = symbols[write - 1]
                            pairCounts[PairTable.key(before, left), default: 0] -= count
                            let added = PairTable.key(before, newID)
                            pairCounts[added, default: 0] += count
                            if newPositions[added]?.last != w32 { newPositions[added, default: []].append(w32) }
                        }
                        if read + 2 < end {
                            let after = symbols[read + 2]
                            pairCounts[PairTable.key(right, after), default: 0] -= count
                            let added = PairTable.key(newID, after)
                            pairCounts[added, default: 0] += count
                            if newPositions[added]?.last != w32 { newPositions[added, default: []].append(w32) }
                        }
                        symbols[write] = newID
                        read += 2
                    } else {
                        symbols[write] = symbols[read]
                        read += 1
                    }
                    write += 1
                }
                wordLength[w] = write - start
            }
            for (pair, list) in newPositions.sorted(by: { $0.key < $1.key }) where pairCounts[pair, default: 0] > 0 {
                heap.push(Candidate(count: pairCounts[pair]!, pair: pair, sequence: sequence, positions: positionLists.count))
                sequence += 1
                positionLists.append(list)
            }
        }

        // vocab.json texts; special tokens after the merged tokens.
        var vocabulary: [String: Int] = [:]
        var texts: [String] = []
        for (id, bytes) in tokenBytes.enumerated() {
            let text = ByteEncoder.encode(bytes)
            texts.append(text)
            vocabulary[text] = id
        }
        for special in specialTokens where vocabulary[special] == nil {
            vocabulary[special] = texts.count
            texts.append(special)
        }
        let mergeTexts = merges.enumerated().map { (texts[Int($1.left)], texts[Int($1.right)], $0 + 2) }
        let model = try BPEModel(vocabulary: vocabulary, merges: mergeTexts, specialTokens: specialTokens,
                                 vocabFile: "<trained vocabulary>", mergesFile: "<trained merges>")
        return BPETokenizer(model: model)
    }
}
