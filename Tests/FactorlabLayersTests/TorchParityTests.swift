import FactorlabAutograd
import FactorlabLayers
import FactorlabTensor
import FactorlabTestSupport
import XCTest

/// Monarch, butterfly and block tensor-train against the PyTorch references of Tools/reference/make_layer_fixtures.py.
final class LayerTorchParityTests: XCTestCase {
    func fixture(_ name: String) throws -> Fixture {
        try Fixture(name, bundle: .module, script: "Tools/reference/make_layer_fixtures.py")
    }

    func testMonarchMatchesReference() throws {
        for name in ["monarch_square", "monarch_expand", "monarch_shrink"] {
            let fx = try fixture(name)
            let io = fx["in_out"].scalars.map { Int($0) }
            let layer = try MonarchLinear(inFeatures: io[0], outFeatures: io[1], blkdiag1: fx["blkdiag1"],
                                          blkdiag2: fx["blkdiag2"], bias: fx["bias"])
            let tape = Tape()
            let x = tape.watch(fx["x"])
            let out = try tape.record { try layer(x) }
            let g = try tape.backward(out, seed: fx["R"])
            assertClose(out.value, fx["out"], rtol: 1e-5, atol: 1e-5, "\(name) out")
            assertClose(g[x]!, fx["grad.x"], rtol: 1e-4, atol: 1e-5, "\(name) grad x")
            assertClose(layer.blkdiag1.grad!, fx["grad.blkdiag1"], rtol: 1e-4, atol: 1e-5, "\(name) grad blkdiag1")
            assertClose(layer.blkdiag2.grad!, fx["grad.blkdiag2"], rtol: 1e-4, atol: 1e-5, "\(name) grad blkdiag2")
            assertClose(layer.bias!.grad!, fx["grad.bias"], rtol: 1e-4, atol: 1e-5, "\(name) grad bias")
        }
    }

    func testButterflyMatchesReference() throws {
        for name in ["butterfly_square", "butterfly_padded_stacked"] {
            let fx = try fixture(name)
            let io = fx["in_out"].scalars.map { Int($0) }
            let layer = try ButterflyLinear(inFeatures: io[0], outFeatures: io[1], twiddle: fx["twiddle"], bias: fx["bias"])
            XCTAssertEqual(layer.nblocks, Int(fx["nblocks"].item))
            let tape = Tape()
            let x = tape.watch(fx["x"])
            let out = try tape.record { try layer(x) }
            let g = try tape.backward(out, seed: fx["R"])
            assertClose(out.value, fx["out"], rtol: 1e-5, atol: 1e-5, "\(name) out")
            assertClose(g[x]!, fx["grad.x"], rtol: 1e-4, atol: 1e-5, "\(name) grad x")
            assertClose(layer.twiddle.grad!, fx["grad.twiddle"], rtol: 1e-4, atol: 1e-5, "\(name) grad twiddle")
            assertClose(layer.bias!.grad!, fx["grad.bias"], rtol: 1e-4, atol: 1e-5, "\(name) grad bias")
        }
    }

    /// BTT against an einsum over the authors' core layout (`FasterBTT`), with the `btt_norm` cap.
    func testBlockTensorTrainMatchesReference() throws {
        for name in ["btt_rank1", "btt_rank2", "btt_norm"] {
            let fx = try fixture(name)
            let io = fx["in_out_rank"].scalars.map { Int($0) }
            let normalized = name == "btt_norm"
            let gammas = normalized ? (try fx["gammas"].slice(axis: 0, 0..<1).contiguous(), try fx["gammas"].slice(axis: 0, 1..<2).contiguous()) : nil
            let layer = try BTTLinear(inFeatures: io[0], outFeatures: io[1], core1: fx["core1"], core2: fx["core2"], gammas: gammas,
                                      bias: fx["bias"])
            XCTAssertEqual(layer.kind, .btt(rank: io[2], normalized: normalized))
            let tape = Tape()
            let x = tape.watch(fx["x"])
            let out = try tape.record { try layer(x) }
            let g = try tape.backward(out, seed: fx["R"])
            assertClose(out.value, fx["out"], rtol: 1e-5, atol: 1e-5, "\(name) out")
            assertClose(g[x]!, fx["grad.x"], rtol: 1e-4, atol: 1e-5, "\(name) grad x")
            assertClose(layer.core1.grad!, fx["grad.core1"], rtol: 1e-4, atol: 1e-5, "\(name) grad core1")
            assertClose(layer.core2.grad!, fx["grad.core2"], rtol: 1e-4, atol: 1e-5, "\(name) grad core2")
            assertClose(layer.bias!.grad!, fx["grad.bias"], rtol: 1e-4, atol: 1e-5, "\(name) grad bias")
            if normalized {
                let both = try Tensor(shape: [2], scalars: layer.gamma1!.grad!.scalars + layer.gamma2!.grad!.scalars)
                assertClose(both, fx["grad.gammas"], rtol: 1e-4, atol: 1e-5, "\(name) grad gammas")
            }
        }
    }
}
