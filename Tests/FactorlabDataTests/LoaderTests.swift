import Foundation
import XCTest
@testable import FactorlabData

final class LoaderTests: XCTestCase {
    /// Tokens 0..<count, so each id is its own position.
    func ramp(_ count: Int, name: String = "train") -> TokenStream {
        TokenStream((0..<count).map { UInt16($0) }, name: name)
    }

    func testSequentialBatchesByHand() throws {
        var loader = try SequentialLoader(tokens: ramp(50), batch: 2, seqLen: 4)
        XCTAssertEqual(loader.tokensPerBatch, 8)
        XCTAssertEqual(loader.batchesPerEpoch, 6)  // ⌊49 / 8⌋: the chunk of batch 5 is tokens 40...48
        let first = loader.next()
        XCTAssertEqual(first.inputs, [0, 1, 2, 3, 4, 5, 6, 7])
        XCTAssertEqual(first.targets, [1, 2, 3, 4, 5, 6, 7, 8])
        XCTAssertEqual(first.batch, 2)
        XCTAssertEqual(first.seqLen, 4)
        let second = loader.next()
        XCTAssertEqual(second.inputs, [8, 9, 10, 11, 12, 13, 14, 15])
        XCTAssertEqual(second.targets, [9, 10, 11, 12, 13, 14, 15, 16])
        for _ in 2..<5 { _ = loader.next() }
        XCTAssertEqual(loader.state, LoaderState(epoch: 0, position: 5, seed: 0))
        let last = loader.next()
        XCTAssertEqual(last.inputs, [40, 41, 42, 43, 44, 45, 46, 47])
        XCTAssertEqual(last.targets, [41, 42, 43, 44, 45, 46, 47, 48])
        // Wrap: tokens 49 is never a target; the next batch is batch 0 of epoch 1.
        XCTAssertEqual(loader.state, LoaderState(epoch: 1, position: 0, seed: 0))
        XCTAssertEqual(loader.next(), first)
        XCTAssertEqual(loader.next(), second)
    }

    func testSequentialExactFitUsesLastToken() throws {
        // 17 tokens = exactly 2 chunks of B*T = 8 plus the one extra target.
        var loader = try SequentialLoader(tokens: ramp(17), batch: 1, seqLen: 8)
        XCTAssertEqual(loader.batchesPerEpoch, 2)
        _ = loader.next()
        XCTAssertEqual(loader.next().targets.last, 16)
    }

    func testSplitTooSmallNamesSplitAndCount() throws {
        let error = expectDataError { _ = try SequentialLoader(tokens: self.ramp(16, name: "validation"), batch: 2, seqLen: 8) }
        XCTAssertEqual(error?.kind, .splitTooSmall)
        XCTAssertTrue(error?.message.hasPrefix("the validation split has 16 tokens, fewer than the B*T+1 = 17") ?? false,
                      error?.message ?? "")
        XCTAssertEqual(expectDataError { _ = try ShuffledLoader(tokens: self.ramp(16), batch: 2, seqLen: 8, seed: 1) }?.kind,
                       .splitTooSmall)
        XCTAssertNoThrow(try SequentialLoader(tokens: ramp(17), batch: 2, seqLen: 8))
        XCTAssertEqual(expectDataError { _ = try SequentialLoader(tokens: self.ramp(17), batch: 0, seqLen: 8) }?.kind,
                       .invalidArgument)
        XCTAssertEqual(expectDataError { _ = try SequentialLoader(tokens: self.ramp(100), batch: 1, seqLen: 8, rank: 2, worldSize: 2) }?.kind,
                       .invalidArgument)
    }

    /// The window index of each row of a shuffled batch over a ramp (row starts at w*T).
    func windows(_ batch: Batch) -> [Int] {
        (0..<batch.batch).map { row in
            let start = Int(batch.inputs[row * batch.seqLen])
            // The row is T+1 consecutive tokens from w*T.
            XCTAssertEqual(batch.inputs[row * batch.seqLen..<(row + 1) * batch.seqLen].map(Int.init), Array(start..<start + batch.seqLen))
            XCTAssertEqual(batch.targets[row * batch.seqLen..<(row + 1) * batch.seqLen].map(Int.init), Array(start + 1...start + batch.seqLen))
            XCTAssertEqual(start % batch.seqLen, 0)
            return start / batch.seqLen
        }
    }

