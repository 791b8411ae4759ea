// CPU reference of the pooling operators: plain loops over every window (backward scatters).

extension PoolGeometry {
    /// Calls body(iy, ix) for every tap of output window (oy, ox) that lies inside the input, in
    /// row-major window order (the one window walk of max and average pooling, forward and backward).
    @inline(__always)
    func forEachTap(_ oy: Int, _ ox: Int, _ body: (_ iy: Int, _ ix: Int) -> Void) {
        for ky in 0..<kh {
            let iy = oy * sh - pt + ky * dh
            guard iy >= 0, iy < h else { continue }
            for kx in 0..<kw {
                let ix = ox * sw - pl + kx * dw
                guard ix >= 0, ix < w else { continue }
                body(iy, ix)
            }
        }
    }
}

extension CPUBackend {
    func maxPoolForward(_ x: Tensor, geometry g: PoolGeometry) throws -> (output: Tensor, argmax: Tensor) {
        let started = profileStart(); defer { profileEnd("maxpool_forward", started) }
        let y = make(g.outputShape), idx = make(g.outputShape)
        let xp = try x.host().pointer, yp = try y.host().pointer, ip = try idx.host().pointer
        forChunks(g.planes, grain: max(1, CPUParallel.defaultGrain / max(g.h * g.w, 1))) { lo, hi in
        for p in lo..<hi {
            let plane = xp + p * g.h * g.w
            for oy in 0..<g.oh {
                for ox in 0..<g.ow {
                    var best = -Float.infinity, arg = -1
                    g.forEachTap(oy, ox) { iy, ix in
                        // Strictly greater: ties keep the first maximum.
                        if arg < 0 || plane[iy * g.w + ix] > best { best = plane[iy * g.w + ix]; arg = iy * g.w + ix }
                    }
                    let o = (p * g.oh + oy) * g.ow + ox
                    yp[o] = arg < 0 ? 0 : best
                    ip[o] = Float(arg)
                }
            }
        }
        }
        return (y, idx)
    }

    func maxPoolBackward(_ dy: Tensor, argmax: Tensor, geometry g: PoolGeometry) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("maxpool_backward", started) }
        let dx = make(g.inputShape)
        let dyp = try dy.host().pointer, ip = try argmax.host().pointer, dxp = try dx.host().pointer
        // Each plane scatters only into its own plane of dx, in the serial order.
        forChunks(g.planes, grain: max(1, CPUParallel.defaultGrain / max(g.h * g.w, 1))) { lo, hi in
            for p in lo..<hi {
                for o in 0..<(g.oh * g.ow) {
                    let arg = Int(ip[p * g.oh * g.ow + o])
                    if arg >= 0 { dxp[p * g.h * g.w + arg] += dyp[p * g.oh * g.ow + o] }
                }
            }
        }
        return dx
    }

    /// The divisor of average pooling for window (oy, ox).
    private func avgPoolCount(_ g: PoolGeometry, _ oy: Int, _ ox: Int, countIncludePad: Bool) -> Int {
        let rows = PoolGeometry.taps(oy, stride: g.sh, pad: g.pt, dilation: g.dh, kernel: g.kh,
                                     lo: countIncludePad ? -g.pt : 0, hi: countIncludePad ? g.h + g.pb : g.h)
        let cols = PoolGeometry.taps(ox, stride: g.sw, pad: g.pl, dilation: g.dw, kernel: g.kw,
                                     lo: countIncludePad ? -g.pl : 0, hi: countIncludePad ? g.w + g.pr : g.w)
        // Taps of a dilated window inside [lo, hi) are contiguous in k, so the count is the range length.
        return rows.count * cols.count
    }

    func avgPoolForward(_ x: Tensor, geometry g: PoolGeometry, countIncludePad: Bool) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("avgpool_forward", started) }
        let y = make(g.outputShape)
        let xp = try x.host().pointer, yp = try y.host().pointer
        forChunks(g.planes, grain: max(1, CPUParallel.defaultGrain / max(g.h * g.w, 1))) { lo, hi in
        for p in lo..<hi {
            let plane = xp + p * g.h * g.w
            for oy in 0..<g.oh {
                for ox in 0..<g.ow {
                    var sum = 0.0
                    g.forEachTap(oy, ox) { iy, ix in sum += Double(plane[iy * g.w + ix]) }
                    let count = avgPoolCount(g, oy, ox, countIncludePad: countIncludePad)
                    yp[(p * g.oh + oy) * g.ow + ox] = count > 0 ? Float(sum / Double(count)) : 0
                }
            }
        }
        }
        return y
    }

    func avgPoolBackward(_ dy: Tensor, geometry g: PoolGeometry, countIncludePad: Bool) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("avgpool_backward", started) }
        let dx = make(g.inputShape)
        let dyp = try dy.host().pointer, dxp = try dx.host().pointer
        forChunks(g.planes, grain: max(1, CPUParallel.defaultGrain / max(g.h * g.w, 1))) { lo, hi in
        for p in lo..<hi {
            let plane = dxp + p * g.h * g.w
            for oy in 0..<g.oh {
                for ox in 0..<g.ow {
                    let count = avgPoolCount(g, oy, ox, countIncludePad: countIncludePad)
                    guard count > 0 else { continue }
                    let share = dyp[(p * g.oh + oy) * g.ow + ox] / Float(count)
                    g.forEachTap(oy, ox) { iy, ix in plane[iy * g.w + ix] += share }
                }
            }
        }
        }
        return dx
    }
}
