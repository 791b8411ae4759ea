import Foundation

/// Interpolation of `Resize`.
public enum ResizeMode: String, Sendable, CaseIterable {
    case nearest
    /// Bilinear on the two spatial axes.
    case linear
}

/// ONNX `coordinate_transformation_mode`: the source coordinate x of output index o, with
/// scale = out / in (or the given scale).
public enum ResizeCoordinates: String, Sendable, CaseIterable {
    /// x = (o + 0.5) / scale − 0.5
    case halfPixel = "half_pixel"
    /// x = out > 1 ? (o + 0.5) / scale − 0.5 : 0
    case pytorchHalfPixel = "pytorch_half_pixel"
    /// x = out > 1 ? o · (in − 1) / (out − 1) : 0
    case alignCorners = "align_corners"
    /// x = o / scale
    case asymmetric
}

/// ONNX `nearest_mode`: how a source coordinate is rounded to an index in nearest mode.
public enum ResizeNearestMode: String, Sendable, CaseIterable {
    /// Round, halves down (ONNX's default).
    case roundPreferFloor = "round_prefer_floor"
    /// Round, halves up.
    case roundPreferCeil = "round_prefer_ceil"
    case floor
    case ceil
}

/// Per-axis interpolation table: output o reads input i0[o] with weight w0[o] and i1[o] with w1[o];
/// input i is read by the outputs in first[i] ..< last[i] (a contiguous range, since the mapping is
/// monotone), which is what the gather-form backward loops over.
struct ResizeAxisTable: Equatable {
    var i0: [Int], i1: [Int], w0: [Float], w1: [Float]
    var first: [Int], last: [Int]

    /// Packed for the kernels as floats: [i0, i1, w0, w1] per output, then [first, last] per input.
    var packed: [Float] {
        var out: [Float] = []
        out.reserveCapacity(4 * i0.count + 2 * first.count)
        for o in i0.indices { out += [Float(i0[o]), Float(i1[o]), w0[o], w1[o]] }
        for i in first.indices { out += [Float(first[i]), Float(last[i])] }
        return out
    }
}

/// Resizes the spatial axes of an NCHW tensor (ONNX Resize with mode nearest or linear, on H and W):
///
///     y[n, c, oy, ox] = Σ_{a, b ∈ {0, 1}} wy_a(oy) · wx_b(ox) · x[n, c, iy_a(oy), ix_b(ox)]
///
/// Per axis, the source coordinate x(o) follows `coordinates`; linear: x clamped to [0, in − 1],
/// i_0 = ⌊x⌋, i_1 = min(i_0 + 1, in − 1), weights (1 − (x − i_0), x − i_0) (ONNX's edge padding gives
/// the same); nearest: i_0 = round(x) by `nearestMode`, clamped to [0, in − 1], weight 1.
/// Output size: `size` [OH, OW], or ⌊in · scale⌋ from `scales` [sH, sW] (which then also set the
/// coordinate scale; otherwise scale = out / in). x [N, C, H, W] → y [N, C, OH, OW].
/// Backward: dx[iy, ix] = Σ_{oy, ox reading it} wy · wx · dy — a gather over the contiguous range of
/// outputs that read each input (no atomics).
public struct Resize: Operator {
    public var mode: ResizeMode
    public var coordinates: ResizeCoordinates
    public var nearestMode: ResizeNearestMode
    public var size: [Int]?
    public var scales: [Float]?

    /// Resize to a given output size [OH, OW].
    public init(size: [Int], mode: ResizeMode = .linear, coordinates: ResizeCoordinates = .halfPixel,
                nearestMode: ResizeNearestMode = .roundPreferFloor) {
        self.size = size
        self.scales = nil
        self.mode = mode
        self.coordinates = coordinates
        self.nearestMode = nearestMode
    }

    /// Resize by scale factors [sH, sW] (output ⌊in · scale⌋).
    public init(scales: [Float], mode: ResizeMode = .linear, coordinates: ResizeCoordinates = .halfPixel,
                nearestMode: ResizeNearestMode = .roundPreferFloor) {
        self.size = nil
        self.scales = scales
        self.mode = mode
        self.coordinates = coordinates
        self.nearestMode = nearestMode
    }

    public var typeName: String { "Resize.\(mode.rawValue)" }

