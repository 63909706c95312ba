import FactorlabLayers

/// Multiply-accumulate counts of a GPT-2 forward pass, by component, per token.
public struct GPT2Costs: Sendable, Equatable {
    /// Q, K, V projections (c_attn), all layers.
    public var qkv: Int
    /// Attention output projections, all layers.
    public var attentionProjection: Int
    /// Attention core: scores (Q K^T) and weighted values (P V), all layers, counted as full
    /// T x T squares (2 T C MACs per token per layer, the convention of Kaplan et al.). The blocked
    /// causal kernel multiplies only the blocks a query can see, about half of that at long T, so
    /// measured GFLOP/s of the core read high by up to 2x.
    public var attentionCore: Int
    /// MLP (c_fc and c_proj, any linear kind), all layers.
    public var mlp: Int
    /// Language-model head (tied embedding), V x C.
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
        return GPT2Costs(qkv: l * 3 * c * c, attentionProjection: l * c * c, attentionCore: l * 2 * seqLen * c,
                         mlp: blocks.reduce(0) { $0 + $1.cFc.macsPerToken + $1.mlpProj.macsPerToken },
                         lmHead: config.vocabSize * c, layerNorm: (2 * l + 1) * 5 * c, embeddings: 2 * c)
    }

    /// Parameters outside the token and position embeddings (Kaplan's N).
    public var nonEmbeddingParameterCount: Int {
        namedParameters.filter { !$0.0.hasPrefix("wte") && !$0.0.hasPrefix("wpe") }.reduce(0) { $0 + $1.1.value.count }
    }
}
