import COpenBLAS

// CPU reference of Conv2D / ConvTranspose2D: im2col (col2im for the adjoint) and cblas_sgemm,
// one product per (image, group). A pointwise convolution (1×1, stride 1, no padding) skips
// im2col/col2im: its im2col matrix is the input planes themselves. im2col and col2im split their
// input channels across threads (each channel owns its rows of col and its plane of dx, and every
// element is computed by the serial expression in the serial order: results are bit-identical).

extension CPUBackend {
    /// Fills col[(ci·kH + ky)·kW + kx, oy·OW + ox] = x[n, g·Cin/G + ci, oy·sH − pT + ky·dH, ox·sW − pL + kx·dW]
    /// (0 outside the input) for one image `n` and group `group`.
    private func im2col(_ x: UnsafeMutablePointer<Float>, n: Int, group: Int, _ g: ConvGeometry,
                        into col: UnsafeMutablePointer<Float>) {
        let p = g.oh * g.ow
        forChunks(g.cinG, grain: max(1, CPUParallel.defaultGrain / max(g.kh * g.kw * p, 1))) { lo, hi in
        for ci in lo..<hi {
            let plane = x + ((n * g.cin + group * g.cinG + ci) * g.h) * g.w
            for ky in 0..<g.kh {
                for kx in 0..<g.kw {
                    let row = col + ((ci * g.kh + ky) * g.kw + kx) * p
                    for oy in 0..<g.oh {
                        let iy = oy * g.sh - g.pt + ky * g.dh
                        let dst = row + oy * g.ow
                        guard iy >= 0, iy < g.h else {
                            for ox in 0..<g.ow { dst[ox] = 0 }
                            continue
                        }
                        for ox in 0..<g.ow {
                            let ix = ox * g.sw - g.pl + kx * g.dw
                            dst[ox] = ix >= 0 && ix < g.w ? plane[iy * g.w + ix] : 0
                        }
                    }
                }
            }
        }
        }
    }

    /// The adjoint of `im2col`: dx[n, g·Cin/G + ci, iy, ix] += col[...] for every tap that read it.
    private func col2im(_ col: UnsafeMutablePointer<Float>, n: Int, group: Int, _ g: ConvGeometry,
                        into dx: UnsafeMutablePointer<Float>) {
        let p = g.oh * g.ow
        forChunks(g.cinG, grain: max(1, CPUParallel.defaultGrain / max(g.kh * g.kw * p, 1))) { lo, hi in
        for ci in lo..<hi {
            let plane = dx + ((n * g.cin + group * g.cinG + ci) * g.h) * g.w
            for ky in 0..<g.kh {
                for kx in 0..<g.kw {
                    let row = col + ((ci * g.kh + ky) * g.kw + kx) * p
                    for oy in 0..<g.oh {
                        let iy = oy * g.sh - g.pt + ky * g.dh
                        guard iy >= 0, iy < g.h else { continue }
                        for ox in 0..<g.ow {
                            let ix = ox * g.sw - g.pl + kx * g.dw
                            if ix >= 0 && ix < g.w { plane[iy * g.w + ix] += row[oy * g.ow + ox] }
                        }
                    }
                }
            }
        }
        }
    }

    /// Depthwise with one output per channel (groups = Cin = Cout), as a direct loop (im2col + sgemm
    /// would be one M = 1 product per channel): z[n, c, oy, ox] = Σ_{ky, kx} W[c, 0, ky, kx] ·
    /// x[n, c, oy·sH − pT + ky·dH, ox·sW − pL + kx·dW] over the taps inside the input, summed in Float in
    /// row-major tap order. Planes (n, c) are split across threads. ResNetV2's pre-activation batch norms
    /// are such convolutions (1×1, one multiply per element).
    private func depthwiseForward(_ xp: UnsafeMutablePointer<Float>, _ wp: UnsafeMutablePointer<Float>,
                                  into zp: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
        let taps = g.kh * g.kw, inPlane = g.h * g.w, outPlane = g.oh * g.ow
        forChunks(g.n * g.cout, grain: max(1, CPUParallel.defaultGrain / max(outPlane * taps, 1))) { lo, hi in
            for plane in lo..<hi {
                let c = plane % g.cout
                let x = xp + plane * inPlane, z = zp + plane * outPlane, w = wp + c * taps
                for oy in 0..<g.oh {
                    for ox in 0..<g.ow {
                        var acc: Float = 0
                        for ky in 0..<g.kh {
                            let iy = oy * g.sh - g.pt + ky * g.dh
                            guard iy >= 0, iy < g.h else { continue }
                            for kx in 0..<g.kw {
                                let ix = ox * g.sw - g.pl + kx * g.dw
                                guard ix >= 0, ix < g.w else { continue }
                                acc += w[ky * g.kw + kx] * x[iy * g.w + ix]
                            }
                        }
                        z[oy * g.ow + ox] = acc
                    }
                }
            }
        }
    }

    /// The adjoint of `depthwiseForward`: dx[n, c, iy, ix] = Σ W[c, 0, ky, kx] · dy[n, c, oy, ox] over every
    /// (oy, ox, ky, kx) whose tap reads (iy, ix), scattered in the forward's loop order per plane.
    private func depthwiseBackwardInput(_ dyp: UnsafeMutablePointer<Float>, _ wp: UnsafeMutablePointer<Float>,
                                        into dxp: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
        let taps = g.kh * g.kw, inPlane = g.h * g.w, outPlane = g.oh * g.ow
        forChunks(g.n * g.cin, grain: max(1, CPUParallel.defaultGrain / max(outPlane * taps, 1))) { lo, hi in
            for plane in lo..<hi {
                let c = plane % g.cin
                let dx = dxp + plane * inPlane, dy = dyp + plane * outPlane, w = wp + c * taps
                for oy in 0..<g.oh {
                    for ox in 0..<g.ow {
                        let d = dy[oy * g.ow + ox]
                        for ky in 0..<g.kh {
                            let iy = oy * g.sh - g.pt + ky * g.dh
                            guard iy >= 0, iy < g.h else { continue }
                            for kx in 0..<g.kw {
                                let ix = ox * g.sw - g.pl + kx * g.dw
                                guard ix >= 0, ix < g.w else { continue }
                                dx[iy * g.w + ix] += w[ky * g.kw + kx] * d
                            }
                        }
                    }
                }
            }
        }
    }

