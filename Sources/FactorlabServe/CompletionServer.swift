import Foundation
import Hummingbird

/// `factorlab serve`: the HTTP side. Routes
/// - `POST /v1/completions`: OpenAI's completions API (``CompletionRequest``), answered by the
///   ``CompletionEngine``;
/// - `GET /v1/models`: the one model served;
/// - `GET /health`: 200 `{"status": "ok"}` once the model is loaded, 503 while it loads.
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
            let limit = engine.limits.maxBodyBytes
            if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
                return error(ServeError(413, "request body of \(length) bytes exceeds the limit of \(limit)"))
            }
            let buffer: ByteBuffer
            do {
                var r = request
                buffer = try await r.collectBody(upTo: limit)
            } catch let e as any HTTPResponseError where e.status == .contentTooLarge {
                return error(ServeError(413, "request body exceeds the limit of \(limit) bytes"))
            } catch {
                return CompletionServer.error(ServeError(400, "could not read the request body"))
            }
            let parsed: CompletionRequest
            do { parsed = try CompletionRequest.parse(Data(buffer.readableBytesView), limits: engine.limits) } catch let e as ServeError {
                return CompletionServer.error(e)
            } catch {
                return CompletionServer.error(ServeError(400, "\(error)"))
            }
            switch await engine.complete(parsed) {
            case .success(let body): return response(200, body)
            case .failure(let e): return CompletionServer.error(e)
            }
        }
        let app = Application(router: router,
                              configuration: .init(address: .hostname(host, port: port), serverName: "factorlab"),
                              onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) })
        return app
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
