import FactorlabTensor
import FactorlabTestSupport
import Foundation

extension Fixture {
    /// A fixture of this test target (Tools/reference/make_core_fixtures.py).
    init(_ name: String) throws {
        try self.init(name, bundle: .module, script: "Tools/reference/make_core_fixtures.py")
    }
}
