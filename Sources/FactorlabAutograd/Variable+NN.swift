import FactorlabTensor

// Differentiable neural-network operations, each a fused kernel pair from FactorlabTensor.

extension Variable {
    /// y = x W^T + b for x [..., in], weight [out, in] (PyTorch's orientation), bias [out].
    /// One GEMM with a transpose flag; the bias is written first and accumulated into (beta = 1).
    public static func linear(_ x: Variable, weight: Variable, bias: Variable?) throws -> Variable {
        let xv = x.value, wShape = weight.shape
        guard wShape.count == 2, let inDim = xv.shape.last, inDim == wShape[1] else {
            throw TensorError("linear", "input \(describe(xv.shape)) does not match weight \(describe(wShape)) (expected [..., in] and [out, in])")
        }
        if let b = bias, b.shape != [wShape[0]] {
            throw TensorError("linear", "bias \(describe(b.shape)) does not match weight \(describe(wShape)) (expected [out])")
        }
        let outDim = wShape[0]
        let rows = xv.count / max(inDim, 1)
        let x2 = try xv.reshaped([rows, inDim])
        let y = Tensor(uninitializedShape: [rows, outDim])
        if let b = bias?.value {
            b.withUnsafePointer { pb in for r in 0..<rows { (y.unsafeBase + r * outDim).update(from: pb, count: outDim) } }
        }
        // A packed weight [out, in] (rows of `in`) is multiplied in its packed form; its float32
        // value is read only by the float32 paths and the backward pass.
        let packed = weight.packed.flatMap { $0.rows == outDim && $0.rowLength == inDim ? $0 : nil }
        let wRead = packed == nil ? weight.value.contiguous() : nil
        withExtendedLifetime(x2) {
            multiply(x2.unsafeBase, rows: rows, inDim: inDim, outDim: outDim, packed: packed, float: wRead, into: y.unsafeBase,
                     accumulate: bias != nil)
        }
        var outShape = xv.shape
        outShape[outShape.count - 1] = outDim
        let xShape = xv.shape
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        let needX = x.requiresGrad, needW = weight.requiresGrad, needB = bias?.requiresGrad ?? false
        return make(try y.reshaped(outShape), inputs, "linear") { g in
            let g2 = try g.reshaped([rows, outDim]).contiguous()
            let (dx, dw) = try linearGradients(dy: g2, x: x2, weight: wRead ?? weight.value.contiguous(), xShape: xShape,
                                               needX: needX, needW: needW)
            var grads = [dx, dw]
            if bias != nil { grads.append(needB ? try g2.sum(toShape: [outDim]) : nil) }
            return grads
        }
    }

    /// y (+)= x W^T for x [rows, inDim] and W [outDim, inDim], stored packed or as float32
    /// (`float`, contiguous; one of the two is given), with the kernel for that many rows: the
    /// one choice of product kernel that ``linear(_:weight:bias:)`` and
    /// ``linearCrossEntropy(_:weight:targets:ignoreIndex:)`` share.
    static func multiply(_ x: UnsafePointer<Float>, rows: Int, inDim: Int, outDim: Int, packed: PackedWeights?, float w: Tensor?,
                         into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        withExtendedLifetime(w) {
            if let packed, rows <= Variable.packedRowLimit {
                // Low-precision weights and few rows (generation): each packed row read once for all rows.
                Kernels.packedMatMul(packed, x, ldx: inDim, y, ldy: outDim, inputRows: rows, accumulate: accumulate)
            } else if let packed {
                // Low-precision weights and many rows: sgemm on one dequantized tile of W at a time.
                Kernels.packedGemm(packed, x, ldx: inDim, y, ldy: outDim, inputRows: rows, accumulate: accumulate)
            } else if let wt = w, rows == 1 {
                // One row (batch-1 generation): a streaming matrix-vector product on every core.
                Kernels.matVec(wt.unsafeBase, x, y, rows: outDim, cols: inDim, accumulate: accumulate)
            } else if let wt = w, rows <= Variable.fewRowLimit {
                // A few rows (batched generation): W streamed once for all of them.
                Kernels.matVecRows(wt.unsafeBase, x, ldx: inDim, y, ldy: outDim, rows: outDim, cols: inDim, inputRows: rows,
                                   accumulate: accumulate)
            } else if let wt = w {
                BLAS.sgemm(transA: false, transB: true, m: rows, n: outDim, k: inDim, a: x, lda: inDim, b: wt.unsafeBase, ldb: inDim,
                           beta: accumulate ? 1 : 0, c: y, ldc: outDim)
            }
        }
    }

    /// Up to this many rows, a product with packed weights streams them (``Kernels/packedMatMul``);
    /// above it sgemm on dequantized tiles (``Kernels/packedGemm``) wins, once each weight is reused
    /// across enough rows.
    public static let packedRowLimit = 16

