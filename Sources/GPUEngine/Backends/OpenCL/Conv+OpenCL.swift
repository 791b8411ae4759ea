// OpenCL launchers of Conv2D / ConvTranspose2D (kernels in Sources/Kernels/conv.cl).

/// How the CPU-style path (`GEMMChoice.cpuStyle`, PoCL's default) runs a convolution: conv.cl's direct
/// kernels, or the GEMM route (im2col into a column panel + `conv2d_gemm_8x16`, backward Wᵀ·dy + col2im).
/// `AMGPU_CONV=direct|gemm|auto` overrides the default `.auto`.
public enum ConvRoute: String, CaseIterable, Sendable {
    /// The measured rule `usesGEMM(_:)`.
    case auto
    /// conv.cl's direct kernels for every convolution.
    case direct
    /// The GEMM route for every convolution it serves (groups == 1), direct kernels for the rest.
    case gemm

    /// Whether the GEMM route serves `g` at all: ungrouped convolutions whose column panel [n, Cin·kH·kW,
    /// round_up(OH·OW, 16)], dy panel and input all have fewer than 2³¹ elements (the kernels index with 32-bit
    /// ints); larger ones run on the direct kernels whatever the route says.
    static func gemmServes(_ g: ConvGeometry) -> Bool {
        guard g.groups == 1 && g.n > 0 && g.cout > 0 && g.cin > 0 else { return false }
        let panel = (g.oh * g.ow + 15) / 16 * 16, limit = Int(Int32.max)
        guard let col = checkedProduct([g.n, g.cin, g.kh, g.kw, panel]), col < limit,
              let dy = checkedProduct([g.n, g.cout, panel]), dy < limit,
              let x = checkedProduct([g.n, g.cin, g.h, g.w]), x < limit else { return false }
        return true
    }

    /// Whether this route runs `g`'s forward (`backward` false) or backward-to-input on the GEMM route. The `.auto`
    /// rule comes from per-shape process CPU time on PoCL (docs/logs/pocl-conv-2026-12-02.md, a loaded 2-core
    /// machine, noisy — a tentative rule): the forward of ungrouped convolutions with at most 14×14 output pixels
    /// (GEMM / direct 0.76 and 0.50 for 3×3 at 7×7, 0.90 and 0.68 for 1×1 at 14×14, 0.97 and 1.01 for 3×3 at
    /// 14×14; 1.05–1.73 for 3×3 at 28×28 and 56×56 and the 7×7/s2 stem); every backward stays direct (the GEMM
    /// route's cost 1.08–2.30× at the k×k shapes: Wᵀ is read with a K-element stride and col2im is a second pass).
    func usesGEMM(_ g: ConvGeometry, backward: Bool = false) -> Bool {
        guard Self.gemmServes(g) else { return false }
        switch self {
        case .direct: return false
        case .gemm: return true
        case .auto: return !backward && g.oh * g.ow <= 14 * 14
        }
    }
}

extension OpenCLBackend {
    /// Activations conv.cl applies in the forward kernels' epilogue (`conv_activation`).
    static let convFusedActivations: Set<UnaryFunction> = [.relu, .sigmoid, .tanh, .leakyRelu, .clip,
                                                            .hardSigmoid, .hardSwish, .silu]

    /// Forces the register tile of the conv kernels (pixels: 8 or 16; channels: 1, 2, 4 or 8) —
    /// for benchmarks that compare the variants; nil picks them by shape.
    nonisolated(unsafe) static var convTileOverride: (pixels: Int, channels: Int)? = nil

    /// Output rows per work item of the depthwise kernel (each input row is loaded once for all).
    static let depthwiseRows = 4

    /// The channel tile: the largest of {8, 4, 2, 1} not above `channels`.
    private func convTile(_ channels: Int) -> Int {
        if let forced = Self.convTileOverride?.channels { return min(forced, max(channels, 1)) }
        return channels >= 8 ? 8 : channels >= 4 ? 4 : channels >= 2 ? 2 : 1
    }

