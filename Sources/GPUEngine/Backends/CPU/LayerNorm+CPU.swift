import Foundation

// CPU reference of layer normalization (see Ops/LayerNorm.swift). Sums in Double.

extension CPUBackend {
    /// y, mean [rows], rstd [rows] for x [rows·C] normalized over its last axis.
    func layerNormForward(_ x: Tensor, weight: Tensor?, bias: Tensor?, epsilon: Float) throws -> (Tensor, Tensor, Tensor) {
        let started = profileStart(); defer { profileEnd("layernorm_forward", started) }
        let c = x.shape.last ?? 1
        let rows = x.count / max(c, 1)
        let y = make(x.shape), mean = make([rows]), rstd = make([rows])
        let xp = try x.host().pointer, yp = try y.host().pointer
        let mp = try mean.host().pointer, rp = try rstd.host().pointer
        let wp = try weight?.host().pointer, bp = try bias?.host().pointer
        // Rows split across threads; each row is the serial computation.
        forChunks(rows, grain: max(1, CPUParallel.defaultGrain / max(c, 1))) { lo, hi in
        for r in lo..<hi {
            let row = xp + r * c, out = yp + r * c
            var sum = 0.0
            for j in 0..<c { sum += Double(row[j]) }
            let mu = sum / Double(c)
            var sq = 0.0
            for j in 0..<c { let d = Double(row[j]) - mu; sq += d * d }
            let inv = 1 / (sq / Double(c) + Double(epsilon)).squareRoot()
            mp[r] = Float(mu)
            rp[r] = Float(inv)
            for j in 0..<c {
                var v = (Double(row[j]) - mu) * inv
                if let wp { v *= Double(wp[j]) }
                if let bp { v += Double(bp[j]) }
                out[j] = Float(v)
            }
        }
        }
        return (y, mean, rstd)
    }

    /// dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)) per row, g = dy ⊙ weight.
    func layerNormBackward(_ dy: Tensor, x: Tensor, weight: Tensor?, mean: Tensor, rstd: Tensor) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("layernorm_backward", started) }
        let c = x.shape.last ?? 1
        let rows = x.count / max(c, 1)
        let dx = make(x.shape)
        let xp = try x.host().pointer, gp = try dy.host().pointer, dp = try dx.host().pointer
        let mp = try mean.host().pointer, rp = try rstd.host().pointer
        let wp = try weight?.host().pointer
        forChunks(rows, grain: max(1, CPUParallel.defaultGrain / max(c, 1))) { lo, hi in
        for r in lo..<hi {
            let mu = Double(mp[r]), inv = Double(rp[r])
            var sg = 0.0, sgx = 0.0
            for j in 0..<c {
                let g = Double(gp[r * c + j]) * (wp.map { Double($0[j]) } ?? 1)
                sg += g
                sgx += g * (Double(xp[r * c + j]) - mu) * inv
            }
            let mg = sg / Double(c), mgx = sgx / Double(c)
            for j in 0..<c {
                let g = Double(gp[r * c + j]) * (wp.map { Double($0[j]) } ?? 1)
                let xh = (Double(xp[r * c + j]) - mu) * inv
                dp[r * c + j] = Float(inv * (g - mg - xh * mgx))
            }
        }
        }
        return dx
    }
}