    /// Up to this many rows, a float32 product streams W once for all rows (``Kernels/matVecRows``)
    /// instead of calling sgemm (generation's steps, and the prefills of short prompts). At
    /// 768 x 256 on two threads OpenBLAS sgemm ran 48 GFLOP/s at 12 rows, 86 at 16 and 129 at 32
    /// (`Tools/bench/micro/sgemm_rows.c`, 2026-12-04), the batched kernel about 140 at 8.
    public static let fewRowLimit = 16

    /// The two gradient GEMMs of y = x W^T for dy [N, out], x [N, in], W [out, in]:
    /// dx = alpha dy W (reshaped to `xShape`) and dW = alpha dy^T x, each only when needed.
    static func linearGradients(dy: Tensor, x: Tensor, weight w: Tensor, xShape: [Int], alpha: Float = 1,
                                needX: Bool, needW: Bool) throws -> (dx: Tensor?, dw: Tensor?) {
        let (rows, outDim, inDim) = (dy.shape[0], dy.shape[1], w.shape[1])
        var dx: Tensor?, dw: Tensor?
        if needX {
            let t = Tensor(uninitializedShape: [rows, inDim])
            withExtendedLifetime((dy, w)) {
                BLAS.sgemm(transA: false, transB: false, m: rows, n: inDim, k: outDim, alpha: alpha,
                           a: dy.unsafeBase, lda: outDim, b: w.unsafeBase, ldb: inDim, c: t.unsafeBase, ldc: inDim)
            }
            dx = try t.reshaped(xShape)
        }
        if needW {
            let t = Tensor(uninitializedShape: [outDim, inDim])
            withExtendedLifetime((dy, x)) {
                BLAS.sgemm(transA: true, transB: false, m: outDim, n: inDim, k: rows, alpha: alpha,
                           a: dy.unsafeBase, lda: outDim, b: x.unsafeBase, ldb: inDim, c: t.unsafeBase, ldc: inDim)
            }
            dw = t
        }
        return (dx, dw)
    }

    /// GELU with GPT-2's tanh approximation.
    public func gelu() -> Variable {
        let x = value
        return Variable.make(Kernels.geluForward(x), [self], "gelu") { g in [Kernels.geluBackward(x, g)] }
    }

    /// Softmax along the last axis.
    public func softmax() -> Variable {
        let y = Kernels.softmaxForward(value)
        return Variable.make(y, [self], "softmax") { g in [Kernels.softmaxBackward(y, g)] }
    }

    /// Log-softmax along the last axis.
    public func logSoftmax() -> Variable {
        let y = Kernels.logSoftmaxForward(value)
        return Variable.make(y, [self], "log-softmax") { g in [Kernels.logSoftmaxBackward(y, g)] }
    }

    /// Layer normalization over the last axis with a learned scale and optional shift.
    public static func layerNorm(_ x: Variable, weight: Variable, bias: Variable?, eps: Float = 1e-5) throws -> Variable {
        let c = x.shape.last ?? 0
        guard weight.shape == [c], bias.map({ $0.shape == [c] }) ?? true else {
            throw TensorError("layerNorm", "input \(describe(x.shape)) needs weight and bias of shape [\(c)], got \(describe(weight.shape)) and \(bias.map { describe($0.shape) } ?? "none")")
        }
        let xv = x.value.contiguous(), wv = weight.value.contiguous()
        let (y, mean, rstd) = Kernels.layerNormForward(xv, weight: wv, bias: bias?.value.contiguous(), eps: eps)
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        return make(y, inputs, "layerNorm") { g in
            let r = Kernels.layerNormBackward(xv, weight: wv, mean: mean, rstd: rstd, dy: g.contiguous())
            return bias == nil ? [r.dx, r.dweight] : [r.dx, r.dweight, r.dbias]
        }
    }

    /// Rows of `table` [V, C] picked by `ids`; result [ids.count, C] reshaped to `shape + [C]`
    /// when a shape is given.
    public static func embedding(_ table: Variable, ids: [Int32], shape: [Int]? = nil) throws -> Variable {
        let out: Tensor
        if let packed = table.packed, table.rank == 2, packed.rowLength == table.shape[1] {
            // A packed table (a quantized model's tied embedding): only the looked-up rows are dequantized.
            try Kernels.validateIDs(ids, rows: packed.rows, op: "embedding")
            out = Tensor(uninitializedShape: [ids.count, packed.rowLength])
            packed.gatherRows(ids, into: out.unsafeBase)
        } else {
            out = try Kernels.embeddingForward(table: table.value, ids: ids)
        }
        let (rows, cols) = (table.shape[0], table.shape[1])
        let result = try shape.map { try out.reshaped($0 + [cols]) } ?? out
        return recordAccumulating(result, input: table, name: "embedding") { g, dtable in
            if dtable == nil { dtable = Tensor(zeros: [rows, cols]) }
            try Kernels.embeddingBackward(ids: ids, dout: g.contiguous(), into: &dtable!)
        }
    }

