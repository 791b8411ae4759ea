// CPU references of the optimizer-step kernels (optim.cl): Adam, clamp, finiteness check. All in place.

extension CPUBackend {
    /// PyTorch's Adam update, in place on p, m, v (the math is on `KernelBackend.adamStep`).
    func adamStep(parameters p: Tensor, gradient g: Tensor, m: Tensor, v: Tensor, beta1: Float, beta2: Float,
                  stepSize: Float, rootBiasCorrection2: Float, eps: Float, gradientSign: Float) throws {
        let started = profileStart(); defer { profileEnd("adam_step", started) }
        let pp = try p.host().pointer, gp = try g.host().pointer, mp = try m.host().pointer, vp = try v.host().pointer
        forChunks(p.count) { lo, hi in
          for i in lo..<hi {
            let grad = gradientSign * gp[i]
            mp[i] = mp[i] + (1 - beta1) * (grad - mp[i])
            vp[i] = beta2 * vp[i] + (1 - beta2) * grad * grad
            let denom = vp[i].squareRoot() / rootBiasCorrection2 + eps
            pp[i] -= stepSize * mp[i] / denom
          }
        }
    }

    func clampInPlace(_ t: Tensor, low: Float, high: Float) throws {
        let started = profileStart(); defer { profileEnd("clamp", started) }
        let p = try t.host().pointer
        for i in 0..<t.count { p[i] = min(max(p[i], low), high) }
    }

    func allFinite(_ t: Tensor) throws -> Bool {
        let started = profileStart(); defer { profileEnd("all_finite", started) }
        let p = try t.host().pointer
        for i in 0..<t.count where !p[i].isFinite { return false }
        return true
    }
}
