// OpenCL launchers of Resize (kernels in Sources/Kernels/resize.cl).

extension OpenCLBackend {
    /// Uploads the packed per-axis tables.
    private func resizeTables(_ rows: ResizeAxisTable, _ cols: ResizeAxisTable) throws -> (Tensor, Tensor) {
        let r = rows.packed, c = cols.packed
        return (try tensor(HostTensor(shape: [r.count], values: r)), try tensor(HostTensor(shape: [c.count], values: c)))
    }

    func resizeForward(_ x: Tensor, outShape: [Int], rows: ResizeAxisTable, cols: ResizeAxisTable) throws -> Tensor {
        let y = try make(outShape)
        let (ty, tx) = try resizeTables(rows, cols)
        let planes = outShape[0] * outShape[1]
        try launch("resize", "resize_forward",
                   [.buffer(y.device()), .buffer(x.device()), .buffer(ty.device()), .buffer(tx.device())]
                   + [planes, x.shape[2], x.shape[3], outShape[2], outShape[3]].map { .int(Int32($0)) },
                   global: [outShape[3], outShape[2], planes])
        return y
    }

    func resizeBackward(_ dy: Tensor, inShape: [Int], rows: ResizeAxisTable, cols: ResizeAxisTable) throws -> Tensor {
        let dx = try make(inShape)
        let (ty, tx) = try resizeTables(rows, cols)
        let planes = inShape[0] * inShape[1]
        try launch("resize", "resize_backward_input",
                   [.buffer(dx.device()), .buffer(dy.device()), .buffer(ty.device()), .buffer(tx.device())]
                   + [planes, inShape[2], inShape[3], dy.shape[2], dy.shape[3]].map { .int(Int32($0)) },
                   global: [inShape[3], inShape[2], planes])
        return dx
    }
}