    func testShuffledCoversEveryWindowOncePerEpoch() throws {
        // 12 windows of 4+1 tokens at stride 4 need 49 tokens; B = 3 gives 4 batches per epoch.
        var loader = try ShuffledLoader(tokens: ramp(49), batch: 3, seqLen: 4, seed: 42)
        XCTAssertEqual(loader.windowCount, 12)
        XCTAssertEqual(loader.batchesPerEpoch, 4)
        var epochs: [[Int]] = []
        for _ in 0..<3 {
            var seen: [Int] = []
            for _ in 0..<4 { seen += windows(loader.next()) }
            XCTAssertEqual(seen.sorted(), Array(0..<12))
            epochs.append(seen)
        }
        XCTAssertEqual(loader.state, LoaderState(epoch: 3, position: 0, seed: 42))
        XCTAssertNotEqual(epochs[0], epochs[1])
        XCTAssertNotEqual(epochs[1], epochs[2])
        XCTAssertNotEqual(epochs[0], Array(0..<12))
        XCTAssertEqual(epochs[1], loader.windowOrder(epoch: 1))

        // 13 windows with B = 3: 4 batches, 12 distinct windows, one left out (a different one per epoch is allowed).
        var uneven = try ShuffledLoader(tokens: ramp(53), batch: 3, seqLen: 4, seed: 7)
        XCTAssertEqual(uneven.windowCount, 13)
        XCTAssertEqual(uneven.batchesPerEpoch, 4)
        var seen: [Int] = []
        for _ in 0..<4 { seen += windows(uneven.next()) }
        XCTAssertEqual(Set(seen).count, 12)
        XCTAssertEqual(seen, Array(uneven.windowOrder(epoch: 0).prefix(12)))
    }

    func testShuffledIsDeterministicFromSeedAndEpoch() throws {
        let tokens = ramp(1001)
        var a = try ShuffledLoader(tokens: tokens, batch: 5, seqLen: 10, seed: 2024)
        var b = try ShuffledLoader(tokens: tokens, batch: 5, seqLen: 10, seed: 2024)
        var c = try ShuffledLoader(tokens: tokens, batch: 5, seqLen: 10, seed: 2025)
        var sameAsC = true
        for _ in 0..<45 {  // two epochs and a half (20 batches each)
            let batchA = a.next()
            XCTAssertEqual(batchA, b.next())
            if batchA != c.next() { sameAsC = false }
        }
        XCTAssertFalse(sameAsC)
        // The order is fixed by (seed, epoch) on every platform: checked against an independent Python port.
        let loader = try ShuffledLoader(tokens: tokens, batch: 5, seqLen: 10, seed: 2024)
        XCTAssertEqual(loader.windowCount, 100)
        XCTAssertEqual(Array(loader.windowOrder(epoch: 0).prefix(10)), [77, 37, 98, 24, 26, 93, 42, 64, 22, 9])
        XCTAssertEqual(Array(loader.windowOrder(epoch: 1).prefix(10)), [37, 9, 0, 70, 1, 29, 55, 89, 34, 88])
    }

    // The reference for the pinned orders above: `permutation(100, 2024, 0)[:10]` and `permutation(100, 2024, 1)[:10]`.
    //
    //     # Independent reference for FactorlabData's shuffle: SplitMix64 seeded per (seed, epoch), Lemire bounded draw, Fisher-Yates.
    //     M = (1 << 64) - 1
    //     def mix(z):
    //         z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    //         z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    //         return z ^ (z >> 31)
    //     class SplitMix:
    //         def __init__(self, seed, epoch):
    //             self.s = mix(seed ^ mix((epoch + 0x5851F42D4C957F2D) & M))
    //         def next(self):
    //             self.s = (self.s + 0x9E3779B97F4A7C15) & M
    //             return mix(self.s)
    //         def below(self, bound):
    //             p = self.next() * bound
    //             low = p & M
    //             if low < bound:
    //                 t = ((1 << 64) - bound) % bound
    //                 while low < t:
    //                     p = self.next() * bound; low = p & M
    //             return p >> 64
    //     def permutation(n, seed, epoch):
    //         order = list(range(n)); g = SplitMix(seed, epoch)
    //         for i in range(n - 1, 0, -1):
    //             j = g.below(i + 1); order[i], order[j] = order[j], order[i]
    //         return order

    func checkResume<L: BatchLoader>(_ make: (LoaderState?) throws -> L, skip: Int, take: Int) throws {
        var original = try make(nil)
        for _ in 0..<skip { _ = original.next() }
        // The state survives a JSON round trip, as in a checkpoint.
        let saved = try JSONDecoder().decode(LoaderState.self, from: JSONEncoder().encode(original.state))
        var resumed = try make(saved)
        for step in 0..<take {
            XCTAssertEqual(original.next(), resumed.next(), "step \(skip + step)")
            XCTAssertEqual(original.state, resumed.state)
        }
    }

