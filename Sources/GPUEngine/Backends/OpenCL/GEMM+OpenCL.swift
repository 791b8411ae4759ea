// OpenCL launchers of the GPU-style GEMM variant (Sources/Kernels/gemm.cl): `matmul_tiled`, and the
// implicit-GEMM convolutions `conv2d_forward_tiled` and `conv2d_backward_input_tiled` on the same tiles.

/// One strided GEMM for `matmul_tiled`: C[b·cBatchStride + m·N + n] = Σ_k A(b, m, k)·B(b, k, n) + bias,
/// A(b, m, k) = A[b·aBatchStride + m·aRowStride + k·aColStride], B(b, k, n) = B[b·bBatchStride + k·bRowStride + n·bColStride],
/// bias indexed by n (a matmul's) or by m (`biasPerRow`: a convolution's output channel).
/// Each operand needs one unit stride (aColStride or aRowStride; bColStride or bRowStride).
struct StridedGEMM: Hashable {
    var batch: Int, m: Int, n: Int, k: Int
    var aBatchStride: Int, aRowStride: Int, aColStride: Int
    var bBatchStride: Int, bRowStride: Int, bColStride: Int
    var cBatchStride: Int
    var biasPerRow = false

    init(batch: Int, m: Int, n: Int, k: Int, aBatchStride: Int, aRowStride: Int, aColStride: Int,
         bBatchStride: Int, bRowStride: Int, bColStride: Int, cBatchStride: Int, biasPerRow: Bool = false) {
        self.batch = batch; self.m = m; self.n = n; self.k = k
        self.aBatchStride = aBatchStride; self.aRowStride = aRowStride; self.aColStride = aColStride
        self.bBatchStride = bBatchStride; self.bRowStride = bRowStride; self.bColStride = bColStride
        self.cBatchStride = cBatchStride; self.biasPerRow = biasPerRow
    }

    /// A matmul plan as a GEMM into a contiguous [batch, M, N] output.
    init(_ p: MatMul.Plan) {
        self.init(batch: p.batch, m: p.m, n: p.n, k: p.k,
                  aBatchStride: p.aBatchStride, aRowStride: p.aRowStride, aColStride: p.aColStride,
                  bBatchStride: p.bBatchStride, bRowStride: p.bRowStride, bColStride: p.bColStride,
                  cBatchStride: p.m * p.n)
    }

    /// True when each operand has a unit stride along one of its axes (what gemm.cl's loaders need).
    var isSupported: Bool {
        (aColStride == 1 || aRowStride == 1) && (bColStride == 1 || bRowStride == 1)
    }
}

extension OpenCLBackend {
    /// Runs `matmul_tiled` with `parameters` into `out` (which holds at least batch·cBatchStride floats).
    /// Throws `unsupported` for an invalid parameter set or operands without a unit stride.
    func gemmTiled(into out: Tensor, _ a: Tensor, _ b: Tensor, bias: Tensor?, _ s: StridedGEMM,
                   parameters q: GEMMParameters) throws {
        if let why = q.invalidReason { throw EngineError.unsupported("GEMM parameters \(q): \(why)") }
        guard s.isSupported else {
            throw EngineError.unsupported("matmul_tiled needs a unit stride in each operand (A strides \(s.aRowStride), \(s.aColStride); B \(s.bRowStride), \(s.bColStride))")
        }
        guard s.m > 0, s.n > 0, s.batch > 0 else { return }
        let options = q.buildOptions(aMContiguous: s.aColStride != 1, bNContiguous: s.bColStride == 1,
                                     biasPerRow: s.biasPerRow)
        let biasBuffer = try bias?.device() ?? out.device()
        try launch("gemm", "matmul_tiled",
                   [.buffer(try out.device()), .int(Int32(s.cBatchStride)),
                    .buffer(try a.device()), .int(Int32(s.aBatchStride)), .int(Int32(s.aRowStride)), .int(Int32(s.aColStride)),
                    .buffer(try b.device()), .int(Int32(s.bBatchStride)), .int(Int32(s.bRowStride)), .int(Int32(s.bColStride)),
                    .buffer(biasBuffer), .int(bias == nil ? 0 : 1),
                    .int(Int32(s.m)), .int(Int32(s.n)), .int(Int32(s.k))],
                   global: [(s.m + q.mwg - 1) / q.mwg * q.mdimc, (s.n + q.nwg - 1) / q.nwg * q.ndimc, s.batch],
                   local: [q.mdimc, q.ndimc, 1], options: options)
        recordTiledLaunch(q)
    }

