import FactorlabAutograd
import FactorlabLayers
import FactorlabTensor
import Foundation

/// Keys and values of past positions, per layer, so each new token costs one position.
///
/// Layout per layer: keys and values [rows, capacity, C], heads side by side like the model's
/// qkv. Each row has its own length, so rows of a batch can hold sequences of different lengths
/// (batched generation); a row's unused tail is never read.
public final class KVCache {
    /// Number of rows (sequences) the cache holds.
    public let batch: Int
    /// Positions per row.
    public let capacity: Int
    var keys: [Tensor]
    var values: [Tensor]
    /// Positions filled, per row.
    public private(set) var lengths: [Int]

    public init(config: GPT2Config, batch: Int, capacity: Int? = nil) {
        self.batch = batch
        self.capacity = min(capacity ?? config.nPositions, config.nPositions)
        keys = (0..<config.nLayer).map { _ in Tensor(zeros: [batch, min(capacity ?? config.nPositions, config.nPositions), config.nEmbd]) }
        values = keys.map { Tensor(zeros: $0.shape) }
        lengths = Array(repeating: 0, count: batch)
    }

    /// Positions filled in the longest row (all rows, when they are filled together).
    public var length: Int { lengths.max() ?? 0 }

    public func reset() { lengths = Array(repeating: 0, count: batch) }
    public func reset(row: Int) { lengths[row] = 0 }

    /// The rows one forward pass continues: input row b continues cache row `rows[b]`.
    public struct Binding {
        let cache: KVCache
        let rows: [Int]
        let past: [Int]

        /// Position ids [B * T] of `seqLen` new positions per row.
        func positionIDs(seqLen: Int, context: Int) throws -> [Int32] {
            var ids: [Int32] = []
            ids.reserveCapacity(rows.count * seqLen)
            for p in past { for t in 0..<seqLen { ids.append(Int32(p + t)) } }
            return ids
        }

        /// Appends layer `layer`'s new keys and values and attends over each row's positions.
        func attend(_ qkv: Tensor, layer: Int, heads: Int) throws -> Tensor {
            try Kernels.cachedAttention(qkv: qkv, heads: heads, keys: cache.keys[layer], values: cache.values[layer],
                                        rows: rows, past: past)
        }
    }

    /// A binding of `rows` for `seqLen` new positions each; checks that they fit.
    func bind(rows: [Int], seqLen: Int) throws -> Binding {
        for r in rows {
            guard r >= 0 && r < batch else { throw GPT2Error.input("KV cache holds \(batch) rows; row \(r) does not exist") }
            guard lengths[r] + seqLen <= capacity else {
                throw GPT2Error.input("KV cache full: \(lengths[r]) + \(seqLen) positions exceed its capacity \(capacity)")
            }
        }
        guard Set(rows).count == rows.count else { throw GPT2Error.input("KV cache rows \(rows) repeat a row") }
        return Binding(cache: self, rows: rows, past: rows.map { lengths[$0] })
    }

    func advance(rows: [Int], by n: Int) { for r in rows { lengths[r] += n } }
}

extension GPT2Model {
    /// Runs `ids` [B, T] as the positions following those in `cache` (input row b continues cache
    /// row `rows[b]`; default: rows 0 ..< B of a cache of B rows), appends their keys and values,
    /// and returns the logits of the last new position of each row, [B, V]. No tape.
    public func forwardCached(_ ids: [Int32], batch: Int, seqLen: Int, cache: KVCache, rows: [Int]? = nil) throws -> Tensor {
        guard rows != nil || cache.batch == batch else { throw GPT2Error.input("KV cache holds \(cache.batch) rows, input has \(batch)") }
        let rows = rows ?? Array(0..<batch)
        guard rows.count == batch else { throw GPT2Error.input("\(rows.count) cache rows given for \(batch) input rows") }
        try checkInput(ids, batch: batch, seqLen: seqLen)
        let binding = try cache.bind(rows: rows, seqLen: seqLen)
        // Every kernel on the spinning pool, whose worker already spins between the products.
        return try Tape.withoutRecording { try Parallel.onSpinningPool {
            let x = try forward(ids, batch: batch, seqLen: seqLen, cache: binding)
            cache.advance(rows: rows, by: seqLen)
            // Only the last position of each row goes through the head.
            let last = try x.value.slice(axis: 1, (seqLen - 1)..<seqLen).reshaped([batch, config.nEmbd])
            let h = try lnF(Variable(last))
            return try tokens.logits(h).value
        } }
    }

