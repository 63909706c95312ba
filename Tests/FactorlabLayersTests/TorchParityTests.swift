import FactorlabAutograd
import FactorlabLayers
import FactorlabTensor
import FactorlabTestSupport
import XCTest

/// Monarch and butterfly against the PyTorch references of Tools/reference/make_layer_fixtures.py.
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
}
