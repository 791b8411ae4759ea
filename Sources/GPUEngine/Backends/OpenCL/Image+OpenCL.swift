// OpenCL launchers of the image-side kernels (Sources/Kernels/image.cl); the optimizer steps are in Optimizer+OpenCL.swift.

extension OpenCLBackend {
    func affineWarpForward(_ op: AffineWarp, _ x: Tensor, params: Tensor) throws -> Tensor {
        let (n, c, h, w) = (x.shape[0] * op.copies, x.shape[1], x.shape[2], x.shape[3])
        let out = try make([n, c, op.outputHeight, op.outputWidth])
        try launch("image", "affine_warp_forward",
                   [.buffer(out.device()), .buffer(x.device()), .buffer(params.device()),
                    .int(Int32(c)), .int(Int32(h)), .int(Int32(w)),
                    .int(Int32(op.outputHeight)), .int(Int32(op.outputWidth)), .int(Int32(op.padding)),
                    .float(op.paddingValue), .float(op.fillValue), .int(op.replicate ? 1 : 0),
                    .int(op.matrices.count == 1 ? 0 : 1), .int(Int32(op.copies))],
                   global: [op.outputWidth, op.outputHeight, n])
        return out
    }

    func affineWarpBackward(_ op: AffineWarp, gradOutput g: Tensor, inputShape: [Int], params: Tensor) throws -> Tensor {
        let (n, c, h, w) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let dx = try make(inputShape)
        try launch("image", "affine_warp_backward_input",
                   [.buffer(dx.device()), .buffer(g.device()), .buffer(params.device()),
                    .int(Int32(c)), .int(Int32(h)), .int(Int32(w)),
                    .int(Int32(op.outputHeight)), .int(Int32(op.outputWidth)), .int(Int32(op.padding)),
                    .int(op.replicate ? 1 : 0), .int(op.matrices.count == 1 ? 0 : 1), .int(Int32(op.copies))],
                   global: [w, h, n])
        return dx
    }

    func blurStep(_ x: Tensor, planes: Int, height: Int, width: Int, amount: Float) throws -> Tensor {
        let out = try make(x.shape)
        try launch("image", "blur_step",
                   [.buffer(out.device()), .buffer(x.device()), .int(Int32(height)), .int(Int32(width)), .float(amount)],
                   global: [width, height, planes])
        return out
    }

    func roll(_ x: Tensor, planes: Int, height: Int, width: Int, sy: Int, sx: Int) throws -> Tensor {
        let out = try make(x.shape)
        try launch("image", "roll_forward",
                   [.buffer(out.device()), .buffer(x.device()), .int(Int32(height)), .int(Int32(width)),
                    .int(Int32(sy)), .int(Int32(sx))],
                   global: [width, height, planes])
        return out
    }

    func channelAffineForward(_ x: Tensor, outShape: [Int], copies: Int, packed: Tensor, shared: Bool) throws -> Tensor {
        let out = try make(outShape)
        let (rows, c, hw) = (outShape[0], outShape[1], outShape[2] * outShape[3])
        try launch("image", "channel_affine_forward",
                   [.buffer(out.device()), .buffer(x.device()), .buffer(packed.device()),
                    .int(Int32(c)), .int(Int32(hw)), .int(Int32(copies)), .int(shared ? 1 : 0)],
                   global: [hw, c, rows])
        return out
    }

    func channelAffineBackward(_ g: Tensor, inputShape: [Int], copies: Int, packed: Tensor, shared: Bool) throws -> Tensor {
        let dx = try make(inputShape)
        let (n, c, hw) = (inputShape[0], inputShape[1], inputShape[2] * inputShape[3])
        try launch("image", "channel_affine_backward_input",
                   [.buffer(dx.device()), .buffer(g.device()), .buffer(packed.device()),
                    .int(Int32(c)), .int(Int32(hw)), .int(Int32(copies)), .int(shared ? 1 : 0)],
                   global: [hw, c, n])
        return dx
    }

    /// Kind codes packed 2 bits each (kind k in bits 2k, 2k+1).
    private func kindCodes(_ op: NeighborDifferences) -> Int32 {
        var codes: Int32 = 0
        for (k, kind) in op.kinds.enumerated() { codes |= Int32(kind.rawValue) << (2 * k) }
        return codes
    }

    func neighborDifferencesForward(_ op: NeighborDifferences, _ x: Tensor, outShape: [Int]) throws -> Tensor {
        let out = try make(outShape)
        let planes = x.shape[0] * x.shape[1]
        try launch("image", "neighbor_differences_forward",
                   [.buffer(out.device()), .buffer(x.device()), .int(Int32(x.shape[2])), .int(Int32(x.shape[3])),
                    .int(Int32(op.kinds.count)), .int(kindCodes(op)), .int(Int32(op.power))],
                   global: [op.kinds.count, planes])
        return out
    }

    func neighborDifferencesBackward(_ op: NeighborDifferences, gradOutput g: Tensor, _ x: Tensor) throws -> Tensor {
        let dx = try make(x.shape)
        let planes = x.shape[0] * x.shape[1]
        try launch("image", "neighbor_differences_backward_input",
                   [.buffer(dx.device()), .buffer(g.device()), .buffer(x.device()), .int(Int32(x.shape[2])),
                    .int(Int32(x.shape[3])), .int(Int32(op.kinds.count)), .int(kindCodes(op)), .int(Int32(op.power))],
                   global: [x.shape[3], x.shape[2], planes])
        return dx
    }
}
