/// An error from the HDF5 layer: names the file, the object inside it, the operation, and what
/// the HDF5 library reported.
///
/// ```
/// HDF5 read of '/params/wte' in /ckpt/step_1000.h5 failed: H5Dread returned -1.
///   HDF5 error stack: H5Dread(): can't read data; H5Z_pipeline(): filter returned failure during read;
///   H5Z__filter_fletcher32(): data error detected by Fletcher32 checksum
/// ```
public struct HDF5Error: Error, CustomStringConvertible, Sendable {
    /// Path of the file on disk.
    public let file: String
    /// Path of the object inside the file (`/params/wte`), or nil for file-level operations.
    public let object: String?
    /// What Factorlab was doing: `open`, `create`, `write`, `read`, `set attribute`, ...
    public let operation: String
    /// What went wrong, in Factorlab's words (often with a hint on what to do).
    public let message: String
    /// The HDF5 error stack, outermost call first, as "function(): description (minor message)".
    public let hdf5Stack: [String]

    public init(file: String, object: String?, operation: String, message: String, hdf5Stack: [String] = []) {
        self.file = file
        self.object = object
        self.operation = operation
        self.message = message
        self.hdf5Stack = hdf5Stack
    }

    public var description: String {
        let target = object.map { "'\($0)' in \(file)" } ?? file
        var text = "HDF5 \(operation) of \(target) failed: \(message)"
        if !hdf5Stack.isEmpty { text += "\n  HDF5 error stack: " + hdf5Stack.joined(separator: "; ") }
        return text
    }
}
