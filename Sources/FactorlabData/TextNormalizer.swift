import Foundation

/// Turns raw file bytes into the UTF-8 text that gets tokenized.
///
/// 0. (``decodeFile(_:path:)``) A file with a UTF-16 byte-order mark is decoded from UTF-16; a
///    file whose bytes look like UTF-16 without one, or binary data (NUL bytes), is refused.
/// 1. A leading UTF-8 byte-order mark (EF BB BF) is dropped.
/// 2. Invalid UTF-8 is decoded with U+FFFD replacement characters (one per maximal invalid
///    subsequence, as `String(decoding:as:)` and Python's `errors="replace"` do), never a crash.
/// 3. CRLF and a lone CR become LF.
///
/// Text from JSON fields goes through the same steps, so a corpus reads the same whether it comes
/// as `.txt` files or as JSON lines.
public enum TextNormalizer {
    /// The normalized UTF-8 bytes of `bytes`; always valid UTF-8.
    public static func normalize<Bytes: Collection>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var body = bytes[...]
        if body.starts(with: [0xEF, 0xBB, 0xBF]) { body = body.dropFirst(3) }
        // Repairs invalid UTF-8 (a no-op copy when it is valid).
        var text = String(decoding: body, as: UTF8.self)
        return text.withUTF8 { utf8 in
            var out = [UInt8]()
            out.reserveCapacity(utf8.count)
            var afterCR = false
            for byte in utf8 {
                if byte == 0x0D {
                    out.append(0x0A)
                    afterCR = true
                } else {
                    if !(byte == 0x0A && afterCR) { out.append(byte) }
                    afterCR = false
                }
            }
            return out
        }
    }

    /// The normalized UTF-8 bytes of a text file's contents: UTF-16 with a byte-order mark is
    /// decoded, NUL bytes (UTF-16 without a mark, or a binary file) are an error naming `path`.
    public static func decodeFile(_ data: Data, path: String) throws -> [UInt8] {
        if data.starts(with: [0xFF, 0xFE]) || data.starts(with: [0xFE, 0xFF]) {
            let littleEndian = data.first == 0xFF
            let units = stride(from: 2, to: data.count - 1, by: 2).map { i -> UInt16 in
                let a = UInt16(data[data.startIndex + i]), b = UInt16(data[data.startIndex + i + 1])
                return littleEndian ? a | b << 8 : a << 8 | b
            }
            return normalize(Array(String(decoding: units, as: UTF16.self).utf8))
        }
        if let nul = data.firstIndex(of: 0) {
            throw DataError(.fileUnreadable, file: path,
                            "has a NUL byte at offset \(nul - data.startIndex): not UTF-8 text (UTF-16 needs a byte-order mark; binary token files end in .bin)")
        }
        return normalize(data)
    }

    /// The normalized text of `bytes` as a `String`.
    public static func normalizedString<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        String(decoding: normalize(bytes), as: UTF8.self)
    }
}