    /// A matmul on `matmul_tiled`, or nil when an operand has no unit stride (the caller falls back).
    func matmulTiled(_ a: Tensor, _ b: Tensor, bias: Tensor?, plan p: MatMul.Plan, parameters q: GEMMParameters) throws -> Tensor? {
        let s = StridedGEMM(p)
        guard s.isSupported else { return nil }
        let out = try make([p.batch, p.m, p.n])
        try gemmTiled(into: out, a, b, bias: bias, s, parameters: q)
        return out
    }

    /// The GEMM of a pointwise convolution's forward, per image n (P = H·W pixels):
    /// y[n] (Cout × P) = W (Cout × Cin) · x[n] (Cin × P) + bias[co].
    static func pointwiseForwardGEMM(_ g: ConvGeometry) -> StridedGEMM {
        let p = g.oh * g.ow
        return StridedGEMM(batch: g.n, m: g.cout, n: p, k: g.cin, aBatchStride: 0, aRowStride: g.cin, aColStride: 1,
                           bBatchStride: g.cin * p, bRowStride: p, bColStride: 1, cBatchStride: g.cout * p, biasPerRow: true)
    }

    /// The GEMM of a pointwise convolution's backward-to-input, per image n:
    /// dx[n] (Cin × P) = Wᵀ (Cin × Cout) · dy[n] (Cout × P) (+ bias[ci], ConvTranspose2D's forward).
    static func pointwiseBackwardInputGEMM(_ g: ConvGeometry) -> StridedGEMM {
        let p = g.h * g.w
        return StridedGEMM(batch: g.n, m: g.cin, n: p, k: g.cout, aBatchStride: 0, aRowStride: 1, aColStride: g.cin,
                           bBatchStride: g.cout * p, bRowStride: p, bColStride: 1, cBatchStride: g.cin * p, biasPerRow: true)
    }

    /// A pointwise (1×1, stride 1, unpadded, ungrouped) convolution's forward on `matmul_tiled`, the
    /// activation as a separate unary kernel (z returned as `pre` when asked); nil for other convolutions.
    func convForwardPointwiseTiled(_ x: Tensor, weight: Tensor, bias: Tensor?, activation: Unary?, savePre: Bool,
                                   geometry g: ConvGeometry, parameters q: GEMMParameters) throws -> (output: Tensor, pre: Tensor?)? {
        guard g.isPointwise, g.groups == 1 else { return nil }
        let z = try make(g.outputShape)
        try gemmTiled(into: z, weight, x, bias: bias, Self.pointwiseForwardGEMM(g), parameters: q)
        guard let activation else { return (z, nil) }
        return (try unaryForward(activation, z), savePre ? z : nil)
    }

    /// A pointwise convolution's backward-to-input on `matmul_tiled`; nil for other convolutions.
    func convBackwardInputPointwiseTiled(_ dy: Tensor, weight: Tensor, bias: Tensor?, geometry g: ConvGeometry,
                                         parameters q: GEMMParameters) throws -> Tensor? {
        guard g.isPointwise, g.groups == 1 else { return nil }
        let dx = try make(g.inputShape)
        try gemmTiled(into: dx, weight, dy, bias: bias, Self.pointwiseBackwardInputGEMM(g), parameters: q)
        return dx
    }

    /// Whether the implicit-GEMM convolution kernels serve a geometry: every convolution except depthwise ones
    /// (groups > 1 with one input channel per group: a GEMM with M = Cout/G — usually 1 — wastes almost all of
    /// a tile; conv.cl's `conv2d_forward_depthwise` and the gather backward run those).
    static func tiledConvSupports(_ g: ConvGeometry) -> Bool { !(g.groups > 1 && g.cinG == 1) }