    /// Continues each prompt by up to `stop.maxNewTokens` tokens with the KV cache: the one
    /// generation loop (the CLI, the trainer's sample, CoQA decoding, evaluation tasks and the
    /// bench all use it).
    ///
    /// - Prompts may differ in length; each row keeps its own position, and rows that have
    ///   stopped drop out of the batch. Tokens are drawn row by row in order from one `rng`, so a
    ///   batch of one draws exactly what a single generation draws.
    /// - A prompt longer than the context is truncated from the left (the most recent tokens are
    ///   kept; `onWarning` is told).
    /// - When a row's context fills up, ``StopRule/whenFull`` decides: slide (rebuild the row
    ///   from its most recent half) or stop.
    /// - `capacity` caps the cache's positions per row (the row's context); by default the
    ///   cache holds what the longest row can need, at most the model's context.
    /// - `onToken(row, token)` sees each kept token as it is chosen; a stop token is not kept.
    public func generate(prompts: [[Int32]], sampling: Sampling = .greedy, rng: inout RandomGenerator, stop: StopRule,
                         capacity: Int? = nil, onWarning: (String) -> Void = { _ in },
                         onToken: (Int, Int32) -> Void = { _, _ in }) throws -> [Generated] {
        try generate(prompts: prompts, stops: prompts.map { _ in stop }, capacity: capacity, onWarning: onWarning,
                     onToken: onToken, choose: { _, logits in sampling.sample(logits, rng: &rng) })
    }

    /// The generation loop with a stop rule per row and the choice of each next token left to
    /// `choose(row, logits)` (the server samples each request with its own parameters and seed,
    /// and reads the log-probabilities of what it chose). Otherwise as above.
    public func generate(prompts: [[Int32]], stops: [StopRule], capacity: Int? = nil,
                         onWarning: (String) -> Void = { _ in }, onToken: (Int, Int32) -> Void = { _, _ in },
                         choose: (Int, [Float]) -> Int32) throws -> [Generated] {
        guard stops.count == prompts.count else { throw GPT2Error.input("generate: \(stops.count) stop rules for \(prompts.count) prompts") }
        let live = prompts.indices.filter { stops[$0].maxNewTokens > 0 }
        var results = prompts.map { _ in Generated(tokens: [], stop: .length) }
        guard !live.isEmpty else { return results }
        let cache = KVCache(config: config, batch: prompts.count, capacity: capacity ?? neededCapacity(prompts, stops))
        var contexts = prompts
        for (b, p) in prompts.enumerated() {
            guard !p.isEmpty else { throw GPT2Error.input("generate: prompt \(b) has no tokens") }
            if p.count > cache.capacity {
                onWarning("prompt of \(p.count) tokens exceeds the context of \(cache.capacity); keeping the last \(cache.capacity)")
                contexts[b] = Array(p.suffix(cache.capacity))
            }
        }
        var logits = try prefill(live.map { contexts[$0] }, rows: live, cache: cache)
        var active = live
        while !active.isEmpty {
            var next: [Int32] = [], still: [Int] = [], slid: Set<Int> = []
            for b in active {
                let stop = stops[b]
                let token = choose(b, logits[b])
                if stop.stops(token) { results[b].stop = .stopToken(token); continue }
                results[b].tokens.append(token)
                onToken(b, token)
                contexts[b].append(token)
                if results[b].tokens.count >= stop.maxNewTokens { results[b].stop = .length; continue }
                if cache.lengths[b] == cache.capacity {
                    if stop.whenFull == .stop { results[b].stop = .contextFull; continue }
                    let keep = Array(contexts[b].suffix(max(1, cache.capacity / 2)))
                    cache.reset(row: b)
                    logits[b] = try prefill([keep], rows: [b], cache: cache)[b]
                    slid.insert(b)
                    continue
                }
                next.append(token)
                still.append(b)
            }
            if !still.isEmpty {
                let out = try forwardCached(next, batch: still.count, seqLen: 1, cache: cache, rows: still)
                let v = config.vocabSize
                out.withUnsafePointer { p in
                    for (i, b) in still.enumerated() { logits[b] = Array(UnsafeBufferPointer(start: p + i * v, count: v)) }
                }
            }
            // Rows go on when they took a cached step or were rebuilt; every other row has ended.
            active = active.filter { b in slid.contains(b) || still.contains(b) }
        }
        return results
    }

    /// The cache positions a generation needs when the caller gives none: each row's prompt and
    /// all its new tokens, at most the context. A row never fills a cache of this size before it
    /// would have filled the context, so sliding, truncation and every token are as with a
    /// context-sized cache; but the cache is only as large as the longest row (gpt2 at batch 8
    /// with a full 1,024-position cache holds 604 MB of keys and values).
    func neededCapacity(_ prompts: [[Int32]], _ stops: [StopRule]) -> Int {
        let context = config.nPositions
        let longest = zip(prompts, stops).map { p, s in
            p.count >= context || s.maxNewTokens >= context - p.count ? context : p.count + Swift.max(0, s.maxNewTokens)
        }.max() ?? context
        return Swift.max(1, longest)
    }

