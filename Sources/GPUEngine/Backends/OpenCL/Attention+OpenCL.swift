// OpenCL launchers of fused attention and attention probabilities (kernels in Sources/Kernels/attention.cl).

extension OpenCLBackend {
    /// Rows per work item and padding multiple of transposed operands (AR and AJ in attention.cl).
    private static let attentionRows = 4
    private static let attentionPad = 16

    /// x [bh, T, C] → [bh, C, Tp] transposed and zero padded to Tp = T rounded up to 16.
    private func attentionTransposed(_ x: Tensor, bh: Int, t: Int, c: Int) throws -> (Tensor, Int) {
        let tp = (t + Self.attentionPad - 1) / Self.attentionPad * Self.attentionPad
        let out = try make([bh, c, tp])
        guard bh > 0, c > 0, tp > 0 else { return (out, tp) }
        try launch("attention", "attention_transpose",
                   [.buffer(out.device()), .buffer(x.device()), .int(Int32(t)), .int(Int32(c)), .int(Int32(tp))],
                   global: [tp, c, bh])
        return (out, tp)
    }

    /// P [bh, Tq, Tk] and, when v is given, O [bh, Tq, Dv] = P·V.
    private func attentionRun(_ q: Tensor, _ k: Tensor, _ v: Tensor?, shape s: AttentionShape, scale: Float) throws -> (Tensor?, Tensor) {
        let p = try make([s.bh, s.tq, s.tk])
        let o = try v.map { _ in try make([s.bh, s.tq, s.dv]) }
        guard s.bh > 0, s.tq > 0 else { return (o, p) }
        let (kt, tkp) = try attentionTransposed(k, bh: s.bh, t: s.tk, c: s.d)
        let pb = try p.device()
        try launch("attention", "attention_forward",
                   [.buffer(o?.device() ?? pb), .buffer(pb), .buffer(q.device()), .buffer(kt.device()),
                    .buffer(v?.device() ?? pb),
                    .int(Int32(s.tq)), .int(Int32(s.tk)), .int(Int32(tkp)), .int(Int32(s.d)), .int(Int32(s.dv)),
                    .float(scale), .int(v == nil ? 0 : 1)],
                   global: [(s.tq + Self.attentionRows - 1) / Self.attentionRows, s.bh])
        return (o, p)
    }

    func attentionProbabilities(_ q: Tensor, _ k: Tensor, shape s: AttentionShape, scale: Float) throws -> Tensor {
        try attentionRun(q, k, nil, shape: s, scale: scale).1
    }

    func attentionForward(_ q: Tensor, _ k: Tensor, _ v: Tensor, shape s: AttentionShape, scale: Float) throws -> (Tensor, Tensor) {
        let (o, p) = try attentionRun(q, k, v, shape: s, scale: scale)
        guard let o else { throw EngineError.invalidGraph("attention forward produced no output") }
        return (o, p)
    }

    /// Gradients (dQ, dK, dV), each only when wanted; dP given (probabilities backward) or dO·Vᵀ.
    func attentionBackward(_ dO: Tensor?, q: Tensor?, k: Tensor?, v: Tensor?, p: Tensor, dP: Tensor?,
                           shape s: AttentionShape, scale: Float,
                           want: (q: Bool, k: Bool, v: Bool)) throws -> (Tensor?, Tensor?, Tensor?) {
        let dq = want.q ? try make([s.bh, s.tq, s.d]) : nil
        let dk = want.k ? try make([s.bh, s.tk, s.d]) : nil
        let dv = want.v ? try make([s.bh, s.tk, s.dv]) : nil
        guard s.bh > 0, s.tq > 0 else {
            for t in [dq, dk, dv].compactMap({ $0 }) where t.count > 0 { try fill(t, value: 0) }
            return (dq, dk, dv)
        }
        let pb = try p.device()
        var ds: Tensor? = nil
        if want.q || want.k {
            let dsT = try make([s.bh, s.tq, s.tk])
            let dsb = try dsT.device()
            // dP = dO·Vᵀ reads V transposed; with dP given that argument is unused.
            var vtb = dsb, tkp = s.tk
            if dP == nil {
                guard let v else { throw EngineError.invalidGraph("attention backward to Q or K needs V") }
                let (vt, padded) = try attentionTransposed(v, bh: s.bh, t: s.tk, c: s.dv)
                vtb = try vt.device()
                tkp = padded
            }
            if want.q, k == nil { throw EngineError.invalidGraph("attention backward to Q needs K") }
            try launch("attention", "attention_backward_q",
                       [.buffer(dq?.device() ?? dsb), .buffer(dsb),
                        .buffer(dO?.device() ?? dsb), .buffer(vtb), .buffer(dP?.device() ?? dsb),
                        .buffer(pb), .buffer(k?.device() ?? dsb),
                        .int(Int32(s.tq)), .int(Int32(s.tk)), .int(Int32(tkp)), .int(Int32(s.d)), .int(Int32(s.dv)),
                        .float(scale), .int(dP == nil ? 0 : 1), .int(want.q ? 1 : 0)],
                       global: [(s.tq + Self.attentionRows - 1) / Self.attentionRows, s.bh])
            ds = dsT
        }
        if want.k || want.v {
            if want.k, q == nil { throw EngineError.invalidGraph("attention backward to K needs Q") }
            if want.v, dO == nil { throw EngineError.invalidGraph("attention backward to V needs dO") }
            let any = try (ds ?? p).device()
            try launch("attention", "attention_backward_kv",
                       [.buffer(dk?.device() ?? any), .buffer(dv?.device() ?? any),
                        .buffer(ds?.device() ?? any), .buffer(q?.device() ?? any),
                        .buffer(pb), .buffer(dO?.device() ?? any),
                        .int(Int32(s.tq)), .int(Int32(s.tk)), .int(Int32(s.d)), .int(Int32(s.dv)),
                        .int(want.k ? 1 : 0), .int(want.v ? 1 : 0)],
                       global: [(s.tk + Self.attentionRows - 1) / Self.attentionRows, s.bh])
        }
        return (dq, dk, dv)
    }
}
