import Foundation

/// The layout shared by the attention operators: leading dimensions flattened into `bh`.
struct AttentionShape: Equatable {
    /// Product of the leading (batch, head) dimensions.
    var bh: Int
    var tq: Int, tk: Int, d: Int, dv: Int
    var lead: [Int]

    /// Checks Q [..., Tq, D], K [..., Tk, D] and (when given) V [..., Tk, Dv] with equal leading dims.
    init(q: [Int], k: [Int], v: [Int]?, op: String) throws {
        guard q.count >= 2, k.count == q.count, v.map({ $0.count == q.count }) ?? true else {
            throw EngineError.shapeMismatch("\(op): Q, K\(v == nil ? "" : ", V") must have equal rank ≥ 2 ([batch, heads, tokens, head_dim]), got \(q), \(k)\(v.map { ", \($0)" } ?? "")")
        }
        let leading = Array(q.dropLast(2))
        lead = leading
        guard Array(k.dropLast(2)) == leading, v.map({ Array($0.dropLast(2)) == leading }) ?? true else {
            throw EngineError.shapeMismatch("\(op): Q, K\(v == nil ? "" : ", V") must share their leading (batch, head) dimensions, got \(q), \(k)\(v.map { ", \($0)" } ?? "")")
        }
        tq = q[q.count - 2]
        d = q[q.count - 1]
        tk = k[k.count - 2]
        guard k[k.count - 1] == d else {
            throw EngineError.shapeMismatch("\(op): Q and K need the same head dimension, got \(q) and \(k)")
        }
        if let v {
            guard v[v.count - 2] == tk else {
                throw EngineError.shapeMismatch("\(op): K and V need the same number of tokens, got \(k) and \(v)")
            }
            dv = v[v.count - 1]
        } else {
            dv = d
        }
        bh = lead.reduce(1, *)
        guard tk > 0 else { throw EngineError.shapeMismatch("\(op): attention over zero keys (K is \(k))") }
        guard bh * tq * tk < Int(Int32.max), bh * tq * max(d, dv) < Int(Int32.max), bh * tk * max(d, dv) < Int(Int32.max) else {
            throw EngineError.unsupported("\(op): tensors of more than 2^31 elements")
        }
    }
}

/// What attention's forward keeps for its backward (chosen by the backend's kernels, see `AttentionChoice`).
enum AttentionSaved {
    /// P [bh, Tq, Tk] (`attention_forward`, and the CPU reference).
    case probabilities(Tensor)
    /// O [bh, Tq, Dv] and L [bh, Tq] = log Σ_j exp(S[i, j]) per query row (`attention_flash_forward`): backward
    /// recomputes P = exp(S − L). Holds Tq·(Dv + 1) floats per bh instead of Tq·Tk.
    case logSumExp(o: Tensor, l: Tensor)

    /// The tensors as an `OpResult`'s saved list: [P] or [O, L].
    var tensors: [Tensor] {
        switch self {
        case .probabilities(let p): return [p]
        case .logSumExp(let o, let l): return [o, l]
        }
    }

    /// Back from an `OpResult`'s saved list.
    init(tensors: [Tensor]) throws {
        switch tensors.count {
        case 1: self = .probabilities(tensors[0])
        case 2: self = .logSumExp(o: tensors[0], l: tensors[1])
        default: throw EngineError.invalidGraph("Attention backward needs what its forward saved (P, or O and L); got \(tensors.count) tensors")
        }
    }
}

/// Fused scaled dot-product attention (the part of multi-head attention between the QKV and
/// output projections; PyTorch `F.scaled_dot_product_attention` without mask or dropout):
///
///     S = scale · Q·Kᵀ,   P = softmax over keys (row-wise, max subtracted),   O = P·V
///
/// - Inputs: Q [..., Tq, D], K [..., Tk, D], V [..., Tk, Dv] with equal leading dimensions
///   (typically [B, H, T, Dh]; ViT-B/16 at 224²: [1, 12, 197, 64]).
/// - Output: O [..., Tq, Dv].
/// - Saved for backward (`AttentionSaved`, the backend's kernels decide): either the probabilities
///   P [..., Tq, Tk] (CPU reference; OpenCL's `attention_forward`, what PoCL runs: backward is then three
///   plain products, 1.9 MB per image for 12 heads × 197²), or O and the row logsumexp L [..., Tq]
///   (OpenCL's flash kernels, the GPU default: P is recomputed tile by tile, never stored; see `AttentionChoice`).
/// - Backward, only for inputs in `needsGrad`:
///   dP = dO·Vᵀ,  dS = P ⊙ (dP − rowsum(dP ⊙ P)),  dQ = scale · dS·K,  dK = scale · dSᵀ·Q,  dV = Pᵀ·dO;
///   from (O, L): P = exp(S − L) and rowsum(dP ⊙ P) = rowsum(dO ⊙ O).
///
/// Use `AttentionProbabilities` to get P itself as a graph value (attention maps for objectives).
/// Kernels: `attention.cl` (`attention_transpose`, `attention_forward`, `attention_backward_q`,
/// `attention_backward_kv`), `attention_flash.cl` (`attention_flash_forward`, `attention_flash_backward_delta`,
/// `attention_flash_backward_q`, `attention_flash_backward_kv`); CPU reference in
/// `Backends/CPU/Attention+CPU.swift`.
public struct Attention: Operator {
    public var scale: Float

