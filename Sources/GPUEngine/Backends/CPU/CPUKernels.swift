import COpenBLAS
import Foundation

// CPU reference implementations of the shared primitives. Plain loops, written to be obviously
// correct; accumulations in Double where sums are long.

extension CPUBackend {
    func copyStrided(into dst: Tensor, dstOffset: Int, from src: Tensor, srcOffset: Int, map: IndexMap) throws {
        let started = profileStart(); defer { profileEnd("copy_strided", started) }
        let d = try dst.host().pointer + dstOffset
        let s = try src.host().pointer + srcOffset
        map.forEach { o0, o1 in d[o0] = s[o1] }
    }

    func unaryForward(_ op: Unary, _ x: Tensor) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("unary_forward", started) }
        let out = make(x.shape)
        let xp = try x.host().pointer, yp = try out.host().pointer
        forChunks(x.count) { lo, hi in
            for i in lo..<hi { yp[i] = Float(op.apply(Double(xp[i]))) }
        }
        return out
    }

    func unaryBackward(_ op: Unary, gradOutput: Tensor, input: Tensor) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("unary_backward", started) }
        let out = make(input.shape)
        let xp = try input.host().pointer, gp = try gradOutput.host().pointer, dp = try out.host().pointer
        forChunks(input.count) { lo, hi in
            for i in lo..<hi { dp[i] = gp[i] * Float(op.derivative(Double(xp[i]))) }
        }
        return out
    }

    func binaryForward(_ op: Binary, _ a: Tensor, _ b: Tensor, map: IndexMap) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("binary_forward", started) }
        let out = make(map.dims)
        let ap = try a.host().pointer, bp = try b.host().pointer, op_ = try out.host().pointer
        let walk = map.simplified()
        forChunks(map.count) { lo, hi in
            walk.forEach(from: lo, to: hi) { i, o0, o1 in op_[i] = op.apply(ap[o0], bp[o1]) }
        }
        return out
    }

    func binaryGrad(_ op: Binary, which: Int, gradOutput: Tensor, _ a: Tensor, _ b: Tensor, map: IndexMap) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("binary_grad", started) }
        let out = make(map.dims)
        let ap = try a.host().pointer, bp = try b.host().pointer, gp = try gradOutput.host().pointer
        let dp = try out.host().pointer
        let walk = map.simplified()
        forChunks(map.count) { lo, hi in
            walk.forEach(from: lo, to: hi) { i, o0, o1 in dp[i] = gp[i] * op.partial(which, ap[o0], bp[o1]) }
        }
        return out
    }

    func reduceSum(_ x: Tensor, outShape: [Int], kept: IndexMap, reduced: IndexMap, scale: Float) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("reduce_sum", started) }
        let out = make(outShape)
        let xp = try x.host().pointer, op = try out.host().pointer
        // Each output is one serial sum in `reduced` order; outputs are split across threads.
        let keptCount = kept.count, reducedCount = max(reduced.count, 1)
        forChunks(keptCount, grain: max(1, CPUParallel.defaultGrain / reducedCount)) { lo, hi in
            kept.forEach(from: lo, to: hi) { j, base, _ in
                var sum = 0.0
                reduced.forEach { r, _ in sum += Double(xp[base + r]) }
                op[j] = Float(sum) * scale
            }
        }
        return out
    }

    /// dx = dy · x / n, 0 where n = 0 (all three shaped like x; dy and n broadcast by the caller).
    func reduceL2Backward(gradOutput: Tensor, input: Tensor, norm: Tensor) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("reduce_l2_backward", started) }
        let out = make(input.shape)
        let gp = try gradOutput.host().pointer, xp = try input.host().pointer, np = try norm.host().pointer
        let dp = try out.host().pointer
        forChunks(input.count) { lo, hi in
            for i in lo..<hi { dp[i] = np[i] > 0 ? gp[i] * xp[i] / np[i] : 0 }
        }
        return out
    }

    func matmul(_ a: Tensor, _ b: Tensor, bias: Tensor?, plan p: MatMul.Plan) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("matmul", started) }
        let out = make([p.batch, p.m, p.n])
        let ap = try a.host().pointer, bp = try b.host().pointer, cp = try out.host().pointer
        // Row-major cblas: op(A) is M×K; a transposed A is stored K×M (column stride 1 → "Trans").
        let transA = p.transposeA, transB = p.transposeB
        let lda = transA ? p.m : p.k
        let ldb = transB ? p.k : p.n
        for batch in 0..<p.batch {
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(p.m), Int32(p.n), Int32(p.k), 1,
                        ap + batch * p.aBatchStride, Int32(max(lda, 1)),
                        bp + batch * p.bBatchStride, Int32(max(ldb, 1)), 0,
                        cp + batch * p.m * p.n, Int32(max(p.n, 1)))
        }
        if let bias {
            let biasPointer = try bias.host().pointer
            for row in 0..<(p.batch * p.m) {
                let c = cp + row * p.n
                for j in 0..<p.n { c[j] += biasPointer[j] }
            }
        }
        return out
    }
}