    /// The pixel tile for rows of `width` pixels: 16 (float16 accumulators, more reuse of each
    /// weight) unless a row fits in 8.
    private func convPixels(_ width: Int) -> Int {
        if let forced = Self.convTileOverride?.pixels { return forced }
        return width > 8 ? 16 : 8
    }

    /// A copy of `src` [planes, h, w] zero-padded by (top, left) and cropped/extended to [planes, hd, wd].
    private func convPad(_ src: Tensor, planes: Int, h: Int, w: Int, hd: Int, wd: Int, top: Int, left: Int) throws -> Tensor {
        let dst = try make([planes, hd, wd])
        try launch("conv", "conv2d_pad",
                   [.buffer(dst.device()), .buffer(src.device()), .int(Int32(planes)), .int(Int32(h)), .int(Int32(w)),
                    .int(Int32(hd)), .int(Int32(wd)), .int(Int32(top)), .int(Int32(left))],
                   global: [hd, planes])
        return dst
    }

    /// z = conv(x, W) + bias, y = act(z) with `act` fused into the kernel (must be in
    /// `convFusedActivations` or nil); z is written to a second tensor when `writePre`.
    private func convForwardFused(_ x: Tensor, weight: Tensor, bias: Tensor?, act: Unary?, writePre: Bool,
                                  geometry g: ConvGeometry) throws -> (Tensor, Tensor?) {
        let y = try make(g.outputShape)
        let pre = writePre ? try make(g.outputShape) : nil
        let epilogue: [CLArgument] = [
            .buffer(try bias?.device() ?? weight.device()), .int(bias == nil ? 0 : 1), .int(writePre ? 1 : 0),
            .int(act?.function.rawValue ?? -1), .float(act?.alpha ?? 0), .float(act?.beta ?? 0),
        ]
        let outputs: [CLArgument] = [.buffer(try y.device()), .buffer(try pre?.device() ?? y.device())]
        if g.isPointwise {
            let tile = convTile(g.coutG), p = g.oh * g.ow, pix = convPixels(p)
            try launch("conv", "conv2d_forward_1x1",
                       outputs + [.buffer(try x.device()), .buffer(try weight.device())] + epilogue
                       + [g.n, g.groups, g.coutG, g.cinG, p, g.coutG * g.cinG, g.cinG, 1].map { .int(Int32($0)) },
                       global: [(p + pix - 1) / pix, g.groups * ((g.coutG + tile - 1) / tile), g.n],
                       options: "-DTCO=\(tile) -DPIX=\(pix)")
            return (y, pre)
        }
        // Zero-pad (or crop) the input so the kernel needs no bounds checks.
        let pix = convPixels(g.ow)
        let blocks = (g.ow + pix - 1) / pix
        // The depthwise kernel computes `depthwiseRows` output rows per work item.
        let rowBlock = g.isDepthwise ? Self.depthwiseRows : 1
        let rowBlocks = (g.oh + rowBlock - 1) / rowBlock
        let hp = (rowBlocks * rowBlock - 1) * g.sh + (g.kh - 1) * g.dh + 1
        let wp = (blocks * pix - 1) * g.sw + (g.kw - 1) * g.dw + 1 + (g.sw == 2 ? 1 : 0)
        var xp = x, hx = g.h, wx = g.w
        if g.pt != 0 || g.pl != 0 || hp > g.h || wp > g.w {
            xp = try convPad(x, planes: g.n * g.cin, h: g.h, w: g.w, hd: hp, wd: wp, top: g.pt, left: g.pl)
            hx = hp
            wx = wp
        }
        let sw = g.sw <= 2 ? g.sw : 0
        let common: [CLArgument] = outputs + [.buffer(try xp.device()), .buffer(try weight.device())] + epilogue
            + [.bytes(g.argumentBytes), .int(Int32(hx)), .int(Int32(wx))]
        if g.isDepthwise {
            let global = [blocks, rowBlocks, g.n * g.cout]
            try launch("conv", "conv2d_forward_depthwise", common, global: global,
                       options: "-DSW=\(sw) -DPIX=\(pix) -DDWR=\(rowBlock)")
        } else {
            let tile = convTile(g.coutG)
            let global = [blocks, g.oh, g.n * g.groups * ((g.coutG + tile - 1) / tile)]
            try launch("conv", "conv2d_forward", common, global: global,
                       options: "-DTCO=\(tile) -DSW=\(sw) -DPIX=\(pix)")
        }
        return (y, pre)
    }

