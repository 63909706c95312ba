import FactorlabTensor
import Foundation
import XCTest

/// A PyTorch reference fixture written by Tools/reference/make_core_fixtures.py.
struct Fixture {
    let tensors: [String: Tensor]

    init(_ name: String) throws {
        guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures") else {
            throw TensorError("fixture", "\(name).json is missing: re-run `python3 Tools/reference/make_core_fixtures.py`")
        }
        let raw = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: [String: [Double]]]
        var out: [String: Tensor] = [:]
        for (k, v) in raw {
            out[k] = try Tensor(shape: v["shape"]!.map { Int($0) }, scalars: v["data"]!.map { Float($0) })
        }
        tensors = out
    }

    subscript(_ name: String) -> Tensor {
        guard let t = tensors[name] else { fatalError("fixture has no tensor \(name)") }
        return t
    }
}

/// Asserts |a - b| <= atol + rtol * |b| element-wise, reporting the worst element.
func assertClose(_ a: Tensor, _ b: Tensor, rtol: Float = 1e-5, atol: Float = 1e-5, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.shape, b.shape, "\(what): shape", file: file, line: line)
    guard a.shape == b.shape else { return }
    let x = a.scalars, y = b.scalars
    var worst = 0, worstExcess: Float = 0
    for i in 0..<x.count {
        let excess = abs(x[i] - y[i]) - (atol + rtol * abs(y[i]))
        if !(excess <= worstExcess) { worstExcess = excess.isNaN ? .infinity : excess; worst = i }
    }
    XCTAssertLessThanOrEqual(worstExcess, 0, "\(what): element \(worst) is \(x[worst]), expected \(y[worst])", file: file, line: line)
}
