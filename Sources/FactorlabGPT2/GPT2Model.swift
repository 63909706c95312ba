import FactorlabAutograd
import FactorlabLayers
import FactorlabTensor
import Foundation

/// One transformer block: pre-LayerNorm attention and MLP, each added to the residual stream.
/// Each of its four linear layers can be of any kind (``LinearSite``).
public final class GPT2Block {
    public let ln1: LayerNorm
    /// Packed query/key/value projection, C -> 3C.
    public internal(set) var cAttn: LinearLayer
    /// Attention output projection, C -> C (a residual projection: scaled init).
    public internal(set) var attnProj: LinearLayer
    public let ln2: LayerNorm
    /// MLP up projection C -> nInner.
    public internal(set) var cFc: LinearLayer
    /// MLP down projection nInner -> C (a residual projection: scaled init).
    public internal(set) var mlpProj: LinearLayer
    let heads: Int

    init(_ config: GPT2Config, layer: Int, weights: inout WeightInit) throws {
        let c = config.nEmbd
        let residualStd = 0.02 / Float(2 * config.nLayer).squareRoot()
        func make(_ site: LinearSite, std: Float) throws -> LinearLayer {
            let (n, m) = site.sizes(width: c, inner: config.nInner)
            do { return try makeLinear(config.linear[site][layer], inFeatures: n, outFeatures: m, std: std, weights: &weights) } catch let e as LayerError {
                throw GPT2Error.config("layer \(layer) \(site.rawValue) (\(n) -> \(m)): \(e.message)")
            }
        }
        ln1 = LayerNorm(c, eps: config.layerNormEpsilon)
        cAttn = try make(.qkv, std: 0.02)
        attnProj = try make(.attnProj, std: residualStd)
        ln2 = LayerNorm(c, eps: config.layerNormEpsilon)
        cFc = try make(.mlpFc, std: 0.02)
        mlpProj = try make(.mlpProj, std: residualStd)
        heads = config.nHead
    }

    /// The layer at `site`.
    public subscript(site: LinearSite) -> LinearLayer {
        switch site {
        case .qkv: return cAttn
        case .attnProj: return attnProj
        case .mlpFc: return cFc
        case .mlpProj: return mlpProj
        }
    }

    func replace(_ site: LinearSite, with layer: LinearLayer) {
        switch site {
        case .qkv: cAttn = layer
        case .attnProj: attnProj = layer
        case .mlpFc: cFc = layer
        case .mlpProj: mlpProj = layer
        }
    }

    /// Parameters named under `prefix` (`h.3` gives `h.3.ln_1.weight`, `h.3.mlp.c_fc.monarch.blkdiag1`, ...).
    func namedParameters(prefix: String) -> [(String, Parameter)] {
        ln1.namedParameters(prefix: "\(prefix).ln_1") + cAttn.namedParameters(prefix: "\(prefix).attn.c_attn")
            + attnProj.namedParameters(prefix: "\(prefix).attn.c_proj") + ln2.namedParameters(prefix: "\(prefix).ln_2")
            + cFc.namedParameters(prefix: "\(prefix).mlp.c_fc") + mlpProj.namedParameters(prefix: "\(prefix).mlp.c_proj")
    }

    /// The block on x [B, T, C]. Training and evaluation attend over the sequence itself; with a
    /// `cache`, the new positions also attend over the cached ones and their keys and values are
    /// appended (generation). Dropout applies only with a training key in `dropout`.
    func callAsFunction(_ x: Variable, layer: Int, dropout: DropoutSites, cache: KVCache.Binding?,
                        timer: ForwardTimer?) throws -> Variable {
        let normed = try timer.measure(.layerNorm) { try ln1(x) }
        let qkv = try timer.measure(.qkvProjection) { try cAttn(normed) }
        let attended = try timer.measure(.attentionCore) { () throws -> Variable in
            if let cache { return Variable(try cache.attend(qkv.value, layer: layer, heads: heads)) }
            let key = dropout.attentionKey(layer: layer)
            return try Variable.causalSelfAttention(qkv, heads: heads, dropout: key == nil ? 0 : dropout.attention, key: key ?? 0)
        }
        let projected = try timer.measure(.outputProjection) { try attnProj(attended) }
        var h = try x + dropout.residual(projected, site: DropoutSites.attentionSite(layer: layer))
        let normed2 = try timer.measure(.layerNorm) { try ln2(h) }
        let m = try timer.measure(.mlp) { try mlpProj(try cFc(normed2).gelu()) }
        h = try h + dropout.residual(m, site: DropoutSites.mlpSite(layer: layer))
        return h
    }
}

