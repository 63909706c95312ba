/// A GPT-2 byte-level BPE tokenizer: text ⇄ token ids, identical to OpenAI's GPT-2 encoder and to
/// Hugging Face's `GPT2TokenizerFast` for the same vocab.json + merges.txt.
///
/// Encoding splits the text into pre-tokens (`PreTokenizer`), maps each pre-token's UTF-8 bytes to
/// the 256 byte tokens, and applies the ranked merges. Results are cached per pre-token in a cache
/// shared by all copies of the tokenizer and safe to use from several tasks at once.
///
/// ```swift
/// let tokenizer = try BPETokenizer(directory: URL(fileURLWithPath: "gpt2"))
/// let ids = tokenizer.encode("Hello world<|endoftext|>", allowSpecial: true)
/// let text = try tokenizer.decode(ids)
/// ```
///
/// See also ``BPETokenizer/train(texts:vocabularySize:specialTokens:minFrequency:)`` and
/// ``BPETokenizer/write(to:)``.
public struct BPETokenizer: Sendable {
    /// The text of GPT-2's end-of-text token.
    public static let endOfText = "<|endoftext|>"

    let model: BPEModel
    let cache = PieceCache()

    init(model: BPEModel) {
        self.model = model
    }

    /// One more than the largest token id (50,257 for GPT-2).
    public var vocabularySize: Int { model.vocabularySize }

    /// The id of `<|endoftext|>`, if the vocabulary has it.
    public var endOfTextID: Int32? { id(of: Self.endOfText) }

    /// The special tokens that `encode(_:allowSpecial: true)` recognises, with their ids.
    public var specialTokens: [String: Int32] {
        Dictionary(model.specials.map { (String(decoding: $0.bytes, as: UTF8.self), $0.id) }, uniquingKeysWith: { a, _ in a })
    }

    /// The number of merges (ranked lines of merges.txt).
    public var mergeCount: Int { model.merges.count }

    /// The id of a token given in vocab.json form (e.g. `"Ġthe"`), or nil.
    public func id(of token: String) -> Int32? {
        model.vocabulary[token].map { Int32($0) }
    }

    /// The vocab.json text of a token id (e.g. `"Ġthe"`), or nil for an id with no token.
    public func token(for id: Int32) -> String? {
        guard id >= 0, Int(id) < model.tokens.count else { return nil }
        return model.tokens[Int(id)]
    }

    // MARK: Encoding

    /// The token ids of `text`.
    ///
    /// - Parameter allowSpecial: when true, each occurrence of a special token (`<|endoftext|>`) in
    ///   the text becomes its single id and the text on either side is encoded separately, as
    ///   Hugging Face does; when false (the default) special tokens are encoded as ordinary text,
    ///   so text from users cannot inject them.
    public func encode(_ text: String, allowSpecial: Bool = false) -> [Int32] {
        var text = text
        return text.withUTF8 { encode(utf8: $0, allowSpecial: allowSpecial) }
    }

    /// The token ids of UTF-8 text given as bytes (see ``encode(_:allowSpecial:)``).
    ///
    /// Invalid UTF-8 is encoded byte for byte, so ``decodeBytes(_:)`` gives back exactly `bytes`.
    public func encode(utf8 bytes: UnsafeBufferPointer<UInt8>, allowSpecial: Bool = false) -> [Int32] {
        var output: [Int32] = []
        output.reserveCapacity(bytes.count / 3 + 16)
        var scratch: [Int32] = []
        scratch.reserveCapacity(64)
        guard allowSpecial, !model.specials.isEmpty else {
            encodeOrdinary(bytes, into: &output, scratch: &scratch)
            return output
        }
        var segmentStart = 0
        var i = 0
        let n = bytes.count
        while i < n {
            if model.specialFirstBytes[Int(bytes[i])], let special = specialToken(in: bytes, at: i) {
                encodeOrdinary(UnsafeBufferPointer(rebasing: bytes[segmentStart..<i]), into: &output, scratch: &scratch)
                output.append(special.id)
                i += special.bytes.count
                segmentStart = i
            } else {
                i += 1
            }
        }
        encodeOrdinary(UnsafeBufferPointer(rebasing: bytes[segmentStart..<n]), into: &output, scratch: &scratch)
        return output
    }

    private func specialToken(in bytes: UnsafeBufferPointer<UInt8>, at i: Int) -> (bytes: [UInt8], id: Int32)? {
        for special in model.specials where special.bytes.count <= bytes.count - i {
            var matches = true
            for (k, b) in special.bytes.enumerated() where bytes[i + k] != b {
                matches = false
                break
            }
            if matches { return special }
        }
        return nil
    }

    /// Encodes text with no special tokens: pre-tokens one by one, through the cache.
    private func encodeOrdinary(_ bytes: UnsafeBufferPointer<UInt8>, into output: inout [Int32], scratch: inout [Int32]) {
        let byteIDs = model.byteIDs
        PreTokenizer.forEachPiece(in: bytes) { range in
            let piece = UnsafeBufferPointer(rebasing: bytes[range])
            if piece.count == 1 {
                output.append(byteIDs[Int(piece[0])])
                return
            }
            let cacheable = piece.count <= cache.maxKeyLength
            var hash: UInt64 = 0
            if cacheable {
                hash = ByteSequenceMap.hash(piece)
                if cache.appendIDs(of: piece, hash: hash, to: &output) { return }
            }
            scratch.removeAll(keepingCapacity: true)
            for b in piece { scratch.append(byteIDs[Int(b)]) }
            model.applyMerges(&scratch)
            output.append(contentsOf: scratch)
            if cacheable { cache.insert(piece, hash: hash, tokenIDs: scratch[...]) }
        }
    }

    // MARK: Decoding

    /// The bytes that `ids` stand for, concatenated.
    ///
    /// - Throws: ``TokenizerError`` of kind `.idOutOfRange` for an id that is negative, not below
    ///   ``vocabularySize``, or has no token.
    public func decodeBytes(_ ids: [Int32]) throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        let starts = model.tokenByteStarts
        for (position, id) in ids.enumerated() {
            guard id >= 0, Int(id) < model.vocabularySize, model.tokens[Int(id)] != nil else {
                let problem = (id >= 0 && Int(id) < model.vocabularySize) ? "has no token (a gap in the vocabulary)"
                    : "is out of range 0..<\(model.vocabularySize)"
                throw TokenizerError(.idOutOfRange, "decode: token id \(id) at position \(position) \(problem)")
            }
            bytes.append(contentsOf: model.tokenBytes[starts[Int(id)]..<starts[Int(id) + 1]])
        }
        return bytes
    }

    /// The text that `ids` stand for. Byte sequences that are not valid UTF-8 (e.g. half of a
    /// multi-byte character) become U+FFFD replacement characters, as in GPT-2's `errors="replace"`.
    ///
    /// - Throws: ``TokenizerError`` of kind `.idOutOfRange` for an unknown id.
    public func decode(_ ids: [Int32]) throws -> String {
        String(decoding: try decodeBytes(ids), as: UTF8.self)
    }
}
