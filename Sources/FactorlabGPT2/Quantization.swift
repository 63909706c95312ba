import FactorlabAutograd
import FactorlabLayers
import FactorlabTensor
import Foundation

/// What `factorlab quantize` did to a model: the format, the rule, and each packed tensor's error.
/// Stored in the quantized checkpoint (attribute `quantization`) and printed by `--json`.
public struct QuantizationRecord: Codable, Sendable, Equatable {
    public struct TensorEntry: Codable, Sendable, Equatable {
        public var name: String
        public var shape: [Int]
        public var rowLength: Int
        /// ||W_q - W||_F / ||W||_F.
        public var relativeError: Double
        public var float32Bytes: Int
        public var packedBytes: Int

        enum CodingKeys: String, CodingKey {
            case name, shape, rowLength = "row_length", relativeError = "relative_error", float32Bytes = "float32_bytes", packedBytes = "packed_bytes"
        }
    }

    public var format: WeightFormat
    /// Elements per scale (int8), 0 for bf16.
    public var groupSize: Int
    /// The rounding rule in words (also in the README).
    public var rule: String
    public var tensors: [TensorEntry]
    /// Layers whose normalization was folded into their factors before packing (btt-norm).
    public var folded: [String]
    /// Bytes of every parameter after packing (packed tensors at their packed size, the rest at 4 per
    /// value), and before.
    public var weightBytes: Int
    public var float32Bytes: Int

    enum CodingKeys: String, CodingKey {
        case format, groupSize = "group_size", rule, tensors, folded, weightBytes = "weight_bytes", float32Bytes = "float32_bytes"
    }

    public var json: String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: (try? e.encode(self)) ?? Data(), as: UTF8.self)
    }

    static func rule(_ format: WeightFormat) -> String {
        switch format {
        case .bf16: return "bfloat16: top 16 bits of the float32, round to nearest, ties to even"
        case .int8:
            return "int8, groups of \(PackedWeights.groupSize) along each row: d = max|w| / 127, q = clamp(round(w / d), -127, 127) with ties away from zero, w' = q * d"
        case .float32: return "none"
        }
    }
}

extension GPT2Model {
    /// Whether parameter `name` of shape `shape` is stored packed: every weight of a linear map
    /// (the block sites, an untied head, the classification head), the token embedding (the tied
    /// head) and the factorized embedding's A and B. Biases, LayerNorms, BTT's gammas and the
    /// position embedding (one row read per token) stay float32.
    public static func isPackable(_ name: String, shape: [Int]) -> Bool {
        shape.count >= 2 && name != "wpe.weight"
    }

    /// The packed row length of a parameter: its last axis (the dot-product dimension of [out, in]
    /// weights and [blocks, out, in] factors), or one level of one butterfly block (the last three
    /// axes, [n/2, 2, 2]) for twiddles, whose last axis of 2 would leave a scale per two weights.
    public static func packedRowLength(_ name: String, shape: [Int]) -> Int {
        if name.hasSuffix("butterfly.twiddle"), shape.count >= 3 { return shape.suffix(3).reduce(1, *) }
        return shape.last ?? 1
    }

    /// The format the model's weights are stored in (float32 unless ``quantize(_:)`` or a
    /// quantized checkpoint packed them).
    public var weightFormat: WeightFormat {
        parameters.lazy.compactMap { $0.packed?.format }.first ?? .float32
    }

    /// Bytes of all parameters as stored: packed ones at their packed size, the rest at 4 per value.
    public var weightBytes: Int {
        parameters.reduce(0) { $0 + ($1.packed?.byteCount ?? 4 * $1.count) }
    }

    /// Packs the model's weights (``isPackable(_:shape:)``) to `format` for inference, in place:
    /// each packed parameter keeps only its packed form (``Parameter/pack(_:)``), so every path
    /// computes the quantized model and the resident weights shrink to the packed bytes. btt-norm
    /// layers are first folded into plain BTT (their scales are constants at inference), so the
    /// config then reads `btt:R` where it read `btt-norm:R`. Training a quantized model is refused.
    @discardableResult
    public func quantize(_ format: WeightFormat) throws -> QuantizationRecord {
        guard format != .float32 else { throw GPT2Error.config("quantize: float32 is the unquantized format (use bf16 or int8)") }
        guard weightFormat == .float32 else {
            throw GPT2Error.config("quantize: the model's weights are already \(weightFormat); quantize the float32 model instead")
        }
        let float32Bytes = weightBytes
        var folded: [String] = []
        for (l, block) in blocks.enumerated() {
            for site in LinearSite.allCases {
                if let btt = block[site] as? BTTLinear, btt.normalized {
                    try replace(site, layer: l, with: try btt.folded())
                    folded.append("h.\(l).\(site.rawValue)")
                }
            }
        }
        var entries: [QuantizationRecord.TensorEntry] = []
        for (name, p) in namedParameters where GPT2Model.isPackable(name, shape: p.shape) && p.packed == nil {
            let rowLength = GPT2Model.packedRowLength(name, shape: p.shape)
            let packed: PackedWeights
            do { packed = try PackedWeights(quantizing: p.value, format: format, rowLength: rowLength) } catch let e as TensorError {
                throw GPT2Error.config("quantize \(name): \(e.message)")
            }
            let original = p.value.contiguous()
            let q = packed.dequantized()
            var diff = 0.0, norm = 0.0
            original.withUnsafePointer { a in
                q.withUnsafePointer { b in
                    for i in 0..<original.count {
                        let (x, y) = (Double(a[i]), Double(b[i]))
                        diff += (x - y) * (x - y)
                        norm += x * x
                    }
                }
            }
            p.pack(packed)
            entries.append(.init(name: name, shape: p.shape, rowLength: rowLength, relativeError: norm > 0 ? (diff / norm).squareRoot() : 0,
                                 float32Bytes: 4 * p.count, packedBytes: packed.byteCount))
        }
        return QuantizationRecord(format: format, groupSize: format == .int8 ? PackedWeights.groupSize : 0, rule: QuantizationRecord.rule(format),
                                  tensors: entries, folded: folded, weightBytes: weightBytes, float32Bytes: float32Bytes)
    }
}
