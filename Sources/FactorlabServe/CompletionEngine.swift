import FactorlabAutograd
import FactorlabGPT2
import FactorlabRandom
import FactorlabTokenizer
import Foundation

/// The model behind the server: one worker thread owns it. Requests queue; the worker takes as
/// many queued requests as fit `ServeLimits.maxBatchRows` and generates all their prompts in one
/// batched KV-cache loop (rows of different lengths, each row with its own sampling, seed and
/// stop rule), then answers each request with its own rows.
///
/// Every request's rows are indexed by the request, never by batch position alone, so a request
/// always receives its own tokens; each row draws from its own seeded generator, so a seeded
/// request gets the same tokens whether it ran alone or batched with others.
public final class CompletionEngine: @unchecked Sendable {
    public struct Model {
        public let model: GPT2Model
        public let tokenizer: BPETokenizer
        /// The id `/v1/models` lists and responses carry.
        public let name: String
        public init(model: GPT2Model, tokenizer: BPETokenizer, name: String) {
            self.model = model
            self.tokenizer = tokenizer
            self.name = name
        }
    }

    public enum State: Sendable, Equatable {
        case loading
        case ready(name: String, context: Int)
        case failed(String)
    }

    public let limits: ServeLimits
    private let lock = NSCondition()
    // Guarded by `lock`:
    private var queue: [Job] = []
    private var inFlight = 0
    private var _state = State.loading
    private var stopping = false
    private var held = false
    private var loadedTokenizer: BPETokenizer?
    private var nextID = 0
    /// Sizes of the batches run so far (rows), for tests and the load bench.
    private var _batchSizes: [Int] = []

    private struct Job {
        let request: CompletionRequest
        let id: Int
        let created: Int
        let reply: @Sendable (Result<Data, ServeError>) -> Void
    }

    /// Starts the worker thread, which first runs `load` (503 until it returns).
    public init(limits: ServeLimits = ServeLimits(), load: @escaping @Sendable () throws -> Model) {
        self.limits = limits
        let thread = Thread { [unowned self] in self.work(load: load) }
        thread.name = "factorlab-serve-model"
        thread.stackSize = 16 << 20
        thread.start()
    }

    public var state: State { lock.lock(); defer { lock.unlock() }; return _state }
    public var batchSizes: [Int] { lock.lock(); defer { lock.unlock() }; return _batchSizes }

