import FactorlabCheckpoint
import Foundation

enum CheckpointLookup {
    static func latest(_ dir: URL) throws -> URL? { try CheckpointFiles.latest(in: dir) }
    static func recipe(_ url: URL) throws -> String? { try Checkpoint.read(url, includeOptimizer: false).recipe }
}