    /// y = act(conv(x, W) + bias); also returns z = conv(x, W) + bias when `savePre`.
    /// Activations outside `convFusedActivations` run as a separate unary kernel.
    func convForward(_ x: Tensor, weight: Tensor, bias: Tensor?, activation: Unary?, savePre: Bool,
                     geometry g: ConvGeometry) throws -> (output: Tensor, pre: Tensor?) {
        if let q = gemmChoice.tiledParameters,
           let r = try convForwardTiled(x, weight: weight, bias: bias, activation: activation, savePre: savePre,
                                        geometry: g, parameters: q) {
            return r
        }
        if convRoute.usesGEMM(g) {
            return try convForwardGEMM(x, weight: weight, bias: bias, activation: activation, savePre: savePre, geometry: g)
        }
        return try convForwardDirect(x, weight: weight, bias: bias, activation: activation, savePre: savePre, geometry: g)
    }

    /// `convForward` on conv.cl's direct kernels (whatever `gemmChoice` says).
    func convForwardDirect(_ x: Tensor, weight: Tensor, bias: Tensor?, activation: Unary?, savePre: Bool,
                           geometry g: ConvGeometry) throws -> (output: Tensor, pre: Tensor?) {
        guard let activation else {
            return (try convForwardFused(x, weight: weight, bias: bias, act: nil, writePre: false, geometry: g).0, nil)
        }
        if Self.convFusedActivations.contains(activation.function) {
            let (y, pre) = try convForwardFused(x, weight: weight, bias: bias, act: activation, writePre: savePre, geometry: g)
            return (y, pre)
        }
        let z = try convForwardFused(x, weight: weight, bias: bias, act: nil, writePre: false, geometry: g).0
        return (try unaryForward(activation, z), savePre ? z : nil)
    }

    /// The weight regrouped by `conv2d_pack_weight` so each (group, tap, output channel) holds its input
    /// channels side by side: packed[((grp·kH·kW + tap)·Cout/G + co)·Cin/G + ci] = W[grp·Cout/G + co, ci, tap].
    /// A weight that is an immutable graph constant is regrouped once and kept with it (`CLBuffer.derived`);
    /// the direct and the tiled backward kernels share that copy.
    func packedConvWeight(_ weight: Tensor, geometry g: ConvGeometry) throws -> CLBuffer {
        let ksize = g.kh * g.kw
        let source = try weight.device()
        return try source.derived("conv2d_pack_weight \(g.groups) \(g.cinG) \(g.coutG) \(ksize)") {
            let buffer = try context.makeBuffer(byteCount: max(1, g.groups * ksize * g.coutG * g.cinG) * 4)
            try launch("conv", "conv2d_pack_weight",
                       [.buffer(buffer), .buffer(source)] + [g.groups, g.cinG, g.coutG, ksize].map { .int(Int32($0)) },
                       global: [g.coutG, g.groups * ksize])
            return buffer
        }
    }

    /// dx = the transposed convolution of dy with W (+ bias over dx's channels): `Conv2D`'s
    /// backward-to-input and `ConvTranspose2D`'s forward.
    func convBackwardInput(_ dy: Tensor, weight: Tensor, bias: Tensor?, geometry g: ConvGeometry) throws -> Tensor {
        if let q = gemmChoice.tiledParameters,
           let dx = try convBackwardInputTiled(dy, weight: weight, bias: bias, geometry: g, parameters: q) {
            return dx
        }
        if convRoute.usesGEMM(g, backward: true) {
            return try convBackwardInputGEMM(dy, weight: weight, bias: bias, geometry: g)
        }
        return try convBackwardInputDirect(dy, weight: weight, bias: bias, geometry: g)
    }