/// GPT-2 (Radford et al. 2019) with a configurable linear kind in every linear layer
/// (``LinearPlan``): token and position embeddings, pre-LayerNorm blocks, a final LayerNorm, and
/// a language-model head (tied to the token embedding, factorized, or untied: ``HeadKind``);
/// optionally a sequence-classification head as in transformers' `GPT2ForSequenceClassification`.
///
/// Shapes: ids [B*T] (row-major [B, T]); hidden states [B, T, C]; logits [B, T, V].
///
/// There is one forward path, ``forward(_:batch:seqLen:dropout:cache:timer:)``: training,
/// evaluation, KV-cache generation (`Generation.swift`) and the profiler all run it.
public final class GPT2Model {
    public private(set) var config: GPT2Config
    /// The token embedding and the language-model head.
    public private(set) var tokens: TokenEmbedding
    /// The dense token embedding [V, C] (also the head when tied); nil when it is factorized.
    public var wte: Embedding? { tokens.table }
    /// Position embedding [nPositions, C].
    public let wpe: Embedding
    public let blocks: [GPT2Block]
    public let lnF: LayerNorm
    /// Classification head [numLabels, C] without bias, present when `config.numLabels > 0`.
    public let score: DenseLinear?

    /// A randomly initialised model: weights N(0, 0.02^2), residual projections (attn.c_proj,
    /// mlp.c_proj) N(0, (0.02 / sqrt(2 n_layer))^2), biases 0, LayerNorms (1, 0); structured MLP
    /// layers scale their factors to match the dense output variance (see each layer).
    public convenience init(_ config: GPT2Config, seed: UInt64 = 0) throws {
        var weights = WeightInit.random(RandomGenerator(seed: seed))
        try self.init(config, weights: &weights)
    }

    /// A model whose parameters have the config's names and shapes, with storage allocated but
    /// not filled and no random number drawn: for weights about to be read from a file.
    public static func shapeOnly(_ config: GPT2Config) throws -> GPT2Model {
        var weights = WeightInit.shapeOnly
        return try GPT2Model(config, weights: &weights)
    }

    init(_ config: GPT2Config, weights: inout WeightInit) throws {
        try config.validate()
        try config.checkFitsInMemory(training: false)
        self.config = config
        tokens = TokenEmbedding(config.linear.head, vocabSize: config.vocabSize, width: config.nEmbd, weights: &weights)
        wpe = Embedding(config.nPositions, config.nEmbd, std: 0.02, weights: &weights)
        var blocks: [GPT2Block] = []
        for l in 0..<config.nLayer { blocks.append(try GPT2Block(config, layer: l, weights: &weights)) }
        self.blocks = blocks
        try tokens.makeHead(weights: &weights)
        lnF = LayerNorm(config.nEmbd, eps: config.layerNormEpsilon)
        score = config.numLabels > 0
            ? DenseLinear(inFeatures: config.nEmbd, outFeatures: config.numLabels, bias: false, std: 0.02, weights: &weights) : nil
        nameParameters()
    }

    func nameParameters() {
        for (name, p) in namedParameters { p.name = name }
    }

    /// Every parameter with its Hugging Face-style name (`wte.weight`, `h.3.attn.c_attn.weight`,
    /// `h.3.mlp.c_fc.monarch.blkdiag1`, `ln_f.weight`, `lm_head.weight` when untied,
    /// `score.weight`), in a fixed order.
    /// Linear weights are stored [out, in] (torch.nn.Linear orientation; Hugging Face's Conv1D
    /// files hold the transpose, converted on import and export).
    public var namedParameters: [(String, Parameter)] {
        var out = tokens.embeddingParameters + wpe.namedParameters(prefix: "wpe")
        for (i, b) in blocks.enumerated() { out += b.namedParameters(prefix: "h.\(i)") }
        out += lnF.namedParameters(prefix: "ln_f") + tokens.headParameters
        if let s = score { out += s.namedParameters(prefix: "score") }
        return out
    }

    public var parameters: [Parameter] { namedParameters.map(\.1) }

    /// Number of parameters (the tied head counted once).
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    /// Learning-rate multipliers by parameter name under `rule`, for every parameter of a
    /// structured layer (block sites and an untied head); parameters not listed get 1.
    public func learningRateMultipliers(_ rule: StructuredLRRule) -> [String: Float] {
        var out: [String: Float] = [:]
        var layers: [(String, LinearLayer)] = []
        for (i, b) in blocks.enumerated() { for s in LinearSite.allCases { layers.append(("h.\(i).\(s.rawValue)", b[s])) } }
        if let head = tokens.head { layers.append(("lm_head", head)) }
        for (prefix, layer) in layers {
            for ((name, _), m) in zip(layer.namedParameters(prefix: prefix), rule.multipliers(layer)) where m != 1 { out[name] = m }
        }
        return out
    }

