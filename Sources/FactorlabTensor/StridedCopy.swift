/// Iteration over the elements of a strided tensor, for packing views into contiguous buffers.
enum StridedCopy {
    /// Copies `src` (any layout) into `dst` in row-major order.
    static func copy(from src: Tensor, to dst: UnsafeMutablePointer<Float>) {
        let shape = src.shape, strides = src.strides
        let n = src.count
        if n == 0 { return }
        let base = UnsafePointer(src.storage.base)
        if shape.isEmpty { dst[0] = base[src.offset]; return }
        let rank = shape.count
        let inner = shape[rank - 1], innerStride = strides[rank - 1]
        var index = [Int](repeating: 0, count: rank)
        var srcPos = src.offset
        var out = dst
        let rows = n / inner
        for _ in 0..<rows {
            if innerStride == 1 {
                out.update(from: base + srcPos, count: inner)
            } else {
                var p = srcPos
                for j in 0..<inner { out[j] = base[p]; p += innerStride }
            }
            out += inner
            // Advance the odometer over all axes but the last.
            var axis = rank - 2
            while axis >= 0 {
                index[axis] += 1
                srcPos += strides[axis]
                if index[axis] < shape[axis] { break }
                srcPos -= strides[axis] * shape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }
}
