import Foundation

// Embedding lookup (gather rows) and its backward (scatter-add), and cross-entropy over logits.

extension Kernels {
    /// Checks that every id indexes a row of a table with `rows` rows.
    public static func validateIDs(_ ids: [Int32], rows: Int, op: String) throws {
        for (pos, id) in ids.enumerated() where id < 0 || Int(id) >= rows {
            throw TensorError(op, "id \(id) at position \(pos) is outside the table's \(rows) rows")
        }
    }

    /// out[i, :] = table[ids[i], :] for table [V, C]; out has shape [ids.count, C].
    public static func embeddingForward(table: Tensor, ids: [Int32]) throws -> Tensor {
        guard table.rank == 2 else {
            throw TensorError("embedding", "table must be 2-D [rows, dim], got \(describe(table.shape))")
        }
        try validateIDs(ids, rows: table.shape[0], op: "embedding")
        let c = table.shape[1]
        let out = Tensor(uninitializedShape: [ids.count, c])
        table.withUnsafePointer { pt in
            for (i, id) in ids.enumerated() { (out.storage.base + i * c).update(from: pt + Int(id) * c, count: c) }
        }
        return out
    }

    /// dtable[ids[i], :] += dout[i, :]: the gradient of a lookup, added into an existing gradient
    /// (zeros, or a tied weight's other gradient) and accumulated for repeated ids. Only the
    /// looked-up rows are touched. Columns are split between workers, so the result does not
    /// depend on the thread count.
    public static func embeddingBackward(ids: [Int32], dout: Tensor, into dtable: inout Tensor) throws {
        let c = dout.shape.last ?? 1
        guard dtable.rank == 2, dtable.shape[1] == c, dout.count == ids.count * c else {
            throw TensorError("embedding backward", "gradient \(describe(dout.shape)) for \(ids.count) ids does not fit table \(describe(dtable.shape))")
        }
        try validateIDs(ids, rows: dtable.shape[0], op: "embedding backward")
        let n = ids.count
        dout.withUnsafePointer { pd in
            ids.withUnsafeBufferPointer { idp in
                dtable.withUnsafeMutablePointer { pt in
                    let sd = SendablePointer(pd), st = SendablePointer(pt)
                    let sid = SendablePointer(idp.baseAddress!)
                    Parallel.forRange(c, costPerItem: n) { cols in
                        for i in 0..<n {
                            let src = sd.p + i * c, dst = st.p + Int(sid.p[i]) * c
                            for j in cols { dst[j] += src[j] }
                        }
                    }
                }
            }
        }
    }

    /// Mean cross-entropy of logits [N, V] against targets (class ids; `ignoreIndex` rows are
    /// left out of the mean). Returns the loss and the number of counted rows.
    public static func crossEntropyForward(logits: Tensor, targets: [Int32], ignoreIndex: Int32 = -100)
        throws -> (loss: Float, counted: Int) {
        let r = try crossEntropyForwardKeepingLogSumExp(logits: logits, targets: targets, ignoreIndex: ignoreIndex)
        return (r.loss, r.counted)
    }

    /// Checks logits [N, V] against N targets (each a class id or `ignoreIndex`); returns V.
    static func checkCrossEntropyInputs(_ logits: Tensor, _ targets: [Int32], _ ignoreIndex: Int32) throws -> Int {
        guard logits.rank == 2, logits.shape[0] == targets.count else {
            throw TensorError("crossEntropy", "logits \(describe(logits.shape)) do not match \(targets.count) targets (expected [N, V] with N = targets)")
        }
        let v = logits.shape[1]
        for (pos, t) in targets.enumerated() where t != ignoreIndex && (t < 0 || Int(t) >= v) {
            throw TensorError("crossEntropy", "target \(t) at position \(pos) is outside the \(v) classes")
        }
        return v
    }

    /// The mean of the per-row losses over the rows not ignored (NaN when none is), and their count.
    static func meanLoss(_ rowLoss: [Double], _ targets: [Int32], _ ignoreIndex: Int32) -> (loss: Float, counted: Int) {
        let counted = targets.filter { $0 != ignoreIndex }.count
        return (counted == 0 ? .nan : Float(rowLoss.reduce(0, +) / Double(counted)), counted)
    }

