import FactorlabAutograd
import FactorlabGPT2
import FactorlabLayers
import FactorlabSafetensors
import FactorlabTensor
import FactorlabTestSupport
import XCTest

/// Weight-only bf16 and int8 (`factorlab quantize`) against the rule applied independently in numpy
/// and torch (Tools/reference/make_quantization_fixtures.py), and the packed kernels against
/// float64 products of the dequantized weights.
final class QuantizationTests: XCTestCase {
    func reference() throws -> SafetensorsFile {
        guard let url = Bundle.module.url(forResource: "tiny-gpt2-quantized-reference.safetensors", withExtension: nil,
                                          subdirectory: "Fixtures") else {
            throw GPT2Error.input("fixture missing: re-run `python3 Tools/reference/make_quantization_fixtures.py`")
        }
        return try SafetensorsFile.read(url)
    }

    func fixtureModel() throws -> GPT2Model {
        guard let url = Bundle.module.url(forResource: "tiny-gpt2", withExtension: nil, subdirectory: "Fixtures") else {
            throw GPT2Error.input("fixture tiny-gpt2 missing: re-run `python3 Tools/reference/make_gpt2_fixtures.py`")
        }
        return try GPT2Model.loadHuggingFace(url)
    }

    /// Every int8 value and scale, and the dequantized matrix, exactly as numpy computes them: rows of
    /// 70 (groups 32, 32, 6), an all-zero row, and half-way cases that round away from zero.
    func testInt8PackingMatchesTheNumpyRuleExactly() throws {
        let ref = try reference()
        let packed = try PackedWeights(quantizing: try ref.tensor("kernel.w"), format: .int8)
        XCTAssertEqual([packed.rows, packed.rowLength, packed.groupsPerRow], [5, 70, 3])
        XCTAssertEqual(packed.int8Values.map(Float.init), try ref.tensor("kernel.int8.q").scalars)
        XCTAssertEqual(packed.scales, try ref.tensor("kernel.int8.scales").scalars)
        XCTAssertEqual(packed.dequantized().scalars, try ref.tensor("kernel.int8.w").scalars)
        // Row 3: max 127 * 2^-6 gives d = 2^-6 exactly, so 2.5 d and -2.5 d are ties: 3 and -3; 0.5 d gives 1.
        XCTAssertEqual(Array(packed.int8Values[210..<214]), [127, 3, -3, 1])
        XCTAssertEqual(packed.byteCount, 5 * 70 + 4 * 15)
    }

    func testBF16PackingMatchesTorchExactly() throws {
        let ref = try reference()
        let packed = try PackedWeights(quantizing: try ref.tensor("kernel.w"), format: .bf16)
        XCTAssertEqual(packed.dequantized().scalars, try ref.tensor("kernel.bf16.w").scalars)
        // Ties go to even: 1 + 2^-8 (half way between 1 and 1 + 2^-7) rounds down to 1, 1 + 3 * 2^-8 up to 1 + 2^-6.
        XCTAssertEqual(PackedWeights.bf16Bits(1), 0x3F80)
        XCTAssertEqual(PackedWeights.bf16Bits(Float(bitPattern: 0x3F80_8000)), 0x3F80)
        XCTAssertEqual(PackedWeights.bf16Bits(Float(bitPattern: 0x3F81_8000)), 0x3F82)
        XCTAssertEqual(PackedWeights.bf16Bits(Float(bitPattern: 0x3F80_8001)), 0x3F81)
    }

