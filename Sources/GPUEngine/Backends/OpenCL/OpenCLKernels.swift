// OpenCL launchers of the shared primitives (kernels in Sources/Kernels/*.cl).

extension OpenCLBackend {
    func copyStrided(into dst: Tensor, dstOffset: Int, from src: Tensor, srcOffset: Int, map: IndexMap) throws {
        let n = map.count
        guard n > 0 else { return }
        let m = map.simplified()
        if m.dims.count >= 2, m.strides0.last == 1, m.strides1.last == 1, let len = m.dims.last, len >= 16 {
            let rows = try IndexMap(dims: Array(m.dims.dropLast()), strides0: Array(m.strides0.dropLast()),
                                    strides1: Array(m.strides1.dropLast()))
            try launch("shape", "copy_rows",
                       [.buffer(dst.device()), .int(Int32(dstOffset)), .buffer(src.device()), .int(Int32(srcOffset)),
                        .int(Int32(rows.count)), .int(Int32(len)), .bytes(rows.argumentBytes)],
                       global: [rows.count])
            return
        }
        try launch("shape", "copy_strided",
                   [.buffer(dst.device()), .int(Int32(dstOffset)), .buffer(src.device()), .int(Int32(srcOffset)),
                    .int(Int32(n)), .bytes(map.argumentBytes)],
                   global: [n])
    }

    func unaryForward(_ op: Unary, _ x: Tensor) throws -> Tensor {
        let out = try make(x.shape)
        try launch("elementwise", "unary_forward",
                   [.buffer(out.device()), .buffer(x.device()), .int(Int32(x.count)),
                    .int(op.function.rawValue), .float(op.alpha), .float(op.beta)],
                   global: [x.count], options: "-DFIXED_OP=\(op.function.rawValue)")
        return out
    }

    func unaryBackward(_ op: Unary, gradOutput: Tensor, input: Tensor) throws -> Tensor {
        let out = try make(input.shape)
        try launch("elementwise", "unary_backward",
                   [.buffer(out.device()), .buffer(gradOutput.device()), .buffer(input.device()),
                    .int(Int32(input.count)), .int(op.function.rawValue), .float(op.alpha), .float(op.beta)],
                   global: [input.count], options: "-DFIXED_OP=\(op.function.rawValue)")
        return out
    }

    func binaryForward(_ op: Binary, _ a: Tensor, _ b: Tensor, map: IndexMap) throws -> Tensor {
        let out = try make(map.dims)
        let n = out.count
        if a.shape == b.shape {
            try launch("elementwise", "binary_forward_same",
                       [.buffer(out.device()), .buffer(a.device()), .buffer(b.device()), .int(Int32(n)),
                        .int(op.function.rawValue)], global: [n], options: "-DFIXED_OP=\(op.function.rawValue)")
        } else {
            try launch("elementwise", "binary_forward",
                       [.buffer(out.device()), .buffer(a.device()), .buffer(b.device()), .int(Int32(n)),
                        .int(op.function.rawValue), .bytes(map.simplified().argumentBytes)], global: [n])
        }
        return out
    }

    func binaryGrad(_ op: Binary, which: Int, gradOutput: Tensor, _ a: Tensor, _ b: Tensor, map: IndexMap) throws -> Tensor {
        let out = try make(map.dims)
        let n = out.count
        try launch("elementwise", "binary_grad",
                   [.buffer(out.device()), .buffer(gradOutput.device()), .buffer(a.device()), .buffer(b.device()),
                    .int(Int32(n)), .int(op.function.rawValue), .int(Int32(which)), .bytes(map.simplified().argumentBytes)],
                   global: [n])
        return out
    }

    func reduceSum(_ x: Tensor, outShape: [Int], kept: IndexMap, reduced: IndexMap, scale: Float) throws -> Tensor {
        let out = try make(outShape)
        let nOut = out.count
        try launch("reduce", "reduce_sum",
                   [.buffer(out.device()), .buffer(x.device()), .int(Int32(nOut)), .int(Int32(reduced.count)),
                    .bytes(kept.argumentBytes), .bytes(reduced.argumentBytes), .float(scale)],
                   global: [nOut])
        return out
    }

    /// dx = dy · x / n, 0 where n = 0 (`reduce_l2_backward_x`; all shaped like x).
    func reduceL2Backward(gradOutput: Tensor, input: Tensor, norm: Tensor) throws -> Tensor {
        let out = try make(input.shape)
        let n = input.count
        try launch("reduce", "reduce_l2_backward_x",
                   [.buffer(out.device()), .buffer(gradOutput.device()), .buffer(input.device()), .buffer(norm.device()),
                    .int(Int32(n))],
                   global: [n])
        return out
    }

    /// C = op(A)·op(B) (+ bias): on `matmul_tiled` when `gemmChoice` is tiled, else `matmul_8x16`.
    func matmul(_ a: Tensor, _ b: Tensor, bias: Tensor?, plan p: MatMul.Plan) throws -> Tensor {
        if let q = gemmChoice.tiledParameters, let out = try matmulTiled(a, b, bias: bias, plan: p, parameters: q) {
            return out
        }
        return try matmulCPUStyle(a, b, bias: bias, plan: p)
    }

    /// The CPU-style matmul: `matmul_8x16` on row-major B panels (packed by `matmul_pack_b` when needed).
    func matmulCPUStyle(_ a: Tensor, _ b: Tensor, bias: Tensor?, plan p: MatMul.Plan) throws -> Tensor {
        let out = try make([p.batch, p.m, p.n])
        guard p.m > 0, p.n > 0 else { return out }
        // The 8×16 kernel reads B as row-major rows readable 16 columns past every block start:
        // use B as is when it is row-major with N % 16 == 0, else copy it into a zero-padded panel.
        var panel = try b.device(), bBatchStride = p.bBatchStride, ldb = p.bRowStride
        if !(p.bColStride == 1 && p.n % 16 == 0) || p.k == 0 {
            ldb = (p.n + 15) / 16 * 16
            let batches = p.bBatchStride == 0 ? 1 : p.batch
            // Weights (immutable buffers) are packed once and the panel is kept with them.
            let key = "matmul_pack_b \(p.bBatchStride) \(p.bRowStride) \(p.bColStride) \(p.k) \(p.n) \(batches)"
            let source = try b.device()
            panel = try source.derived(key) {
                let packed = try context.makeBuffer(byteCount: batches * max(p.k, 1) * ldb * 4)
                if p.k > 0 {
                    try launch("matmul", "matmul_pack_b",
                               [.buffer(packed), .buffer(source), .int(Int32(p.bBatchStride)),
                                .int(Int32(p.bRowStride)), .int(Int32(p.bColStride)),
                                .int(Int32(p.k)), .int(Int32(p.n)), .int(Int32(ldb))],
                               global: [ldb / 16, (p.k + 15) / 16, batches])
                }
                return packed
            }
            bBatchStride = p.bBatchStride == 0 ? 0 : p.k * ldb
        }
        let biasBuffer = try bias?.device() ?? out.device()
        try launch("matmul", "matmul_8x16",
                   [.buffer(out.device()), .buffer(a.device()), .int(Int32(p.aBatchStride)),
                    .int(Int32(p.aRowStride)), .int(Int32(p.aColStride)),
                    .buffer(panel), .int(Int32(bBatchStride)), .int(Int32(ldb)),
                    .buffer(biasBuffer), .int(bias == nil ? 0 : 1),
                    .int(Int32(p.m)), .int(Int32(p.n)), .int(Int32(p.k))],
                   global: [(p.m + 7) / 8, (p.n + 15) / 16, p.batch])
        return out
    }
}
