// OpenCL launchers of the shared primitives (kernels in Sources/Kernels/*.cl).

extension OpenCLBackend {
    func copyStrided(into dst: Tensor, dstOffset: Int, from src: Tensor, srcOffset: Int, map: IndexMap) throws {
        let n = map.count
        guard n > 0 else { return }
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
                   global: [x.count])
        return out
    }

    func unaryBackward(_ op: Unary, gradOutput: Tensor, input: Tensor) throws -> Tensor {
        let out = try make(input.shape)
        try launch("elementwise", "unary_backward",
                   [.buffer(out.device()), .buffer(gradOutput.device()), .buffer(input.device()),
                    .int(Int32(input.count)), .int(op.function.rawValue), .float(op.alpha), .float(op.beta)],
                   global: [input.count])
        return out
    }

    func binaryForward(_ op: Binary, _ a: Tensor, _ b: Tensor, map: IndexMap) throws -> Tensor {
        let out = try make(map.dims)
        let n = out.count
        if a.shape == b.shape {
            try launch("elementwise", "binary_forward_same",
                       [.buffer(out.device()), .buffer(a.device()), .buffer(b.device()), .int(Int32(n)),
                        .int(op.function.rawValue)], global: [n])
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

    func matmul(_ a: Tensor, _ b: Tensor, bias: Tensor?, plan p: MatMul.Plan) throws -> Tensor {
        let out = try make([p.batch, p.m, p.n])
        guard p.m > 0, p.n > 0 else { return out }
        if p.k == 0 { try fill(out, value: 0) }
        let biasBuffer = try bias?.device() ?? out.device()
        try launch("matmul", "matmul_forward",
                   [.buffer(out.device()), .buffer(a.device()), .buffer(b.device()),
                    .buffer(biasBuffer), .int(bias == nil ? 0 : 1),
                    .int(Int32(p.m)), .int(Int32(p.n)), .int(Int32(p.k)),
                    .int(Int32(p.aBatchStride)), .int(Int32(p.aRowStride)), .int(Int32(p.aColStride)),
                    .int(Int32(p.bBatchStride)), .int(Int32(p.bRowStride)), .int(Int32(p.bColStride))],
                   global: [(p.n + 7) / 8, (p.m + 3) / 4, p.batch])
        return out
    }
}