    /// Runs each row's context into the cache; rows of equal length go through together.
    /// Returns the next-token logits by row (a dictionary-like array indexed by cache row).
    func prefill(_ contexts: [[Int32]], rows: [Int], cache: KVCache) throws -> [[Float]] {
        var logits = [[Float]](repeating: [], count: cache.batch)
        let v = config.vocabSize
        var groups: [Int: [Int]] = [:]
        for (i, c) in contexts.enumerated() { groups[c.count, default: []].append(i) }
        for (length, members) in groups.sorted(by: { $0.key < $1.key }) {
            let ids = members.flatMap { contexts[$0] }
            let out = try forwardCached(ids, batch: members.count, seqLen: length, cache: cache, rows: members.map { rows[$0] })
            out.withUnsafePointer { p in
                for (i, m) in members.enumerated() { logits[rows[m]] = Array(UnsafeBufferPointer(start: p + i * v, count: v)) }
            }
        }
        return logits
    }

    /// Continues one prompt: ``generate(prompts:sampling:rng:stop:capacity:onWarning:onToken:)``
    /// for a batch of one, stopping at `stopToken` (which, unlike other tokens, is returned as
    /// the last element when it is drawn) and sliding the context when it fills up.
    public func generate(prompt: [Int32], maxNewTokens: Int, sampling: Sampling = .greedy,
                         rng: inout RandomGenerator, stopToken: Int32? = nil,
                         onWarning: (String) -> Void = { _ in }, onToken: (Int32) -> Void = { _ in }) throws -> [Int32] {
        guard !prompt.isEmpty else { throw GPT2Error.input("generate: the prompt has no tokens") }
        guard maxNewTokens > 0 else { return [] }
        let stop = StopRule(maxNewTokens: maxNewTokens, stopTokens: stopToken.map { [$0] } ?? [])
        let out = try generate(prompts: [prompt], sampling: sampling, rng: &rng, stop: stop, onWarning: onWarning,
                               onToken: { _, t in onToken(t) })[0]
        if case .stopToken(let t) = out.stop { return out.tokens + [t] }
        return out.tokens
    }
}

/// When generation of a row ends.
public struct StopRule {
    /// At most this many new tokens.
    public var maxNewTokens: Int
    /// Tokens that end a row (not kept), e.g. `<|endoftext|>`.
    public var stopTokens: Set<Int32>
    /// Any other token that ends a row (not kept), e.g. one whose text holds a newline.
    public var predicate: ((Int32) -> Bool)?
    /// What a full context does: slide (rebuild from the most recent half) or stop.
    public var whenFull: FullContext

    public enum FullContext: Sendable { case slide, stop }

    public init(maxNewTokens: Int, stopTokens: Set<Int32> = [], whenFull: FullContext = .slide,
                predicate: ((Int32) -> Bool)? = nil) {
        self.maxNewTokens = maxNewTokens
        self.stopTokens = stopTokens
        self.predicate = predicate
        self.whenFull = whenFull
    }

    func stops(_ token: Int32) -> Bool { stopTokens.contains(token) || (predicate?(token) ?? false) }
}

/// One row's generated tokens and why it ended.
public struct Generated: Sendable, Equatable {
    public var tokens: [Int32]
    public var stop: Reason

    public enum Reason: Sendable, Equatable {
        /// `maxNewTokens` reached.
        case length
        /// This stop token (or a token the predicate matched) was drawn; it is not in `tokens`.
        case stopToken(Int32)
        /// The context filled up under ``StopRule/FullContext/stop``.
        case contextFull
    }

    var stopped: Bool {
        if case .length = stop { return false }
        return true
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
        if temperature <= 0 { return Int32(Scoring.argmax(logits)) }
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

/// The argmax and log-softmax of a row of logits: shared by greedy decoding and every
/// evaluation that scores tokens, so they agree on ties and rounding.
public enum Scoring {
    /// Index of the largest of `count` values; ties go to the lowest index.
    public static func argmax(_ row: UnsafePointer<Float>, count: Int) -> Int { rowArgmax(row, count) }

    public static func argmax(_ values: [Float]) -> Int {
        values.withUnsafeBufferPointer { argmax($0.baseAddress!, count: $0.count) }
    }

    /// log softmax(row)[target] (the exponentials summed in Double after subtracting the maximum)
    /// and the row's argmax.
    public static func score(_ row: UnsafePointer<Float>, count: Int, target: Int) -> (logProb: Double, argmax: Int) {
        let best = argmax(row, count: count)
        let m = row[best]
        var z = 0.0
        for j in 0..<count { z += Foundation.exp(Double(row[j] - m)) }
        return (Double(row[target] - m) - Foundation.log(z), best)
    }
}
