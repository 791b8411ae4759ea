// OpenCL launchers of inference batch normalization (kernels in Sources/Kernels/batchnorm.cl).

extension OpenCLBackend {
    func batchNormForward(_ x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor, variance: Tensor, epsilon: Float,
                          channels: Int, inner: Int) throws -> Tensor {
        let y = try make(x.shape)
        try launch("batchnorm", "batchnorm_forward",
                   [.buffer(y.device()), .buffer(x.device()), .buffer(gamma.device()), .buffer(beta.device()),
                    .buffer(mean.device()), .buffer(variance.device()),
                    .int(Int32(x.count)), .int(Int32(channels)), .int(Int32(inner)), .float(epsilon)],
                   global: [x.count])
        return y
    }

    func batchNormBackward(_ dy: Tensor, gamma: Tensor, variance: Tensor, epsilon: Float,
                           channels: Int, inner: Int) throws -> Tensor {
        let dx = try make(dy.shape)
        try launch("batchnorm", "batchnorm_backward_input",
                   [.buffer(dx.device()), .buffer(dy.device()), .buffer(gamma.device()), .buffer(variance.device()),
                    .int(Int32(dy.count)), .int(Int32(channels)), .int(Int32(inner)), .float(epsilon)],
                   global: [dy.count])
        return dx
    }
}
