// OpenCL launchers of the optimizer-step kernels (Sources/Kernels/optim.cl): Adam, clamp, finiteness check.

extension OpenCLBackend {
    func adamStep(parameters p: Tensor, gradient g: Tensor, m: Tensor, v: Tensor, beta1: Float, beta2: Float,
                  stepSize: Float, rootBiasCorrection2: Float, eps: Float, gradientSign: Float) throws {
        try launch("optim", "adam_step",
                   [.buffer(p.device()), .buffer(m.device()), .buffer(v.device()), .buffer(g.device()),
                    .int(Int32(p.count)), .float(beta1), .float(beta2), .float(stepSize),
                    .float(rootBiasCorrection2), .float(eps), .float(gradientSign)],
                   global: [p.count])
    }

    func clampInPlace(_ t: Tensor, low: Float, high: Float) throws {
        try launch("optim", "clamp_inplace", [.buffer(t.device()), .int(Int32(t.count)), .float(low), .float(high)],
                   global: [t.count])
    }

    func allFinite(_ t: Tensor) throws -> Bool {
        let flag = try full([1], value: 0)
        let workItems = min(t.count, 4096)
        try launch("optim", "all_finite", [.buffer(flag.device()), .buffer(t.device()), .int(Int32(t.count))],
                   global: [workItems])
        return try download(flag).values[0] == 0
    }
}
