import ArgumentParser
import FactorlabCheckpoint
import FactorlabServe
import Foundation

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve one model over HTTP with OpenAI's completions API (POST /v1/completions, GET /v1/models, GET /health).",
        discussion: """
        Binds 127.0.0.1 unless --host says otherwise. The model loads in the background (503 until it is ready). Concurrent
        requests queue and run as one batched generation (up to --max-batch prompts). Limits answer with a JSON error:
        400 malformed or out-of-range fields, 413 a body over --max-body-bytes, 429 over --max-concurrent requests.
        Example, and lm-evaluation-harness against it: see the README's "Serving" section.
        """)

    @Option(help: "A .h5 checkpoint (float32 or quantized), a run folder, or a Hugging Face GPT-2 folder.")
    var model: String
    @Option(help: "Tokenizer folder (vocab.json + merges.txt); default: found beside the model.")
    var tokenizer: String?
    @Option(help: "Address to bind (127.0.0.1: this machine only; 0.0.0.0: every interface).")
    var host = "127.0.0.1"
    @Option(help: "Port (0: any free port, printed on stderr).")
    var port = 8000
    @Option(help: "The model id clients name (default: the model path's last component).")
    var name: String?
    @Option(help: "Largest request body in bytes.")
    var maxBodyBytes = 1 << 20
    @Option(help: "Largest max_tokens a request may ask for.")
    var maxTokens = 512
    @Option(help: "Most requests queued or running at once; more get 429.")
    var maxConcurrent = 64
    @Option(help: "Most prompts generated together in one batch.")
    var maxBatch = 8

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535, got \(port)") }
        guard (1...(256 << 20)).contains(maxBodyBytes) else { throw ValidationError("--max-body-bytes must be from 1 to \(256 << 20), got \(maxBodyBytes)") }
        guard (1...(1 << 16)).contains(maxTokens) else { throw ValidationError("--max-tokens must be from 1 to 65536, got \(maxTokens)") }
        guard (1...4096).contains(maxConcurrent) else { throw ValidationError("--max-concurrent must be from 1 to 4096, got \(maxConcurrent)") }
        guard (1...256).contains(maxBatch) else { throw ValidationError("--max-batch must be from 1 to 256, got \(maxBatch)") }
    }

    func run() throws {
        var limits = ServeLimits()
        limits.maxBodyBytes = maxBodyBytes
        limits.maxNewTokens = maxTokens
        limits.maxConcurrent = maxConcurrent
        limits.maxBatchRows = maxBatch
        limits.maxPrompts = max(limits.maxPrompts, maxBatch)
        let (path, tokenizerPath) = (model, tokenizer)
        let id = name ?? URL(fileURLWithPath: model).lastPathComponent
        let engine = CompletionEngine(limits: limits) {
            let loaded = try ModelFiles.load(path)
            let tok = try ModelFiles.tokenizer(tokenizerPath, for: loaded)
            Console.note("loaded \(path): \(loaded.model.parameterCount) parameters, context \(loaded.model.config.nPositions)")
            return .init(model: loaded.model, tokenizer: tok, name: id)
        }
        let (host, port) = (host, port)
        let done = DispatchSemaphore(value: 0)
        let failure = ErrorBox()
        Task.detached {
            do {
                let app = CompletionServer.application(engine: engine, host: host, port: port) { bound in
                    Console.note("serving '\(id)' on http://\(host):\(bound) (POST /v1/completions, GET /v1/models, GET /health)")
                }
                // A model that fails to load ends the server with its error.
                let watcher = Task {
                    if case .failed(let m) = await engine.waitUntilLoaded() {
                        failure.set(ValidationError("cannot serve \(path): \(m)"))
                        done.signal()
                    }
                }
                try await app.runService()
                watcher.cancel()
            } catch {
                failure.set(error)
            }
            done.signal()
        }
        done.wait()
        engine.shutdown()
        if let e = failure.get() { throw e }
    }
}

/// One error handed from the server task to the command.
private final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var error: (any Error)?
    func set(_ e: any Error) { lock.lock(); if error == nil { error = e }; lock.unlock() }
    func get() -> (any Error)? { lock.lock(); defer { lock.unlock() }; return error }
}
