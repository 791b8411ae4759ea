// OpenCL launchers of layer normalization (kernels in Sources/Kernels/layernorm.cl).

extension OpenCLBackend {
    func layerNormForward(_ x: Tensor, weight: Tensor?, bias: Tensor?, epsilon: Float) throws -> (Tensor, Tensor, Tensor) {
        let c = x.shape.last ?? 1
        let rows = x.count / max(c, 1)
        let y = try make(x.shape), mean = try make([rows]), rstd = try make([rows])
        guard rows > 0 else { return (y, mean, rstd) }
        let yb = try y.device()
        try launch("layernorm", "layernorm_forward",
                   [.buffer(yb), .buffer(mean.device()), .buffer(rstd.device()),
                    .buffer(x.device()), .buffer(weight?.device() ?? yb), .buffer(bias?.device() ?? yb),
                    .int(Int32(rows)), .int(Int32(c)), .int(weight == nil ? 0 : 1), .int(bias == nil ? 0 : 1),
                    .float(epsilon)],
                   global: [rows])
        return (y, mean, rstd)
    }

    func layerNormBackward(_ dy: Tensor, x: Tensor, weight: Tensor?, mean: Tensor, rstd: Tensor) throws -> Tensor {
        let c = x.shape.last ?? 1
        let rows = x.count / max(c, 1)
        let dx = try make(x.shape)
        guard rows > 0 else { return dx }
        let dxb = try dx.device()
        try launch("layernorm", "layernorm_backward_x",
                   [.buffer(dxb), .buffer(dy.device()), .buffer(x.device()), .buffer(weight?.device() ?? dxb),
                    .buffer(mean.device()), .buffer(rstd.device()),
                    .int(Int32(rows)), .int(Int32(c)), .int(weight == nil ? 0 : 1)],
                   global: [rows])
        return dx
    }
}
