import Foundation
import Hummingbird

/// `factorlab serve`: the HTTP side. Routes
/// - `POST /v1/completions`: OpenAI's completions API (``CompletionRequest``), answered by the
///   ``CompletionEngine``;
/// - `GET /v1/models`: the one model served;
/// - `GET /health`: 200 `{"status": "ok"}` once the model is loaded, 503 while it loads;
/// - `GET /tokenizer_info`, `POST /tokenize`, `POST /detokenize`: the tokenizer, as vLLM serves it.
///
/// Every error is a JSON body `{"error": {...}}` with its status: 400 for malformed or
/// out-of-range fields, 404 for another model's name or an unknown path, 413 for a body over the
/// limit, 429 when `maxConcurrent` requests are already queued or running, 503 while loading.
/// No field of a request names a file.
public enum CompletionServer {
    /// The application, bound to `host:port` (port 0: any free port, reported by `onRunning`).
    public static func application(engine: CompletionEngine, host: String = "127.0.0.1", port: Int = 8000,
                                   onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let router = Router()
        router.get("/health") { _, _ -> Response in
            switch engine.state {
            case .ready: return json(200, ["status": "ok"])
            case .loading: return json(503, ["status": "loading"])
            case .failed(let m): return json(503, ["status": "failed", "error": m])
            }
        }
        router.get("/v1/models") { _, _ -> Response in
            guard case .ready(let name, let context) = engine.state else { return error(ServeError(503, "the model is still loading")) }
            return json(200, ["object": "list",
                              "data": [["id": name, "object": "model", "owned_by": "factorlab", "created": 0, "max_model_len": context]]])
        }
        router.post("/v1/completions") { request, _ -> Response in
            let parsed: CompletionRequest
            do { parsed = try CompletionRequest.parse(try await body(request, engine.limits), limits: engine.limits) } catch let e as ServeError {
                return CompletionServer.error(e)
            } catch {
                return CompletionServer.error(ServeError(400, "\(error)"))
            }
            switch await engine.complete(parsed) {
            case .success(let body): return response(200, body)
            case .failure(let e): return CompletionServer.error(e)
            }
        }
        // The tokenizer, as vLLM serves it (lm-evaluation-harness's `tokenizer_backend=remote`).
        router.get("/tokenizer_info") { _, _ -> Response in
            guard case .ready(_, let context) = engine.state else { return error(ServeError(503, "the model is still loading")) }
            return json(200, ["eos_token": "<|endoftext|>", "bos_token": "<|endoftext|>", "pad_token": NSNull(),
                              "tokenizer_class": "GPT2Tokenizer", "model_max_length": context])
        }
        router.post("/tokenize") { request, _ -> Response in
            do {
                guard let tok = engine.tokenizer, case .ready(_, let context) = engine.state else { throw ServeError(503, "the model is still loading") }
                let o = try TokenizerRequest.object(try await body(request, engine.limits))
                guard case .string(let text)? = o["prompt"] else { throw ServeError(400, "'prompt' must be a string", param: "prompt") }
                let ids = tok.encode(text, allowSpecial: true)
                return json(200, ["tokens": ids.map(Int.init), "count": ids.count, "max_model_len": context])
            } catch let e as ServeError { return CompletionServer.error(e) } catch { return CompletionServer.error(ServeError(400, "\(error)")) }
        }
        router.post("/detokenize") { request, _ -> Response in
            do {
                guard let tok = engine.tokenizer else { throw ServeError(503, "the model is still loading") }
                let o = try TokenizerRequest.object(try await body(request, engine.limits))
                guard case .array(let list)? = o["tokens"] else { throw ServeError(400, "'tokens' must be a list of token ids", param: "tokens") }
                let ids = try list.map { v -> Int32 in
                    guard case .number(let d) = v, d == d.rounded(), d >= 0, d < Double(tok.vocabularySize) else {
                        throw ServeError(400, "'tokens' must be token ids from 0 to \(tok.vocabularySize - 1)", param: "tokens")
                    }
                    return Int32(d)
                }
                return json(200, ["prompt": (try? tok.decode(ids)) ?? ""])
            } catch let e as ServeError { return CompletionServer.error(e) } catch { return CompletionServer.error(ServeError(400, "\(error)")) }
        }
        let app = Application(router: router,
                              configuration: .init(address: .hostname(host, port: port), serverName: "factorlab"),
                              onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) })
        return app
    }

    /// A request's body, at most `limits.maxBodyBytes` (413 beyond, before and while reading).
    static func body(_ request: Request, _ limits: ServeLimits) async throws -> Data {
        let limit = limits.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            throw ServeError(413, "request body of \(length) bytes exceeds the limit of \(limit)")
        }
        do {
            var r = request
            return Data(try await r.collectBody(upTo: limit).readableBytesView)
        } catch let e as any HTTPResponseError where e.status == .contentTooLarge {
            throw ServeError(413, "request body exceeds the limit of \(limit) bytes")
        } catch {
            throw ServeError(400, "could not read the request body")
        }
    }

    static func json(_ status: Int, _ object: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return response(status, data)
    }

    static func error(_ e: ServeError) -> Response { response(e.status, e.body) }

    static func response(_ status: Int, _ data: Data) -> Response {
        Response(status: HTTPResponse.Status(code: status), headers: [.contentType: "application/json"],
                 body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
