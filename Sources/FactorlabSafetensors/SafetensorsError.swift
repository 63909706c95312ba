/// An error reading or writing a safetensors file: names the file, the tensor when one is
/// involved, what was wrong and, where it helps, what to do about it.
///
/// ```
/// safetensors file /ckpt/model.safetensors: tensor 'h.0.attn.c_attn.weight': data_offsets [0, 100]
/// hold 100 bytes but F32 [3, 4] needs 48
/// ```
public struct SafetensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The kind of failure, for callers that branch on it; `message` has the details.
    public enum Problem: String, Sendable, Equatable {
        /// The file could not be opened, mapped, written or renamed.
        case io
        /// Fewer than 8 bytes: no room for the header length.
        case fileTooShort
        /// The header length exceeds the 100 MB limit of the reference implementation.
        case headerTooLarge
        /// The header length points past the end of the file.
        case headerBeyondFile
        /// The header is not valid UTF-8 JSON, or not a JSON object.
        case invalidJSON
        /// The JSON is well formed but an entry is missing a field or has a field of the wrong type.
        case invalidHeader
        /// A `dtype` the format does not define.
        case unknownDtype
        /// A shape with a negative, non-integer or overflowing extent.
        case invalidShape
        /// `data_offsets` whose length disagrees with dtype size × element count, or end < begin.
        case sizeMismatch
        /// Tensors that overlap or leave unused bytes between them.
        case invalidOffsets
        /// The data area is shorter than the tensors need.
        case truncated
        /// Bytes after the last tensor that no tensor covers.
        case trailingBytes
        /// No tensor of that name in the file.
        case tensorNotFound
        /// A valid dtype that this reader does not convert (e.g. F8_E4M3 to Float).
        case unsupportedDtype
        /// Bad input to the writer (duplicate or reserved name, metadata key clash).
        case invalidArgument
    }

    /// The file path (or the label of an in-memory buffer).
    public let file: String
    /// The tensor concerned, if any.
    public let tensor: String?
    public let problem: Problem
    /// What was wrong, with the offending values.
    public let message: String

    public init(file: String, tensor: String? = nil, _ problem: Problem, _ message: String) {
        self.file = file
        self.tensor = tensor
        self.problem = problem
        self.message = message
    }

    public var description: String {
        var s = "safetensors file \(file): "
        if let tensor { s += "tensor '\(tensor)': " }
        return s + message
    }
}
