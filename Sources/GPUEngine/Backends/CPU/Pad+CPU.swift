// CPU reference of Pad: every output element reads its source through `Pad.source` per axis;
// backward scatters each output gradient back to that source.

extension CPUBackend {
    /// Calls body(outputIndex, inputOffset?) for every output element, in order.
    private func forEachPadded(outShape: [Int], inShape: [Int], begin: [Int], mode: PadMode, _ body: (Int, Int?) -> Void) {
        let rank = outShape.count
        let inStrides = contiguousStrides(inShape)
        let total = outShape.reduce(1, *)
        var coord = [Int](repeating: 0, count: rank)
        for o in 0..<total {
            var offset: Int? = 0
            for axis in 0..<rank {
                guard let i = Pad.source(coord[axis], begin: begin[axis], n: inShape[axis], mode: mode), let base = offset else {
                    offset = nil
                    break
                }
                offset = base + i * inStrides[axis]
            }
            body(o, offset)
            var axis = rank - 1
            while axis >= 0 {
                coord[axis] += 1
                if coord[axis] < outShape[axis] { break }
                coord[axis] = 0
                axis -= 1
            }
        }
    }

    func padForward(_ x: Tensor, outShape: [Int], begin: [Int], mode: PadMode, value: Float) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("pad_forward", started) }
        let y = make(outShape)
        let xp = try x.host().pointer, yp = try y.host().pointer
        forEachPadded(outShape: outShape, inShape: x.shape, begin: begin, mode: mode) { o, src in
            yp[o] = src.map { xp[$0] } ?? value
        }
        return y
    }

    func padBackward(_ dy: Tensor, inShape: [Int], begin: [Int], end: [Int], mode: PadMode) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("pad_backward", started) }
        let dx = make(inShape)
        let dyp = try dy.host().pointer, dxp = try dx.host().pointer
        forEachPadded(outShape: dy.shape, inShape: inShape, begin: begin, mode: mode) { o, src in
            if let s = src { dxp[s] += dyp[o] }
        }
        return dx
    }
}
