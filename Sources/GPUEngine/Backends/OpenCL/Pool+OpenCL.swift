// OpenCL launchers of the pooling operators (kernels in Sources/Kernels/pool.cl).

extension OpenCLBackend {
    func maxPoolForward(_ x: Tensor, geometry g: PoolGeometry) throws -> (output: Tensor, argmax: Tensor) {
        let y = try make(g.outputShape), idx = try make(g.outputShape)
        try launch("pool", "maxpool2d_forward",
                   [.buffer(y.device()), .buffer(idx.device()), .buffer(x.device()), .bytes(g.argumentBytes)],
                   global: [g.ow, g.oh, g.planes])
        return (y, idx)
    }

    func maxPoolBackward(_ dy: Tensor, argmax: Tensor, geometry g: PoolGeometry) throws -> Tensor {
        let dx = try make(g.inputShape)
        try launch("pool", "maxpool2d_backward_input",
                   [.buffer(dx.device()), .buffer(dy.device()), .buffer(argmax.device()), .bytes(g.argumentBytes)],
                   global: [g.w, g.h, g.planes])
        return dx
    }

    func avgPoolForward(_ x: Tensor, geometry g: PoolGeometry, countIncludePad: Bool) throws -> Tensor {
        let y = try make(g.outputShape)
        try launch("pool", "avgpool2d_forward",
                   [.buffer(y.device()), .buffer(x.device()), .bytes(g.argumentBytes), .int(countIncludePad ? 1 : 0)],
                   global: [g.ow, g.oh, g.planes])
        return y
    }

    func avgPoolBackward(_ dy: Tensor, geometry g: PoolGeometry, countIncludePad: Bool) throws -> Tensor {
        let dx = try make(g.inputShape)
        try launch("pool", "avgpool2d_backward_input",
                   [.buffer(dx.device()), .buffer(dy.device()), .bytes(g.argumentBytes), .int(countIncludePad ? 1 : 0)],
                   global: [g.w, g.h, g.planes])
        return dx
    }
}
