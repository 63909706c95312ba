import FactorlabTensor
import Foundation
import XCTest

/// A reference fixture written by a script in Tools/reference/: a JSON object mapping names to
/// {"shape": [...], "data": [...]}.
public struct Fixture {
    public let tensors: [String: Tensor]

    /// Loads `name`.json from the `Fixtures` folder of a test bundle; `script` names the
    /// generator so a missing file says how to make it.
    public init(_ name: String, bundle: Bundle, script: String) throws {
        guard let url = bundle.url(forResource: name, withExtension: "json", subdirectory: "Fixtures") else {
            throw TensorError("fixture", "\(name).json is missing: re-run `python3 \(script)`")
        }
        guard let raw = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: [String: [Double]]] else {
            throw TensorError("fixture", "\(url.path) is not a {name: {shape, data}} object: re-run `python3 \(script)`")
        }
        var out: [String: Tensor] = [:]
        for (k, v) in raw {
            guard let shape = v["shape"], let data = v["data"] else {
                throw TensorError("fixture", "\(url.path): tensor \(k) lacks shape or data")
            }
            out[k] = try Tensor(shape: shape.map { Int($0) }, scalars: data.map { Float($0) })
        }
        tensors = out
    }

    public subscript(_ name: String) -> Tensor {
        guard let t = tensors[name] else {
            XCTFail("fixture has no tensor \(name)")
            return Tensor(zeros: [0])
        }
        return t
    }
}

/// Asserts |a - b| <= atol + rtol * |b| element-wise, reporting the worst element.
public func assertClose(_ a: Tensor, _ b: Tensor, rtol: Float = 1e-5, atol: Float = 1e-5, _ what: String,
                        file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.shape, b.shape, "\(what): shape", file: file, line: line)
    guard a.shape == b.shape else { return }
    let x = a.scalars, y = b.scalars
    var worst = 0, worstExcess: Float = 0
    for i in 0..<x.count {
        let excess = abs(x[i] - y[i]) - (atol + rtol * abs(y[i]))
        if !(excess <= worstExcess) { worstExcess = excess.isNaN ? .infinity : excess; worst = i }
    }
    XCTAssertLessThanOrEqual(worstExcess, 0, "\(what): element \(worst) is \(x.isEmpty ? 0 : x[worst]), expected \(y.isEmpty ? 0 : y[worst])",
                             file: file, line: line)
}

/// A new empty folder under the system's temporary directory, `factorlab-<label>-<uuid>`; with a
/// `test`, removed when that test ends.
public func temporaryFolder(_ label: String, removedAfter test: XCTestCase? = nil) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("factorlab-\(label)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test?.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}
