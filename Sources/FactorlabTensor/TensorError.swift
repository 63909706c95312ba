/// An error raised by a tensor operation: names the operation and the shapes involved.
public struct TensorError: Error, CustomStringConvertible, Equatable {
    /// The operation that failed, e.g. `matmul` or `reshape`.
    public let op: String
    /// What was wrong, with the shapes or values involved.
    public let message: String

    public init(_ op: String, _ message: String) {
        self.op = op
        self.message = message
    }

    public var description: String { "\(op): \(message)" }
}

/// Formats a shape the way users write it: `[2, 3, 4]`.
@inlinable
public func describe(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }
