import FactorlabAutograd
import FactorlabGPT2
import FactorlabTensor
import Foundation

/// Sliding-window perplexity, as in Hugging Face's perplexity guide: windows of the model's
/// context advance by `stride`; each window scores only the tokens not scored before, so every
/// token from the second on is scored exactly once, with at least window - stride tokens of
/// context (once the text is that long). The stride is capped at window - 1: with disjoint
/// windows the first token of each window would have no context, and Hugging Face's recipe
/// leaves those tokens unscored; here the windows overlap by one token instead.
public struct PerplexityResult: Sendable {
    public let tokens: Int
    public let bytes: Int
    /// Sum of negative log-likelihoods (nats) over scored tokens.
    public let nll: Double
    public let windows: Int
    /// Each window's scored tokens: (NLL sum, token count), for paired comparisons between models.
    public var perWindow: [(nll: Double, tokens: Int)] = []
    public var nllPerToken: Double { nll / Double(max(tokens, 1)) }
    public var perplexity: Double { Foundation.exp(nllPerToken) }
    /// Bits per UTF-8 byte of the text (scored tokens' NLL over all bytes).
    public var bitsPerByte: Double { nll / Double(max(bytes, 1)) / Foundation.log(2.0) }
    public var bytePerplexity: Double { Foundation.exp(nll / Double(max(bytes, 1))) }

    /// lm-evaluation-harness's word perplexity, exp(NLL / words), with `words` counted as the harness
    /// does (``harnessWordCount(_:)``). The harness scores every token (the first after an
    /// end-of-text token); this scores every token from the second, so the two differ by the first
    /// token's NLL over the whole text.
    public func wordPerplexity(words: Int) -> Double { Foundation.exp(nll / Double(max(words, 1))) }

    /// `len(re.split(r"\s+", text))`: the pieces between runs of whitespace, counting empty pieces at
    /// either end, as the harness's `wikitext` and `lambada` word counts do.
    public static func harnessWordCount(_ text: String) -> Int {
        var pieces = 1, inSpace = false
        for c in text.unicodeScalars {
            let space = c.properties.isWhitespace || (0x1C...0x1F).contains(c.value)
            if space && !inSpace { pieces += 1 }
            inSpace = space
        }
        return pieces
    }
}

public enum Perplexity {
    public static func evaluate(model: GPT2Model, ids: [Int32], bytes: Int, window: Int? = nil, stride: Int? = nil,
                                progress: (Int, Int) -> Void = { _, _ in }) throws -> PerplexityResult {
        let w = min(window ?? model.config.nPositions, model.config.nPositions)
        guard w >= 2 else { throw EvalError("perplexity: window \(w) must be at least 2") }
        let requested = stride ?? w
        guard requested >= 1, requested <= w else { throw EvalError("perplexity: stride \(requested) must be between 1 and the window \(w)") }
        let s = min(requested, w - 1)
        guard ids.count >= 2 else { throw EvalError("perplexity: the text has \(ids.count) token(s); at least 2 are needed") }
        var nll = 0.0, scored = 0, windows = 0
        var perWindow: [(nll: Double, tokens: Int)] = []
        var prevEnd = 0
        var begin = 0
        let total = ids.count
        while true {
            let end = min(begin + w, total)
            let input = Array(ids[begin..<end])
            var targets = [Int32](repeating: -100, count: input.count)
            for p in max(prevEnd, begin + 1)..<end { targets[p - begin - 1] = ids[p] }
            let count = targets.filter { $0 != -100 }.count
            if count > 0 {
                let loss = try Tape.withoutRecording {
                    try model.loss(input, targets: targets, batch: 1, seqLen: input.count)
                }
                let windowNLL = Double(loss.value.item) * Double(count)
                nll += windowNLL
                scored += count
                perWindow.append((windowNLL, count))
            }
            windows += 1
            progress(end, total)
            prevEnd = end
            if end == total { break }
            begin += s
        }
        return PerplexityResult(tokens: scored, bytes: bytes, nll: nll, windows: windows, perWindow: perWindow)
    }
}
