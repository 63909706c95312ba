import FactorlabAutograd
import FactorlabTensor

extension GPT2Model {
    /// Fills the parameters by name: the one copy-by-name of Factorlab (checkpoint loading,
    /// Hugging Face import, dense export, classifier heads).
    ///
    /// For each parameter, `source(name, parameter)` returns the tensor to take, already in the
    /// parameter's orientation, or nil. A nil is an error from `missing` (or, when `missing` is
    /// nil, the parameter is left as it is). A tensor of another shape is the error `mismatch`
    /// makes. With `copy`, the tensor's values are copied into new storage (the optimizer updates
    /// parameters in place, so two models must not share it); otherwise the storage is shared.
    public func assignParameters(copy: Bool = false, missing: ((String) -> Error)?,
                                 mismatch: (String, Tensor, Parameter) -> Error,
                                 from source: (String, Parameter) throws -> Tensor?) throws {
        for (name, p) in namedParameters {
            guard let t = try source(name, p) else {
                if let missing { throw missing(name) }
                continue
            }
            guard t.shape == p.shape else { throw mismatch(name, t, p) }
            p.value = copy ? t.contiguousCopy() : t
        }
    }

    /// Copies every parameter that `other` has under the same name and shape (the rest keep their
    /// values); returns the names copied.
    @discardableResult
    public func copyMatchingParameters(from other: GPT2Model) throws -> Set<String> {
        let theirs = Dictionary(other.namedParameters, uniquingKeysWith: { a, _ in a })
        var copied = Set<String>()
        try assignParameters(copy: true, missing: nil, mismatch: { name, _, _ in GPT2Error.config("parameter \(name): shape changed while copying") }) { name, p in
            guard let t = theirs[name]?.value, t.shape == p.shape else { return nil }
            copied.insert(name)
            return t
        }
        return copied
    }
}
