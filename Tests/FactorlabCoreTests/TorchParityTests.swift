import FactorlabAutograd
import FactorlabTensor
import FactorlabTestSupport
import XCTest

/// Composed computations against PyTorch (fixtures from Tools/reference/make_core_fixtures.py,
/// computed in float64): forward within 1e-5, gradients within 1e-4 relative plus 1e-5 absolute.
final class TorchParityTests: XCTestCase {
    func run(_ fx: Fixture, inputs: [String], _ f: ([String: Variable]) throws -> Variable)
        throws -> (Variable, Tape.Gradients, [String: Variable]) {
        let tape = Tape()
        var vars: [String: Variable] = [:]
        for name in inputs { vars[name] = tape.watch(fx[name]) }
        let out = try tape.record { try f(vars) }
        let grads = try tape.backward(out, seed: fx.tensors["R"] ?? Tensor(shape: out.shape, repeating: 1))
        return (out, grads, vars)
    }

    func testMLPBlock() throws {
        let fx = try Fixture("core_mlp")
        let names = ["x", "ln.weight", "ln.bias", "c_fc.weight", "c_fc.bias", "c_proj.weight", "c_proj.bias"]
        let (out, grads, v) = try run(fx, inputs: names) { v in
            let h = try Variable.layerNorm(v["x"]!, weight: v["ln.weight"]!, bias: v["ln.bias"]!)
            let a = try Variable.linear(h, weight: v["c_fc.weight"]!, bias: v["c_fc.bias"]!).gelu()
            return try v["x"]! + Variable.linear(a, weight: v["c_proj.weight"]!, bias: v["c_proj.bias"]!)
        }
        assertClose(out.value, fx["out"], rtol: 1e-5, atol: 1e-5, "mlp out")
        for n in names { assertClose(grads[v[n]!]!, fx["grad." + n], rtol: 1e-4, atol: 1e-5, "grad \(n)") }
    }

    func testAttentionBlock() throws {
        let fx = try Fixture("core_attention")
        let heads = Int(fx["heads"].item)
        let names = ["x", "c_attn.weight", "c_attn.bias", "c_proj.weight", "c_proj.bias"]
        let (out, grads, v) = try run(fx, inputs: names) { v in
            let qkv = try Variable.linear(v["x"]!, weight: v["c_attn.weight"]!, bias: v["c_attn.bias"]!)
            let y = try Variable.causalSelfAttention(qkv, heads: heads)
            return try Variable.linear(y, weight: v["c_proj.weight"]!, bias: v["c_proj.bias"]!)
        }
        assertClose(out.value, fx["out"], rtol: 1e-5, atol: 1e-5, "attention out")
        for n in names { assertClose(grads[v[n]!]!, fx["grad." + n], rtol: 1e-4, atol: 1e-5, "grad \(n)") }
    }

    func testLayerNormCrossEntropy() throws {
        let fx = try Fixture("core_ln_ce")
        let targets = fx["targets"].scalars.map { Int32($0) }
        let names = ["x", "ln.weight", "ln.bias", "head.weight", "head.bias"]
        let (out, grads, v) = try run(fx, inputs: names) { v in
            let h = try Variable.layerNorm(v["x"]!, weight: v["ln.weight"]!, bias: v["ln.bias"]!)
            let logits = try Variable.linear(h, weight: v["head.weight"]!, bias: v["head.bias"]!)
            return try Variable.crossEntropy(logits: logits, targets: targets)
        }
        XCTAssertEqual(out.value.item, fx["loss"].scalars[0], accuracy: 1e-5 * abs(fx["loss"].scalars[0]))
        for n in names { assertClose(grads[v[n]!]!, fx["grad." + n], rtol: 1e-4, atol: 1e-6, "grad \(n)") }
    }
}
