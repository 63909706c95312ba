import FactorlabAutograd
import FactorlabTensor
import Foundation

/// The dropout masks of one training forward pass, all derived from one key: each residual site
/// (the embeddings, and after each block's attention and MLP) and each layer's attention
/// probabilities get their own stream. With no key (evaluation, generation) nothing is dropped.
public struct DropoutSites: Sendable {
    public let key: UInt64?
    public let embedding: Float
    public let attention: Float
    public let residualP: Float

    /// No dropout.
    public static let none = DropoutSites(key: nil, embedding: 0, attention: 0, residual: 0)

    public init(key: UInt64?, embedding: Float, attention: Float, residual: Float) {
        self.key = key
        self.embedding = embedding
        self.attention = attention
        self.residualP = residual
    }

    /// The config's probabilities with a training key (nil: none).
    public init(_ config: GPT2Config, key: UInt64?) {
        self.init(key: key, embedding: config.embdDropout, attention: config.attnDropout, residual: config.residDropout)
    }

    static let embeddingSite = 0
    static func attentionSite(layer: Int) -> Int { 1 + 2 * layer }
    static func mlpSite(layer: Int) -> Int { 2 + 2 * layer }

    /// `x` with dropout of probability `p` (default: the residual probability) at `site`.
    func residual(_ x: Variable, site: Int, p: Float? = nil) -> Variable {
        let p = p ?? residualP
        guard let key, p > 0 else { return x }
        return x.dropout(p, key: SeededHash.bits(key: key, index: site))
    }

    /// The key of layer `layer`'s attention-probability mask (nil: no attention dropout).
    func attentionKey(layer: Int) -> UInt64? {
        guard let key, attention > 0 else { return nil }
        return SeededHash.derive(key, xor: 0xA77E_0000 &+ UInt64(layer))
    }
}

/// The parts of a forward pass the profiler reports (see ``ForwardTimer``).
public enum ForwardComponent: String, CaseIterable, Sendable {
    case embeddings
    case layerNorm = "layer_norm"
    case qkvProjection = "qkv_projection"
    case attentionCore = "attention_core"
    case outputProjection = "output_projection"
    case mlp
    case lmHead = "lm_head"
}

/// Wall time per component, added up over the forward passes it is handed to (the model's one
/// forward path measures its parts through it).
public final class ForwardTimer {
    public private(set) var seconds: [ForwardComponent: Double] = [:]

    public init() {}

    public func reset() { seconds = [:] }

    public func measure<T>(_ component: ForwardComponent, _ body: () throws -> T) rethrows -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { seconds[component, default: 0] += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        return try body()
    }
}

extension Optional where Wrapped == ForwardTimer {
    /// Runs `body`, timed when there is a timer.
    @inline(__always)
    func measure<T>(_ component: ForwardComponent, _ body: () throws -> T) rethrows -> T {
        guard let timer = self else { return try body() }
        return try timer.measure(component, body)
    }
}