    /// Replaces the token embedding and head (a projection of the head): the config records the
    /// new kind and the parameters take their names.
    public func setTokens(_ new: TokenEmbedding) throws {
        guard new.vocabSize == config.vocabSize, new.width == config.nEmbd else {
            throw GPT2Error.config("head \(new.kind): \(new.vocabSize) x \(new.width) does not fit the model's vocabulary \(config.vocabSize) x \(config.nEmbd)")
        }
        tokens = new
        config.linear.head = new.kind
        nameParameters()
    }

    /// Replaces layer `layer`'s MLP projections in place (an accelerator applied to a trained
    /// model): the config records the new kind and the new parameters take their names.
    public func replaceMLP(layer: Int, fc: LinearLayer, proj: LinearLayer) throws {
        try replace(.mlpFc, layer: layer, with: fc)
        try replace(.mlpProj, layer: layer, with: proj)
    }

    /// Replaces the layer at `site` of block `layer` in place; the replacement must have the
    /// site's sizes. The config records its kind and its parameters take their names.
    public func replace(_ site: LinearSite, layer: Int, with new: LinearLayer) throws {
        guard blocks.indices.contains(layer) else {
            throw GPT2Error.config("layer \(layer) is outside 0-\(blocks.count - 1)")
        }
        let (n, m) = site.sizes(width: config.nEmbd, inner: config.nInner)
        guard new.inFeatures == n, new.outFeatures == m else {
            throw GPT2Error.config("layer \(layer) \(site.rawValue): the replacement \(new.kind) \(new.inFeatures)->\(new.outFeatures) does not fit \(n)->\(m)")
        }
        blocks[layer].replace(site, with: new)
        config.linear[site][layer] = new.kind
        nameParameters()
    }

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

    /// The residual stream after the last block, [B, T, C] (before ln_f): the one forward path.
    ///
    /// - `dropout`: masks from a training key (``DropoutSites/none`` for evaluation).
    /// - `cache`: positions continue those in a KV cache, whose keys and values are appended
    ///   (generation; each row at its own position). Without one, positions start at 0.
    /// - `timer`: adds each component's time (the profiler).
    public func forward(_ ids: [Int32], batch: Int, seqLen: Int, dropout: DropoutSites = .none,
                        cache: KVCache.Binding? = nil, timer: ForwardTimer? = nil) throws -> Variable {
        try checkInput(ids, batch: batch, seqLen: seqLen)
        var x = try timer.measure(.embeddings) { () throws -> Variable in
            let tok = try tokens.embed(ids, shape: [batch, seqLen])
            guard let cache else { return try tok + wpe.weight.variable.slice(axis: 0, 0..<seqLen) }
            return try tok + wpe(try cache.positionIDs(seqLen: seqLen, context: config.nPositions), shape: [batch, seqLen])
        }
        x = dropout.residual(x, site: DropoutSites.embeddingSite, p: dropout.embedding)
        for (i, block) in blocks.enumerated() {
            x = try block(x, layer: i, dropout: dropout, cache: cache, timer: timer)
        }
        return x
    }

    /// Final hidden states [B, T, C] (after ln_f). With a `dropoutKey`, dropout is applied with
    /// masks derived from the key (training); without, the model is deterministic (evaluation).
    public func hidden(_ ids: [Int32], batch: Int, seqLen: Int, dropoutKey: UInt64? = nil) throws -> Variable {
        let x = try forward(ids, batch: batch, seqLen: seqLen, dropout: DropoutSites(config, key: dropoutKey))
        return try lnF(x)
    }

    /// Language-model logits [B, T, V] through the head.
    public func logits(_ ids: [Int32], batch: Int, seqLen: Int, dropoutKey: UInt64? = nil, timer: ForwardTimer? = nil) throws -> Variable {
        let x = try forward(ids, batch: batch, seqLen: seqLen, dropout: DropoutSites(config, key: dropoutKey), timer: timer)
        let h = try timer.measure(.layerNorm) { try lnF(x) }
        return try timer.measure(.lmHead) { try tokens.logits(h) }
    }

    /// Logits [..., V] of final hidden states (after ln_f) [..., C] through the head.
    public func headLogits(_ h: Variable) throws -> Variable { try tokens.logits(h) }

    /// Mean next-token cross-entropy; `targets` has one id per input position (-100 to ignore).
    public func loss(_ ids: [Int32], targets: [Int32], batch: Int, seqLen: Int, dropoutKey: UInt64? = nil) throws -> Variable {
        guard targets.count == ids.count else {
            throw GPT2Error.input("GPT-2 loss: \(targets.count) targets for \(ids.count) inputs")
        }
        // The head and the loss fused: the [B*T, V] logits become their own gradient in place.
        let h = try hidden(ids, batch: batch, seqLen: seqLen, dropoutKey: dropoutKey)
        return try tokens.loss(h, targets: targets)
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
