import FactorlabRandom
import Foundation
import FactorlabTokenizer

/// What a token cache was made from and what it holds; saved as `meta.json` beside `train.bin`
/// and `val.bin`. A cache is reused only when its ``inputs`` equal those of the new request.
public struct CorpusMeta: Codable, Equatable, Sendable {
    /// Everything the tokens depend on.
    public struct Inputs: Codable, Equatable, Sendable {
        /// Bumped whenever the way tokens are made changes, so old caches are not reused.
        public var formatVersion: Int
        /// Input files in reading order, with size and modification time.
        public var files: [DataSource.File]
        public var textField: String
        public var tokenizer: TokenizerFingerprint
        public var split: CorpusSplit
    }

    /// Identifies a tokenizer: its sizes and a hash of the vocab.json and merges.txt it writes.
    public struct TokenizerFingerprint: Codable, Equatable, Sendable {
        public var vocabularySize: Int
        public var mergeCount: Int
        public var endOfTextID: Int32
        /// FNV-1a 64 of vocab.json and of merges.txt as ``BPETokenizer/write(to:)`` writes them (byte-identical for identical tokenizers).
        public var vocabHash: String
        public var mergesHash: String
    }

    public var inputs: Inputs
    /// Always "uint16" (little-endian, nanoGPT's format).
    public var tokenType: String
    /// Documents that had any text (or token file), all splits.
    public var documentCount: Int
    public var trainDocuments: Int
    public var validationDocuments: Int
    public var trainTokens: Int
    public var validationTokens: Int
    /// Bytes of normalized text tokenized.
    public var textBytes: Int

    public static let currentFormatVersion = 1
}

extension CorpusMeta.TokenizerFingerprint {
    /// The fingerprint of `tokenizer` as written into `folder` by ``BPETokenizer/write(to:)``.
    init(_ tokenizer: BPETokenizer, endOfTextID: Int32, writingTo folder: URL) throws {
        do {
            try tokenizer.write(to: folder)
        } catch {
            throw DataError(.writeFailed, file: folder.path, "cannot write the tokenizer to fingerprint it: \(error)")
        }
        var hashes: [String] = []
        for name in ["vocab.json", "merges.txt"] {
            var hash = FNV1a64()
            let url = folder.appendingPathComponent(name)
            do {
                hash.update(try Data(contentsOf: url))
            } catch {
                throw DataError(.fileUnreadable, file: url.path, "cannot read back: \(error.localizedDescription)")
            }
            hashes.append(hash.hex)
        }
        self.init(vocabularySize: tokenizer.vocabularySize, mergeCount: tokenizer.mergeCount, endOfTextID: endOfTextID,
                  vocabHash: hashes[0], mergesHash: hashes[1])
    }
}