    /// The streaming product (one row: the fused int8/bf16 dot products; several rows: the
    /// eight-row int8 kernel, the four-row kernels and the one-row kernel for the rows left over) against float64 products of the dequantized
    /// weights, for a dense matrix from the fixture and for block factors with strides.
    func testPackedProductsMatchFloat64ProductsOfTheDequantizedWeights() throws {
        let ref = try reference()
        let w = try ref.tensor("kernel.w"), x = try ref.tensor("kernel.x")
        for (format, key) in [(WeightFormat.int8, "kernel.int8.y"), (.bf16, "kernel.bf16.y")] {
            let packed = try PackedWeights(quantizing: w, format: format)
            let expected = try ref.tensor(key)
            for rows in [1, 3] {
                let y = Tensor(zeros: [rows, 5])
                Kernels.packedMatMul(packed, x.unsafeBase, ldx: 70, y.unsafeBase, ldy: 5, inputRows: rows, accumulate: false)
                assertClose(y, try expected.slice(axis: 0, 0..<rows), rtol: 1e-5, atol: 1e-5, "\(format) dense, \(rows) rows")
            }
        }
        // Block factors [3 blocks, 4 rows, 40 cols] on inputs of 3 blocks of 40 (x rows of 120, y rows of 12),
        // 1, 6, 8, 9 and 13 input rows (the eight-row int8 kernel, the four-row kernels and the
        // one-row kernel for the rest), accumulating onto a bias.
        var rng = RandomGenerator(seed: 5)
        let factor = Tensor(shape: [3, 4, 40]) { _ in rng.nextNormal() }
        for format in [WeightFormat.int8, .bf16] {
            let packed = try PackedWeights(quantizing: factor, format: format)
            let wq = packed.dequantized().scalars
            for rows in [1, 6, 8, 9, 13] {
                let xs = (0..<(rows * 120)).map { _ in rng.nextNormal() }
                let x = try Tensor(shape: [rows, 120], scalars: xs)
                let y = Tensor(shape: [rows, 12], repeating: 0.5)
                Kernels.packedMatMul(packed, x.unsafeBase, ldx: 120, y.unsafeBase, ldy: 12, inputRows: rows, blocks: 3, xStride: 40,
                                     yStride: 4, accumulate: true)
                var expected = [Float](repeating: 0, count: rows * 12)
                for i in 0..<rows {
                    for b in 0..<3 {
                        for o in 0..<4 {
                            var s = 0.5
                            for c in 0..<40 { s += Double(wq[(b * 4 + o) * 40 + c]) * Double(xs[i * 120 + b * 40 + c]) }
                            expected[i * 12 + b * 4 + o] = Float(s)
                        }
                    }
                }
                assertClose(y, try Tensor(shape: [rows, 12], scalars: expected), rtol: 1e-5, atol: 1e-5, "\(format) blocks, \(rows) rows")
            }
        }
        // Many rows (prefill): sgemm on dequantized tiles. [4200, 70] is 294,000 floats, more than one
        // tile of 262,144, so the product is cut into two tiles (3,744 and 456 rows).
        let big = Tensor(shape: [4200, 70]) { _ in rng.nextNormal() }
        XCTAssertGreaterThan(big.count, Kernels.packedTileFloats)
        for format in [WeightFormat.int8, .bf16] {
            let packed = try PackedWeights(quantizing: big, format: format)
            let wq = packed.dequantized().scalars
            let rows = 20
            let xs = (0..<(rows * 70)).map { _ in rng.nextNormal() }
            let x = try Tensor(shape: [rows, 70], scalars: xs)
            let y = Tensor(shape: [rows, 4200], repeating: -0.25)
            Kernels.packedGemm(packed, x.unsafeBase, ldx: 70, y.unsafeBase, ldy: 4200, inputRows: rows, accumulate: true)
            var expected = [Float](repeating: 0, count: rows * 4200)
            for i in 0..<rows {
                for o in 0..<4200 {
                    var s = -0.25
                    for c in 0..<70 { s += Double(wq[o * 70 + c]) * Double(xs[i * 70 + c]) }
                    expected[i * 4200 + o] = Float(s)
                }
            }
            assertClose(y, try Tensor(shape: [rows, 4200], scalars: expected), rtol: 1e-4, atol: 1e-4, "\(format) tiles, \(rows) rows")
        }
    }

    /// The tiny transformers GPT-2 with its weights quantized by the reference script: logits and loss.
    func testQuantizedFixtureModelMatchesTheReference() throws {
        let ref = try reference()
        let ids = try SafetensorsFile.read(Bundle.module.url(forResource: "tiny-gpt2-reference.safetensors", withExtension: nil,
                                                            subdirectory: "Fixtures")!).tensor("ids").scalars.map { Int32($0) }
        var targets = [Int32](repeating: -100, count: ids.count)
        for r in 0..<2 { for p in 0..<15 { targets[r * 16 + p] = ids[r * 16 + p + 1] } }
        for format in [WeightFormat.int8, .bf16] {
            let model = try fixtureModel()
            let record = try model.quantize(format)
            XCTAssertEqual(model.weightFormat, format)
            XCTAssertEqual(record.tensors.map(\.name), model.namedParameters.filter { GPT2Model.isPackable($0.0, shape: $0.1.shape) }.map(\.0),
                           "every parameter but wpe, biases and LayerNorms is packed")
            XCTAssertFalse(record.tensors.contains { $0.name.contains("ln_") || $0.name.hasSuffix("bias") || $0.name == "wpe.weight" })
            let logits = try Tape.withoutRecording { try model.logits(ids, batch: 2, seqLen: 16) }
            assertClose(logits.value, try ref.tensor("\(format).logits"), rtol: 0, atol: 1e-4, "\(format) logits")
            let loss = try Tape.withoutRecording { try Variable.crossEntropy(logits: logits, targets: targets) }.value.item
            let expected = try ref.tensor("\(format).loss").item
            XCTAssertEqual(loss, expected, accuracy: 1e-5 * expected, "\(format) loss")
            // Evaluation's fused head and loss (32 rows: the packed head multiplied a tile at a time).
            let fused = try Tape.withoutRecording { try model.loss(ids, targets: targets, batch: 2, seqLen: 16) }.value.item
            XCTAssertEqual(fused, expected, accuracy: 1e-5 * expected, "\(format) fused loss")
        }
    }

