import Foundation

// CPU reference of the attack kernels (Sources/Kernels/attack.cl). The arithmetic is that of the
// host-side attack loop this replaced (Perturbation.swift), so CPU runs give the same δ bit for bit.

extension CPUBackend {
    /// δ[i] += α·sign(g[i]), sign(0) = 0; in place.
    func attackSignStep(delta: Tensor, gradient: Tensor, alpha: Float) throws {
        let d = try delta.host().pointer, g = try gradient.host().pointer
        for i in 0..<delta.count { d[i] += alpha * Perturbation.signum(g[i]) }
    }

    /// δ[i] += α·g[i]/(‖g‖₂ + 1e-10), ‖g‖₂ accumulated in Double; in place.
    func attackNormalizedStep(delta: Tensor, gradient: Tensor, alpha: Float) throws {
        let d = try delta.host().pointer, g = try gradient.host()
        let n = Float(Perturbation.l2Norm(Array(g.buffer)) + 1e-10)
        for i in 0..<delta.count { d[i] += alpha * g.pointer[i] / n }
    }

    /// δ onto the ε-ball of `norm` (‖δ‖₂ in Double), then δ = clamp(x0 + δ, 0, 1) − x0; in place.
    func attackProject(delta: Tensor, original: Tensor, norm: PerturbationNorm, eps: Double) throws {
        let d = try delta.host().pointer, x0 = try original.host().pointer
        switch norm {
        case .linf:
            let e = Float(eps)
            for i in 0..<delta.count { d[i] = min(max(d[i], -e), e) }
        case .l2:
            let n = Perturbation.l2Norm(Array(try delta.host().buffer))
            if n > eps {
                let f = Float(eps / n)
                for i in 0..<delta.count { d[i] *= f }
            }
        }
        for i in 0..<delta.count { d[i] = min(max(x0[i] + d[i], 0), 1) - x0[i] }
    }

    /// out = clamp(p0 + clamp(round(255·clamp(x, 0, 1)) − p0, −bound, bound), 0, 255)/255 with
    /// p0 = round(255·x0) (NaN in x keeps p0); 255·x in Double as `Perturbation.quantize`.
    func attackQuantizeLinf(_ x: Tensor, original: Tensor, bound: Int) throws -> Tensor {
        let out = make(x.shape)
        let xp = try x.host().pointer, x0 = try original.host().pointer, o = try out.host().pointer
        for i in 0..<x.count {
            let p0 = Int((x0[i] * 255).rounded())
            let v = xp[i]
            let target = v.isNaN ? Double(p0) : Double(min(max(v, 0), 1)) * 255
            let q = min(max(Int(target.rounded()) - p0, -bound), bound)
            o[i] = Float(min(max(p0 + q, 0), 255)) / 255
        }
        return out
    }
}
