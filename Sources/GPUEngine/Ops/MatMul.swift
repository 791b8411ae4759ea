/// Batched matrix multiply with optional transposes and bias:
/// C[..., m, n] = Σ_k op(A)[..., m, k] · op(B)[..., k, n] + bias[n]
/// - A: [..., M, K] ([..., K, M] when `transposeA`), rank ≥ 2.
/// - B: [..., K, N] ([..., N, K] when `transposeB`), rank ≥ 2.
/// - optional third input bias: [N].
/// - batch dimensions broadcast (numpy rules); output [broadcast batch..., M, N].
/// Backward: dA = dC·op(B)ᵀ, dB = op(A)ᵀ·dC (each laid out like its input), dbias = Σ dC.
public struct MatMul: Operator {
    public var transposeA: Bool
    public var transposeB: Bool

    public init(transposeA: Bool = false, transposeB: Bool = false) {
        self.transposeA = transposeA
        self.transposeB = transposeB
    }

    public var typeName: String { "MatMul" }

    /// Everything a kernel needs to run one product.
    struct Plan {
        var batch: Int, m: Int, n: Int, k: Int
        var aBatchStride: Int, aRowStride: Int, aColStride: Int
        var bBatchStride: Int, bRowStride: Int, bColStride: Int
        var transposeA: Bool, transposeB: Bool
        var outShape: [Int]
    }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        guard inputShapes.count == 2 || inputShapes.count == 3 else {
            throw EngineError.invalidGraph("MatMul takes 2 or 3 inputs, got \(inputShapes.count)")
        }
        return try plan(inputShapes[0], inputShapes[1], bias: inputShapes.count == 3 ? inputShapes[2] : nil).outShape
    }

    func plan(_ a: [Int], _ b: [Int], bias: [Int]?) throws -> Plan {
        guard a.count >= 2, b.count >= 2 else {
            throw EngineError.shapeMismatch("MatMul needs operands of rank ≥ 2, got \(a) and \(b)")
        }
        let m = transposeA ? a[a.count - 1] : a[a.count - 2]
        let ka = transposeA ? a[a.count - 2] : a[a.count - 1]
        let kb = transposeB ? b[b.count - 1] : b[b.count - 2]
        let n = transposeB ? b[b.count - 2] : b[b.count - 1]
        guard ka == kb else {
            throw EngineError.shapeMismatch("MatMul: inner dimensions differ (\(a)\(transposeA ? "ᵀ" : "") · \(b)\(transposeB ? "ᵀ" : ""))")
        }
        if let bias, bias != [n] {
            throw EngineError.shapeMismatch("MatMul bias must have shape [\(n)], got \(bias)")
        }
        let batchA = Array(a.dropLast(2)), batchB = Array(b.dropLast(2))
        let batchShape = try broadcastShapes(batchA, batchB)
        let batch = batchShape.reduce(1, *)
        let countA = batchA.reduce(1, *), countB = batchB.reduce(1, *)
        // Each operand is either not broadcast over the batch or fully broadcast (stride 0);
        // other mixes are expanded by the caller first (see `needsExpansion`).
        let aBatchStride = countA == batch ? m * ka : 0
        let bBatchStride = countB == batch ? kb * n : 0
        return Plan(batch: batch, m: m, n: n, k: ka,
                    aBatchStride: aBatchStride,
                    aRowStride: transposeA ? 1 : ka, aColStride: transposeA ? m : 1,
                    bBatchStride: bBatchStride,
                    bRowStride: transposeB ? 1 : n, bColStride: transposeB ? kb : 1,
                    transposeA: transposeA, transposeB: transposeB,
                    outShape: batchShape + [m, n])
    }

    /// True when an operand's batch dims are neither the full broadcast batch nor all ones
    /// (e.g. [2,1,M,K]·[1,3,K,N]); such operands are expanded to the full batch first.
    func expandedOperands(_ a: Tensor, _ b: Tensor, on backend: any Backend) throws -> (Tensor, Tensor) {
        let batchShape = try broadcastShapes(Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2)))
        let batch = batchShape.reduce(1, *)
        func fix(_ t: Tensor) throws -> Tensor {
            let count = t.shape.dropLast(2).reduce(1, *)
            if count == batch || count == 1 { return t }
            return try backend.run(Expand(shape: batchShape + t.shape.suffix(2)), t)
        }
        return (try fix(a), try fix(b))
    }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        let (a, b) = try expandedOperands(inputs[0], inputs[1], on: backend)
        let bias = inputs.count == 3 ? inputs[2] : nil
        var p = try plan(a.shape, b.shape, bias: bias?.shape)
        // A batch of row-major A against a shared B is one tall product.
        if !transposeA, p.bBatchStride == 0, p.aBatchStride != 0, p.batch > 1 {
            p.m *= p.batch
            p.batch = 1
        }
        let out = try backend.kernels.matmul(a, b, bias: bias, plan: p)
        return OpResult(try out.reshaped(try plan(a.shape, b.shape, bias: bias?.shape).outShape))
    }

    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) {
        var uses = [needsGrad.count > 1 && needsGrad[1], needsGrad[0]]
        if needsGrad.count == 3 { uses.append(false) }
        return (uses, false)
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        let g = context.gradOutput
        let aShape = context.inputShapes[0], bShape = context.inputShapes[1]
        var grads: [Tensor?] = Array(repeating: nil, count: context.inputShapes.count)
        if context.needsGrad[0] {
            let b = try context.input(1)
            // dA (laid out as A): transposeA ? op(B)·dCᵀ : dC·op(B)ᵀ
            let full = transposeA
                ? try backend.run(MatMul(transposeA: transposeB, transposeB: true), b, g)
                : try backend.run(MatMul(transposeA: false, transposeB: !transposeB), g, b)
            grads[0] = try sumToShape(full, aShape, on: backend)
        }
        if context.needsGrad[1] {
            var a = try context.input(0)
            var gg = g
            // A shared B against a batch of row-major A: fold the batch into rows.
            if bShape.count == 2, a.rank > 2, !transposeA {
                a = try a.reshaped([-1, a.shape[a.rank - 1]].resolved(count: a.count))
                gg = try g.reshaped([-1, g.shape[g.rank - 1]].resolved(count: g.count))
            }
            // dB (laid out as B): transposeB ? dCᵀ·op(A) : op(A)ᵀ·dC
            let full = transposeB
                ? try backend.run(MatMul(transposeA: true, transposeB: transposeA), gg, a)
                : try backend.run(MatMul(transposeA: !transposeA, transposeB: false), a, gg)
            grads[1] = try sumToShape(full, bShape, on: backend)
        }
        if context.inputShapes.count == 3, context.needsGrad[2] {
            grads[2] = try sumToShape(g, context.inputShapes[2], on: backend)
        }
        return grads
    }
}

extension Array where Element == Int {
    /// Replaces a single -1 entry so the product equals `count`.
    func resolved(count: Int) -> [Int] {
        guard let i = firstIndex(of: -1) else { return self }
        let known = checkedProduct(enumerated().filter { $0.offset != i }.map(\.element)) ?? 0
        var out = self
        out[i] = known == 0 ? 0 : count / known
        return out
    }
}
