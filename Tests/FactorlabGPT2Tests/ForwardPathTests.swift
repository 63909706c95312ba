import FactorlabAutograd
import FactorlabGPT2
import FactorlabLayers
import FactorlabTensor
import FactorlabTestSupport
import XCTest

/// The one forward path: batched generation over a cache of rows of different lengths, stop
/// rules, the component timer, shape-only models and in-place layer swaps.
final class ForwardPathTests: XCTestCase {
    func model(mlp: LinearKind = .dense, positions: Int = 16, seed: UInt64 = 4) throws -> GPT2Model {
        try GPT2Model(GPT2Config(nLayer: 2, nHead: 2, nEmbd: 16, nPositions: positions, vocabSize: 30, mlp: mlp), seed: seed)
    }

    /// Rows of one cache at different lengths, continued together, give each row's own logits.
    func testCacheRowsOfDifferentLengthsMatchTheFullForward() throws {
        for mlp in [LinearKind.dense, .monarch(nblocks: 2)] {
            let m = try model(mlp: mlp)
            let a: [Int32] = [3, 7, 1, 29, 4], b: [Int32] = [5, 9]
            let cache = KVCache(config: m.config, batch: 2)
            _ = try m.forwardCached(a, batch: 1, seqLen: a.count, cache: cache, rows: [0])
            _ = try m.forwardCached(b, batch: 1, seqLen: b.count, cache: cache, rows: [1])
            XCTAssertEqual(cache.lengths, [5, 2])
            let next = try m.forwardCached([11, 12], batch: 2, seqLen: 1, cache: cache, rows: [0, 1])
            XCTAssertEqual(cache.lengths, [6, 3])
            for (row, ids) in [(0, a + [11]), (1, b + [12])] {
                let full = try m.logits(ids, batch: 1, seqLen: ids.count).value
                let expected = try full.slice(axis: 1, (ids.count - 1)..<ids.count).reshaped([1, 30])
                assertClose(try next.slice(axis: 0, row..<(row + 1)), expected, rtol: 1e-5, atol: 1e-5, "\(mlp) row \(row)")
            }
        }
    }

    /// Batched greedy generation gives each prompt what generating it alone gives (dense layers
    /// and Monarch factors, whose few-row products take the batched kernels).
    func testBatchedGenerationEqualsOneAtATime() throws {
        for mlp in [LinearKind.dense, .monarch(nblocks: 2)] {
            let m = try model(mlp: mlp)
            let prompts: [[Int32]] = [[1, 2, 3], [4], [5, 6, 7, 8, 9], [1, 2, 3]]
            var rng = RandomGenerator(seed: 0)
            let batched = try m.generate(prompts: prompts, rng: &rng, stop: StopRule(maxNewTokens: 20))
            for (p, out) in zip(prompts, batched) {
                var one = RandomGenerator(seed: 0)
                XCTAssertEqual(out.tokens, try m.generate(prompt: p, maxNewTokens: 20, rng: &one), "\(mlp), prompt \(p)")
                XCTAssertEqual(out.stop, .length)
            }
            XCTAssertEqual(batched[0], batched[3], "\(mlp): identical prompts, identical continuations")
        }
    }

    /// Stop tokens and predicates end a row without keeping the token; a full context stops a
    /// row under `.stop` and slides under `.slide`.
    func testStopRules() throws {
        let m = try model(positions: 8)
        var rng = RandomGenerator(seed: 0)
        let free = try m.generate(prompts: [[1, 2]], rng: &rng, stop: StopRule(maxNewTokens: 4))[0].tokens
        XCTAssertEqual(free.count, 4)
        let stopAt = free[2]
        let stopped = try m.generate(prompts: [[1, 2]], rng: &rng, stop: StopRule(maxNewTokens: 4, stopTokens: [stopAt]))[0]
        let cut = free.firstIndex(of: stopAt)!
        XCTAssertEqual(stopped.tokens, Array(free[..<cut]))
        XCTAssertEqual(stopped.stop, .stopToken(stopAt))
        let predicate = try m.generate(prompts: [[1, 2]], rng: &rng, stop: StopRule(maxNewTokens: 4, predicate: { $0 == stopAt }))[0]
        XCTAssertEqual(predicate, stopped)
        let full = try m.generate(prompts: [[1, 2, 3, 4, 5]], rng: &rng, stop: StopRule(maxNewTokens: 10, whenFull: .stop))[0]
        XCTAssertEqual(full.tokens.count, 4, "positions 5, 6, 7 are run, the token after the eighth is not")
        XCTAssertEqual(full.stop, .contextFull)
        let slid = try m.generate(prompts: [[1, 2, 3, 4, 5]], rng: &rng, stop: StopRule(maxNewTokens: 10))[0]
        XCTAssertEqual(slid.tokens.count, 10)
        XCTAssertEqual(Array(slid.tokens.prefix(4)), full.tokens)
    }