    /// Generation with packed weights (the streaming kernels) computes what the dequantized float32
    /// weights compute (the sgemm and matrix-vector paths), for every linear kind and head: prefill
    /// of 1 and 3 rows, then single-token steps.
    func testPackedGenerationMatchesTheDequantizedFloatPathForEveryKind() throws {
        for spec in ["dense", "mlp=monarch:2,attn.c_attn=btt-norm:2,attn.c_proj=lowrank:8",
                     "mlp=butterfly:2,attn=btt:2,head=lowrank:16", "mlp=lowrank:8,head=untied:monarch:2"] {
            var config = GPT2Config(nLayer: 2, nHead: 2, nEmbd: 64, nPositions: 16, vocabSize: 50, mlp: .dense)
            config.linear = try LinearPlan.parse(spec, layers: 2)
            for format in [WeightFormat.int8, .bf16] {
                let model = try GPT2Model(config, seed: 3)
                let record = try model.quantize(format)
                if spec.contains("btt-norm") {
                    XCTAssertEqual(record.folded, ["h.0.attn.c_attn", "h.1.attn.c_attn"])
                    XCTAssertFalse(model.config.linearSpec.contains("btt-norm"), model.config.linearSpec)
                }
                // The packed weights are the only copy: no float32 values are kept beside them.
                for (name, p) in model.namedParameters where GPT2Model.isPackable(name, shape: p.shape) {
                    XCTAssertNotNil(p.packed, name)
                    XCTAssertFalse(p.holdsFloat32, "\(name) keeps a float32 copy")
                }
                // The same quantized model with float32 parameters holding the dequantized values.
                let float = try GPT2Model(config, seed: 3)
                try float.quantize(format)
                for p in float.parameters where p.packed != nil { p.value = p.value }
                XCTAssertEqual(float.weightFormat, .float32)
                // Prefill of 1 x 6 rows (packed few-row products) and 3 x 6 = 18 rows (tiles), then single tokens.
                for batch in [1, 3] {
                    let ids = (0..<(batch * 6)).map { Int32(($0 * 7 + 3) % 50) }
                    func run(_ m: GPT2Model) throws -> [Tensor] {
                        let cache = KVCache(config: m.config, batch: batch, capacity: 9)
                        var out = [try m.forwardCached(ids, batch: batch, seqLen: 6, cache: cache)]
                        for s in 0..<2 { out.append(try m.forwardCached((0..<batch).map { Int32($0 + s) }, batch: batch, seqLen: 1, cache: cache)) }
                        return out
                    }
                    for (i, (a, b)) in zip(try run(model), try run(float)).enumerated() {
                        assertClose(a, b, rtol: 1e-4, atol: 1e-5, "\(spec) \(format) batch \(batch) step \(i)")
                    }
                }
                XCTAssertThrowsError(try model.quantize(.int8), "a quantized model is not quantized again")
            }
        }
    }

    /// Packed data from files is checked before it is used.
    func testPackedDataFromFilesIsValidated() {
        let cases: [(() throws -> PackedWeights, String)] = [
            ({ try PackedWeights(format: .int8, shape: [2, 3], rowLength: 3, int8Values: [1, 2, 3, 4, 5], scales: [1, 1], what: "w") },
             "holds 5 int8 values, the shape [2, 3] needs 6"),
            ({ try PackedWeights(format: .int8, shape: [2, 3], rowLength: 3, int8Values: [1, 2, 3, 4, 5, -128], scales: [1, 1], what: "w") },
             "int8 value -128 at element 5"),
            ({ try PackedWeights(format: .int8, shape: [2, 3], rowLength: 3, int8Values: [1, 2, 3, 4, 5, 6], scales: [1, -1], what: "w") },
             "scale 1 is -1.0"),
            ({ try PackedWeights(format: .int8, shape: [2, 3], rowLength: 3, int8Values: [1, 2, 3, 4, 5, 6], scales: [1], what: "w") },
             "holds 1 scales"),
            ({ try PackedWeights(format: .int8, shape: [2, 3], rowLength: 4, int8Values: [], scales: [], what: "w") },
             "row length 4 does not divide"),
            ({ try PackedWeights(format: .bf16, shape: [2], rowLength: 2, bf16Bits: [0x3F80, 0x7F80], what: "w") },
             "bf16 element 1 is not finite"),
            // A shape whose element count overflows is refused, not a stop of the process.
            ({ try PackedWeights(format: .int8, shape: [1 << 40, 1 << 40], rowLength: 1 << 40, what: "w") },
             "negative or overflowing element count"),
            ({ try PackedWeights(format: .bf16, shape: [2, -3], rowLength: 2, what: "w") }, "negative or overflowing element count"),
        ]
        for (make, expected) in cases {
            XCTAssertThrowsError(try make()) { XCTAssertTrue("\($0)".contains(expected), "\($0)") }
        }
        var bad = Tensor(zeros: [2, 2])
        bad.withUnsafeMutablePointer { $0[3] = .nan }
        XCTAssertThrowsError(try PackedWeights(quantizing: bad, format: .int8)) { XCTAssertTrue("\($0)".contains("not finite"), "\($0)") }
    }
}
