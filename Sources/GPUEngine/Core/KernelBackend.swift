import Foundation

/// Every kernel entry point of amgpu, once: what an operator (Ops/*.swift) or an optimizer step
/// calls, with one signature that both backends implement. An operator's file holds shapes and
/// math and calls `try backend.kernels.<entry>(...)`; it never asks which backend it runs on.
///
/// Conformances (the compiler checks each has every entry point):
/// - `CPUBackend` — the reference: plain Swift loops in `Backends/CPU/<Family>+CPU.swift`;
/// - `OpenCLBackend` — launchers of `Sources/Kernels/<family>.cl` in `Backends/OpenCL/<Family>+OpenCL.swift`.
///
/// A third backend, or a second OpenCL kernel variant picked by a tuner, is one new conformance
/// (a variant can be a subclass or wrapper of `OpenCLBackend` that overrides one launcher).
/// Conventions, as in the kernels: outputs are returned (or, for the in-place entries, the first
/// argument is written); inputs come next, then the values forward saved for backward, then
/// sizes. Tensors are dense, row-major fp32 on the conforming backend. Entry points do not
/// validate shapes: the operator has done that (they may trap on shapes the operator would reject).
protocol KernelBackend: Backend {
    // MARK: Shared primitives (CPUKernels.swift / OpenCLKernels.swift; shape.cl, elementwise.cl, reduce.cl, matmul.cl)

    /// dst[dstOffset + off0(i)] = src[srcOffset + off1(i)] for every index i of `map` (in place on dst).
    func copyStrided(into dst: Tensor, dstOffset: Int, from src: Tensor, srcOffset: Int, map: IndexMap) throws
    /// y = f(x) elementwise (`Unary.apply`), y shaped like x.
    func unaryForward(_ op: Unary, _ x: Tensor) throws -> Tensor
    /// dx = dy ⊙ f'(x) (`Unary.derivative`), all shaped like x.
    func unaryBackward(_ op: Unary, gradOutput: Tensor, input: Tensor) throws -> Tensor
    /// y[i] = a[off0(i)] ∘ b[off1(i)] over the broadcast shape `map.dims`.
    func binaryForward(_ op: Binary, _ a: Tensor, _ b: Tensor, map: IndexMap) throws -> Tensor
    /// d[i] = dy[i] · ∂(a ∘ b)/∂(a if which = 0 else b) at (a[off0(i)], b[off1(i)]), shaped `map.dims`
    /// (the caller sums it back to the input's shape).
    func binaryGrad(_ op: Binary, which: Int, gradOutput: Tensor, _ a: Tensor, _ b: Tensor, map: IndexMap) throws -> Tensor
    /// y[j] = scale · Σ_r x[kept.off0(j) + reduced.off0(r)], y shaped `outShape` (j over `kept`).
    func reduceSum(_ x: Tensor, outShape: [Int], kept: IndexMap, reduced: IndexMap, scale: Float) throws -> Tensor
    /// dx = dy · x / n, 0 where n = 0 (ReduceL2's backward; dy, x and n all shaped like x).
    func reduceL2Backward(gradOutput: Tensor, input: Tensor, norm: Tensor) throws -> Tensor
    /// C[batch, M, N] = op(A)·op(B) (+ bias[N] on every row), strides and transposes in `plan`.
    func matmul(_ a: Tensor, _ b: Tensor, bias: Tensor?, plan: MatMul.Plan) throws -> Tensor

    // MARK: Softmax, normalization, attention (softmax.cl, layernorm.cl, batchnorm.cl, attention.cl)

