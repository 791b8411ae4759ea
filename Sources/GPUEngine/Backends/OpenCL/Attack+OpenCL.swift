// OpenCL launchers of the attack kernels (Sources/Kernels/attack.cl).

extension OpenCLBackend {
    /// Σ x² into a new [1] tensor (one work group of 128).
    func attackSumSquares(_ x: Tensor) throws -> Tensor {
        let out = try make([1])
        let local = 128
        try launch("attack", "attack_sum_squares",
                   [.buffer(out.device()), .buffer(x.device()), .int(Int32(x.count)), .local(local * MemoryLayout<Float>.size)],
                   global: [local], local: [local])
        return out
    }

    func attackSignStep(delta: Tensor, gradient: Tensor, alpha: Float) throws {
        try launch("attack", "attack_sign_step",
                   [.buffer(delta.device()), .buffer(gradient.device()), .int(Int32(delta.count)), .float(alpha)],
                   global: [delta.count])
    }

    func attackNormalizedStep(delta: Tensor, gradient: Tensor, alpha: Float) throws {
        let sumsq = try attackSumSquares(gradient)
        try launch("attack", "attack_normalized_step",
                   [.buffer(delta.device()), .buffer(gradient.device()), .buffer(sumsq.device()),
                    .int(Int32(delta.count)), .float(alpha)],
                   global: [delta.count])
    }

    func attackProject(delta: Tensor, original: Tensor, norm: PerturbationNorm, eps: Double) throws {
        let sumsq = norm == .l2 ? try attackSumSquares(delta) : delta
        try launch("attack", "attack_project",
                   [.buffer(delta.device()), .buffer(original.device()), .buffer(sumsq.device()),
                    .int(Int32(delta.count)), .float(Float(eps)), .int(norm == .l2 ? 1 : 0)],
                   global: [delta.count])
    }

    func attackQuantizeLinf(_ x: Tensor, original: Tensor, bound: Int) throws -> Tensor {
        let out = try make(x.shape)
        try launch("attack", "attack_quantize_linf",
                   [.buffer(out.device()), .buffer(x.device()), .buffer(original.device()),
                    .int(Int32(x.count)), .int(Int32(bound))],
                   global: [x.count])
        return out
    }
}