    /// Without a capacity the cache holds only what the longest row needs, and every row's
    /// tokens and stop reason are those of a context-sized cache: rows that end early, rows
    /// whose prompt and new tokens overrun the context (and slide or stop), and a prompt longer
    /// than the context (truncated, with the same warning).
    func testDefaultCacheCapacityChangesNoToken() throws {
        let m = try model(positions: 12)
        let cases: [([[Int32]], [StopRule])] = [
            ([[1, 2, 3], [4]], [StopRule(maxNewTokens: 3), StopRule(maxNewTokens: 5)]),
            ([[1, 2, 3, 4, 5]], [StopRule(maxNewTokens: 7)]),
            ([[1, 2, 3, 4, 5]], [StopRule(maxNewTokens: 20)]),
            ([[1, 2, 3, 4, 5], [6, 7]], [StopRule(maxNewTokens: 20, whenFull: .stop), StopRule(maxNewTokens: 2)]),
            ([Array(repeating: 3, count: 15), [9]], [StopRule(maxNewTokens: 4), StopRule(maxNewTokens: 0)]),
            ([[2, 4], [8]], [StopRule(maxNewTokens: .max, whenFull: .stop), StopRule(maxNewTokens: 1)]), // no overflow
        ]
        for (prompts, stops) in cases {
            var warnings: [[String]] = [[], []]
            let byDefault = try m.generate(prompts: prompts, stops: stops, onWarning: { warnings[0].append($0) }) { _, l in Int32(Scoring.argmax(l)) }
            let full = try m.generate(prompts: prompts, stops: stops, capacity: 12, onWarning: { warnings[1].append($0) }) { _, l in Int32(Scoring.argmax(l)) }
            XCTAssertEqual(byDefault, full, "prompts \(prompts)")
            XCTAssertEqual(warnings[0], warnings[1], "prompts \(prompts)")
        }
    }

    /// The profiler's timer sees every component of the one forward path, and timing changes no number.
    func testTimedForwardIsTheSameForward() throws {
        let m = try model(mlp: .lowRank(rank: 4))
        let ids: [Int32] = [1, 5, 9, 2, 7, 3]
        let timer = ForwardTimer()
        let timed = try Tape.withoutRecording { try m.logits(ids, batch: 2, seqLen: 3, timer: timer) }.value
        let plain = try Tape.withoutRecording { try m.logits(ids, batch: 2, seqLen: 3) }.value
        XCTAssertEqual(timed.scalars, plain.scalars)
        XCTAssertEqual(Set(timer.seconds.keys), Set(ForwardComponent.allCases))
    }

    /// A shape-only model has every parameter's name and shape and draws no random numbers.
    func testShapeOnlyModelHasTheNamesAndShapes() throws {
        var config = GPT2Config(nLayer: 2, nHead: 2, nEmbd: 16, nPositions: 8, vocabSize: 30)
        config.mlp = try GPT2Config.mlpKinds("monarch:2@1;lowrank:4@0", layers: 2)
        let random = try GPT2Model(config, seed: 1), empty = try GPT2Model.shapeOnly(config)
        XCTAssertEqual(random.namedParameters.map(\.0), empty.namedParameters.map(\.0))
        XCTAssertEqual(random.namedParameters.map(\.1.shape), empty.namedParameters.map(\.1.shape))
        XCTAssertEqual(empty.namedParameters.map(\.1.name), empty.namedParameters.map(\.0))
        // The same seed still gives the same model (initialisation order unchanged).
        XCTAssertEqual(try GPT2Model(config, seed: 1).parameters.map(\.value.scalars), random.parameters.map(\.value.scalars))
    }

    /// Swapping a layer's MLP in place renames its parameters, records the kind, and the model
    /// computes with the new layer.
    func testReplaceMLPInPlace() throws {
        let m = try model()
        var rng = RandomGenerator(seed: 3)
        let fc = try MonarchLinear(inFeatures: 16, outFeatures: 64, nblocks: 2, rng: &rng)
        let proj = try MonarchLinear(inFeatures: 64, outFeatures: 16, nblocks: 2, rng: &rng)
        try m.replaceMLP(layer: 1, fc: fc, proj: proj)
        XCTAssertEqual(m.config.mlp, [.dense, .monarch(nblocks: 2)])
        XCTAssertEqual(m.config.mlpSpec, "monarch:2@1")
        XCTAssertTrue(m.namedParameters.contains { $0.0 == "h.1.mlp.c_fc.monarch.blkdiag1" && $0.1 === fc.blkdiag1 })
        XCTAssertEqual(fc.blkdiag1.name, "h.1.mlp.c_fc.monarch.blkdiag1")
        let wrong = try MonarchLinear(inFeatures: 64, outFeatures: 16, nblocks: 2, rng: &rng)
        XCTAssertThrowsError(try m.replaceMLP(layer: 0, fc: wrong, proj: proj)) { e in
            XCTAssertTrue("\(e)".contains("layer 0 mlp.c_fc: the replacement monarch:2 64->16 does not fit 16->64"), "\(e)")
        }
        // The projection of a dense layer is exact when the kind is dense.
        let report = try ModelProjection.project(m, to: .lowRank(rank: 16), layers: [0])
        XCTAssertEqual(report.layers.map(\.name), ["h.0.mlp.c_fc", "h.0.mlp.c_proj"])
        XCTAssertEqual(report.layers.map(\.relativeError).max()!, 0, accuracy: 1e-5, "rank 16 = min(in, out) is exact")
        XCTAssertEqual(m.config.mlpSpec, "lowrank:16@0;monarch:2@1")
    }
}
