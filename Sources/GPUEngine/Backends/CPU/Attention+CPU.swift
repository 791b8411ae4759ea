import COpenBLAS
import Foundation

// CPU reference of fused attention and attention probabilities (see Ops/Attention.swift).
// Per batch·head: products through cblas_sgemm, softmax and row sums in Double.

extension CPUBackend {
    /// C[m×n] = op(A)·op(B), row-major; `transA`/`transB` read A as [k×m] / B as [n×k].
    private func gemm(_ a: UnsafePointer<Float>, transA: Bool, _ b: UnsafePointer<Float>, transB: Bool,
                      _ c: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else { c.update(repeating: 0, count: m * n); return }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), 1,
                    a, Int32(transA ? m : k), b, Int32(transB ? k : n), 0, c, Int32(n))
    }

    /// P [bh, Tq, Tk] = softmax over keys of scale·Q·Kᵀ.
    func attentionProbabilities(_ q: Tensor, _ k: Tensor, shape s: AttentionShape, scale: Float) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("attention_probabilities", started) }
        let p = make([s.bh, s.tq, s.tk])
        let qp = try q.host().pointer, kp = try k.host().pointer, pp = try p.host().pointer
        for b in 0..<s.bh {
            gemm(qp + b * s.tq * s.d, transA: false, kp + b * s.tk * s.d, transB: true, pp + b * s.tq * s.tk, m: s.tq, n: s.tk, k: s.d)
        }
        // Row softmax; rows split across threads (each row is the serial computation).
        forChunks(s.bh * s.tq, grain: max(1, CPUParallel.defaultGrain / max(s.tk, 1))) { lo, hi in
            for r in lo..<hi {
                let row = pp + r * s.tk
                var m = -Double.infinity
                for j in 0..<s.tk { m = max(m, Double(scale) * Double(row[j])) }
                var sum = 0.0
                for j in 0..<s.tk { sum += Foundation.exp(Double(scale) * Double(row[j]) - m) }
                for j in 0..<s.tk { row[j] = Float(Foundation.exp(Double(scale) * Double(row[j]) - m) / sum) }
            }
        }
        return p
    }

    /// O [bh, Tq, Dv] = P·V and P (the reference saves P).
    func attentionForward(_ q: Tensor, _ k: Tensor, _ v: Tensor, shape s: AttentionShape, scale: Float) throws -> (Tensor, AttentionSaved) {
        let started = profileStart(); defer { profileEnd("attention_forward", started) }
        let (o, p) = try attentionForwardProbabilities(q, k, v, shape: s, scale: scale)
        return (o, .probabilities(p))
    }

    /// The reference of the flash kernels' forward: O [bh, Tq, Dv] = P·V and L [bh, Tq] = log Σ_j exp(S[i, j])
    /// (S = scale·Q·Kᵀ, max subtracted, in Double). Tests use it through a wrapper to check the (O, L) backward.
    func attentionForwardLogSumExp(_ q: Tensor, _ k: Tensor, _ v: Tensor, shape s: AttentionShape, scale: Float) throws -> (Tensor, AttentionSaved) {
        let (o, _) = try attentionForwardProbabilities(q, k, v, shape: s, scale: scale)
        let l = make([s.bh, s.tq])
        let lp = try l.host().pointer
        try forEachScoreRow(q, k, shape: s, scale: scale) { row, scores in
            let m = scores.max() ?? 0
            lp[row] = Float(m + Foundation.log(scores.reduce(0) { $0 + Foundation.exp($1 - m) }))
        }
        return (o, .logSumExp(o: o, l: l))
    }

    /// Calls `body(bh·Tq + i, S[i, ·])` for every query row with S = scale·Q·Kᵀ summed in Double.
    private func forEachScoreRow(_ q: Tensor, _ k: Tensor, shape s: AttentionShape, scale: Float,
                                 _ body: (Int, [Double]) -> Void) throws {
        let qp = try q.host().pointer, kp = try k.host().pointer
        var scores = [Double](repeating: 0, count: s.tk)
        for b in 0..<s.bh {
            for i in 0..<s.tq {
                let qr = qp + (b * s.tq + i) * s.d
                for j in 0..<s.tk {
                    let kr = kp + (b * s.tk + j) * s.d
                    var acc = 0.0
                    for d in 0..<s.d { acc += Double(qr[d]) * Double(kr[d]) }
                    scores[j] = Double(scale) * acc
                }
                body(b * s.tq + i, scores)
            }
        }
    }

    private func attentionForwardProbabilities(_ q: Tensor, _ k: Tensor, _ v: Tensor, shape s: AttentionShape, scale: Float) throws -> (Tensor, Tensor) {
        let p = try attentionProbabilities(q, k, shape: s, scale: scale)
        let o = make([s.bh, s.tq, s.dv])
        let pp = try p.host().pointer, vp = try v.host().pointer, op = try o.host().pointer
        for b in 0..<s.bh {
            gemm(pp + b * s.tq * s.tk, transA: false, vp + b * s.tk * s.dv, transB: false, op + b * s.tq * s.dv,
                 m: s.tq, n: s.dv, k: s.tk)
        }
        return (o, p)
    }

    /// Gradients (dQ, dK, dV) of attention, each only when wanted. dP is given (probabilities
    /// backward) or computed as dO·Vᵀ; dS = scale · P ⊙ (dP − rowsum(dP ⊙ P)).
    /// From `.logSumExp(O, L)` (the flash kernels' saved state) P = exp(S − L) is recomputed in Double and
    /// rowsum(dP ⊙ P) is taken as rowsum(dO ⊙ O), the flash backward's math; the rest is shared.
    func attentionBackward(_ dO: Tensor?, q: Tensor?, k: Tensor?, v: Tensor?, saved: AttentionSaved, dP: Tensor?,
                           shape s: AttentionShape, scale: Float,
                           want: (q: Bool, k: Bool, v: Bool)) throws -> (Tensor?, Tensor?, Tensor?) {
        let started = profileStart(); defer { profileEnd("attention_backward", started) }
        let p: Tensor
        var rowDelta: [Double]? = nil
        switch saved {
        case .probabilities(let saved):
            p = saved
        case .logSumExp(let o, let l):
            guard let q, let k, let dO else {
                throw EngineError.invalidGraph("attention backward from (O, L) needs Q, K and dO")
            }
            let recomputed = make([s.bh, s.tq, s.tk])
            let rp = try recomputed.host().pointer, lp = try l.host().pointer
            try forEachScoreRow(q, k, shape: s, scale: scale) { row, scores in
                for j in 0..<s.tk { rp[row * s.tk + j] = Float(Foundation.exp(scores[j] - Double(lp[row]))) }
            }
            p = recomputed
            let op = try o.host().pointer, gp = try dO.host().pointer
            rowDelta = (0..<(s.bh * s.tq)).map { row in
                var acc = 0.0
                for c in 0..<s.dv { acc += Double(gp[row * s.dv + c]) * Double(op[row * s.dv + c]) }
                return acc
            }
        }
        let pp = try p.host().pointer
        var dv: Tensor? = nil
        if want.v {
            guard let dO else { throw EngineError.invalidGraph("attention backward to V needs dO") }
            let out = make([s.bh, s.tk, s.dv])
            let gp = try dO.host().pointer, dp = try out.host().pointer
            for b in 0..<s.bh {
                gemm(pp + b * s.tq * s.tk, transA: true, gp + b * s.tq * s.dv, transB: false, dp + b * s.tk * s.dv,
                     m: s.tk, n: s.dv, k: s.tq)
            }
            dv = out
        }
        guard want.q || want.k else { return (nil, nil, dv) }
        // dS [bh, Tq, Tk]
        let ds = make([s.bh, s.tq, s.tk])
        let sp = try ds.host().pointer
        if let dP {
            sp.update(from: try dP.host().pointer, count: ds.count)
        } else {
            guard let dO, let v else { throw EngineError.invalidGraph("attention backward to Q or K needs dO and V") }
            let gp = try dO.host().pointer, vp = try v.host().pointer
            for b in 0..<s.bh {
                gemm(gp + b * s.tq * s.dv, transA: false, vp + b * s.tk * s.dv, transB: true, sp + b * s.tq * s.tk,
                     m: s.tq, n: s.tk, k: s.dv)
            }
        }
        let deltas = rowDelta
        forChunks(s.bh * s.tq, grain: max(1, CPUParallel.defaultGrain / max(s.tk, 1))) { lo, hi in
            for row in lo..<hi {
                let r = sp + row * s.tk, pr = pp + row * s.tk
                var delta = 0.0
                if let deltas { delta = deltas[row] } else { for j in 0..<s.tk { delta += Double(r[j]) * Double(pr[j]) } }
                for j in 0..<s.tk { r[j] = Float(Double(scale) * Double(pr[j]) * (Double(r[j]) - delta)) }
            }
        }
        var dq: Tensor? = nil, dk: Tensor? = nil
        if want.q {
            guard let k else { throw EngineError.invalidGraph("attention backward to Q needs K") }
            let out = make([s.bh, s.tq, s.d])
            let kp = try k.host().pointer, op = try out.host().pointer
            for b in 0..<s.bh {
                gemm(sp + b * s.tq * s.tk, transA: false, kp + b * s.tk * s.d, transB: false, op + b * s.tq * s.d,
                     m: s.tq, n: s.d, k: s.tk)
            }
            dq = out
        }
        if want.k {
            guard let q else { throw EngineError.invalidGraph("attention backward to K needs Q") }
            let out = make([s.bh, s.tk, s.d])
            let qp = try q.host().pointer, op = try out.host().pointer
            for b in 0..<s.bh {
                gemm(sp + b * s.tq * s.tk, transA: true, qp + b * s.tq * s.d, transB: false, op + b * s.tk * s.d,
                     m: s.tk, n: s.d, k: s.tq)
            }
            dk = out
        }
        return (dq, dk, dv)
    }
}
