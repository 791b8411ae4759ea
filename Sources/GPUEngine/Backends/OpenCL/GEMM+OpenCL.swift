// OpenCL launcher of the GPU-style GEMM variant (kernel `matmul_tiled` in Sources/Kernels/gemm.cl).

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
}