    /// Waits (polling) until the model is loaded or failed to load.
    public func waitUntilLoaded() async -> State {
        while true {
            let s = state
            if s != .loading { return s }
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
    }

    /// Stops the worker after the running batch; queued requests get 503.
    public func shutdown() {
        lock.lock()
        stopping = true
        let dropped = queue
        queue = []
        lock.broadcast()
        lock.unlock()
        for j in dropped { j.reply(.failure(ServeError(503, "the server is shutting down"))) }
    }

    /// The served tokenizer (nil until loaded): `/tokenize`, `/detokenize` and `/tokenizer_info`,
    /// which lm-evaluation-harness's remote tokenizer backend reads.
    public var tokenizer: BPETokenizer? { lock.lock(); defer { lock.unlock() }; return loadedTokenizer }

    /// Tests only: while held, requests queue and no batch starts.
    func holdForTesting(_ on: Bool) {
        lock.lock(); held = on; lock.broadcast(); lock.unlock()
    }

    /// Runs one request: the OpenAI `text_completion` object (JSON), or the error to answer with.
    public func complete(_ request: CompletionRequest) async -> Result<Data, ServeError> {
        await withCheckedContinuation { (c: CheckedContinuation<Result<Data, ServeError>, Never>) in
            let box = ReplyOnce(c)
            lock.lock()
            switch _state {
            case .loading:
                lock.unlock(); box.send(.failure(ServeError(503, "the model is still loading"))); return
            case .failed(let m):
                lock.unlock(); box.send(.failure(ServeError(503, "the model failed to load: \(m)"))); return
            case .ready: break
            }
            guard !stopping else { lock.unlock(); box.send(.failure(ServeError(503, "the server is shutting down"))); return }
            guard inFlight < limits.maxConcurrent else {
                lock.unlock()
                box.send(.failure(ServeError(429, "\(limits.maxConcurrent) requests are already queued or running; retry later")))
                return
            }
            inFlight += 1
            nextID += 1
            queue.append(Job(request: request, id: nextID, created: Int(Date().timeIntervalSince1970), reply: { box.send($0) }))
            lock.signal()
            lock.unlock()
        }
    }

    // MARK: The worker thread

    private func work(load: () throws -> Model) {
        let loaded: Model
        do { loaded = try load() } catch {
            lock.lock(); _state = .failed("\(error)"); lock.unlock()
            return
        }
        lock.lock()
        _state = .ready(name: loaded.name, context: loaded.model.config.nPositions)
        loadedTokenizer = loaded.tokenizer
        lock.unlock()
        while true {
            lock.lock()
            while (queue.isEmpty || held) && !stopping { lock.wait() }
            if stopping { lock.unlock(); return }
            // Whole requests, in arrival order, while their prompts fit one batch (at least one).
            var batch: [Job] = [], rows = 0
            while let j = queue.first, batch.isEmpty || rows + j.request.prompts.count <= limits.maxBatchRows {
                batch.append(queue.removeFirst())
                rows += j.request.prompts.count
            }
            lock.unlock()
            let replies = run(batch, loaded)
            lock.lock()
            inFlight -= batch.count
            _batchSizes.append(rows)
            lock.unlock()
            for (job, reply) in zip(batch, replies) {
                job.reply(reply.flatMap { object in
                    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else {
                        return .failure(ServeError(500, "the response could not be encoded as JSON"))
                    }
                    return .success(data)
                })
            }
        }
    }

    /// One prompt of one request, in the batch.
    private struct Row {
        let job: Int
        let prompt: [Int32]
        let promptText: String
        var sampling: Sampling
        var rng: RandomGenerator
        var stop: StopRule
        /// (log-probability of the chosen token, top alternatives) per chosen token.
        var chosen: [(Double, [(Int32, Double)])] = []
    }

    private func run(_ batch: [Job], _ m: Model) -> [Result<[String: Any], ServeError>] {
        var replies = [Result<[String: Any], ServeError>?](repeating: nil, count: batch.count)
        var rows: [Row] = []
        let context = m.model.config.nPositions
        let eot = m.tokenizer.endOfTextID
        for (k, job) in batch.enumerated() {
            do {
                let r = job.request
                if let name = r.model, name != m.name {
                    throw ServeError(404, "model '\(name.prefix(100))' is not served here; this server serves '\(m.name)'", param: "model")
                }
                for p in r.prompts {
                    var ids: [Int32]
                    switch p {
                    case .text(let s): ids = m.tokenizer.encode(s, allowSpecial: true)
                    case .tokens(let t):
                        if let bad = t.first(where: { Int($0) >= m.model.config.vocabSize }) {
                            throw ServeError(400, "'prompt' token id \(bad) is outside the vocabulary of \(m.model.config.vocabSize)", param: "prompt")
                        }
                        ids = t
                    }
                    if ids.isEmpty, let eot { ids = [eot] }
                    guard !ids.isEmpty else { throw ServeError(400, "'prompt' is empty", param: "prompt") }
                    // N new tokens need N - 1 positions past the prompt (the last one is never fed back).
                    guard ids.count + max(r.maxTokens - 1, 0) <= context else {
                        throw ServeError(400, "this model's context is \(context) tokens; the prompt has \(ids.count) and max_tokens asks for \(r.maxTokens) more (a prompt of P tokens allows up to \(context) - P + 1)", param: "prompt")
                    }
                    let text = (try? m.tokenizer.decode(ids)) ?? ""
                    let scanner = StopScanner(tokenizer: m.tokenizer, stops: r.stop)
                    let rule = StopRule(maxNewTokens: r.maxTokens, stopTokens: eot.map { [$0] } ?? [], whenFull: .stop,
                                        predicate: r.stop.isEmpty ? nil : { scanner.stops(after: $0) })
                    rows.append(Row(job: k, prompt: ids, promptText: text,
                                    sampling: Sampling(temperature: r.temperature, topK: 0, topP: r.topP),
                                    rng: RandomGenerator(seed: r.seed ?? UInt64.random(in: 0...UInt64.max)), stop: rule))
                }
            } catch let e as ServeError {
                replies[k] = .failure(e)
            } catch {
                replies[k] = .failure(ServeError(500, "\(error)"))
            }
        }
        rows.removeAll { replies[$0.job] != nil }
        guard !rows.isEmpty else { return replies.map { $0! } }
        let v = m.model.config.vocabSize
        do {
            let generated = try m.model.generate(prompts: rows.map(\.prompt), stops: rows.map(\.stop)) { b, logits in
                let token = rows[b].sampling.sample(logits, rng: &rows[b].rng)
                if let n = batch[rows[b].job].request.logprobs {
                    rows[b].chosen.append(logits.withUnsafeBufferPointer { CompletionEngine.logProbs($0, target: token, top: n) })
                }
                return token
            }
            // Prompt log-probabilities (echo with logprobs): one forward per row over its prompt.
            var promptScores: [[(Double, [(Int32, Double)])]?] = rows.map { _ in nil }
            for (b, row) in rows.enumerated() {
                let r = batch[row.job].request
                guard r.echo, let n = r.logprobs, row.prompt.count > 1 else { continue }
                let logits = try Tape.withoutRecording { try m.model.logits(row.prompt, batch: 1, seqLen: row.prompt.count) }.value
                promptScores[b] = logits.withUnsafePointer { p in
                    (1..<row.prompt.count).map { t in
                        CompletionEngine.logProbs(UnsafeBufferPointer(start: p + (t - 1) * v, count: v), target: row.prompt[t], top: n)
                    }
                }
            }
            var choices: [[[String: Any]]] = batch.map { _ in [] }
            var usage = batch.map { _ in (prompt: 0, completion: 0) }
            for (b, row) in rows.enumerated() {
                let r = batch[row.job].request
                let out = generated[b]
                var finish = "length"
                var completion = (try? m.tokenizer.decode(out.tokens)) ?? ""
                switch out.stop {
                case .stopToken(let t):
                    finish = "stop"
                    if t != eot {
                        // A stop string: cut the text where it begins (the matching token is not kept).
                        let withStop = (try? m.tokenizer.decode(out.tokens + [t])) ?? completion
                        completion = StopScanner.cut(withStop, at: r.stop)
                    }
                case .contextFull: finish = "length"
                case .length: finish = "length"
                }
                var choice: [String: Any] = ["index": choices[row.job].count, "text": (r.echo ? row.promptText : "") + completion,
                                             "finish_reason": finish]
                if let n = r.logprobs {
                    // The token that stopped the row (end of text, or the one completing a stop string) is
                    // not in the text but keeps its log-probability entry, as vLLM returns it: the harness
                    // reads echo + max_tokens 1 as prompt entries plus exactly one generated entry.
                    var scored = out.tokens
                    if case .stopToken(let t) = out.stop { scored.append(t) }
                    choice["logprobs"] = logprobsObject(row: row, generated: scored, promptScores: promptScores[b],
                                                        echo: r.echo, top: n, tokenizer: m.tokenizer)
                }
                choices[row.job].append(choice)
                usage[row.job].prompt += row.prompt.count
                usage[row.job].completion += out.tokens.count
            }
            for (k, job) in batch.enumerated() where replies[k] == nil {
                replies[k] = .success(["id": "cmpl-\(job.id)", "object": "text_completion", "created": job.created, "model": m.name,
                                       "choices": choices[k],
                                       "usage": ["prompt_tokens": usage[k].prompt, "completion_tokens": usage[k].completion,
                                                 "total_tokens": usage[k].prompt + usage[k].completion]])
            }
        } catch {
            for k in batch.indices where replies[k] == nil { replies[k] = .failure(ServeError(500, "generation failed: \(error)")) }
        }
        return replies.map { $0! }
    }

    /// OpenAI's `logprobs` object: tokens, their log-probabilities (null for the first prompt
    /// token, which has no context), the top alternatives and each token's offset in the text.
    private func logprobsObject(row: Row, generated: [Int32], promptScores: [(Double, [(Int32, Double)])]?, echo: Bool,
                                top: Int, tokenizer: BPETokenizer) -> [String: Any] {
        var tokens: [String] = [], lps: [Any] = [], tops: [Any] = [], offsets: [Int] = []
        var offset = 0
        func piece(_ t: Int32) -> String { (try? tokenizer.decodeBytes([t])).map { String(decoding: $0, as: UTF8.self) } ?? "" }
        func add(_ t: Int32, _ score: (Double, [(Int32, Double)])?) {
            let s = piece(t)
            tokens.append(s)
            offsets.append(offset)
            offset += s.utf8.count
            if let score {
                lps.append(score.0)
                var d: [String: Double] = [:]
                for (alt, lp) in score.1 where d[piece(alt)] == nil { d[piece(alt)] = lp }
                tops.append(top == 0 ? [String: Double]() : d)
            } else {
                lps.append(NSNull()); tops.append(NSNull())
            }
        }
        if echo {
            for (i, t) in row.prompt.enumerated() { add(t, i == 0 ? nil : promptScores?[i - 1]) }
        }
        for (i, t) in generated.enumerated() { add(t, row.chosen[i]) }
        return ["tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets]
    }

    /// log softmax(row)[target] and the `top` most likely tokens with theirs (ties: lower id first).
    static func logProbs(_ row: UnsafeBufferPointer<Float>, target: Int32, top: Int) -> (Double, [(Int32, Double)]) {
        let n = row.count
        let (lp, _) = Scoring.score(row.baseAddress!, count: n, target: Int(target))
        guard top > 0 else { return (lp, []) }
        let shift = lp - Double(row[Int(target)])  // log softmax(x)_j = x_j + shift
        var best: [(Int32, Float)] = []
        for j in 0..<n {
            let x = row[j]
            if best.count < top || x > best[best.count - 1].1 {
                let at = best.firstIndex { x > $0.1 } ?? best.count
                best.insert((Int32(j), x), at: at)
                if best.count > top { best.removeLast() }
            }
        }
        return (lp, best.map { ($0.0, Double($0.1) + shift) })
    }
}

/// Answers a continuation exactly once.
private final class ReplyOnce: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Result<Data, ServeError>, Never>?
    init(_ c: CheckedContinuation<Result<Data, ServeError>, Never>) { continuation = c }
    func send(_ r: Result<Data, ServeError>) {
        lock.lock()
        let c = continuation
        continuation = nil
        lock.unlock()
        c?.resume(returning: r)
    }
}

/// Watches one row's generated text for its stop strings.
final class StopScanner {
    let tokenizer: BPETokenizer
    let stops: [String]
    private var bytes: [UInt8] = []
    init(tokenizer: BPETokenizer, stops: [String]) {
        self.tokenizer = tokenizer
        self.stops = stops
    }

    /// Whether the text so far, with `token` appended, contains a stop string.
    func stops(after token: Int32) -> Bool {
        guard let b = try? tokenizer.decodeBytes([token]) else { return false }
        let before = bytes.count
        bytes += b
        // Only a match that ends in the new bytes is new; scan the tail that could hold one.
        let longest = stops.map(\.utf8.count).max() ?? 0
        let from = max(0, before - longest + 1)
        let tail = String(decoding: bytes[from...], as: UTF8.self)
        return stops.contains { tail.contains($0) }
    }

    /// `text` up to the first stop string.
    static func cut(_ text: String, at stops: [String]) -> String {
        var end = text.endIndex
        for s in stops { if let r = text.range(of: s), r.lowerBound < end { end = r.lowerBound } }
        return String(text[..<end])
    }
}
