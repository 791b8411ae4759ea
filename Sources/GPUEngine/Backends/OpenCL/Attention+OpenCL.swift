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

    /// Dispatches on `attentionChoice`: the flash kernels when chosen and they support the head dimensions
    /// (`FlashAttentionParameters.unsupportedReason`), else the P-storing kernels.
    func attentionForward(_ q: Tensor, _ k: Tensor, _ v: Tensor, shape s: AttentionShape, scale: Float) throws -> (Tensor, AttentionSaved) {
        if let fp = attentionChoice.flashParameters, fp.unsupportedReason(d: s.d, dv: s.dv) == nil {
            return try attentionFlashForward(q, k, v, shape: s, scale: scale, parameters: fp)
        }
        return try attentionForwardProbabilities(q, k, v, shape: s, scale: scale)
    }

    /// O and P from `attention_forward`.
    func attentionForwardProbabilities(_ q: Tensor, _ k: Tensor, _ v: Tensor, shape s: AttentionShape, scale: Float) throws -> (Tensor, AttentionSaved) {
        let (o, p) = try attentionRun(q, k, v, shape: s, scale: scale)
        guard let o else { throw EngineError.invalidGraph("attention forward produced no output") }
        return (o, .probabilities(p))
    }

    /// O [bh, Tq, Dv] and L [bh, Tq] from `attention_flash_forward` (P is never stored). Throws for parameters
    /// that do not support the head dimensions.
    func attentionFlashForward(_ q: Tensor, _ k: Tensor, _ v: Tensor, shape s: AttentionShape, scale: Float,
                               parameters fp: FlashAttentionParameters) throws -> (Tensor, AttentionSaved) {
        if let why = fp.unsupportedReason(d: s.d, dv: s.dv) { throw EngineError.unsupported("flash attention \(fp): \(why)") }
        let o = try make([s.bh, s.tq, s.dv])
        let l = try make([s.bh, s.tq])
        recordFlashLaunch(fp)
        guard s.bh > 0, s.tq > 0 else { return (o, .logSumExp(o: o, l: l)) }
        try launch("attention_flash", "attention_flash_forward",
                   [.buffer(o.device()), .buffer(l.device()), .buffer(q.device()), .buffer(k.device()), .buffer(v.device()),
                    .int(Int32(s.tq)), .int(Int32(s.tk)), .float(scale)],
                   global: [Self.roundUp(s.tq, fp.rows), s.bh], local: [fp.rows, 1],
                   options: fp.buildOptions(d: s.d, dv: s.dv))
        return (o, .logSumExp(o: o, l: l))
    }

    private static func roundUp(_ n: Int, _ m: Int) -> Int { (n + m - 1) / m * m }

    /// Gradients from the flash forward's (O, L): Dl = rowsum(dO ⊙ O) (`attention_flash_backward_delta`), then
    /// dQ over query tiles (`attention_flash_backward_q`) and dK, dV over key tiles (`attention_flash_backward_kv`).
    private func attentionFlashBackward(_ dO: Tensor?, q: Tensor?, k: Tensor?, v: Tensor?, o: Tensor, l: Tensor,
                                        shape s: AttentionShape, scale: Float,
                                        want: (q: Bool, k: Bool, v: Bool)) throws -> (Tensor?, Tensor?, Tensor?) {
        guard let dO, let q, let k, let v else {
            throw EngineError.invalidGraph("flash attention backward needs dO, Q, K and V")
        }
        // Any parameter set gives the same gradients; the chosen one if it fits these head dimensions.
        let chosen = attentionChoice.flashParameters.flatMap { $0.unsupportedReason(d: s.d, dv: s.dv) == nil ? $0 : nil }
        let fp = chosen ?? FlashAttentionParameters(rows: 16, tile: 8)
        return try attentionFlashBackward(dO, q: q, k: k, v: v, o: o, l: l, shape: s, scale: scale, want: want, parameters: fp)
    }

    /// The gradient tensors of attention's backward, each only when wanted: dQ [BH, Tq, D], dK [BH, Tk, D],
    /// dV [BH, Tk, Dv]. With no rows to compute (BH or Tq = 0) they are filled with zeros here.
    private func makeAttentionGradients(shape s: AttentionShape,
                                        want: (q: Bool, k: Bool, v: Bool)) throws -> (Tensor?, Tensor?, Tensor?) {
        let dq = want.q ? try make([s.bh, s.tq, s.d]) : nil
        let dk = want.k ? try make([s.bh, s.tk, s.d]) : nil
        let dv = want.v ? try make([s.bh, s.tk, s.dv]) : nil
        if s.bh == 0 || s.tq == 0 {
            for t in [dq, dk, dv].compactMap({ $0 }) where t.count > 0 { try fill(t, value: 0) }
        }
        return (dq, dk, dv)
    }

    /// As above with explicit parameters (the flash variant's wrapper).
    func attentionFlashBackward(_ dO: Tensor, q: Tensor, k: Tensor, v: Tensor, o: Tensor, l: Tensor,
                                shape s: AttentionShape, scale: Float, want: (q: Bool, k: Bool, v: Bool),
                                parameters fp: FlashAttentionParameters) throws -> (Tensor?, Tensor?, Tensor?) {
        if let why = fp.unsupportedReason(d: s.d, dv: s.dv) { throw EngineError.unsupported("flash attention \(fp): \(why)") }
        let (dq, dk, dv) = try makeAttentionGradients(shape: s, want: want)
        guard s.bh > 0, s.tq > 0 else { return (dq, dk, dv) }
        let options = fp.buildOptions(d: s.d, dv: s.dv)
        let delta = try make([s.bh, s.tq])
        let rows = s.bh * s.tq
        try launch("attention_flash", "attention_flash_backward_delta",
                   [.buffer(delta.device()), .buffer(dO.device()), .buffer(o.device()), .int(Int32(rows))],
                   global: [rows], options: options)
        let common: [CLArgument] = [.buffer(try q.device()), .buffer(try k.device()), .buffer(try v.device()),
                                    .buffer(try dO.device()), .buffer(try l.device()), .buffer(try delta.device()),
                                    .int(Int32(s.tq)), .int(Int32(s.tk)), .float(scale)]
        if let dq {
            try launch("attention_flash", "attention_flash_backward_q", [.buffer(dq.device())] + common,
                       global: [Self.roundUp(s.tq, fp.rows), s.bh], local: [fp.rows, 1], options: options)
        }
        if want.k || want.v {
            let any = try delta.device()
            try launch("attention_flash", "attention_flash_backward_kv",
                       [.buffer(dk?.device() ?? any), .buffer(dv?.device() ?? any)] + common
                        + [.int(want.k ? 1 : 0), .int(want.v ? 1 : 0)],
                       global: [Self.roundUp(s.tk, fp.rows), s.bh], local: [fp.rows, 1], options: options)
        }
        return (dq, dk, dv)
    }

    /// Gradients (dQ, dK, dV), each only when wanted: from (O, L) on the flash kernels; from P with dP given
    /// (probabilities backward) or dO·Vᵀ on the P-storing kernels.
    func attentionBackward(_ dO: Tensor?, q: Tensor?, k: Tensor?, v: Tensor?, saved: AttentionSaved, dP: Tensor?,
                           shape s: AttentionShape, scale: Float,
                           want: (q: Bool, k: Bool, v: Bool)) throws -> (Tensor?, Tensor?, Tensor?) {
        let p: Tensor
        switch saved {
        case .probabilities(let saved): p = saved
        case .logSumExp(let o, let l):
            return try attentionFlashBackward(dO, q: q, k: k, v: v, o: o, l: l, shape: s, scale: scale, want: want)
        }
        let (dq, dk, dv) = try makeAttentionGradients(shape: s, want: want)
        guard s.bh > 0, s.tq > 0 else { return (dq, dk, dv) }
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