    func testResumeGivesIdenticalContinuation() throws {
        let tokens = ramp(1001)
        // 12 batches per epoch; resume mid-epoch and right at an epoch end, continue across boundaries.
        for skip in [0, 5, 12, 13, 30] {
            try checkResume({ state in
                try SequentialLoader(tokens: tokens, batch: 4, seqLen: 20, state: state ?? LoaderState())
            }, skip: skip, take: 30)
            try checkResume({ state in
                try ShuffledLoader(tokens: tokens, batch: 4, seqLen: 20, state: state ?? LoaderState(seed: 99))
            }, skip: skip, take: 30)
        }
        let error = expectDataError {
            _ = try SequentialLoader(tokens: tokens, batch: 4, seqLen: 20, state: LoaderState(epoch: 0, position: 12))
        }
        XCTAssertEqual(error?.kind, .invalidArgument)
    }

    /// N ranks with batch B see, step by step, exactly the rows of one process with batch N*B.
    func checkShardEquivalence<L: BatchLoader>(single: L, ranks: [L], steps: Int) {
        var single = single
        var ranks = ranks
        XCTAssertEqual(ranks.map(\.batchesPerEpoch), Array(repeating: single.batchesPerEpoch, count: ranks.count))
        for step in 0..<steps {
            let whole = single.next()
            var inputs: [Int32] = []
            var targets: [Int32] = []
            for r in ranks.indices {
                let part = ranks[r].next()
                XCTAssertEqual(part.batch, whole.batch / ranks.count)
                inputs += part.inputs
                targets += part.targets
                XCTAssertEqual(ranks[r].state, single.state)
            }
            XCTAssertEqual(inputs, whole.inputs, "step \(step)")
            XCTAssertEqual(targets, whole.targets, "step \(step)")
        }
    }

    func testRankShardingMatchesOneProcessWithLargerBatch() throws {
        let tokens = ramp(1003)
        // Sequential: 1 rank × B = 6 vs 2 ranks × B = 3 vs 3 ranks × B = 2; 8 steps per epoch, run 20.
        let single = try SequentialLoader(tokens: tokens, batch: 6, seqLen: 20)
        XCTAssertEqual(single.batchesPerEpoch, 8)
        checkShardEquivalence(single: single, ranks: try (0..<2).map {
            try SequentialLoader(tokens: tokens, batch: 3, seqLen: 20, rank: $0, worldSize: 2)
        }, steps: 20)
        checkShardEquivalence(single: single, ranks: try (0..<3).map {
            try SequentialLoader(tokens: tokens, batch: 2, seqLen: 20, rank: $0, worldSize: 3)
        }, steps: 20)
        // Rank r's batch at step g is batch g*N + r of a single process with batch B.
        var oneProcessB3 = try SequentialLoader(tokens: tokens, batch: 3, seqLen: 20)
        var rank1 = try SequentialLoader(tokens: tokens, batch: 3, seqLen: 20, rank: 1, worldSize: 2)
        _ = oneProcessB3.next()
        XCTAssertEqual(rank1.next(), oneProcessB3.next())

        let shuffledSingle = try ShuffledLoader(tokens: tokens, batch: 6, seqLen: 20, seed: 5)
        checkShardEquivalence(single: shuffledSingle, ranks: try (0..<2).map {
            try ShuffledLoader(tokens: tokens, batch: 3, seqLen: 20, seed: 5, rank: $0, worldSize: 2)
        }, steps: 20)
    }

    func testEvalLoaderReadsSplitOnceInOrder() throws {
        let tokens = ramp(50, name: "validation")
        let batches = Array(try EvalLoader(tokens: tokens, batch: 2, seqLen: 4))
        XCTAssertEqual(batches.count, 6)
        XCTAssertEqual(batches.flatMap(\.inputs), (0..<48).map { Int32($0) })
        XCTAssertEqual(batches.flatMap(\.targets), (1..<49).map { Int32($0) })
        XCTAssertEqual(try EvalLoader(tokens: tokens, batch: 2, seqLen: 4, maxBatches: 2).map(\.inputs),
                       [[0, 1, 2, 3, 4, 5, 6, 7], [8, 9, 10, 11, 12, 13, 14, 15]])
        let rank1 = Array(try EvalLoader(tokens: tokens, batch: 1, seqLen: 4, rank: 1, worldSize: 2))
        XCTAssertEqual(rank1.count, 6)
        XCTAssertEqual(rank1[0].inputs, [4, 5, 6, 7])
        XCTAssertEqual(rank1[1].inputs, [12, 13, 14, 15])
        XCTAssertEqual(expectDataError { _ = try EvalLoader(tokens: self.ramp(8, name: "validation"), batch: 2, seqLen: 4) }?.kind,
                       .splitTooSmall)
    }
}