    /// `convBackwardInput` on conv.cl's direct kernels (whatever `gemmChoice` says).
    func convBackwardInputDirect(_ dy: Tensor, weight: Tensor, bias: Tensor?, geometry g: ConvGeometry) throws -> Tensor {
        let dx = try make(g.inputShape)
        let biasArgs: [CLArgument] = [.buffer(try bias?.device() ?? weight.device()), .int(bias == nil ? 0 : 1)]
        if g.isPointwise {
            // dx[n, grp·cinG + m, p] = Σ_k W[grp·coutG + k, m] · dy[n, grp·coutG + k, p]
            let tile = convTile(g.cinG), p = g.h * g.w, pix = convPixels(p)
            try launch("conv", "conv2d_forward_1x1",
                       [.buffer(try dx.device()), .buffer(try dx.device()), .buffer(try dy.device()), .buffer(try weight.device())]
                       + biasArgs + [.int(0), .int(-1), .float(0), .float(0)]
                       + [g.n, g.groups, g.cinG, g.coutG, p, g.coutG * g.cinG, 1, g.cinG].map { .int(Int32($0)) },
                       global: [(p + pix - 1) / pix, g.groups * ((g.cinG + tile - 1) / tile), g.n],
                       options: "-DTCO=\(tile) -DPIX=\(pix)")
            return dx
        }
        // Pad dy so every output position the gather forms is inside the buffer (zeros outside dy).
        let qt = (max(0, (g.kh - 1) * g.dh - g.pt) + g.sh - 1) / g.sh
        let ql = (max(0, (g.kw - 1) * g.dw - g.pl) + g.sw - 1) / g.sw
        let pix = convPixels((g.w + g.sw - 1) / g.sw)
        let blocks = ((g.w + g.sw - 1) / g.sw + pix - 1) / pix
        let hq = max(qt + g.oh, (g.h - 1 + g.pt + qt * g.sh) / g.sh + 1)
        let wq = max(ql + g.ow, (g.sw - 1 + g.pl) / g.sw + ql + pix * blocks)
        let dyq = try convPad(dy, planes: g.n * g.cout, h: g.oh, w: g.ow, hd: hq, wd: wq, top: qt, left: ql)
        let packed = Tensor(shape: [g.groups * g.kh * g.kw * g.coutG * g.cinG], storage: .device(try packedConvWeight(weight, geometry: g)))
        let tile = convTile(g.cinG)
        let global = [g.sw * blocks, g.h, g.n * g.groups * ((g.cinG + tile - 1) / tile)]
        try launch("conv", "conv2d_backward_input",
                   [.buffer(try dx.device()), .buffer(try dyq.device()), .buffer(try packed.device())] + biasArgs
                   + [.bytes(g.argumentBytes)] + [hq, wq, qt, ql].map { .int(Int32($0)) },
                   global: global,
                   options: "-DTCI=\(tile) -DPIX=\(pix)")
        return dx
    }

    // MARK: GEMM route (PoCL)

    /// Rows of a column panel: round_up(columns, 16) (`conv2d_gemm_8x16` reads 16 columns from every block start).
    private static func panelStride(_ columns: Int) -> Int { (columns + 15) / 16 * 16 }

    /// out[b] (M × N) = act(A · B[b] + bias[m]) on `conv2d_gemm_8x16`, A(m, k) = A[m·aRow + k·aCol] (the weight,
    /// shared by the batch), B[b] the panel rows b·bBatch + k·ldb; `pre` receives the value before act.
    private func convGEMM(out: Tensor, pre: Tensor?, a: CLBuffer, aRow: Int, aCol: Int, b: CLBuffer, bBatch: Int, ldb: Int,
                          bias: Tensor?, act: Unary?, batch: Int, m: Int, n: Int, k: Int) throws {
        try launch("conv", "conv2d_gemm_8x16",
                   [.buffer(try out.device()), .buffer(try pre?.device() ?? out.device()), .buffer(a),
                    .int(Int32(aRow)), .int(Int32(aCol)), .buffer(b), .int(Int32(bBatch)), .int(Int32(ldb)),
                    .buffer(try bias?.device() ?? a), .int(bias == nil ? 0 : 1), .int(pre == nil ? 0 : 1),
                    .int(act?.function.rawValue ?? -1), .float(act?.alpha ?? 0), .float(act?.beta ?? 0),
                    .int(Int32(m)), .int(Int32(n)), .int(Int32(k))],
                   global: [(m + 7) / 8, (n + 15) / 16, batch], options: "-DPIX=16")
        recordConvGEMMLaunch()
    }

