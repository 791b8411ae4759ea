// OpenCL launchers of Pad (kernels in Sources/Kernels/pad.cl).

extension PadMode {
    /// The mode code of pad.cl.
    var code: Int32 {
        switch self {
        case .constant: return 0
        case .reflect: return 1
        case .edge: return 2
        }
    }
}

extension OpenCLBackend {
    func padForward(_ x: Tensor, outShape: [Int], begin: [Int], mode: PadMode, value: Float) throws -> Tensor {
        let y = try make(outShape)
        // The pad_geom struct: rank, out_dims[8], in_dims[8], begin[8].
        var ints = [Int32](repeating: 0, count: 1 + 3 * maxRank)
        ints[0] = Int32(outShape.count)
        for axis in outShape.indices {
            ints[1 + axis] = Int32(outShape[axis])
            ints[1 + maxRank + axis] = Int32(x.shape[axis])
            ints[1 + 2 * maxRank + axis] = Int32(begin[axis])
        }
        try launch("pad", "pad_forward",
                   [.buffer(y.device()), .buffer(x.device()), .int(Int32(y.count)), .int(mode.code), .float(value),
                    .bytes(ints.withUnsafeBytes { Array($0) })],
                   global: [y.count])
        return y
    }

    /// One gather per padded axis: dy's axis shrinks back to the input's size.
    func padBackward(_ dy: Tensor, inShape: [Int], begin: [Int], end: [Int], mode: PadMode) throws -> Tensor {
        var g = dy
        for axis in inShape.indices where begin[axis] > 0 || end[axis] > 0 {
            g = try padBackwardAxis(g, axis: axis, inSize: inShape[axis], begin: begin[axis], mode: mode)
        }
        return g
    }

    /// dy with axis `axis` folded back from its padded size to `inSize`.
    private func padBackwardAxis(_ dy: Tensor, axis: Int, inSize: Int, begin: Int, mode: PadMode) throws -> Tensor {
        var shape = dy.shape
        let nOut = shape[axis]
        shape[axis] = inSize
        let dx = try make(shape)
        let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
        try launch("pad", "pad_backward_axis",
                   [.buffer(dx.device()), .buffer(dy.device())]
                   + [outer, nOut, inSize, inner, begin].map { .int(Int32($0)) } + [.int(mode.code)],
                   global: [inner, inSize, outer])
        return dx
    }
}
