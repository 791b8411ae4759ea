import Foundation

/// The device-side step rules, projection and quantization of the attack loop, on one backend.
/// δ, g and x0 are tensors of equal shape (one example's [1, 3, H, W], or a batch for `quantizeLinf`),
/// in [0, 1] image units. Kernels: Sources/Kernels/attack.cl; CPU reference: Backends/CPU/Attack+CPU.swift
/// (the same arithmetic as `Perturbation`, so the CPU backend reproduces the former host loop exactly).
public enum AttackKernels {
    static func requireSameShape(_ a: Tensor, _ b: Tensor, _ what: String) throws {
        guard a.shape == b.shape else {
            throw EngineError.shapeMismatch("\(what): shapes \(a.shape) and \(b.shape) differ")
        }
    }

    /// FGSM/BIM/PGD L∞ ascent step, in place: δ ← δ + α·sign(g) (sign(0) = 0).
    public static func signStep(_ delta: Tensor, gradient: Tensor, alpha: Float, on backend: any Backend) throws {
        try requireSameShape(delta, gradient, "attack sign step")
        guard delta.count > 0 else { return }
        try backend.kernels.attackSignStep(delta: delta, gradient: gradient, alpha: alpha)
    }

    /// PGD L2 ascent step, in place: δ ← δ + α·g/(‖g‖₂ + 1e-10), the norm over all of `gradient`.
    public static func normalizedStep(_ delta: Tensor, gradient: Tensor, alpha: Float, on backend: any Backend) throws {
        try requireSameShape(delta, gradient, "attack normalized step")
        guard delta.count > 0 else { return }
        try backend.kernels.attackNormalizedStep(delta: delta, gradient: gradient, alpha: alpha)
    }

    /// Projection, in place (torchattacks' order): δ ← clip(δ, −ε, ε) (L∞) or δ·min(1, ε/‖δ‖₂) (L2, the
    /// norm over all of `delta`); then δ ← clip(x0 + δ, 0, 1) − x0.
    public static func project(_ delta: Tensor, original: Tensor, norm: PerturbationNorm, eps: Double,
                               on backend: any Backend) throws {
        try requireSameShape(delta, original, "attack projection")
        guard eps.isFinite, eps > 0 else { throw EngineError.invalidAttribute("attack projection: ε must be > 0, got \(eps)") }
        guard delta.count > 0 else { return }
        try backend.kernels.attackProject(delta: delta, original: original, norm: norm, eps: eps)
    }

    /// ⌊255·ε⌋: the largest change of an 8-bit value an L∞ attack of radius ε may make.
    public static func linfBound(eps: Double) -> Int { Int((eps * 255 + 1e-9).rounded(.down)) }

    /// The 8-bit image an L∞ attack writes for x = x0 + δ (`Perturbation.quantize` with `.linf`), as values
    /// k/255: with p0 = round(255·x0) (x0 must hold 8-bit values /255),
    ///   q = clamp(round(255·clamp(x, 0, 1)) − p0, −⌊255·ε⌋, ⌊255·ε⌋) (q = 0 where x is NaN),
    ///   out = (p0 + q)/255.   x, x0, out: same shape (any).
    public static func quantizeLinf(_ x: Tensor, original: Tensor, eps: Double, on backend: any Backend) throws -> Tensor {
        try requireSameShape(x, original, "attack quantization")
        let bound = linfBound(eps: eps)
        guard x.count > 0 else { return try backend.zeros(x.shape) }
        return try backend.kernels.attackQuantizeLinf(x, original: original, bound: bound)
    }
}
