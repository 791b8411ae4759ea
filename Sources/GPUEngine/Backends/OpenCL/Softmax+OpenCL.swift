// OpenCL launchers of softmax and log-softmax (kernels in Sources/Kernels/softmax.cl).

extension OpenCLBackend {
    func softmaxForward(_ x: Tensor, view v: SoftmaxView, log: Bool) throws -> Tensor {
        let y = try make(x.shape)
        let lanes = v.outer * v.inner
        guard lanes > 0, v.n > 0 else { return y }
        try launch("softmax", log ? "log_softmax_forward" : "softmax_forward",
                   [.buffer(y.device()), .buffer(x.device()), .int(Int32(v.outer)), .int(Int32(v.n)), .int(Int32(v.inner))],
                   global: [lanes])
        return y
    }

    func softmaxBackward(_ dy: Tensor, output y: Tensor, view v: SoftmaxView, log: Bool) throws -> Tensor {
        let dx = try make(y.shape)
        let lanes = v.outer * v.inner
        guard lanes > 0, v.n > 0 else { return dx }
        try launch("softmax", log ? "log_softmax_backward_x" : "softmax_backward_x",
                   [.buffer(dx.device()), .buffer(dy.device()), .buffer(y.device()),
                    .int(Int32(v.outer)), .int(Int32(v.n)), .int(Int32(v.inner))],
                   global: [lanes])
        return dx
    }
}
