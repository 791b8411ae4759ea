// CPU reference of Resize: the separable two-tap interpolation, backward as a scatter.

extension CPUBackend {
    func resizeForward(_ x: Tensor, outShape: [Int], rows: ResizeAxisTable, cols: ResizeAxisTable) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("resize_forward", started) }
        let y = make(outShape)
        let xp = try x.host().pointer, yp = try y.host().pointer
        let (h, w, oh, ow) = (x.shape[2], x.shape[3], outShape[2], outShape[3])
        for p in 0..<(outShape[0] * outShape[1]) {
            let plane = xp + p * h * w
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var s = 0.0
                    for (iy, wy) in [(rows.i0[oy], rows.w0[oy]), (rows.i1[oy], rows.w1[oy])] {
                        for (ix, wx) in [(cols.i0[ox], cols.w0[ox]), (cols.i1[ox], cols.w1[ox])] {
                            s += Double(wy) * Double(wx) * Double(plane[iy * w + ix])
                        }
                    }
                    yp[(p * oh + oy) * ow + ox] = Float(s)
                }
            }
        }
        return y
    }

    func resizeBackward(_ dy: Tensor, inShape: [Int], rows: ResizeAxisTable, cols: ResizeAxisTable) throws -> Tensor {
        let started = profileStart(); defer { profileEnd("resize_backward", started) }
        let dx = make(inShape)
        let dyp = try dy.host().pointer, dxp = try dx.host().pointer
        let (h, w, oh, ow) = (inShape[2], inShape[3], dy.shape[2], dy.shape[3])
        for p in 0..<(inShape[0] * inShape[1]) {
            let plane = dxp + p * h * w
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let g = dyp[(p * oh + oy) * ow + ox]
                    for (iy, wy) in [(rows.i0[oy], rows.w0[oy]), (rows.i1[oy], rows.w1[oy])] {
                        for (ix, wx) in [(cols.i0[ox], cols.w0[ox]), (cols.i1[ox], cols.w1[ox])] {
                            plane[iy * w + ix] += wy * wx * g
                        }
                    }
                }
            }
        }
        return dx
    }
}