    /// Inverted dropout with probability `p`; the mask is derived from `key` (see
    /// `Kernels.dropoutForward`). Identity when `p` is 0.
    public func dropout(_ p: Float, key: UInt64) -> Variable {
        if p == 0 { return self }
        let (y, mask) = Kernels.dropoutForward(value.contiguous(), p: p, key: key)
        return Variable.make(y, [self], "dropout") { g in [try g * mask] }
    }

    /// Fused causal self-attention on packed qkv [B, T, 3C]; result [B, T, C].
    /// With `dropout` > 0, attention probabilities are dropped with a mask derived from `key`.
    public static func causalSelfAttention(_ qkv: Variable, heads: Int, dropout: Float = 0, key: UInt64 = 0) throws -> Variable {
        let x = qkv.value.contiguous()
        let (out, saved) = try Kernels.attentionForward(qkv: x, heads: heads, dropout: dropout, key: key)
        return make(out, [qkv], "attention") { g in
            [try Kernels.attentionBackward(qkv: x, heads: heads, saved: saved, dout: g)]
        }
    }

    /// Mean cross-entropy of the logits x W^T (a language-model head: x [..., C], W [V, C], no
    /// bias) against class ids, as `crossEntropy(logits: linear(x, weight: W, bias: nil), ...)`
    /// but fused: the forward pass turns the logits into their own gradient in place
    /// (`Kernels.crossEntropyReplacingWithGradient`), and the backward pass is the two GEMMs with
    /// alpha = dloss / counted. The [N, V] logits are never handed out; outside a recording tape
    /// only the loss is computed.
    public static func linearCrossEntropy(_ x: Variable, weight: Variable, targets: [Int32], ignoreIndex: Int32 = -100) throws -> Variable {
        let wShape = weight.shape
        guard wShape.count == 2, let c = x.shape.last, c == wShape[1] else {
            throw TensorError("linearCrossEntropy", "input \(describe(x.shape)) does not match weight \(describe(wShape)) (expected [..., C] and [V, C])")
        }
        let v = wShape[0], rows = x.value.count / max(c, 1)
        guard rows == targets.count else {
            throw TensorError("linearCrossEntropy", "\(targets.count) targets for \(rows) input rows")
        }
        // A packed head (a quantized model in evaluation) is multiplied in its packed form, a
        // tile at a time: its float32 value is formed only if a gradient needs it.
        let packed = weight.packed.flatMap { $0.rows == v && $0.rowLength == c ? $0 : nil }
        let wRead = packed == nil ? weight.value.contiguous() : nil
        let x2 = try x.value.reshaped([rows, c]).contiguous()
        var logits = Tensor(uninitializedShape: [rows, v])
        withExtendedLifetime(x2) {
            multiply(x2.unsafeBase, rows: rows, inDim: c, outDim: v, packed: packed, float: wRead, into: logits.unsafeBase, accumulate: false)
        }
        guard let tape = Tape.current, x.tape === tape || weight.tape === tape else {
            return Variable(Tensor(try Kernels.crossEntropyForward(logits: logits, targets: targets, ignoreIndex: ignoreIndex).loss))
        }
        let (loss, counted) = try Kernels.crossEntropyReplacingWithGradient(&logits, targets: targets, ignoreIndex: ignoreIndex)
        let d = logits, xShape = x.shape
        let needX = x.tape === tape, needW = weight.tape === tape
        return make(Tensor(loss), [x, weight], "linearCrossEntropy") { g in
            // d holds dloss/dlogits up to the factor dloss / counted, which rides on alpha.
            let alpha = counted == 0 ? 0 : g.item / Float(counted)
            let (dx, dw) = try linearGradients(dy: d, x: x2, weight: wRead ?? weight.value.contiguous(), xShape: xShape, alpha: alpha,
                                               needX: needX, needW: needW)
            return [dx, dw]
        }
    }

    /// Mean cross-entropy of logits [N, V] (or [B, T, V]) against class ids; entries equal to
    /// `ignoreIndex` are excluded from the mean, as in `torch.nn.functional.cross_entropy`.
    public static func crossEntropy(logits: Variable, targets: [Int32], ignoreIndex: Int32 = -100) throws -> Variable {
        let v = logits.shape.last ?? 0
        let l2 = try logits.value.reshaped([-1, v])
        let (loss, counted, lse) = try Kernels.crossEntropyForwardKeepingLogSumExp(logits: l2, targets: targets, ignoreIndex: ignoreIndex)
        let shape = logits.shape
        return make(Tensor(loss), [logits], "crossEntropy") { g in
            [try Kernels.crossEntropyBackward(logits: l2, targets: targets, ignoreIndex: ignoreIndex,
                                              counted: counted, dloss: g.item, logSumExp: lse).reshaped(shape)]
        }
    }
}