    /// `scale` is usually 1/√D (see `defaultScale(headDim:)`).
    public init(scale: Float) { self.scale = scale }

    /// 1/√headDim, the scale of standard multi-head attention.
    public static func defaultScale(headDim: Int) -> Float { 1 / Float(max(headDim, 1)).squareRoot() }

    public var typeName: String { "Attention" }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        try expectInputs(inputShapes, 3, typeName)
        let s = try AttentionShape(q: inputShapes[0], k: inputShapes[1], v: inputShapes[2], op: typeName)
        return s.lead + [s.tq, s.dv]
    }

    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) {
        // From P: dQ reads K, dK reads Q, both go through dP = dO·Vᵀ, and dV needs only P and dO. From (O, L)
        // (the flash kernels) every gradient recomputes P from Q and K, and dQ, dK need V. Which one a backend
        // saves is not known here, so any gradient keeps all three inputs (in AM all three need one anyway).
        let any = needsGrad[0] || needsGrad[1] || needsGrad[2]
        return ([any, any, any], false)
    }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        let s = try AttentionShape(q: inputs[0].shape, k: inputs[1].shape, v: inputs[2].shape, op: typeName)
        let (o, saved) = try backend.kernels.attentionForward(inputs[0], inputs[1], inputs[2], shape: s, scale: scale)
        return OpResult(try o.reshaped(s.lead + [s.tq, s.dv]), saved: saved.tensors)
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        let saved = try AttentionSaved(tensors: context.saved)
        let shapes = context.inputShapes
        let s = try AttentionShape(q: shapes[0], k: shapes[1], v: shapes[2], op: typeName)
        let want = context.needsGrad
        let q = try context.input(0), k = try context.input(1), v = try context.input(2)
        let grads = try backend.kernels.attentionBackward(context.gradOutput, q: q, k: k, v: v, saved: saved, dP: nil, shape: s,
                                                          scale: scale, want: (want[0], want[1], want[2]))
        return [try grads.0?.reshaped(shapes[0]), try grads.1?.reshaped(shapes[1]), try grads.2?.reshaped(shapes[2])]
    }
}

/// Attention probabilities as a value: P = softmax over keys of (scale · Q·Kᵀ), the attention map
/// that objectives read (e.g. the CLS row of a head).
///
/// - Inputs: Q [..., Tq, D], K [..., Tk, D] with equal leading dimensions.
/// - Output: P [..., Tq, Tk].
/// - Backward from the saved output: dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ = scale · dS·K,
///   dK = scale · dSᵀ·Q.
///
/// Kernels: `attention.cl` (`attention_transpose`, `attention_forward` with write_o = 0,
/// `attention_backward_q` with have_dp = 1, `attention_backward_kv`); CPU reference in
/// `Backends/CPU/Attention+CPU.swift`.
public struct AttentionProbabilities: Operator {
    public var scale: Float
    public init(scale: Float) { self.scale = scale }
    public var typeName: String { "AttentionProbabilities" }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        try expectInputs(inputShapes, 2, typeName)
        let s = try AttentionShape(q: inputShapes[0], k: inputShapes[1], v: nil, op: typeName)
        return s.lead + [s.tq, s.tk]
    }

    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) {
        ([needsGrad[1], needsGrad[0]], true)
    }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        let s = try AttentionShape(q: inputs[0].shape, k: inputs[1].shape, v: nil, op: typeName)
        let p = try backend.kernels.attentionProbabilities(inputs[0], inputs[1], shape: s, scale: scale)
        return OpResult(try p.reshaped(s.lead + [s.tq, s.tk]))
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        let p = try context.requireOutput()
        let shapes = context.inputShapes
        let s = try AttentionShape(q: shapes[0], k: shapes[1], v: nil, op: typeName)
        let want = context.needsGrad
        let q = want[1] ? try context.input(0) : nil
        let k = want[0] ? try context.input(1) : nil
        let grads = try backend.kernels.attentionBackward(nil, q: q, k: k, v: nil, saved: .probabilities(p), dP: context.gradOutput, shape: s,
                                                          scale: scale, want: (want[0], want[1], false))
        return [try grads.0?.reshaped(shapes[0]), try grads.1?.reshaped(shapes[1])]
    }
}
