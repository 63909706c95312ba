import FactorlabAutograd
import FactorlabLayers
import FactorlabTensor

/// The token embedding and the language-model head of a GPT-2 model, in one of the
/// ``HeadKind``s: tied dense (GPT-2), a factorized embedding tied both ways (E = A B), or a dense
/// embedding with an untied head of any linear kind.
///
/// Parameter names: `wte.weight` (dense table); `wte.lowrank.a` [V, R] and `wte.lowrank.b`
/// [R, C] (factorized); `lm_head.weight` or `lm_head.<factor>` (untied head, no bias).
public final class TokenEmbedding {
    public let kind: HeadKind
    /// The dense table E [V, C]: present for the tied and untied kinds.
    public let table: Embedding?
    /// The factorized embedding's A [V, R] and B [R, C] (E = A B).
    public let factorA: Parameter?, factorB: Parameter?
    /// The untied head, C -> V without bias.
    public internal(set) var head: LinearLayer?
    let vocabSize: Int, width: Int

    /// Dense tables N(0, 0.02^2) as in GPT-2; the factorized embedding draws A and B with equal
    /// scales so that entries of E = A B have the same variance (R a^2 b^2 = 0.02^2); an untied
    /// head is initialised like a dense layer with std 0.02 (structured kinds match its output
    /// variance), after the blocks, so a tied model's random stream is unchanged.
    init(_ kind: HeadKind, vocabSize: Int, width: Int, weights: inout WeightInit) {
        self.kind = kind
        self.vocabSize = vocabSize
        self.width = width
        switch kind {
        case .tied, .untied:
            table = Embedding(vocabSize, width, std: 0.02, weights: &weights)
            factorA = nil
            factorB = nil
        case .tiedLowRank(let r):
            let s = (0.02 * 0.02 / Float(r)).squareRoot().squareRoot()
            table = nil
            factorA = Parameter("wte.lowrank.a", weights.normal([vocabSize, r], std: s))
            factorB = Parameter("wte.lowrank.b", weights.normal([r, width], std: s))
        }
        head = nil
    }

    /// A factorized embedding from A [V, R] and B [R, C].
    public init(factorA a: Tensor, factorB b: Tensor) throws {
        guard a.rank == 2, b.rank == 2, a.shape[1] == b.shape[0] else {
            throw GPT2Error.config("factorized embedding: A \(describe(a.shape)) and B \(describe(b.shape)) do not multiply")
        }
        kind = .tiedLowRank(rank: a.shape[1])
        vocabSize = a.shape[0]
        width = b.shape[1]
        table = nil
        factorA = Parameter("wte.lowrank.a", a.contiguous())
        factorB = Parameter("wte.lowrank.b", b.contiguous())
        head = nil
    }

    /// A dense embedding E [V, C] with an untied head (C -> V, no bias).
    public init(table e: Tensor, head: LinearLayer) throws {
        guard e.rank == 2, head.inFeatures == e.shape[1], head.outFeatures == e.shape[0], head.bias == nil else {
            throw GPT2Error.config("untied head \(head.kind) \(head.inFeatures)->\(head.outFeatures) does not fit the embedding \(describe(e.shape)) (or has a bias)")
        }
        kind = .untied(head.kind)
        vocabSize = e.shape[0]
        width = e.shape[1]
        var none = WeightInit.shapeOnly
        table = Embedding(vocabSize, width, weights: &none)
        table!.weight.value = e.contiguousCopy()
        factorA = nil
        factorB = nil
        self.head = head
    }

    /// Draws the untied head (called after the blocks).
    func makeHead(weights: inout WeightInit) throws {
        guard case .untied(let k) = kind else { return }
        do {
            head = try makeLinear(k, inFeatures: width, outFeatures: vocabSize, bias: false, std: 0.02, weights: &weights)
        } catch let e as LayerError {
            throw GPT2Error.config("head untied:\(k) (\(width) -> vocabulary \(vocabSize)): \(e.message)")
        }
    }

    /// The embedding's parameters (`wte.*`) and then the untied head's (`lm_head.*`).
    var embeddingParameters: [(String, Parameter)] {
        if let table { return table.namedParameters(prefix: "wte") }
        return [("wte.lowrank.a", factorA!), ("wte.lowrank.b", factorB!)]
    }

    var headParameters: [(String, Parameter)] { head?.namedParameters(prefix: "lm_head") ?? [] }

    /// Rows of E for `ids`, shaped `shape + [C]`.
    func embed(_ ids: [Int32], shape: [Int]) throws -> Variable {
        if let table { return try table(ids, shape: shape) }
        let a = try Variable.embedding(factorA!.variable, ids: ids, shape: [ids.count])
        return try a.matmul(factorB!.variable).reshaped(shape + [width])
    }

    /// The head's input and weight for a final `x W^T` (fused with the loss where possible):
    /// (h, E) when tied, (h B^T, A) when factorized; nil for a structured untied head.
    func finalLinear(_ h: Variable) throws -> (Variable, Variable)? {
        switch kind {
        case .tied: return (h, table!.weight.variable)
        case .tiedLowRank: return (try Variable.linear(h, weight: factorB!.variable, bias: nil), factorA!.variable)
        case .untied:
            if let dense = head as? DenseLinear { return (h, dense.weight.variable) }
            return nil
        }
    }

    /// Logits [..., V] from final hidden states [..., C].
    func logits(_ h: Variable) throws -> Variable {
        if let (x, w) = try finalLinear(h) { return try Variable.linear(x, weight: w, bias: nil) }
        return try head!(h)
    }

    /// Mean cross-entropy of next tokens; the dense final product and the loss are fused (the
    /// [N, V] logits become their own gradient in place).
    func loss(_ h: Variable, targets: [Int32]) throws -> Variable {
        let rows = try h.reshaped([-1, width])
        if let (x, w) = try finalLinear(rows) { return try Variable.linearCrossEntropy(x, weight: w, targets: targets) }
        return try Variable.crossEntropy(logits: try head!(rows), targets: targets)
    }

    /// Multiply-accumulates of the head per token.
    var macsPerToken: Int {
        switch kind {
        case .tied: return vocabSize * width
        case .tiedLowRank(let r): return r * (vocabSize + width)
        case .untied: return head?.macsPerToken ?? vocabSize * width
        }
    }

    /// The dense E [V, C] (E = A B when factorized).
    func denseTable() throws -> Tensor {
        if let table { return table.weight.value }
        return try factorA!.value.matmul(factorB!.value)
    }
}