    /// ``crossEntropyForward(logits:targets:ignoreIndex:)`` that also returns each row's
    /// log-sum-exp (0 for ignored rows), so the backward pass needs one sweep over the logits
    /// instead of three (max, sum, normalise).
    public static func crossEntropyForwardKeepingLogSumExp(logits: Tensor, targets: [Int32], ignoreIndex: Int32 = -100)
        throws -> (loss: Float, counted: Int, logSumExp: [Float]) {
        let v = try checkCrossEntropyInputs(logits, targets, ignoreIndex), n = targets.count
        var rowLoss = [Double](repeating: 0, count: n)
        var lse = [Float](repeating: 0, count: n)
        logits.withUnsafePointer { pl in
            targets.withUnsafeBufferPointer { pt in
                rowLoss.withUnsafeMutableBufferPointer { rl in
                    lse.withUnsafeMutableBufferPointer { ls in
                        let sl = SendablePointer(pl), st = SendablePointer(pt.baseAddress!), sr = SendablePointer(rl.baseAddress!)
                        let sls = SendablePointer(ls.baseAddress!)
                        Parallel.forRange(n, costPerItem: v * 4) { r in
                            for i in r where st.p[i] != ignoreIndex {
                                let row = sl.p + i * v
                                let l = logSumExp(row, v)
                                sls.p[i] = l
                                sr.p[i] = Double(l - row[Int(st.p[i])])
                            }
                        }
                    }
                }
            }
        }
        let (loss, counted) = meanLoss(rowLoss, targets, ignoreIndex)
        return (loss, counted, lse)
    }

    /// Cross-entropy forward that leaves its own gradient behind: each row of `logits` [N, V] is
    /// replaced in place by softmax(row) - onehot(target) (zeros for ignored rows), and the mean
    /// loss is returned. The gradient with respect to the logits is then this buffer times
    /// dloss / counted, a factor the caller folds into its GEMMs' alpha: no backward sweep over
    /// the logits, and one exp per logit in all. Each row is read once from memory and then
    /// worked on in cache (max, exp and sum, scale).
    public static func crossEntropyReplacingWithGradient(_ logits: inout Tensor, targets: [Int32], ignoreIndex: Int32 = -100)
        throws -> (loss: Float, counted: Int) {
        let v = try checkCrossEntropyInputs(logits, targets, ignoreIndex), n = targets.count
        var rowLoss = [Double](repeating: 0, count: n)
        logits.withUnsafeMutablePointer { pl in
            targets.withUnsafeBufferPointer { pt in
                rowLoss.withUnsafeMutableBufferPointer { rl in
                    let sl = SendablePointer(pl), st = SendablePointer(pt.baseAddress!), sr = SendablePointer(rl.baseAddress!)
                    Parallel.forRange(n, costPerItem: v * 8) { r in
                        for i in r {
                            let row = sl.p + i * v, t = st.p[i]
                            if t == ignoreIndex {
                                row.update(repeating: 0, count: v)
                                continue
                            }
                            let target = Int(t), picked = row[target]
                            let m = rowMax(row, v)
                            if !m.isFinite {
                                // As crossEntropyForward/Backward do for infinite logits.
                                sr.p[i] = Double(m - picked)
                                softmaxRow(row, row, v)
                                row[target] -= 1
                                continue
                            }
                            let sum = expShiftedInPlace(row, v, shift: m)
                            sr.p[i] = Double((m + Foundation.log(sum)) - picked)
                            let inv = SIMD8<Float>(repeating: 1 / sum)
                            var j = 0
                            while j + 8 <= v { store8(load8(row + j) * inv, row + j); j += 8 }
                            while j < v { row[j] *= inv[0]; j += 1 }
                            row[target] -= 1
                        }
                    }
                }
            }
        }
        return meanLoss(rowLoss, targets, ignoreIndex)
    }

    /// dlogits = (exp(logits - logSumExp) - onehot(target)) * dloss / counted, one sweep per row
    /// with the forward pass's log-sum-exp; ignored rows get 0.
    public static func crossEntropyBackward(logits: Tensor, targets: [Int32], ignoreIndex: Int32 = -100,
                                            counted: Int, dloss: Float, logSumExp lse: [Float]) -> Tensor {
        let v = logits.shape[1], n = targets.count
        precondition(lse.count == n, "crossEntropyBackward: \(lse.count) log-sum-exp values for \(n) rows")
        let out = Tensor(uninitializedShape: logits.shape)
        let scale = counted == 0 ? 0 : dloss / Float(counted)
        logits.withUnsafePointer { pl in
            targets.withUnsafeBufferPointer { pt in
                lse.withUnsafeBufferPointer { pls in
                    let sl = SendablePointer(pl), st = SendablePointer(pt.baseAddress!), so = SendablePointer(out.storage.base)
                    let sls = SendablePointer(pls.baseAddress!)
                    Parallel.forRange(n, costPerItem: v * 4) { r in
                        for i in r {
                            let o = so.p + i * v
                            let t = st.p[i]
                            if t == ignoreIndex {
                                o.update(repeating: 0, count: v)
                                continue
                            }
                            let src = sl.p + i * v, shift = sls.p[i]
                            if shift.isFinite {
                                for j in 0..<v { o[j] = fexp(src[j] - shift) * scale }
                            } else {
                                // Rows with infinite logits: the guarded softmax (as without the saved value).
                                softmaxRow(src, o, v)
                                for j in 0..<v { o[j] *= scale }
                            }
                            o[Int(t)] -= scale
                        }
                    }
                }
            }
        }
        return out
    }
}
