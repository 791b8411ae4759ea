// CPU reference of inference batch normalization.

extension CPUBackend {
    /// Per-channel scale gamma / √(var + ε), in Double.
    private func batchNormScale(_ gamma: UnsafeMutablePointer<Float>, _ variance: UnsafeMutablePointer<Float>,
                                _ epsilon: Float, _ c: Int) -> Double {
        Double(gamma[c]) / (Double(variance[c]) + Double(epsilon)).squareRoot()
    }

    func batchNormForward(_ x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor, variance: Tensor, epsilon: Float,
                          channels: Int, inner: Int) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("batchnorm_forward", started) }
        let y = make(x.shape)
        let xp = try x.host().pointer, yp = try y.host().pointer
        let gp = try gamma.host().pointer, bp = try beta.host().pointer, mp = try mean.host().pointer, vp = try variance.host().pointer
        let planes = x.count / max(inner, 1)
        // One (n, c) plane per iteration; planes split across threads (per element: bit-identical).
        forChunks(planes, grain: max(1, CPUParallel.defaultGrain / max(inner, 1))) { lo, hi in
            for plane in lo..<hi {
                let c = plane % channels
                let s = batchNormScale(gp, vp, epsilon, c), m = Double(mp[c]), b = Double(bp[c])
                let base = plane * inner
                for i in base..<(base + inner) { yp[i] = Float((Double(xp[i]) - m) * s + b) }
            }
        }
        return y
    }

    func batchNormBackward(_ dy: Tensor, gamma: Tensor, variance: Tensor, epsilon: Float,
                           channels: Int, inner: Int) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("batchnorm_backward", started) }
        let dx = make(dy.shape)
        let dyp = try dy.host().pointer, dxp = try dx.host().pointer
        let gp = try gamma.host().pointer, vp = try variance.host().pointer
        let planes = dy.count / max(inner, 1)
        forChunks(planes, grain: max(1, CPUParallel.defaultGrain / max(inner, 1))) { lo, hi in
            for plane in lo..<hi {
                let s = batchNormScale(gp, vp, epsilon, plane % channels)
                let base = plane * inner
                for i in base..<(base + inner) { dxp[i] = Float(Double(dyp[i]) * s) }
            }
        }
        return dx
    }
}
