import Foundation

// CPU references of the image-side kernels (image.cl): affine warp, blur step, roll, channel
// affine, neighbour differences (the optimizer steps are in Optimizer+CPU.swift). Plain loops; the warp's backward is a scatter, so it is
// checked against the OpenCL gather by an independent route.

extension CPUBackend {
    /// Index-space sample point of output pixel (xo, yo) for per-image parameters `p` (see AffineWarp.kernelParameters).
    @inline(__always)
    private func samplePoint(_ p: UnsafePointer<Float>, _ xo: Int, _ yo: Int, _ op: AffineWarp,
                             height: Int, width: Int) -> (Double, Double) {
        var sx = Double(p[0]) * Double(xo) + Double(p[1]) * Double(yo) + Double(p[2])
        var sy = Double(p[3]) * Double(xo) + Double(p[4]) * Double(yo) + Double(p[5])
        if op.replicate {
            let pad = Double(op.padding)
            sx = min(max(sx, -pad), Double(width) + pad - 1)
            sy = min(max(sy, -pad), Double(height) + pad - 1)
        }
        return (sx, sy)
    }

    func affineWarpForward(_ op: AffineWarp, _ x: Tensor, params: Tensor) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("affine_warp_forward", started) }
        let (n, c, h, w) = (x.shape[0] * op.copies, x.shape[1], x.shape[2], x.shape[3])
        let (ho, wo) = (op.outputHeight, op.outputWidth)
        let out = make([n, c, ho, wo])
        let xp = try x.host().pointer, yp = try out.host().pointer
        let pad = op.padding
        let fill = op.fillValue, padValue = op.paddingValue
        func fetch(_ plane: UnsafeMutablePointer<Float>, _ i: Int, _ j: Int) -> Double {
            if i >= 0 && i < w && j >= 0 && j < h { return Double(plane[j * w + i]) }
            if i >= -pad && i < w + pad && j >= -pad && j < h + pad { return Double(padValue) }
            return Double(fill)
        }
        do {
            guard params.count > 0 else { throw EngineError.invalidAttribute("AffineWarp: no matrices") }
            let base = UnsafePointer(try params.host().pointer)
            for image in 0..<n {
                let p = base + (op.matrices.count == 1 ? 0 : image * 16)
                for yo in 0..<ho {
                    for xo in 0..<wo {
                        let (sx, sy) = samplePoint(p, xo, yo, op, height: h, width: w)
                        let x0 = Int(sx.rounded(.down)), y0 = Int(sy.rounded(.down))
                        let fx = sx - Double(x0), fy = sy - Double(y0)
                        for ch in 0..<c {
                            let plane = xp + (image / op.copies * c + ch) * h * w
                            let top = (1 - fx) * fetch(plane, x0, y0) + fx * fetch(plane, x0 + 1, y0)
                            let bottom = (1 - fx) * fetch(plane, x0, y0 + 1) + fx * fetch(plane, x0 + 1, y0 + 1)
                            yp[((image * c + ch) * ho + yo) * wo + xo] = Float((1 - fy) * top + fy * bottom)
                        }
                    }
                }
            }
        }
        return out
    }

    /// Scatter: each output pixel adds its four bilinear weights times dy into the real input pixels.
    func affineWarpBackward(_ op: AffineWarp, gradOutput g: Tensor, inputShape: [Int], params: Tensor) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("affine_warp_backward", started) }
        let (n, c, h, w) = (inputShape[0] * op.copies, inputShape[1], inputShape[2], inputShape[3])
        let (ho, wo) = (op.outputHeight, op.outputWidth)
        let dx = make(inputShape)
        let gp = try g.host().pointer, dp = try dx.host().pointer
        var acc = [Double](repeating: 0, count: inputShape[0] * c * h * w)
        do {
            guard params.count > 0 else { throw EngineError.invalidAttribute("AffineWarp: no matrices") }
            let base = UnsafePointer(try params.host().pointer)
            for image in 0..<n {
                let p = base + (op.matrices.count == 1 ? 0 : image * 16)
                for yo in 0..<ho {
                    for xo in 0..<wo {
                        let (sx, sy) = samplePoint(p, xo, yo, op, height: h, width: w)
                        let x0 = Int(sx.rounded(.down)), y0 = Int(sy.rounded(.down))
                        let fx = sx - Double(x0), fy = sy - Double(y0)
                        let corners = [(x0, y0, (1 - fx) * (1 - fy)), (x0 + 1, y0, fx * (1 - fy)),
                                       (x0, y0 + 1, (1 - fx) * fy), (x0 + 1, y0 + 1, fx * fy)]
                        for (i, j, weight) in corners where i >= 0 && i < w && j >= 0 && j < h && weight != 0 {
                            for ch in 0..<c {
                                acc[((image / op.copies * c + ch) * h + j) * w + i] += weight * Double(gp[((image * c + ch) * ho + yo) * wo + xo])
                            }
                        }
                    }
                }
            }
        }
        for i in 0..<acc.count { dp[i] = Float(acc[i]) }
        return dx
    }

    /// out = (1 − amount)·x + amount·blur(x), blur = lucid's 3×3 kernel (centre 1, ring 0.5), zero
    /// padded and divided by the same convolution of ones. x: [planes, H, W].
    func blurStep(_ x: Tensor, planes: Int, height h: Int, width w: Int, amount: Float) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("blur_step", started) }
        let out = make(x.shape)
        let xp = try x.host().pointer, yp = try out.host().pointer
        for plane in 0..<planes {
            let src = xp + plane * h * w, dst = yp + plane * h * w
            for j in 0..<h {
                for i in 0..<w {
                    var sum = 0.0, norm = 0.0
                    for dj in -1...1 {
                        for di in -1...1 {
                            let jj = j + dj, ii = i + di
                            guard jj >= 0, jj < h, ii >= 0, ii < w else { continue }
                            let k = (di == 0 && dj == 0) ? 1.0 : 0.5
                            sum += k * Double(src[jj * w + ii])
                            norm += k
                        }
                    }
                    let v = Double(src[j * w + i])
                    dst[j * w + i] = Float((1 - Double(amount)) * v + Double(amount) * sum / norm)
                }
            }
        }
        return out
    }

    /// torch.roll over the last two axes (shifts already in [0, H) and [0, W)).
    func roll(_ x: Tensor, planes: Int, height h: Int, width w: Int, sy: Int, sx: Int) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("roll", started) }
        let out = make(x.shape)
        let xp = try x.host().pointer, yp = try out.host().pointer
        for p in 0..<planes {
            for j in 0..<h {
                for i in 0..<w {
                    yp[(p * h + j) * w + i] = xp[(p * h + (j - sy + h) % h) * w + (i - sx + w) % w]
                }
            }
        }
        return out
    }

    /// y[r, c] = scale·x[r / copies, c] + shift, (scale, shift) pairs in `packed` per channel or per (row, channel).
    func channelAffineForward(_ x: Tensor, outShape: [Int], copies: Int, packed: Tensor, shared: Bool) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("channel_affine_forward", started) }
        let out = make(outShape)
        let xp = try x.host().pointer, yp = try out.host().pointer, packed = try packed.host().pointer
        let (rows, c, hw) = (outShape[0], outShape[1], outShape[2] * outShape[3])
        for r in 0..<rows {
            for ch in 0..<c {
                let e = shared ? ch : r * c + ch
                let (a, b) = (packed[2 * e], packed[2 * e + 1])
                let src = xp + ((r / copies) * c + ch) * hw, dst = yp + (r * c + ch) * hw
                for q in 0..<hw { dst[q] = a * src[q] + b }
            }
        }
        return out
    }

    /// dx[n, c] = Σ_k scale[n·copies + k, c]·dy[n·copies + k, c].
    func channelAffineBackward(_ g: Tensor, inputShape: [Int], copies: Int, packed: Tensor, shared: Bool) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("channel_affine_backward", started) }
        let dx = make(inputShape)
        let gp = try g.host().pointer, dp = try dx.host().pointer, packed = try packed.host().pointer
        let (c, hw) = (inputShape[1], inputShape[2] * inputShape[3])
        for r in 0..<(inputShape[0] * copies) {
            for ch in 0..<c {
                let a = packed[2 * (shared ? ch : r * c + ch)]
                let src = gp + (r * c + ch) * hw, dst = dp + ((r / copies) * c + ch) * hw
                for q in 0..<hw { dst[q] += a * src[q] }
            }
        }
        return dx
    }

    /// y[n, c, k] = Σ_p |d|^power over the pixel pairs of each kind (accumulated in Double).
    func neighborDifferencesForward(_ op: NeighborDifferences, _ x: Tensor, outShape: [Int]) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("neighbor_differences_forward", started) }
        let out = make(outShape)
        let xp = try x.host().pointer, yp = try out.host().pointer
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        for p in 0..<planes {
            let src = xp + p * h * w
            for (k, kind) in op.kinds.enumerated() {
                let (ay, ax, by, bx) = kind.offsets
                var total = 0.0
                for j in 0..<(h - max(ay, by)) {
                    for i in 0..<(w - max(ax, bx)) {
                        let d = Double(src[(j + ay) * w + i + ax]) - Double(src[(j + by) * w + i + bx])
                        total += op.power == 1 ? abs(d) : d * d
                    }
                }
                yp[p * op.kinds.count + k] = Float(total)
            }
        }
        return out
    }

    /// Scatter: each pixel pair adds ±g·f'(d) to its two pixels.
    func neighborDifferencesBackward(_ op: NeighborDifferences, gradOutput g: Tensor, _ x: Tensor) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("neighbor_differences_backward", started) }
        let dx = make(x.shape)
        let xp = try x.host().pointer, gp = try g.host().pointer, dp = try dx.host().pointer
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        for p in 0..<planes {
            let src = xp + p * h * w, dst = dp + p * h * w
            for (k, kind) in op.kinds.enumerated() {
                let (ay, ax, by, bx) = kind.offsets
                let gk = gp[p * op.kinds.count + k]
                for j in 0..<(h - max(ay, by)) {
                    for i in 0..<(w - max(ax, bx)) {
                        let d = src[(j + ay) * w + i + ax] - src[(j + by) * w + i + bx]
                        let slope: Float = op.power == 1 ? (d > 0 ? 1 : (d < 0 ? -1 : 0)) : 2 * d
                        dst[(j + ay) * w + i + ax] += gk * slope
                        dst[(j + by) * w + i + bx] -= gk * slope
                    }
                }
            }
        }
        return dx
    }
}
