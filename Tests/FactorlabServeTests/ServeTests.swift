import FactorlabAutograd
@testable import FactorlabServe
import FactorlabGPT2
import FactorlabRandom
import FactorlabTensor
import FactorlabTokenizer
import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest

/// `factorlab serve` over real HTTP (AsyncHTTPClient against the live server on loopback): the
/// answers equal the model's own computations, concurrent requests are batched and each gets its
/// own tokens, and every limit answers with its status and a JSON error.
final class ServeTests: XCTestCase {
    static let text = "the cat sat on the mat. the dog sat on the log. a cat and a dog ran to the mat and sat."
    var tokenizer: BPETokenizer!
    var model: GPT2Model!

    override func setUpWithError() throws {
        tokenizer = try BPETokenizer.train(texts: [Self.text], vocabularySize: 300)
        model = try GPT2Model(GPT2Config(nLayer: 2, nHead: 2, nEmbd: 16, nPositions: 64, vocabSize: tokenizer.vocabularySize), seed: 7)
    }

    func engine(limits: ServeLimits = ServeLimits(), gate: DispatchSemaphore? = nil) -> CompletionEngine {
        let (m, t) = (UncheckedBox(model!), UncheckedBox(tokenizer!))
        return CompletionEngine(limits: limits) {
            gate?.wait()
            return .init(model: m.value, tokenizer: t.value, name: "tiny")
        }
    }

    static func post(_ client: any TestClientProtocol, _ body: String) async throws -> (status: Int, json: [String: Any]) {
        try await client.execute(uri: "/v1/completions", method: .post, headers: [.contentType: "application/json"],
                                 body: ByteBuffer(string: body)) { r in
            let object = try JSONSerialization.jsonObject(with: Data(r.body.readableBytesView)) as? [String: Any]
            return (Int(r.status.code), object ?? [:])
        }
    }

