import FactorlabAutograd
import FactorlabLayers
import FactorlabTensor
import Foundation

/// One transformer block: pre-LayerNorm attention and MLP, each added to the residual stream.
public final class GPT2Block {
    public let ln1: LayerNorm
    /// Packed query/key/value projection, [3C, C].
    public let cAttn: DenseLinear
    /// Attention output projection, [C, C] (a residual projection: scaled init).
    public let attnProj: DenseLinear
    public let ln2: LayerNorm
    /// MLP up projection C -> nInner, any linear kind.
    public let cFc: LinearLayer
    /// MLP down projection nInner -> C, any linear kind (a residual projection: scaled init).
    public let mlpProj: LinearLayer
    let heads: Int

    init(_ config: GPT2Config, layer: Int, rng: inout RandomGenerator) throws {
        let c = config.nEmbd
        let residualStd = 0.02 / Float(2 * config.nLayer).squareRoot()
        ln1 = LayerNorm(c, eps: config.layerNormEpsilon)
        cAttn = DenseLinear(inFeatures: c, outFeatures: 3 * c, std: 0.02, rng: &rng)
        attnProj = DenseLinear(inFeatures: c, outFeatures: c, std: residualStd, rng: &rng)
        ln2 = LayerNorm(c, eps: config.layerNormEpsilon)
        do {
            cFc = try makeLinear(config.mlp[layer], inFeatures: c, outFeatures: config.nInner, std: 0.02, rng: &rng)
            mlpProj = try makeLinear(config.mlp[layer], inFeatures: config.nInner, outFeatures: c, std: residualStd, rng: &rng)
        } catch let e as LayerError {
            throw GPT2Error.config("layer \(layer) MLP: \(e)")
        }
        heads = config.nHead
    }

    /// Parameters with names relative to the block (`ln_1.weight`, `mlp.c_fc.monarch.blkdiag1`, ...).
    var namedParameters: [(String, Parameter)] {
        var out: [(String, Parameter)] = []
        out.append(("ln_1.weight", ln1.weight)); out.append(("ln_1.bias", ln1.bias))
        out.append(("attn.c_attn.weight", cAttn.weight)); out.append(("attn.c_attn.bias", cAttn.bias!))
        out.append(("attn.c_proj.weight", attnProj.weight)); out.append(("attn.c_proj.bias", attnProj.bias!))
        out.append(("ln_2.weight", ln2.weight)); out.append(("ln_2.bias", ln2.bias))
        for (prefix, layer) in [("mlp.c_fc", cFc), ("mlp.c_proj", mlpProj)] {
            for p in layer.parameters { out.append(("\(prefix).\(localName(p, in: layer))", p)) }
        }
        return out
    }

    /// The name of a parameter inside its linear layer (`weight`, `bias`, `monarch.blkdiag1`, ...).
    func localName(_ p: Parameter, in layer: LinearLayer) -> String {
        if p === layer.bias { return "bias" }
        switch layer {
        case let l as DenseLinear where p === l.weight: return "weight"
        case let l as LowRankLinear: return p === l.u ? "lowrank.u" : "lowrank.v"
        case let l as MonarchLinear: return p === l.blkdiag1 ? "monarch.blkdiag1" : "monarch.blkdiag2"
        case is ButterflyLinear: return "butterfly.twiddle"
        default: return "weight"
        }
    }

    func callAsFunction(_ x: Variable, dropout: (Variable, Float, Int) -> Variable, attentionKey: UInt64?,
                        config: GPT2Config, site: Int) throws -> Variable {
        let qkv = try cAttn(try ln1(x))
        let attended = try Variable.causalSelfAttention(qkv, heads: heads, dropout: attentionKey == nil ? 0 : config.attnDropout,
                                                        key: attentionKey ?? 0)
        var h = try x + dropout(try attnProj(attended), config.residDropout, site)
        let m = try mlpProj(try cFc(try ln2(h)).gelu())
        h = try h + dropout(m, config.residDropout, site + 1)
        return h
    }
}

/// GPT-2 (Radford et al. 2019) with a configurable linear kind in each MLP: token and position
/// embeddings, pre-LayerNorm blocks, a final LayerNorm, and a language-model head tied to the
/// token embedding; optionally a sequence-classification head as in transformers'
/// `GPT2ForSequenceClassification`.
///
/// Shapes: ids [B*T] (row-major [B, T]); hidden states [B, T, C]; logits [B, T, V].
public final class GPT2Model {
    public let config: GPT2Config
    /// Token embedding [V, C], also the language-model head (tied).
    public let wte: Embedding
    /// Position embedding [nPositions, C].
    public let wpe: Embedding
    public let blocks: [GPT2Block]
    public let lnF: LayerNorm
    /// Classification head [numLabels, C] without bias, present when `config.numLabels > 0`.
    public let score: DenseLinear?

    /// A randomly initialised model: weights N(0, 0.02^2), residual projections (attn.c_proj,
    /// mlp.c_proj) N(0, (0.02 / sqrt(2 n_layer))^2), biases 0, LayerNorms (1, 0); structured MLP
    /// layers scale their factors to match the dense output variance (see each layer).
    public init(_ config: GPT2Config, seed: UInt64 = 0) throws {
        try config.validate()
        self.config = config
        var rng = RandomGenerator(seed: seed)
        wte = Embedding(config.vocabSize, config.nEmbd, std: 0.02, rng: &rng)
        wpe = Embedding(config.nPositions, config.nEmbd, std: 0.02, rng: &rng)
        var blocks: [GPT2Block] = []
        for l in 0..<config.nLayer { blocks.append(try GPT2Block(config, layer: l, rng: &rng)) }
        self.blocks = blocks
        lnF = LayerNorm(config.nEmbd, eps: config.layerNormEpsilon)
        score = config.numLabels > 0
            ? DenseLinear(inFeatures: config.nEmbd, outFeatures: config.numLabels, bias: false, std: 0.02, rng: &rng) : nil
        for (name, p) in namedParameters { p.name = name }
    }

