import Foundation

/// A failed request: the HTTP status and the message of an OpenAI-style error body
/// (`{"error": {"message", "type", "param", "code"}}`).
public struct ServeError: Error, Sendable, CustomStringConvertible {
    public let status: Int
    public let message: String
    /// The request field at fault, when there is one.
    public let param: String?

    public init(_ status: Int, _ message: String, param: String? = nil) {
        self.status = status
        self.message = message
        self.param = param
    }

    public var description: String { "HTTP \(status): \(message)" }

    /// OpenAI's error types by status.
    var type: String {
        switch status {
        case 400, 404, 413: return "invalid_request_error"
        case 429: return "rate_limit_error"
        case 503: return "service_unavailable"
        default: return "server_error"
        }
    }

    public var body: Data {
        let object: [String: Any] = ["error": ["message": message, "type": type, "param": param.map { $0 as Any } ?? NSNull(), "code": NSNull()]]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    }
}

/// The server's limits. Every one is checked before anything is sized from a request.
public struct ServeLimits: Sendable {
    /// Largest request body, bytes (413 beyond).
    public var maxBodyBytes = 1 << 20
    /// Most tokens `max_tokens` may ask for (400 beyond); also bounded by the model's context.
    public var maxNewTokens = 512
    /// Most prompts in one request (`prompt` as a list).
    public var maxPrompts = 64
    /// Most requests queued or running at once (429 beyond).
    public var maxConcurrent = 64
    /// Most rows (prompts) one batched forward runs.
    public var maxBatchRows = 8
    /// Most `logprobs` alternatives per position (OpenAI's limit is 5).
    public var maxLogprobs = 5

    public init() {}
}

/// A validated `POST /v1/completions` body. Unknown fields are ignored (clients such as the
/// harness send extra ones); known fields of the wrong type or out of range are 400 errors that
/// name the field.
public struct CompletionRequest: Sendable, Equatable {
    public enum Prompt: Sendable, Equatable {
        case text(String)
        case tokens([Int32])
    }

    public var model: String?
    public var prompts: [Prompt]
    public var maxTokens: Int
    public var temperature: Float
    public var topP: Float
    public var stop: [String]
    public var seed: UInt64?
    /// Number of alternatives to return per position; nil: no log-probabilities.
    public var logprobs: Int?
    /// Return the prompt too, with its own tokens' log-probabilities when `logprobs` is set.
    public var echo: Bool