    /// Output sizes and coordinate scales of the two spatial axes.
    func plan(_ x: [Int]) throws -> (out: [Int], scale: [Double]) {
        guard x.count == 4 else { throw EngineError.shapeMismatch("Resize needs an NCHW input, got \(x)") }
        let spatial = [x[2], x[3]]
        guard spatial.allSatisfy({ $0 >= 1 }) else { throw EngineError.shapeMismatch("Resize: empty input \(x)") }
        if let size {
            guard size.count == 2, size.allSatisfy({ $0 >= 1 }), scales == nil else {
                throw EngineError.invalidAttribute("Resize: size must be 2 values [OH, OW] ≥ 1 (and no scales), got \(size)")
            }
            return (size, [Double(size[0]) / Double(spatial[0]), Double(size[1]) / Double(spatial[1])])
        }
        guard let scales, scales.count == 2, scales.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw EngineError.invalidAttribute("Resize: give either size [OH, OW] or scales [sH, sW] > 0, got \(scales.map { "\($0)" } ?? "neither")")
        }
        let sizes = (0..<2).map { (Double(spatial[$0]) * Double(scales[$0])).rounded(.down) }
        guard sizes.allSatisfy({ $0 < Double(Int32.max) }) else {
            throw EngineError.unsupported("Resize: scales \(scales) give an output of \(sizes) for input \(x), more than 2^31 elements")
        }
        let out = sizes.map { Int($0) }
        guard out.allSatisfy({ $0 >= 1 }) else {
            throw EngineError.shapeMismatch("Resize: scales \(scales) give an empty output for input \(x)")
        }
        return (out, scales.map(Double.init))
    }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        try expectInputs(inputShapes, 1, typeName)
        let x = inputShapes[0]
        let out = try plan(x).out
        guard let n = try? checkedElementCount([x[0], x[1], max(x[2] * x[3], out[0] * out[1])], what: "Resize"), n < Int(Int32.max) else {
            throw EngineError.unsupported("Resize: tensors of more than 2^31 elements")
        }
        return [x[0], x[1], out[0], out[1]]
    }

    /// The source coordinate of output index o on an axis (before clamping).
    func sourceCoordinate(_ o: Int, inSize: Int, outSize: Int, scale: Double) -> Double {
        let x = Double(o)
        switch coordinates {
        case .halfPixel: return (x + 0.5) / scale - 0.5
        case .pytorchHalfPixel: return outSize > 1 ? (x + 0.5) / scale - 0.5 : 0
        case .alignCorners: return outSize > 1 ? x * Double(inSize - 1) / Double(outSize - 1) : 0
        case .asymmetric: return x / scale
        }
    }

    /// The interpolation table of one axis.
    func table(inSize: Int, outSize: Int, scale: Double) -> ResizeAxisTable {
        var t = ResizeAxisTable(i0: [], i1: [], w0: [], w1: [], first: Array(repeating: outSize, count: inSize),
                                last: Array(repeating: 0, count: inSize))
        for o in 0..<outSize {
            let x = sourceCoordinate(o, inSize: inSize, outSize: outSize, scale: scale)
            var a: Int, b: Int, wa: Float, wb: Float
            switch mode {
            case .linear:
                let c = min(max(x, 0), Double(inSize - 1))
                a = Int(c.rounded(.down))
                b = min(a + 1, inSize - 1)
                wb = Float(c - Double(a))
                wa = 1 - wb
            case .nearest:
                let r: Double
                switch nearestMode {
                case .roundPreferFloor: r = x - x.rounded(.down) == 0.5 ? x.rounded(.down) : x.rounded()
                case .roundPreferCeil: r = x - x.rounded(.down) == 0.5 ? x.rounded(.up) : x.rounded()
                case .floor: r = x.rounded(.down)
                case .ceil: r = x.rounded(.up)
                }
                a = min(max(Int(r), 0), inSize - 1)
                b = a
                wa = 1
                wb = 0
            }
            t.i0.append(a); t.i1.append(b); t.w0.append(wa); t.w1.append(wb)
            for i in [a, b] {
                t.first[i] = min(t.first[i], o)
                t.last[i] = max(t.last[i], o + 1)
            }
        }
        // Inputs nobody reads get an empty range.
        for i in 0..<inSize where t.first[i] >= t.last[i] { t.first[i] = 0; t.last[i] = 0 }
        return t
    }

    /// Tables for the H and W axes of input shape x.
    func tables(_ x: [Int]) throws -> (ResizeAxisTable, ResizeAxisTable) {
        let (out, scale) = try plan(x)
        return (table(inSize: x[2], outSize: out[0], scale: scale[0]), table(inSize: x[3], outSize: out[1], scale: scale[1]))
    }

    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) { ([false], false) }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        let x = inputs[0]
        let outShape = try outputShape([x.shape])
        let (ty, tx) = try tables(x.shape)
        return OpResult(try backend.kernels.resizeForward(x, outShape: outShape, rows: ty, cols: tx))
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        let inShape = context.inputShapes[0]
        let (ty, tx) = try tables(inShape)
        return [try backend.kernels.resizeBackward(context.gradOutput, inShape: inShape, rows: ty, cols: tx)]
    }
}
