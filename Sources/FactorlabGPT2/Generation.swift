import COpenBLAS
import FactorlabAutograd
import FactorlabLayers
import FactorlabTensor
import Foundation

/// Keys and values of past positions, per layer, so each new token costs one position.
///
/// Layout per layer: keys and values [B, capacity, C], heads side by side like the model's qkv.
public final class KVCache {
    public let batch: Int
    public let capacity: Int
    let width: Int
    var keys: [Tensor]
    var values: [Tensor]
    /// Number of positions filled.
    public private(set) var length = 0

    public init(config: GPT2Config, batch: Int, capacity: Int? = nil) {
        self.batch = batch
        self.capacity = min(capacity ?? config.nPositions, config.nPositions)
        width = config.nEmbd
        keys = (0..<config.nLayer).map { _ in Tensor(zeros: [batch, min(capacity ?? config.nPositions, config.nPositions), config.nEmbd]) }
        values = keys.map { Tensor(zeros: $0.shape) }
    }

    public func reset() { length = 0 }
    func advance(_ n: Int) { length += n }
}

extension GPT2Model {
    /// Runs `ids` [B, T] as the positions following those in `cache`, appends their keys and
    /// values, and returns the logits of the last new position of each row, [B, V]. No tape.
    public func forwardCached(_ ids: [Int32], batch: Int, seqLen: Int, cache: KVCache) throws -> Tensor {
        guard cache.batch == batch else { throw GPT2Error.input("KV cache holds \(cache.batch) rows, input has \(batch)") }
        let past = cache.length
        guard past + seqLen <= cache.capacity else {
            throw GPT2Error.input("KV cache full: \(past) + \(seqLen) positions exceed its capacity \(cache.capacity)")
        }
        try checkInput(ids, batch: batch, seqLen: seqLen)
        return try Tape.withoutRecording {
            let c = config.nEmbd, heads = config.nHead, hd = c / heads
            let tok = try wte(ids, shape: [batch, seqLen])
            let pos = try wpe.weight.variable.slice(axis: 0, past..<(past + seqLen))
            var x = try tok + pos
            for (l, block) in blocks.enumerated() {
                let qkv = try block.cAttn(try block.ln1(x)).value.contiguous() // [B, T, 3C]
                let kc = cache.keys[l], vc = cache.values[l]
                let q = qkv.unsafeBase
                for b in 0..<batch {
                    for t in 0..<seqLen {
                        let src = q + (b * seqLen + t) * 3 * c
                        (kc.unsafeBase + (b * cache.capacity + past + t) * c).update(from: src + c, count: c)
                        (vc.unsafeBase + (b * cache.capacity + past + t) * c).update(from: src + 2 * c, count: c)
                    }
                }
                let attended = Tensor(uninitializedShape: [batch, seqLen, c])
                let total = past + seqLen
                let scores = Tensor(uninitializedShape: [seqLen, total])
                let scale = 1 / Float(hd).squareRoot()
                for b in 0..<batch {
                    for h in 0..<heads {
                        let qp = q + b * seqLen * 3 * c + h * hd
                        let kp = kc.unsafeBase + b * cache.capacity * c + h * hd
                        let vp = vc.unsafeBase + b * cache.capacity * c + h * hd
                        BLAS.sgemm(transA: false, transB: true, m: seqLen, n: total, k: hd, alpha: scale,
                                   a: qp, lda: 3 * c, b: kp, ldb: c, c: scores.unsafeBase, ldc: total)
                        for t in 0..<seqLen {
                            let row = scores.unsafeBase + t * total
                            Kernels.softmaxRowInPlace(row, past + t + 1)
                            (row + past + t + 1).update(repeating: 0, count: total - past - t - 1)
                        }
                        BLAS.sgemm(transA: false, transB: false, m: seqLen, n: hd, k: total,
                                   a: scores.unsafeBase, lda: total, b: vp, ldb: c,
                                   c: attended.unsafeBase + b * seqLen * c + h * hd, ldc: c)
                    }
                }
                withExtendedLifetime((qkv, kc, vc)) {}
                x = try x + block.attnProj(Variable(attended))
                x = try x + block.mlpProj(try block.cFc(try block.ln2(x)).gelu())
            }
            cache.advance(seqLen)
            // Only the last position of each row goes through the head.
            let last = try x.value.slice(axis: 1, (seqLen - 1)..<seqLen).reshaped([batch, c])
            let h = try lnF(Variable(last))
            return try Variable.linear(h, weight: Variable(wte.weight.value), bias: nil).value
        }
    }

