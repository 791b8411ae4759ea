/// Layer normalization over the last axis (PyTorch `nn.LayerNorm(C)`, timm's `norm1`/`norm2`/`norm`):
///
///     μ_r = mean_c x[r, c],  σ²_r = mean_c (x[r, c] − μ_r)²  (biased),  rstd_r = 1 / √(σ²_r + ε)
///     y[r, c] = (x[r, c] − μ_r) · rstd_r · weight[c] + bias[c]
///
/// - Inputs: x [..., C]; optionally weight [C] and bias [C] (1, 2 or 3 inputs: no affine, scale only,
///   scale and shift). Rows r run over the leading dimensions.
/// - Output: shaped like x. Forward saves μ and rstd, each [rows], for backward.
/// - Backward, with x̂ = (x − μ)·rstd and g = dy ⊙ weight:
///   dx = rstd · (g − mean_c g − x̂ · mean_c(g ⊙ x̂)); dweight = Σ_r dy ⊙ x̂; dbias = Σ_r dy
///   (the last two only when weight or bias depend on the graph input, which weights never do).
///
/// Kernels: `layernorm.cl` (`layernorm_forward`, `layernorm_backward_x`); CPU reference in
/// `Backends/CPU/LayerNorm+CPU.swift`.
public struct LayerNorm: Operator {
    public var epsilon: Float

    /// `epsilon` 1e-5 is PyTorch's default; timm ViTs use 1e-6.
    public init(epsilon: Float = 1e-5) {
        self.epsilon = epsilon
    }

    public var typeName: String { "LayerNorm" }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        guard (1...3).contains(inputShapes.count) else {
            throw EngineError.invalidGraph("LayerNorm takes 1 to 3 inputs (x, weight, bias), got \(inputShapes.count)")
        }
        let x = inputShapes[0]
        guard let c = x.last, c > 0 else {
            throw EngineError.shapeMismatch("LayerNorm needs an input of rank ≥ 1 with a non-empty last axis, got \(x)")
        }
        for (i, s) in inputShapes.enumerated().dropFirst() where s != [c] {
            throw EngineError.shapeMismatch("LayerNorm \(i == 1 ? "weight" : "bias") must have shape [\(c)] (the last axis of \(x)), got \(s)")
        }
        guard epsilon >= 0, epsilon.isFinite else {
            throw EngineError.invalidAttribute("LayerNorm epsilon must be finite and ≥ 0, got \(epsilon)")
        }
        return x
    }

    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) {
        // dx reads x and weight; dweight reads x; dbias reads nothing but dy.
        var uses = [needsGrad[0] || (needsGrad.count > 1 && needsGrad[1])]
        if needsGrad.count > 1 { uses.append(needsGrad[0]) }
        if needsGrad.count > 2 { uses.append(false) }
        return (uses, false)
    }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        _ = try outputShape(inputs.map(\.shape))
        let weight = inputs.count > 1 ? inputs[1] : nil
        let bias = inputs.count > 2 ? inputs[2] : nil
        let (y, mean, rstd) = try backend.kernels.layerNormForward(inputs[0], weight: weight, bias: bias, epsilon: epsilon)
        return OpResult(y, saved: [mean, rstd])
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        guard context.saved.count == 2 else {
            throw EngineError.invalidGraph("LayerNorm backward needs the mean and rstd its forward saved")
        }
        let mean = context.saved[0], rstd = context.saved[1]
        let dy = context.gradOutput
        var grads: [Tensor?] = Array(repeating: nil, count: context.inputShapes.count)
        if context.needsGrad[0] {
            let x = try context.input(0)
            let weight = context.inputShapes.count > 1 ? try context.input(1) : nil
            grads[0] = try backend.kernels.layerNormBackward(dy, x: x, weight: weight, mean: mean, rstd: rstd)
        }
        // Gradients of weight and bias: only reached when they are computed from the graph input.
        let c = context.inputShapes[0].last ?? 1
        let rows = context.inputShapes[0].reduce(1, *) / max(c, 1)
        let dy2 = try dy.reshaped([rows, c])
        if context.inputShapes.count > 1, context.needsGrad[1] {
            let x = try context.input(0).reshaped([rows, c])
            let centered = try backend.run(Binary(.sub), x, mean.reshaped([rows, 1]))
            let xhat = try backend.run(Binary(.mul), centered, rstd.reshaped([rows, 1]))
            let prod = try backend.run(Binary(.mul), dy2, xhat)
            grads[1] = try backend.run(Reduce(.sum, axes: [0]), prod)
        }
        if context.inputShapes.count > 2, context.needsGrad[2] {
            grads[2] = try backend.run(Reduce(.sum, axes: [0]), dy2)
        }
        return grads
    }
}
