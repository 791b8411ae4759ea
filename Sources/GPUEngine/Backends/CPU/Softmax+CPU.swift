import Foundation

// CPU reference of softmax and log-softmax along one axis (see Ops/Softmax.swift). Sums in Double.

extension CPUBackend {
    /// Softmax (or log-softmax when `log`) of x seen as [outer, n, inner] along n.
    func softmaxForward(_ x: Tensor, view v: SoftmaxView, log: Bool) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("softmax_forward", started) }
        let y = make(x.shape)
        let xp = try x.host().pointer, yp = try y.host().pointer
        // Lines (o, i) split across threads; each line is the serial computation.
        forChunks(v.outer * v.inner, grain: max(1, CPUParallel.defaultGrain / max(v.n, 1))) { lo, hi in
            for line in lo..<hi {
                let o = line / max(v.inner, 1), i = line % max(v.inner, 1)
                let base = o * v.n * v.inner + i
                var m = -Double.infinity
                for k in 0..<v.n { m = max(m, Double(xp[base + k * v.inner])) }
                var sum = 0.0
                for k in 0..<v.n { sum += Foundation.exp(Double(xp[base + k * v.inner]) - m) }
                for k in 0..<v.n {
                    let z = Double(xp[base + k * v.inner]) - m
                    yp[base + k * v.inner] = Float(log ? z - Foundation.log(sum) : Foundation.exp(z) / sum)
                }
            }
        }
        return y
    }

    /// Softmax: dx = y ⊙ (dy − Σ dy ⊙ y); log-softmax: dx = dy − exp(y) · Σ dy.
    func softmaxBackward(_ dy: Tensor, output y: Tensor, view v: SoftmaxView, log: Bool) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("softmax_backward", started) }
        let dx = make(y.shape)
        let gp = try dy.host().pointer, yp = try y.host().pointer, dp = try dx.host().pointer
        forChunks(v.outer * v.inner, grain: max(1, CPUParallel.defaultGrain / max(v.n, 1))) { lo, hi in
            for line in lo..<hi {
                let o = line / max(v.inner, 1), i = line % max(v.inner, 1)
                let base = o * v.n * v.inner + i
                var s = 0.0
                for k in 0..<v.n {
                    let p = base + k * v.inner
                    s += log ? Double(gp[p]) : Double(gp[p]) * Double(yp[p])
                }
                for k in 0..<v.n {
                    let p = base + k * v.inner
                    let g = Double(gp[p]), yv = Double(yp[p])
                    dp[p] = Float(log ? g - Foundation.exp(yv) * s : yv * (g - s))
                }
            }
        }
        return dx
    }
}
