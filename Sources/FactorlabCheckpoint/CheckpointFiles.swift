import Foundation

/// Naming and retention of a run's checkpoint files: `ckpt-<step>.h5` (zero-padded), plus
/// `best.h5` (lowest validation loss so far).
public enum CheckpointFiles {
    public static func name(step: Int) -> String { String(format: "ckpt-%08d.h5", step) }

    /// Steps of the checkpoints in `dir`, ascending.
    public static func steps(in dir: URL) throws -> [(step: Int, url: URL)] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return [] }
        return names.compactMap { n -> (Int, URL)? in
            guard n.hasPrefix("ckpt-"), n.hasSuffix(".h5"), let s = Int(n.dropFirst(5).dropLast(3)) else { return nil }
            return (s, dir.appendingPathComponent(n))
        }.sorted { $0.0 < $1.0 }
    }

    /// The newest checkpoint in `dir`, if any.
    public static func latest(in dir: URL) throws -> URL? { try steps(in: dir).last?.url }

    /// Deletes all but the newest `keep` step checkpoints, never those of the `sparing` steps (nor best.h5).
    public static func prune(in dir: URL, keep: Int, sparing: Set<Int> = []) throws {
        let all = try steps(in: dir).filter { !sparing.contains($0.step) }
        for entry in all.dropLast(max(keep, 1)) { try FileManager.default.removeItem(at: entry.url) }
    }
}
