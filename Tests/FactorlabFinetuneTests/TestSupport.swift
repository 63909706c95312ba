import FactorlabFinetune
import FactorlabGPT2
import FactorlabTestSupport
import Foundation

/// A character-level codec: each character of `alphabet` is its index; `eot` follows them.
struct CharCodec: TextCodec {
    let alphabet: [Character]
    var endOfTextID: Int32 { Int32(alphabet.count) }
    init(_ alphabet: String) { self.alphabet = Array(alphabet) }
    func encode(_ text: String) -> [Int32] { text.compactMap { c in alphabet.firstIndex(of: c).map(Int32.init) } }
    func decode(_ ids: [Int32]) throws -> String {
        String(ids.map { $0 == endOfTextID ? "\u{0}" : alphabet[Int($0)] }).replacingOccurrences(of: "\u{0}", with: "<|endoftext|>")
    }
}

/// A tiny GPT-2 for tests: 1 layer, d 32, 2 heads.
func tinyModel(vocab: Int, positions: Int = 64, numLabels: Int = 0, pad: Int32? = nil, seed: UInt64 = 1) throws -> GPT2Model {
    var c = GPT2Config(nLayer: 1, nHead: 2, nEmbd: 32, nPositions: positions, vocabSize: vocab)
    c.numLabels = numLabels
    c.padTokenID = pad
    return try GPT2Model(c, seed: seed)
}

func temporaryDirectory() throws -> URL { try temporaryFolder("finetune") }