    func testEchoLogprobsAreTheModelsOwnScoresAndGreedyTextIsGenerate() async throws {
        let e = engine()
        _ = await e.waitUntilLoaded()
        let prompt = tokenizer.encode("the cat sat on the")
        // The model's own scores of the prompt, and its greedy continuation.
        let logits = try Tape.withoutRecording { try model.logits(prompt, batch: 1, seqLen: prompt.count) }.value
        let v = tokenizer.vocabularySize
        let expected: [Double] = logits.withUnsafePointer { p in
            (1..<prompt.count).map { Scoring.score(p + ($0 - 1) * v, count: v, target: Int(prompt[$0])).logProb }
        }
        var rng = RandomGenerator(seed: 0)
        let greedy = try model.generate(prompts: [prompt], rng: &rng, stop: StopRule(maxNewTokens: 5))[0].tokens
        let expectedText = try tokenizer.decode(prompt) + tokenizer.decode(greedy)
        let promptCount = prompt.count
        let ids = prompt.map(String.init).joined(separator: ",")
        let app = CompletionServer.application(engine: e, port: 0)
        try await app.test(.ahc(.http)) { client in
            let (status, body) = try await Self.post(client, #"{"model":"tiny","prompt":[\#(ids)],"max_tokens":5,"temperature":0,"logprobs":2,"echo":true}"#)
            XCTAssertEqual(status, 200, "\(body)")
            let choice = try XCTUnwrap((body["choices"] as? [[String: Any]])?.first)
            let lp = try XCTUnwrap(choice["logprobs"] as? [String: Any])
            let tokenLPs = try XCTUnwrap(lp["token_logprobs"] as? [Any])
            XCTAssertEqual(tokenLPs.count, promptCount + 5)
            XCTAssertTrue(tokenLPs[0] is NSNull, "the first prompt token has no log-probability")
            for (k, want) in expected.enumerated() {
                XCTAssertEqual(try XCTUnwrap(tokenLPs[k + 1] as? Double), want, accuracy: 1e-12)
            }
            let tops = try XCTUnwrap(lp["top_logprobs"] as? [Any])
            let top1 = try XCTUnwrap(tops[1] as? [String: Double])
            XCTAssertEqual(top1.count, 2)
            XCTAssertGreaterThanOrEqual(top1.values.max()!, expected[0] - 1e-12, "the top alternative is at least as likely as the token")
            let text = try XCTUnwrap(choice["text"] as? String)
            XCTAssertEqual(text, expectedText)
            XCTAssertEqual(choice["finish_reason"] as? String, "length")
            let usage = try XCTUnwrap(body["usage"] as? [String: Int])
            XCTAssertEqual(usage["prompt_tokens"], promptCount)
            XCTAssertEqual(usage["completion_tokens"], 5)
            try await client.execute(uri: "/v1/models", method: .get) { r in
                XCTAssertEqual(r.status, .ok)
                XCTAssertTrue(String(buffer: r.body).contains(#""id":"tiny""#))
            }
            try await client.execute(uri: "/health", method: .get) { r in XCTAssertEqual(r.status, .ok) }
        }
        e.shutdown()
    }

    func testConcurrentRequestsAreBatchedAndEachGetsItsOwnTokens() async throws {
        var limits = ServeLimits()
        limits.maxBatchRows = 8
        let e = engine(limits: limits)
        _ = await e.waitUntilLoaded()
        let prompts = ["the cat", "a dog ran", "the mat and", "sat on the log", "the", "a cat and a dog"]
        // Each prompt alone: greedy, and sampled with its own seed.
        var solo: [String: String] = [:]
        for p in prompts {
            var rng = RandomGenerator(seed: 0)
            solo[p] = try tokenizer.decode(model.generate(prompts: [tokenizer.encode(p)], rng: &rng, stop: StopRule(maxNewTokens: 12))[0].tokens)
        }
        e.holdForTesting(true)  // let every request queue before the first batch runs
        let expected = solo
        let app = CompletionServer.application(engine: e, port: 0)
        try await app.test(.ahc(.http)) { client in
            let answers = try await withThrowingTaskGroup(of: (String, Int, String, String).self) { group in
                for (i, p) in prompts.enumerated() {
                    group.addTask {
                        let (s, g) = try await Self.post(client, #"{"prompt":"\#(p)","max_tokens":12,"temperature":0}"#)
                        let (_, r) = try await Self.post(client, #"{"prompt":"\#(p)","max_tokens":12,"temperature":1,"seed":\#(100 + i)}"#)
                        let gt = ((g["choices"] as? [[String: Any]])?.first?["text"] as? String) ?? "?"
                        let rt = ((r["choices"] as? [[String: Any]])?.first?["text"] as? String) ?? "?"
                        return (p, s, gt, rt)
                    }
                }
                try await Task.sleep(nanoseconds: 200_000_000)
                e.holdForTesting(false)
                var out: [(String, Int, String, String)] = []
                for try await a in group { out.append(a) }
                return out
            }
            XCTAssertEqual(answers.count, prompts.count)
            for (p, status, greedy, _) in answers {
                XCTAssertEqual(status, 200)
                XCTAssertEqual(greedy, expected[p], "prompt '\(p)' got another request's tokens")
            }
            // Seeded sampling gives the same tokens alone as batched with the others.
            for (i, p) in prompts.enumerated() {
                let (_, alone) = try await Self.post(client, #"{"prompt":"\#(p)","max_tokens":12,"temperature":1,"seed":\#(100 + i)}"#)
                let text = (alone["choices"] as? [[String: Any]])?.first?["text"] as? String
                XCTAssertEqual(text, answers.first { $0.0 == p }?.3)
            }
        }
        XCTAssertGreaterThan(e.batchSizes.max() ?? 0, 1, "queued requests ran in one batch: \(e.batchSizes)")
        e.shutdown()
    }

    func testLimitsAndBadFieldsAnswerWithTheirStatusAndAJSONError() async throws {
        var limits = ServeLimits()
        limits.maxBodyBytes = 2000
        limits.maxConcurrent = 1
        limits.maxNewTokens = 20
        let gate = DispatchSemaphore(value: 0)
        let e = engine(limits: limits, gate: gate)
        let app = CompletionServer.application(engine: e, port: 0)
        try await app.test(.ahc(.http)) { client in
            // Loading: 503.
            try await client.execute(uri: "/health", method: .get) { r in XCTAssertEqual(r.status.code, 503) }
            var (status, body) = try await Self.post(client, #"{"prompt":"the cat"}"#)
            XCTAssertEqual(status, 503)
            XCTAssertTrue(((body["error"] as? [String: Any])?["message"] as? String ?? "").contains("loading"))
            gate.signal()
            _ = await e.waitUntilLoaded()

            let cases: [(String, Int, String)] = [
                ("not json", 400, "not valid JSON"),
                (#"["a list"]"#, 400, "JSON object"),
                (#"{"max_tokens":3}"#, 400, "'prompt' is required"),
                (#"{"prompt":"x","max_tokens":21}"#, 400, "'max_tokens' must be an integer from 0 to 20"),
                (#"{"prompt":"x","max_tokens":2.5}"#, 400, "'max_tokens' must be an integer"),
                (#"{"prompt":"x","temperature":"hot"}"#, 400, "'temperature' must be a number"),
                (#"{"prompt":"x","temperature":3}"#, 400, "'temperature' must be from 0 to 2"),
                (#"{"prompt":"x","top_p":0}"#, 400, "'top_p' must be in (0, 1]"),
                (#"{"prompt":"x","logprobs":9}"#, 400, "'logprobs' must be an integer from 0 to 5"),
                (#"{"prompt":"x","echo":1}"#, 400, "'echo' must be true or false"),
                (#"{"prompt":"x","n":2}"#, 400, "'n' must be 1"),
                (#"{"prompt":"x","stop":[1]}"#, 400, "'stop' must be a string"),
                (#"{"prompt":[1, -2]}"#, 400, "token ids must be integers from 0"),
                (#"{"prompt":[1, 99999]}"#, 400, "outside the vocabulary"),
                (#"{"prompt":[[1], "a"]}"#, 400, "'prompt' must be"),
                (#"{"prompt":"x","max_tokens":0}"#, 400, "nothing to return"),
                (#"{"prompt":"x","model":"gpt-4"}"#, 404, "is not served here"),
                (#"{"prompt":"\#(String(repeating: "cat ", count: 50))","max_tokens":20}"#, 400, "context is 64 tokens"),
                (#"{"prompt":"\#(String(repeating: "x", count: 3000))"}"#, 413, "exceeds the limit of 2000"),
            ]
            for (request, want, message) in cases {
                (status, body) = try await Self.post(client, request)
                XCTAssertEqual(status, want, request)
                let error = body["error"] as? [String: Any]
                XCTAssertTrue((error?["message"] as? String ?? "").contains(message), "\(request): \(body)")
            }
            // Too many at once: 429 while one request holds the only slot.
            e.holdForTesting(true)
            async let first = Self.post(client, #"{"prompt":"the cat","max_tokens":3}"#)
            try await Task.sleep(nanoseconds: 200_000_000)
            (status, body) = try await Self.post(client, #"{"prompt":"the dog","max_tokens":3}"#)
            XCTAssertEqual(status, 429)
            XCTAssertEqual((body["error"] as? [String: Any])?["type"] as? String, "rate_limit_error")
            e.holdForTesting(false)
            let (firstStatus, _) = try await first
            XCTAssertEqual(firstStatus, 200, "the queued request is answered, not lost")
            // A stop string ends the text before it.
            (status, body) = try await Self.post(client, #"{"prompt":"the cat","max_tokens":20,"temperature":0}"#)
            let full = try XCTUnwrap((body["choices"] as? [[String: Any]])?.first?["text"] as? String)
            if let cut = full.dropFirst(2).first.map(String.init), !cut.trimmingCharacters(in: .whitespaces).isEmpty {
                (status, body) = try await Self.post(client, #"{"prompt":"the cat","max_tokens":20,"temperature":0,"stop":"\#(cut)"}"#)
                let stopped = try XCTUnwrap((body["choices"] as? [[String: Any]])?.first)
                XCTAssertEqual(stopped["text"] as? String, String(full[..<full.range(of: cut)!.lowerBound]))
                XCTAssertEqual(stopped["finish_reason"] as? String, "stop")
            }
        }
        e.shutdown()
    }

    /// A row stopped by end-of-text keeps that token's log-probability (the harness reads echo +
    /// max_tokens 1 as the prompt's entries plus one), and the tokenizer endpoints serve the
    /// model's own tokenizer.
    func testStopTokenKeepsItsLogprobAndTheTokenizerIsServed() async throws {
        // A unigram model (ln_f scale 0, bias e_0) whose likeliest token is <|endoftext|>.
        let eot = try XCTUnwrap(tokenizer.endOfTextID)
        let v = tokenizer.vocabularySize, c = 16
        model.wte!.weight.value = Tensor(shape: [v, c]) { i in i % c == 0 ? (i / c == Int(eot) ? 5 : Float((i / c) % 3) * 0.1) : 0 }
        model.lnF.weight.value = Tensor(zeros: [c])
        model.lnF.bias.value = Tensor(shape: [c]) { $0 == 0 ? 1 : 0 }
        let e = engine()
        _ = await e.waitUntilLoaded()
        let prompt = tokenizer.encode("the cat sat")
        let ids = prompt.map(String.init).joined(separator: ",")
        let expectedTokens = (tokenizer.encode("the cat") + [eot]).map(Int.init)
        let app = CompletionServer.application(engine: e, port: 0)
        try await app.test(.ahc(.http)) { client in
            let (status, body) = try await Self.post(client, #"{"prompt":[\#(ids)],"max_tokens":1,"temperature":0,"logprobs":1,"echo":true}"#)
            XCTAssertEqual(status, 200)
            let choice = try XCTUnwrap((body["choices"] as? [[String: Any]])?.first)
            XCTAssertEqual(choice["finish_reason"] as? String, "stop")
            let lp = try XCTUnwrap((choice["logprobs"] as? [String: Any])?["token_logprobs"] as? [Any])
            XCTAssertEqual(lp.count, prompt.count + 1, "prompt entries plus the stop token's")
            let z = log((0..<v).map { exp(Double($0 == Int(eot) ? 5 : Float($0 % 3) * 0.1)) }.reduce(0, +))
            XCTAssertEqual(try XCTUnwrap(lp.last as? Double), 5 - z, accuracy: 1e-5)
            XCTAssertEqual((body["usage"] as? [String: Int])?["completion_tokens"], 0, "the stop token is not part of the text")

            try await client.execute(uri: "/tokenizer_info", method: .get) { r in
                XCTAssertEqual(r.status, .ok)
                XCTAssertTrue(String(buffer: r.body).contains(#""eos_token":"<|endoftext|>""#))
            }
            try await client.execute(uri: "/tokenize", method: .post, body: ByteBuffer(string: #"{"prompt":"the cat<|endoftext|>","add_special_tokens":false}"#)) { r in
                let o = try JSONSerialization.jsonObject(with: Data(r.body.readableBytesView)) as? [String: Any]
                XCTAssertEqual(o?["tokens"] as? [Int], expectedTokens)
            }
            try await client.execute(uri: "/detokenize", method: .post, body: ByteBuffer(string: #"{"tokens":[\#(ids)]}"#)) { r in
                let o = try JSONSerialization.jsonObject(with: Data(r.body.readableBytesView)) as? [String: Any]
                XCTAssertEqual(o?["prompt"] as? String, "the cat sat")
            }
            try await client.execute(uri: "/detokenize", method: .post, body: ByteBuffer(string: #"{"tokens":[99999]}"#)) { r in
                XCTAssertEqual(r.status.code, 400)
            }
        }
        e.shutdown()
    }

    func testLogProbsTopAlternativesAreSortedAndTieBreakToTheLowerID() {
        let row: [Float] = [1, 3, 3, 0, 2]
        let (lp, top) = row.withUnsafeBufferPointer { CompletionEngine.logProbs($0, target: 4, top: 3) }
        let z = log(row.map { exp(Double($0)) }.reduce(0, +))
        XCTAssertEqual(lp, 2 - z, accuracy: 1e-12)
        XCTAssertEqual(top.map(\.0), [1, 2, 4])
        XCTAssertEqual(top[0].1, 3 - z, accuracy: 1e-6)
    }
}

/// Hands a non-Sendable test value to the engine's loader (it runs once, on the engine's thread).
final class UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}