    /// y = softmax (or log-softmax when `log`) of x seen as [outer, n, inner], along n.
    func softmaxForward(_ x: Tensor, view: SoftmaxView, log: Bool) throws -> Tensor
    /// From the saved output y: softmax dx = y ⊙ (dy − Σ_n dy ⊙ y); log-softmax dx = dy − exp(y) · Σ_n dy.
    func softmaxBackward(_ dy: Tensor, output y: Tensor, view: SoftmaxView, log: Bool) throws -> Tensor
    /// x [rows, C] normalized over C: y = (x − μ) · rstd · weight + bias; returns (y, μ [rows], rstd [rows]).
    func layerNormForward(_ x: Tensor, weight: Tensor?, bias: Tensor?, epsilon: Float) throws -> (Tensor, Tensor, Tensor)
    /// dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)) per row, g = dy ⊙ weight, x̂ = (x − μ) · rstd.
    func layerNormBackward(_ dy: Tensor, x: Tensor, weight: Tensor?, mean: Tensor, rstd: Tensor) throws -> Tensor
    /// x seen as [N, channels, inner]: y = γ_c · (x − mean_c) / √(var_c + ε) + β_c (inference statistics).
    func batchNormForward(_ x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor, variance: Tensor, epsilon: Float,
                          channels: Int, inner: Int) throws -> Tensor
    /// dx = dy · γ_c / √(var_c + ε).
    func batchNormBackward(_ dy: Tensor, gamma: Tensor, variance: Tensor, epsilon: Float,
                           channels: Int, inner: Int) throws -> Tensor
    /// P [bh, Tq, Tk] = softmax over keys of scale · Q·Kᵀ (Q [bh, Tq, D], K [bh, Tk, D]).
    func attentionProbabilities(_ q: Tensor, _ k: Tensor, shape: AttentionShape, scale: Float) throws -> Tensor
    /// (O [bh, Tq, Dv] = P·V, what backward needs): P as in `attentionProbabilities`
    /// (`AttentionSaved.probabilities`), or, from the flash kernels, O and the row logsumexp L [bh, Tq]
    /// (`AttentionSaved.logSumExp`; P is never stored).
    func attentionForward(_ q: Tensor, _ k: Tensor, _ v: Tensor, shape: AttentionShape, scale: Float) throws -> (Tensor, AttentionSaved)
    /// (dQ, dK, dV), each only when wanted: dP is given (probabilities' backward, with `.probabilities`) or
    /// dO·Vᵀ; dS = scale · P ⊙ (dP − rowsum(dP ⊙ P)); dQ = dS·K, dK = dSᵀ·Q, dV = Pᵀ·dO. From `.logSumExp(O, L)`
    /// P = exp(S − L) is recomputed and rowsum(dP ⊙ P) = rowsum(dO ⊙ O); that path needs dO, Q, K and V.
    func attentionBackward(_ dO: Tensor?, q: Tensor?, k: Tensor?, v: Tensor?, saved: AttentionSaved, dP: Tensor?,
                           shape: AttentionShape, scale: Float,
                           want: (q: Bool, k: Bool, v: Bool)) throws -> (Tensor?, Tensor?, Tensor?)

    // MARK: Convolution, pooling, padding, resize (conv.cl, pool.cl, pad.cl, resize.cl)

    /// y = act(conv(x, W) + bias) on NCHW (`Conv2D`, and `ConvTranspose2D`'s backward); also returns the
    /// pre-activation z when `savePre` and there is an activation.
    func convForward(_ x: Tensor, weight: Tensor, bias: Tensor?, activation: Unary?, savePre: Bool,
                     geometry: ConvGeometry) throws -> (output: Tensor, pre: Tensor?)
    /// dx = the transposed convolution of dy with W (`Conv2D`'s backward to its input and
    /// `ConvTranspose2D`'s forward), plus an optional bias over dx's channels.
    func convBackwardInput(_ dy: Tensor, weight: Tensor, bias: Tensor?, geometry: ConvGeometry) throws -> Tensor
    /// y = max over each window's real pixels (first maximum on ties; 0 for a window of padding only);
    /// argmax = the winner's index iy·W + ix within its plane, as a float (−1 for none).
    func maxPoolForward(_ x: Tensor, geometry: PoolGeometry) throws -> (output: Tensor, argmax: Tensor)
    /// dx[plane, argmax[o]] += dy[o] for every output o.
    func maxPoolBackward(_ dy: Tensor, argmax: Tensor, geometry: PoolGeometry) throws -> Tensor
    /// y = Σ window / count (count with or without the padded positions per `countIncludePad`).
    func avgPoolForward(_ x: Tensor, geometry: PoolGeometry, countIncludePad: Bool) throws -> Tensor
    /// dx[i] = Σ over the windows that read i of dy / count.
    func avgPoolBackward(_ dy: Tensor, geometry: PoolGeometry, countIncludePad: Bool) throws -> Tensor
    /// y [outShape] = x padded by `begin` (and the end pads implied by outShape) in `mode` (`Pad`).
    func padForward(_ x: Tensor, outShape: [Int], begin: [Int], mode: PadMode, value: Float) throws -> Tensor
    /// dx [inShape][i] = Σ of dy over the output positions that read x[i] (`end` = the end pads per axis).
    func padBackward(_ dy: Tensor, inShape: [Int], begin: [Int], end: [Int], mode: PadMode) throws -> Tensor
    /// Separable two-tap `Resize` of x [N, C, H, W] to `outShape`: y[n, c, oy, ox] = Σ wy · wx · x[n, c, iy, ix] over
    /// the row taps (iy, wy) ∈ {(rows.i0[oy], rows.w0[oy]), (rows.i1[oy], rows.w1[oy])} and the column taps likewise.
    func resizeForward(_ x: Tensor, outShape: [Int], rows: ResizeAxisTable, cols: ResizeAxisTable) throws -> Tensor
    /// The adjoint of `resizeForward`: dx [inShape].
    func resizeBackward(_ dy: Tensor, inShape: [Int], rows: ResizeAxisTable, cols: ResizeAxisTable) throws -> Tensor