    /// A convolution's forward on the tiled GEMM family: a pointwise ungrouped one on `matmul_tiled`
    /// (`convForwardPointwiseTiled`), any other supported one (`tiledConvSupports`) on `conv2d_forward_tiled`:
    /// per (image, group) the GEMM y (Cout/G × OH·OW) = W[group] (Cout/G × Cin/G·kH·kW) · im2col(x) with the
    /// im2col addresses computed while B's tiles are staged, bias, the fused activation (those in
    /// `convFusedActivations`; others run as a unary kernel) and z = the pre-activation when `savePre`.
    /// nil for a depthwise convolution (the caller falls back to conv.cl's direct kernels).
    func convForwardTiled(_ x: Tensor, weight: Tensor, bias: Tensor?, activation: Unary?, savePre: Bool,
                          geometry g: ConvGeometry, parameters q: GEMMParameters) throws -> (output: Tensor, pre: Tensor?)? {
        if g.isPointwise && g.groups == 1 {
            return try convForwardPointwiseTiled(x, weight: weight, bias: bias, activation: activation, savePre: savePre,
                                                 geometry: g, parameters: q)
        }
        guard Self.tiledConvSupports(g) else { return nil }
        if let why = q.invalidReason { throw EngineError.unsupported("GEMM parameters \(q): \(why)") }
        let fused = activation.map { Self.convFusedActivations.contains($0.function) } ?? true
        let act = fused ? activation : nil
        let y = try make(g.outputShape)
        let pre = act != nil && savePre ? try make(g.outputShape) : nil
        if g.n > 0 && g.cout > 0 {
            let m = g.coutG, p = g.oh * g.ow
            try launch("gemm", "conv2d_forward_tiled",
                       [.buffer(try y.device()), .buffer(try pre?.device() ?? y.device()), .buffer(try x.device()),
                        .buffer(try weight.device()), .buffer(try bias?.device() ?? weight.device()), .int(bias == nil ? 0 : 1),
                        .int(pre == nil ? 0 : 1), .int(act?.function.rawValue ?? -1), .float(act?.alpha ?? 0),
                        .float(act?.beta ?? 0), .bytes(g.argumentBytes)],
                       global: [(m + q.mwg - 1) / q.mwg * q.mdimc, (p + q.nwg - 1) / q.nwg * q.ndimc, g.n * g.groups],
                       local: [q.mdimc, q.ndimc, 1],
                       options: q.buildOptions(aMContiguous: false, bNContiguous: true, biasPerRow: true))
            recordTiledLaunch(q)
        }
        guard let activation, !fused else { return (y, pre) }
        return (try unaryForward(activation, y), savePre ? y : nil)
    }

    /// A convolution's backward-to-input (`ConvTranspose2D`'s forward, with bias over dx's channels) on the
    /// tiled GEMM family: pointwise ungrouped on `matmul_tiled`, any other supported one on
    /// `conv2d_backward_input_tiled`: per (image, group, stride phase (ry, rx) ∈ [0, sH) × [0, sW)) the GEMM
    /// dx[phase pixels] (Cin/G × its pixels) = Wᵀ (Cin/G × Cout/G·taps) · dy gathered (Cout/G·taps × pixels), over
    /// only the taps that reach that phase (no multiply by a structural zero, no atomics; a 16×16/s16 patch
    /// embedding has one tap per phase). The weight is regrouped once by conv.cl's `conv2d_pack_weight` (kept
    /// with an immutable weight, shared with the direct kernel). nil for a depthwise convolution.
    func convBackwardInputTiled(_ dy: Tensor, weight: Tensor, bias: Tensor?, geometry g: ConvGeometry,
                                parameters q: GEMMParameters) throws -> Tensor? {
        if g.isPointwise && g.groups == 1 {
            return try convBackwardInputPointwiseTiled(dy, weight: weight, bias: bias, geometry: g, parameters: q)
        }
        guard Self.tiledConvSupports(g) else { return nil }
        if let why = q.invalidReason { throw EngineError.unsupported("GEMM parameters \(q): \(why)") }
        let dx = try make(g.inputShape)
        guard g.n > 0 && g.cin > 0 && g.h > 0 && g.w > 0 else { return dx }
        let packed = try packedConvWeight(weight, geometry: g)
        let maxPixels = ((g.h + g.sh - 1) / g.sh) * ((g.w + g.sw - 1) / g.sw)
        try launch("gemm", "conv2d_backward_input_tiled",
                   [.buffer(try dx.device()), .buffer(try dy.device()), .buffer(packed),
                    .buffer(try bias?.device() ?? weight.device()), .int(bias == nil ? 0 : 1), .bytes(g.argumentBytes)],
                   global: [(g.cinG + q.mwg - 1) / q.mwg * q.mdimc, (maxPixels + q.nwg - 1) / q.nwg * q.ndimc,
                            g.n * g.groups * g.sh * g.sw],
                   local: [q.mdimc, q.ndimc, 1],
                   options: q.buildOptions(aMContiguous: false, bNContiguous: true, biasPerRow: true))
        recordTiledLaunch(q)
        return dx
    }
}
