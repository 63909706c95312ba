/// Turns GLUE examples into token rows for the sequence-classification head.
///
/// A single sentence is its tokens. A pair is `tokens(textA) + tokens(separator) + tokens(textB)`;
/// the separator is a newline ("\n") by default, which GPT-2's byte-level BPE keeps as its own
/// token and which never merges with the neighbouring words. (`<|endoftext|>` is not used as the
/// separator because it is also the pad id: ``GPT2Model/classify(_:batch:seqLen:dropoutKey:)``
/// reads the last token that is not the pad id, which must be a text token.)
///
/// Rows longer than ``maxLength`` are cut from the end. For pairs the longer text loses a token
/// first, one at a time (ties cut textB), as Hugging Face's `truncation="longest_first"` does; the
/// separator is never cut. Batches are padded on the right with ``padID`` to their longest row.
public struct GLUEEncoder: Sendable {
    public let codec: any TextCodec
    public let maxLength: Int
    public let separator: [Int32]
    public let padID: Int32

    public init(codec: any TextCodec, maxLength: Int, separator: String = "\n") throws {
        let sep = codec.encode(separator)
        guard maxLength >= sep.count + 2 else {
            throw FinetuneError.recipe("max_length \(maxLength) is too short: a pair needs the \(sep.count)-token separator and a token of each text")
        }
        self.codec = codec
        self.maxLength = maxLength
        self.separator = sep
        self.padID = codec.endOfTextID
    }

    /// The token row of one example (at most ``maxLength`` tokens).
    public func encode(textA: String, textB: String?) -> [Int32] {
        var a = codec.encode(textA)
        guard let textB else { return Array(a.prefix(maxLength)) }
        var b = codec.encode(textB)
        (a, b) = GLUEEncoder.truncateLongestFirst(a, b, budget: maxLength - separator.count)
        return a + separator + b
    }

    /// HF `longest_first`: while `a.count + b.count > budget`, drop the last token of the longer
    /// list (of `b` on a tie).
    public static func truncateLongestFirst(_ a: [Int32], _ b: [Int32], budget: Int) -> ([Int32], [Int32]) {
        var na = a.count, nb = b.count
        while na + nb > budget {
            if na > nb { na -= 1 } else { nb -= 1 }
        }
        return (Array(a.prefix(na)), Array(b.prefix(nb)))
    }

    /// Rows padded on the right with `pad` to the longest: ids [B * T] and T.
    public static func pad(_ rows: [[Int32]], with pad: Int32) -> (ids: [Int32], seqLen: Int) {
        let t = max(1, rows.map(\.count).max() ?? 1)
        var ids: [Int32] = []
        ids.reserveCapacity(rows.count * t)
        for r in rows { ids += r + [Int32](repeating: pad, count: t - r.count) }
        return (ids, t)
    }
}