    /// Continues `prompt` by up to `maxNewTokens` tokens, one row, with the KV cache. Stops early
    /// at `stopToken`. A prompt longer than the context is truncated from the left (the most
    /// recent tokens are kept; `onWarning` is told). When the context fills up during generation,
    /// the cache is rebuilt from the most recent half of the context (a sliding window).
    public func generate(prompt: [Int32], maxNewTokens: Int, sampling: Sampling = .greedy,
                         rng: inout RandomGenerator, stopToken: Int32? = nil,
                         onWarning: (String) -> Void = { _ in }, onToken: (Int32) -> Void = { _ in }) throws -> [Int32] {
        guard !prompt.isEmpty else { throw GPT2Error.input("generate: the prompt has no tokens") }
        var context = prompt
        if context.count > config.nPositions {
            onWarning("prompt of \(context.count) tokens exceeds the context of \(config.nPositions); keeping the last \(config.nPositions)")
            context = Array(context.suffix(config.nPositions))
        }
        let cache = KVCache(config: self.config, batch: 1)
        var logits = try forwardCached(context, batch: 1, seqLen: context.count, cache: cache)
        var generated: [Int32] = []
        for _ in 0..<maxNewTokens {
            let next = sampling.sample(logits.scalars, rng: &rng)
            generated.append(next)
            onToken(next)
            if next == stopToken { break }
            context.append(next)
            if cache.length == cache.capacity {
                let keep = Array(context.suffix(max(1, config.nPositions / 2)))
                cache.reset()
                logits = try forwardCached(keep, batch: 1, seqLen: keep.count, cache: cache)
            } else {
                logits = try forwardCached([next], batch: 1, seqLen: 1, cache: cache)
            }
        }
        return generated
    }
}

/// How the next token is chosen from logits.
public struct Sampling: Sendable, Equatable {
    /// 0 means greedy (argmax).
    public var temperature: Float
    /// Keep only the k most likely tokens (0: all).
    public var topK: Int
    /// Keep the smallest set of most likely tokens whose probability reaches p (1: all).
    public var topP: Float

    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 1) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
    }

    public static let greedy = Sampling(temperature: 0)

    /// Picks a token id from one row of logits.
    public func sample(_ logits: [Float], rng: inout RandomGenerator) -> Int32 {
        if temperature <= 0 {
            var best = 0
            for i in 1..<logits.count where logits[i] > logits[best] { best = i }
            return Int32(best)
        }
        var order = Array(0..<logits.count)
        order.sort { logits[$0] > logits[$1] }
        if topK > 0 && topK < order.count { order.removeLast(order.count - topK) }
        let m = logits[order[0]]
        var probs = order.map { Double(Foundation.exp((logits[$0] - m) / temperature)) }
        let total = probs.reduce(0, +)
        probs = probs.map { $0 / total }
        if topP < 1 {
            var cum = 0.0, cut = probs.count
            for (i, p) in probs.enumerated() {
                cum += p
                if cum >= Double(topP) { cut = i + 1; break }
            }
            probs.removeLast(probs.count - cut)
            order.removeLast(order.count - cut)
        }
        let r = Double(rng.nextUniform()) * probs.reduce(0, +)
        var acc = 0.0
        for (i, p) in probs.enumerated() {
            acc += p
            if r < acc { return Int32(order[i]) }
        }
        return Int32(order[probs.count - 1])
    }
}
