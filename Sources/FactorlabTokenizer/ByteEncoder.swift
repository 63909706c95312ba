/// GPT-2's reversible map between the 256 byte values and 256 printable Unicode characters.
///
/// Byte-level BPE works on bytes, but vocab.json and merges.txt store tokens as text. GPT-2
/// (`bytes_to_unicode` in OpenAI's `encoder.py`) keeps the 188 bytes that are already printable
/// Latin-1 characters (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) as themselves and maps the other 68 (controls,
/// space, DEL, NBSP, soft hyphen) in byte order to U+0100, U+0101, …, U+0143. So the space byte
/// 0x20 is written `Ġ` (U+0120) and the newline 0x0A is `Ċ` (U+010A).
public enum ByteEncoder {
    /// `scalars[b]` is the character that stands for byte `b` in vocab.json and merges.txt.
    public static let scalars: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            if isPrintable(byte) {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                table[byte] = Unicode.Scalar(next)!  // 256...323 are all valid scalars
                next += 1
            }
        }
        return table
    }()

    /// `bytesByScalar[s]` is the byte that character U+s stands for, or -1; covers U+0000…U+0143.
    static let bytesByScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 324)
        for (byte, scalar) in scalars.enumerated() { table[Int(scalar.value)] = Int16(byte) }
        return table
    }()

    /// The 256 byte values in the order of their characters' code points: the order GPT-2's
    /// encoder.json and Hugging Face's trainer give the byte tokens their ids 0…255.
    static let bytesInScalarOrder: [UInt8] = (0..<256).map { UInt8($0) }
        .sorted { scalars[Int($0)].value < scalars[Int($1)].value }

    /// The token text for a byte string, e.g. `[0x20, 0x68, 0x69]` → `"Ġhi"`.
    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var text = String.UnicodeScalarView()
        for byte in bytes { text.append(scalars[Int(byte)]) }
        return String(text)
    }

    /// The bytes a token text stands for, or `nil` if it has a character outside the table
    /// (as added tokens such as `<|im start|>` with a space may).
    public static func decode(_ token: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.unicodeScalars.count)
        for scalar in token.unicodeScalars {
            let value = Int(scalar.value)
            guard value < bytesByScalar.count, bytesByScalar[value] >= 0 else { return nil }
            bytes.append(UInt8(bytesByScalar[value]))
        }
        return bytes
    }

    private static func isPrintable(_ byte: Int) -> Bool {
        (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
    }
}