    // MARK: Image side (image.cl): transforms and regularizers of activation maximization

    /// Bilinear affine warp (`AffineWarp`): y [N·copies, C, Ho, Wo]; `params` [matrices, 16] from
    /// `AffineWarp.kernelParameters` (one row shared, or one per output image).
    func affineWarpForward(_ op: AffineWarp, _ x: Tensor, params: Tensor) throws -> Tensor
    /// The adjoint of `affineWarpForward`: dx [inputShape].
    func affineWarpBackward(_ op: AffineWarp, gradOutput: Tensor, inputShape: [Int], params: Tensor) throws -> Tensor
    /// torch.roll of x [planes, H, W] over its last two axes by (sy, sx), both already in [0, H) × [0, W).
    func roll(_ x: Tensor, planes: Int, height: Int, width: Int, sy: Int, sx: Int) throws -> Tensor
    /// y [outShape] [r, c] = a · x[r / copies, c] + b, with (a, b) = packed[e] ([E, 2]), e = c when `shared`, else r·C + c.
    func channelAffineForward(_ x: Tensor, outShape: [Int], copies: Int, packed: Tensor, shared: Bool) throws -> Tensor
    /// dx [inputShape] [n, c] = Σ_k a[n·copies + k, c] · dy[n·copies + k, c].
    func channelAffineBackward(_ gradOutput: Tensor, inputShape: [Int], copies: Int, packed: Tensor, shared: Bool) throws -> Tensor
    /// y[n, c, k] = Σ_p |d_p|^power over the neighbouring pixel pairs of kind k (`NeighborDifferences`).
    func neighborDifferencesForward(_ op: NeighborDifferences, _ x: Tensor, outShape: [Int]) throws -> Tensor
    /// dx: each pixel pair (a, b), d = x_a − x_b, adds ±dy[n, c, k] · f'(d) to its two pixels (f' = sign(d) or 2d).
    func neighborDifferencesBackward(_ op: NeighborDifferences, gradOutput: Tensor, _ x: Tensor) throws -> Tensor

    /// out = (1 − amount)·x + amount·blur(x) on x [planes, H, W]; blur = lucid's 3×3 kernel (centre 1,
    /// ring 0.5), zero padded, divided by the same convolution of ones.
    func blurStep(_ x: Tensor, planes: Int, height: Int, width: Int, amount: Float) throws -> Tensor

    // MARK: Optimizer steps (optim.cl): Optimizer+CPU.swift / Optimizer+OpenCL.swift

    /// PyTorch's Adam step, in place on p, m, v (all shaped like g), with g' = gradientSign · g:
    /// m += (1 − β1)(g' − m); v = β2·v + (1 − β2)·g'²; p −= stepSize · m / (√v / rootBiasCorrection2 + eps).
    func adamStep(parameters: Tensor, gradient: Tensor, m: Tensor, v: Tensor, beta1: Float, beta2: Float,
                  stepSize: Float, rootBiasCorrection2: Float, eps: Float, gradientSign: Float) throws
    /// t = min(max(t, low), high), in place.
    func clampInPlace(_ t: Tensor, low: Float, high: Float) throws
    /// True when no element of t is NaN or ±Inf.
    func allFinite(_ t: Tensor) throws -> Bool

    // MARK: Attack steps (attack.cl): Attack+CPU.swift / Attack+OpenCL.swift; callers in Adversarial/AttackKernels.swift

    /// δ ← δ + α·sign(g) in place (sign(0) = 0); δ, g same shape.
    func attackSignStep(delta: Tensor, gradient: Tensor, alpha: Float) throws
    /// δ ← δ + α·g/(‖g‖₂ + 1e-10) in place, the norm over all of g.
    func attackNormalizedStep(delta: Tensor, gradient: Tensor, alpha: Float) throws
    /// In place: δ ← clip(δ, −ε, ε) (L∞) or δ·min(1, ε/‖δ‖₂) (L2); then δ ← clip(x0 + δ, 0, 1) − x0.
    func attackProject(delta: Tensor, original: Tensor, norm: PerturbationNorm, eps: Double) throws
    /// out = (p0 + clamp(round(255·clamp(x, 0, 1)) − p0, −bound, bound))/255 with p0 = round(255·x0) (q = 0 where x is NaN).
    func attackQuantizeLinf(_ x: Tensor, original: Tensor, bound: Int) throws -> Tensor
}

extension Backend {
    /// This backend's kernel entry points. Every backend amgpu ships conforms to `KernelBackend`; a
    /// `Backend` from elsewhere that does not gets a clear error, never a crash.
    var kernels: any KernelBackend {
        get throws {
            guard let kernels = self as? any KernelBackend else {
                throw EngineError.unsupported("backend '\(name)' implements no amgpu kernels (it does not conform to KernelBackend)")
            }
            return kernels
        }
    }
}