    /// Every parameter with its Hugging Face-style name (`wte.weight`, `h.3.attn.c_attn.weight`,
    /// `h.3.mlp.c_fc.monarch.blkdiag1`, `ln_f.weight`, `score.weight`), in a fixed order.
    /// Linear weights are stored [out, in] (torch.nn.Linear orientation; Hugging Face's Conv1D
    /// files hold the transpose, converted on import and export).
    public var namedParameters: [(String, Parameter)] {
        var out: [(String, Parameter)] = [("wte.weight", wte.weight), ("wpe.weight", wpe.weight)]
        for (i, b) in blocks.enumerated() { out += b.namedParameters.map { ("h.\(i).\($0.0)", $0.1) } }
        out += [("ln_f.weight", lnF.weight), ("ln_f.bias", lnF.bias)]
        if let s = score { out.append(("score.weight", s.weight)) }
        return out
    }

    public var parameters: [Parameter] { namedParameters.map(\.1) }

    /// Number of parameters (the tied head counted once).
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// Checks ids against the batch shape, context and vocabulary.
    func checkInput(_ ids: [Int32], batch: Int, seqLen: Int) throws {
        guard batch >= 1, seqLen >= 1, ids.count == batch * seqLen else {
            throw GPT2Error.input("GPT-2 input: \(ids.count) token ids do not form a batch of \(batch) x \(seqLen)")
        }
        guard seqLen <= config.nPositions else {
            throw GPT2Error.input("GPT-2 input: sequence length \(seqLen) exceeds the model's context of \(config.nPositions) positions")
        }
        if let bad = ids.firstIndex(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
            throw GPT2Error.input("GPT-2 input: token id \(ids[bad]) at position \(bad) is outside the vocabulary of \(config.vocabSize)")
        }
    }

    /// Final hidden states [B, T, C] (after ln_f). With a `dropoutKey`, dropout is applied with
    /// masks derived from the key (training); without, the model is deterministic (evaluation).
    public func hidden(_ ids: [Int32], batch: Int, seqLen: Int, dropoutKey: UInt64? = nil) throws -> Variable {
        try checkInput(ids, batch: batch, seqLen: seqLen)
        let dropout: (Variable, Float, Int) -> Variable = { x, p, site in
            guard let key = dropoutKey, p > 0 else { return x }
            return x.dropout(p, key: RandomGenerator.mix(key &+ UInt64(site) &* 0x9E37_79B9_7F4A_7C15))
        }
        let tok = try wte(ids, shape: [batch, seqLen])
        let pos = try wpe.weight.variable.slice(axis: 0, 0..<seqLen)
        var x = dropout(try tok + pos, config.embdDropout, 0)
        for (i, block) in blocks.enumerated() {
            let attentionKey = dropoutKey.map { RandomGenerator.mix($0 ^ (0xA77E_0000 &+ UInt64(i))) }
            x = try block(x, dropout: dropout, attentionKey: attentionKey, config: config, site: 1 + 2 * i)
        }
        return try lnF(x)
    }

    /// Language-model logits [B, T, V] through the tied head.
    public func logits(_ ids: [Int32], batch: Int, seqLen: Int, dropoutKey: UInt64? = nil) throws -> Variable {
        let h = try hidden(ids, batch: batch, seqLen: seqLen, dropoutKey: dropoutKey)
        return try Variable.linear(h, weight: wte.weight.variable, bias: nil)
    }

    /// Mean next-token cross-entropy; `targets` has one id per input position (-100 to ignore).
    public func loss(_ ids: [Int32], targets: [Int32], batch: Int, seqLen: Int, dropoutKey: UInt64? = nil) throws -> Variable {
        guard targets.count == ids.count else {
            throw GPT2Error.input("GPT-2 loss: \(targets.count) targets for \(ids.count) inputs")
        }
        // The tied head and the loss fused: the [B*T, V] logits become their own gradient in place.
        let h = try hidden(ids, batch: batch, seqLen: seqLen, dropoutKey: dropoutKey)
        return try Variable.linearCrossEntropy(h, weight: wte.weight.variable, targets: targets)
    }

    /// Index in each row of its last non-padding token (the last token when there is no pad id),
    /// as transformers' GPT2ForSequenceClassification picks it.
    public func lastTokenIndices(_ ids: [Int32], batch: Int, seqLen: Int) -> [Int] {
        (0..<batch).map { b in
            guard let pad = config.padTokenID else { return seqLen - 1 }
            var last = -1
            for t in 0..<seqLen where ids[b * seqLen + t] != pad { last = t }
            return last < 0 ? seqLen - 1 : last
        }
    }

    /// Classification logits [B, numLabels] (or regression scores [B, 1]) from the hidden state
    /// of each row's last non-padding token.
    public func classify(_ ids: [Int32], batch: Int, seqLen: Int, dropoutKey: UInt64? = nil) throws -> Variable {
        guard let score else { throw GPT2Error.config("this model has no classification head (num_labels is 0)") }
        let h = try hidden(ids, batch: batch, seqLen: seqLen, dropoutKey: dropoutKey)
        let rows = lastTokenIndices(ids, batch: batch, seqLen: seqLen).enumerated().map { Int32($0.offset * seqLen + $0.element) }
        let picked = try Variable.embedding(try h.reshaped([batch * seqLen, config.nEmbd]), ids: rows)
        return try score(picked)
    }
}
