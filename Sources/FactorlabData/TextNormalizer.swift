/// Turns raw file bytes into the UTF-8 text that gets tokenized.
///
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

    /// The normalized text of `bytes` as a `String`.
    public static func normalizedString<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        String(decoding: normalize(bytes), as: UTF8.self)
    }
}
