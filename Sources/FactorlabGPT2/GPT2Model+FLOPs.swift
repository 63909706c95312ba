import FactorlabLayers

/// Multiply-accumulate counts of a GPT-2 forward pass, by component, per token.
public struct GPT2Costs: Sendable, Equatable {
    /// Q, K, V projections (c_attn, any linear kind), all layers.
    public var qkv: Int
    /// Attention output projections (any linear kind), all layers.
    public var attentionProjection: Int
    /// Attention core: scores (Q K^T) and weighted values (P V), all layers, counted as full
    /// T x T squares (2 T C MACs per token per layer, the convention of Kaplan et al.). The blocked
    /// causal kernel multiplies only the blocks a query can see, about half of that at long T, so
    /// measured GFLOP/s of the core read high by up to 2x.
    public var attentionCore: Int
    /// MLP (c_fc and c_proj, any linear kind), all layers.
    public var mlp: Int
    /// Language-model head: V x C tied, R (V + C) factorized, or the untied head's kind.
    public var lmHead: Int
    /// Layer norms and embeddings are element-wise: counted as one operation per element.
    public var layerNorm: Int
    public var embeddings: Int

    /// All matrix MACs per token.
    public var totalMACs: Int { qkv + attentionProjection + attentionCore + mlp + lmHead }
    /// Forward FLOPs per token (2 per MAC, plus the element-wise work).
    public var forwardFLOPs: Double { 2 * Double(totalMACs) + Double(layerNorm + embeddings) }
    /// Training FLOPs per token: forward plus backward (twice the forward's matrix work).
    public var trainingFLOPs: Double { 6 * Double(totalMACs) + 3 * Double(layerNorm + embeddings) }
}

extension GPT2Model {
    /// Per-token costs at sequence length `seqLen`.
    public func costs(seqLen: Int) -> GPT2Costs {
        let c = config.nEmbd, l = config.nLayer
        func macs(_ sites: LinearSite...) -> Int { blocks.reduce(0) { sum, b in sum + sites.reduce(0) { $0 + b[$1].macsPerToken } } }
        // The factorized embedding's lookup is a row of A times B: R C per token.
        let lookup: Int
        if case .tiedLowRank(let r) = config.linear.head { lookup = r * c } else { lookup = 0 }
        return GPT2Costs(qkv: macs(.qkv), attentionProjection: macs(.attnProj), attentionCore: l * 2 * seqLen * c,
                         mlp: macs(.mlpFc, .mlpProj), lmHead: tokens.macsPerToken, layerNorm: (2 * l + 1) * 5 * c,
                         embeddings: 2 * c + 2 * lookup)
    }

    /// Parameters outside the token and position embeddings (Kaplan's N).
    public var nonEmbeddingParameterCount: Int {
        namedParameters.filter { !$0.0.hasPrefix("wte") && !$0.0.hasPrefix("wpe") }.reduce(0) { $0 + $1.1.count }
    }
}