    /// An ungrouped convolution's forward on the GEMM route: per image b, y[b] (Cout × P) = act(W (Cout × K) ·
    /// col[b] (K × P) + bias), K = Cin·kH·kW, P = OH·OW, col = `conv2d_im2col`(x) in a [n, K, round_up(P, 16)]
    /// panel (x itself when the convolution is pointwise and P % 16 == 0). Activations outside
    /// `convFusedActivations` run as a separate unary kernel.
    func convForwardGEMM(_ x: Tensor, weight: Tensor, bias: Tensor?, activation: Unary?, savePre: Bool,
                         geometry g: ConvGeometry) throws -> (output: Tensor, pre: Tensor?) {
        let fused = activation.map { Self.convFusedActivations.contains($0.function) } ?? true
        let act = fused ? activation : nil
        let y = try make(g.outputShape)
        let pre = act != nil && savePre ? try make(g.outputShape) : nil
        let k = g.cin * g.kh * g.kw, p = g.oh * g.ow, ldb = Self.panelStride(p)
        var col: Tensor? = nil
        if !(g.isPointwise && p == ldb) {
            let c = try make([g.n, k, ldb])
            try launch("conv", "conv2d_im2col", [.buffer(try c.device()), .buffer(try x.device()), .bytes(g.argumentBytes),
                                                 .int(Int32(ldb))], global: [k, g.n])
            col = c
        }
        try convGEMM(out: y, pre: pre, a: try weight.device(), aRow: k, aCol: 1, b: try (col ?? x).device(),
                     bBatch: k * ldb, ldb: ldb, bias: bias, act: act, batch: g.n, m: g.cout, n: p, k: k)
        withExtendedLifetime(col) {}
        guard let activation, !fused else { return (y, pre) }
        return (try unaryForward(activation, y), savePre ? y : nil)
    }

    /// An ungrouped convolution's backward-to-input (`ConvTranspose2D`'s forward, bias over dx's channels) on
    /// the GEMM route: per image b, dcol[b] (K × P) = Wᵀ (K × Cout) · dy[b] (Cout × P), then dx = `conv2d_col2im`
    /// (dcol) + bias (a gather). A pointwise convolution writes dx (+ bias) straight from the GEMM. dy is read as
    /// the panel when P % 16 == 0, else copied into a [n, Cout, round_up(P, 16)] panel by `conv2d_pad`.
    func convBackwardInputGEMM(_ dy: Tensor, weight: Tensor, bias: Tensor?, geometry g: ConvGeometry) throws -> Tensor {
        let dx = try make(g.inputShape)
        let k = g.cin * g.kh * g.kw, p = g.oh * g.ow, ldb = Self.panelStride(p)
        var panel = dy
        if p != ldb {
            panel = try convPad(dy, planes: g.n * g.cout, h: 1, w: p, hd: 1, wd: ldb, top: 0, left: 0)
        }
        if g.isPointwise {
            try convGEMM(out: dx, pre: nil, a: try weight.device(), aRow: 1, aCol: k, b: try panel.device(),
                         bBatch: g.cout * ldb, ldb: ldb, bias: bias, act: nil, batch: g.n, m: k, n: p, k: g.cout)
            withExtendedLifetime(panel) {}
            return dx
        }
        let dcol = try make([g.n, k, p])
        try convGEMM(out: dcol, pre: nil, a: try weight.device(), aRow: 1, aCol: k, b: try panel.device(),
                     bBatch: g.cout * ldb, ldb: ldb, bias: nil, act: nil, batch: g.n, m: k, n: p, k: g.cout)
        try launch("conv", "conv2d_col2im",
                   [.buffer(try dx.device()), .buffer(try dcol.device()), .buffer(try bias?.device() ?? dcol.device()),
                    .int(bias == nil ? 0 : 1), .bytes(g.argumentBytes)],
                   global: [g.h, g.n * g.cin])
        withExtendedLifetime((panel, dcol)) {}
        return dx
    }
}
