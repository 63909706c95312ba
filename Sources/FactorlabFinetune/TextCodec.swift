import FactorlabTokenizer

/// What the finetuners need from a tokenizer: text to ids, ids to text, and the `<|endoftext|>` id
/// (used as the pad id and as a stop token). ``BPETokenizer`` conforms; tests use tiny codecs.
public protocol TextCodec: Sendable {
    func encode(_ text: String) -> [Int32]
    func decode(_ ids: [Int32]) throws -> String
    /// The `<|endoftext|>` id.
    var endOfTextID: Int32 { get }
    /// The tokenizer's ``BPETokenizer/fingerprint``, recorded in the checkpoints a finetuner
    /// writes (nil for test codecs).
    var fingerprint: String? { get }
}

extension TextCodec {
    public var fingerprint: String? { nil }
}

/// A ``BPETokenizer`` as a ``TextCodec``; special tokens in the data are encoded as plain text.
public struct BPECodec: TextCodec {
    public let tokenizer: BPETokenizer
    public let endOfTextID: Int32

    /// - Throws: ``FinetuneError/tokenizer(_:)`` when the vocabulary has no `<|endoftext|>`.
    public init(_ tokenizer: BPETokenizer) throws {
        guard let eot = tokenizer.endOfTextID else {
            throw FinetuneError.tokenizer("the tokenizer has no \(BPETokenizer.endOfText) token, needed as the pad id")
        }
        self.tokenizer = tokenizer
        self.endOfTextID = eot
    }

    public func encode(_ text: String) -> [Int32] { tokenizer.encode(text) }
    public func decode(_ ids: [Int32]) throws -> String { try tokenizer.decode(ids) }
    public var fingerprint: String? { tokenizer.fingerprint }
}

/// Finetuning failures: bad recipes, data that does not fit, a missing tokenizer.
public enum FinetuneError: Error, CustomStringConvertible, Equatable {
    case recipe(String)
    case data(String)
    case tokenizer(String)
    case model(String)

    public var description: String {
        switch self {
        case .recipe(let m), .data(let m), .tokenizer(let m), .model(let m): return m
        }
    }
}