    public static func parse(_ body: Data, limits: ServeLimits) throws -> CompletionRequest {
        guard body.count <= limits.maxBodyBytes else {
            throw ServeError(413, "request body of \(body.count) bytes exceeds the limit of \(limits.maxBodyBytes)")
        }
        guard let root = try? JSONDecoder().decode(JSONValue.self, from: body) else {
            throw ServeError(400, "request body is not valid JSON")
        }
        guard case .object(let o) = root else { throw ServeError(400, "request body must be a JSON object") }

        func number(_ key: String) throws -> Double? {
            switch o[key] {
            case nil, .null?: return nil
            case .number(let d)?: return d
            default: throw ServeError(400, "'\(key)' must be a number", param: key)
            }
        }
        func integer(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
            guard let d = try number(key) else { return nil }
            guard d == d.rounded(), d >= Double(range.lowerBound), d <= Double(range.upperBound) else {
                throw ServeError(400, "'\(key)' must be an integer from \(range.lowerBound) to \(range.upperBound), got \(d)", param: key)
            }
            return Int(d)
        }

        var r = CompletionRequest(model: nil, prompts: [], maxTokens: 16, temperature: 1, topP: 1, stop: [], seed: nil,
                                  logprobs: nil, echo: false)
        switch o["model"] {
        case nil, .null?: break
        case .string(let s)?: r.model = s
        default: throw ServeError(400, "'model' must be a string", param: "model")
        }
        r.prompts = try prompts(o["prompt"], limits: limits)
        r.maxTokens = try integer("max_tokens", in: 0...limits.maxNewTokens) ?? 16
        if let t = try number("temperature") {
            guard (0...2).contains(t) else { throw ServeError(400, "'temperature' must be from 0 to 2, got \(t)", param: "temperature") }
            r.temperature = Float(t)
        }
        if let p = try number("top_p") {
            guard p > 0 && p <= 1 else { throw ServeError(400, "'top_p' must be in (0, 1], got \(p)", param: "top_p") }
            r.topP = Float(p)
        }
        if let n = try integer("n", in: 1...1_000_000), n != 1 {
            throw ServeError(400, "'n' must be 1 (one completion per prompt)", param: "n")
        }
        // Seeds up to 2^53 (exact in a JSON number read as a double).
        if let s = try integer("seed", in: -(1 << 53)...(1 << 53)) { r.seed = UInt64(bitPattern: Int64(s)) }
        r.logprobs = try integer("logprobs", in: 0...limits.maxLogprobs)
        switch o["echo"] {
        case nil, .null?: break
        case .bool(let b)?: r.echo = b
        default: throw ServeError(400, "'echo' must be true or false", param: "echo")
        }
        switch o["stop"] {
        case nil, .null?: break
        case .string(let one)?: r.stop = [one]
        case .array(let many)? where many.count <= 16:
            r.stop = try many.map {
                guard case .string(let s) = $0 else { throw ServeError(400, "'stop' must be a string or a list of up to 16 strings", param: "stop") }
                return s
            }
        default: throw ServeError(400, "'stop' must be a string or a list of up to 16 strings", param: "stop")
        }
        guard r.stop.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 256 }) else {
            throw ServeError(400, "'stop' strings must be 1 to 256 bytes", param: "stop")
        }
        if r.maxTokens == 0 && !r.echo {
            throw ServeError(400, "'max_tokens' is 0 and 'echo' is false: nothing to return", param: "max_tokens")
        }
        return r
    }

    /// `prompt`: a string, a list of strings, a list of token ids, or a list of lists of token ids.
    static func prompts(_ value: JSONValue?, limits: ServeLimits) throws -> [Prompt] {
        let expected = "'prompt' must be a string, a list of strings, a list of token ids or a list of lists of token ids"
        func ids(_ list: [JSONValue]) throws -> [Int32] {
            try list.map {
                guard case .number(let d) = $0 else { throw ServeError(400, expected, param: "prompt") }
                guard d == d.rounded(), d >= 0, d <= Double(Int32.max) else {
                    throw ServeError(400, "'prompt' token ids must be integers from 0 to \(Int32.max), got \(d)", param: "prompt")
                }
                return Int32(d)
            }
        }
        var out: [Prompt]
        switch value {
        case nil, .null?: throw ServeError(400, "'prompt' is required", param: "prompt")
        case .string(let s)?: out = [.text(s)]
        case .array(let list)?:
            guard let first = list.first else { throw ServeError(400, "'prompt' is an empty list", param: "prompt") }
            switch first {
            case .string:
                out = try list.map {
                    guard case .string(let s) = $0 else { throw ServeError(400, expected, param: "prompt") }
                    return .text(s)
                }
            case .number: out = [.tokens(try ids(list))]
            case .array:
                out = try list.map {
                    guard case .array(let inner) = $0 else { throw ServeError(400, expected, param: "prompt") }
                    return .tokens(try ids(inner))
                }
            default: throw ServeError(400, expected, param: "prompt")
            }
        default: throw ServeError(400, expected, param: "prompt")
        }
        guard out.count <= limits.maxPrompts else {
            throw ServeError(400, "'prompt' holds \(out.count) prompts; at most \(limits.maxPrompts) per request", param: "prompt")
        }
        return out
    }
}

/// The body of `/tokenize` and `/detokenize`: a JSON object.
enum TokenizerRequest {
    static func object(_ body: Data) throws -> [String: JSONValue] {
        guard let v = try? JSONDecoder().decode(JSONValue.self, from: body) else { throw ServeError(400, "request body is not valid JSON") }
        guard case .object(let o) = v else { throw ServeError(400, "request body must be a JSON object") }
        return o
    }
}

/// Any JSON value, decoded with its exact type (a number is never read as a boolean).
enum JSONValue: Decodable, Equatable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let d = try? c.decode(Double.self) { self = .number(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSONValue].self) { self = .array(a); return }
        self = .object(try c.decode([String: JSONValue].self))
    }
}