    /// y = act(conv(x, W) + bias) for `Conv2D` (and the backward of `ConvTranspose2D`).
    /// Returns the pre-activation too when `savePre` (and there is an activation).
    func convForward(_ x: Tensor, weight: Tensor, bias: Tensor?, activation: Unary?, savePre: Bool,
                     geometry g: ConvGeometry) throws -> (output: Tensor, pre: Tensor?) {
        let started = profileStart(); defer { profileEnd("conv_forward", started) }
        let z = make(g.outputShape)
        let xp = try x.host().pointer, wp = try weight.host().pointer, zp = try z.host().pointer
        let k = g.cinG * g.kh * g.kw, p = g.oh * g.ow
        let pointwise = g.isPointwise, depthwise = g.cinG == 1 && g.coutG == 1
        let col = UnsafeMutablePointer<Float>.allocate(capacity: pointwise || depthwise ? 1 : max(k * p, 1))
        defer { col.deallocate() }
        if depthwise {
            let t0 = profileStart()
            depthwiseForward(xp, wp, into: zp, g)
            profileEnd("conv_forward.depthwise", t0)
        }
        for n in 0..<(depthwise ? 0 : g.n) {
            for group in 0..<g.groups {
                // Pointwise: im2col of (n, group) is x[n, group·Cin/G ..< (group+1)·Cin/G] itself (k × p).
                let source: UnsafeMutablePointer<Float>
                if pointwise {
                    source = xp + (n * g.cin + group * g.cinG) * p
                } else {
                    let t0 = profileStart()
                    im2col(xp, n: n, group: group, g, into: col)
                    profileEnd("conv_forward.im2col", t0)
                    source = col
                }
                let t1 = profileStart(); defer { profileEnd("conv_forward.sgemm", t1) }
                // z[n, group] (coutG × p) = W[group] (coutG × k) · col (k × p)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(g.coutG), Int32(p), Int32(k), 1,
                            wp + group * g.coutG * k, Int32(k), source, Int32(p), 0,
                            zp + (n * g.cout + group * g.coutG) * p, Int32(p))
            }
        }
        if let bias { try addChannelBias(zp, bias, planes: g.n, channels: g.cout, inner: p) }
        guard let activation else { return (z, nil) }
        return (try unaryForward(activation, z), savePre ? z : nil)
    }

    /// dx = the transposed convolution of dy with W (`Conv2D`'s backward-to-input and
    /// `ConvTranspose2D`'s forward), plus an optional bias over dx's channels.
    func convBackwardInput(_ dy: Tensor, weight: Tensor, bias: Tensor?, geometry g: ConvGeometry) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("conv_backward_input", started) }
        let dx = make(g.inputShape)
        let dyp = try dy.host().pointer, wp = try weight.host().pointer, dxp = try dx.host().pointer
        let k = g.cinG * g.kh * g.kw, p = g.oh * g.ow
        let pointwise = g.isPointwise, depthwise = g.cinG == 1 && g.coutG == 1
        let col = UnsafeMutablePointer<Float>.allocate(capacity: pointwise || depthwise ? 1 : max(k * p, 1))
        defer { col.deallocate() }
        if depthwise {
            let t0 = profileStart()
            depthwiseBackwardInput(dyp, wp, into: dxp, g)
            profileEnd("conv_backward_input.depthwise", t0)
        }
        for n in 0..<(depthwise ? 0 : g.n) {
            for group in 0..<g.groups {
                let t1 = profileStart()
                // col (k × p) = W[group]ᵀ (k × coutG) · dy[n, group] (coutG × p). Pointwise: col2im would
                // add col into the zero planes dx[n, group·Cin/G ..< (group+1)·Cin/G], so write there directly.
                let target = pointwise ? dxp + (n * g.cin + group * g.cinG) * p : col
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(k), Int32(p), Int32(g.coutG), 1,
                            wp + group * g.coutG * k, Int32(k), dyp + (n * g.cout + group * g.coutG) * p, Int32(p), 0,
                            target, Int32(p))
                profileEnd("conv_backward_input.sgemm", t1)
                if pointwise { continue }
                let t0 = profileStart()
                col2im(col, n: n, group: group, g, into: dxp)
                profileEnd("conv_backward_input.col2im", t0)
            }
        }
        if let bias { try addChannelBias(dxp, bias, planes: g.n, channels: g.cin, inner: g.h * g.w) }
        return dx
    }

    /// t[n, c, i] += bias[c] for a tensor laid out [planes, channels, inner].
    func addChannelBias(_ t: UnsafeMutablePointer<Float>, _ bias: Tensor, planes: Int, channels: Int, inner: Int) throws {
        let b = try bias.host().pointer
        forChunks(planes * channels, grain: max(1, CPUParallel.defaultGrain / max(inner, 1))) { lo, hi in
            for plane in lo..<hi {
                let row = t + plane * inner
                let v = b[plane % channels]
                for i in 0..<inner { row[i] += v }
            }
        }
    }
}
