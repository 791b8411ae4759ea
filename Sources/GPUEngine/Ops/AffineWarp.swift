import Foundation

/// A 2-D affine map p ↦ (a·x + b·y + c, d·x + e·y + f) in continuous pixel coordinates
/// (align_corners = false: an image of width W spans [0, W], pixel i has its centre at i + 0.5).
/// `AffineWarp` uses it to map output coordinates to input coordinates.
/// Products compose like matrices: (A * B)(p) = A(B(p)).
public struct AffineMatrix: Sendable, Equatable, Codable, CustomStringConvertible {
    public var a, b, c, d, e, f: Double

    public init(a: Double, b: Double, c: Double, d: Double, e: Double, f: Double) {
        self.a = a; self.b = b; self.c = c; self.d = d; self.e = e; self.f = f
    }

    public static let identity = AffineMatrix(a: 1, b: 0, c: 0, d: 0, e: 1, f: 0)

    /// p ↦ p + (dx, dy).
    public static func translation(_ dx: Double, _ dy: Double) -> AffineMatrix {
        AffineMatrix(a: 1, b: 0, c: dx, d: 0, e: 1, f: dy)
    }

    /// p ↦ (sx·x, sy·y).
    public static func scaling(_ sx: Double, _ sy: Double) -> AffineMatrix {
        AffineMatrix(a: sx, b: 0, c: 0, d: 0, e: sy, f: 0)
    }

    /// Rotation by `radians` about (cx, cy): p ↦ c + R(θ)(p − c), R = [[cos, −sin], [sin, cos]]
    /// (with y pointing down, positive angles turn clockwise on screen).
    public static func rotation(_ radians: Double, aboutX cx: Double, y cy: Double) -> AffineMatrix {
        let cs = DeterministicMath.cos(radians), sn = DeterministicMath.sin(radians)
        return translation(cx, cy) * AffineMatrix(a: cs, b: -sn, c: 0, d: sn, e: cs, f: 0) * translation(-cx, -cy)
    }

    /// Maps an output of outHeight × outWidth onto an input of inHeight × inWidth (a bilinear resize).
    public static func resize(fromHeight inHeight: Int, width inWidth: Int, toHeight outHeight: Int, width outWidth: Int) -> AffineMatrix {
        scaling(Double(inWidth) / Double(outWidth), Double(inHeight) / Double(outHeight))
    }

    public static func * (l: AffineMatrix, r: AffineMatrix) -> AffineMatrix {
        AffineMatrix(a: l.a * r.a + l.b * r.d, b: l.a * r.b + l.b * r.e, c: l.a * r.c + l.b * r.f + l.c,
                     d: l.d * r.a + l.e * r.d, e: l.d * r.b + l.e * r.e, f: l.d * r.c + l.e * r.f + l.f)
    }

    public var determinant: Double { a * e - b * d }

    /// The inverse map, or nil when the matrix is (nearly) singular.
    public var inverse: AffineMatrix? {
        let det = determinant
        guard det.isFinite, abs(det) > 1e-12 else { return nil }
        let ia = e / det, ib = -b / det, id = -d / det, ie = a / det
        return AffineMatrix(a: ia, b: ib, c: -(ia * c + ib * f), d: id, e: ie, f: -(id * c + ie * f))
    }

    public func apply(_ x: Double, _ y: Double) -> (x: Double, y: Double) {
        (a * x + b * y + c, d * x + e * y + f)
    }

    public var description: String { "[\(a) \(b) \(c); \(d) \(e) \(f)]" }
}

/// Bilinear resampling of NCHW images through one affine map per image (align_corners = false).
///
/// x: [N, C, H, W] → y: [N·copies, C, Ho, Wo]; output image r = n·copies + k samples input image n.
/// For output pixel (xo, yo) of output image r the sample point is
/// (u, v) = M_r(xo + 0.5, yo + 0.5), read at index coordinates (sx, sy) = (u − 0.5, v − 0.5):
///   y = Σ_{i, j} max(0, 1 − |sx − i|) · max(0, 1 − |sy − j|) · X̃[j, i]
/// where X̃ is x surrounded by a band of `padding` pixels of value `paddingValue`, and beyond that band
/// `border` decides: `.constant(v)` reads v; `.replicate` clamps (sx, sy) into the padded image
/// (with padding 0 this is PyTorch's `F.interpolate(mode: "bilinear", align_corners: False)` for resizes).
/// `matrices` holds one map per output image (N·copies), or one for all. Only real pixels of x get gradients:
///   dx[n, c, j, i] = Σ_k Σ_{yo, xo} dy[n·copies + k, c, yo, xo] · hat(sx − i) · hat(sy − j)
/// (a gather on OpenCL: each input pixel visits the output pixels in the inverse image of the
/// 2×2-pixel box around it; a plain scatter on the CPU). Linear in x: backward needs no saved values.
public struct AffineWarp: Operator {
    public enum Border: Sendable, Equatable {
        case constant(Float)
        case replicate
    }

    public var matrices: [AffineMatrix]
    public var outputHeight: Int
    public var outputWidth: Int
    public var padding: Int
    public var paddingValue: Float
    public var border: Border
    /// Output images per input image.
    public var copies: Int

    public init(matrices: [AffineMatrix], outputHeight: Int, outputWidth: Int, padding: Int = 0,
                paddingValue: Float = 0, border: Border = .constant(0), copies: Int = 1) {
        self.matrices = matrices
        self.copies = copies
        self.outputHeight = outputHeight
        self.outputWidth = outputWidth
        self.padding = padding
        self.paddingValue = paddingValue
        self.border = border
    }

    /// A plain bilinear resize of every image to height × width (edge pixels replicated).
    public static func resize(toHeight height: Int, width: Int, from inputHeight: Int, _ inputWidth: Int) -> AffineWarp {
        AffineWarp(matrices: [.resize(fromHeight: inputHeight, width: inputWidth, toHeight: height, width: width)],
                   outputHeight: height, outputWidth: width, border: .replicate)
    }

    public var typeName: String { "AffineWarp" }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        try expectInputs(inputShapes, 1, typeName)
        let s = inputShapes[0]
        guard s.count == 4, s.allSatisfy({ $0 > 0 }) else {
            throw EngineError.shapeMismatch("AffineWarp needs a non-empty [N, C, H, W] tensor, got \(s)")
        }
        guard outputHeight > 0, outputWidth > 0, padding >= 0 else {
            throw EngineError.invalidAttribute("AffineWarp: output \(outputHeight)×\(outputWidth) and padding \(padding) must be positive / ≥ 0")
        }
        guard copies >= 1 else { throw EngineError.invalidAttribute("AffineWarp: copies must be ≥ 1, got \(copies)") }
        let rows = s[0] * copies
        guard matrices.count == 1 || matrices.count == rows else {
            throw EngineError.invalidAttribute("AffineWarp: \(matrices.count) matrices for \(rows) output images (give 1 or \(rows))")
        }
        for m in matrices where m.inverse == nil || ![m.a, m.b, m.c, m.d, m.e, m.f].allSatisfy(\.isFinite) {
            throw EngineError.invalidAttribute("AffineWarp: matrix \(m) is singular or not finite")
        }
        guard rows * s[1] * max(s[2] * s[3], outputHeight * outputWidth) < Int(Int32.max) else {
            throw EngineError.unsupported("AffineWarp on tensors of more than 2^31 elements")
        }
        return [rows, s[1], outputHeight, outputWidth]
    }

    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) { ([false], false) }

    /// Per matrix, 16 floats: index-space forward map (sx = p0·xo + p1·yo + p2, sy = p3·xo + p4·yo + p5),
    /// its inverse (p6…p11), and the range of the unclamped sx (p12, p13) and sy (p14, p15) over the output grid.
    func kernelParameters() throws -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(16 * matrices.count)
        for m in matrices {
            let idx = AffineMatrix(a: m.a, b: m.b, c: m.c + 0.5 * m.a + 0.5 * m.b - 0.5,
                                   d: m.d, e: m.e, f: m.f + 0.5 * m.d + 0.5 * m.e - 0.5)
            guard let inv = idx.inverse else { throw EngineError.invalidAttribute("AffineWarp: matrix \(m) is singular") }
            var lo = (x: Double.infinity, y: Double.infinity), hi = (x: -Double.infinity, y: -Double.infinity)
            for (xo, yo) in [(0, 0), (outputWidth - 1, 0), (0, outputHeight - 1), (outputWidth - 1, outputHeight - 1)] {
                let p = idx.apply(Double(xo), Double(yo))
                lo = (min(lo.x, p.x), min(lo.y, p.y))
                hi = (max(hi.x, p.x), max(hi.y, p.y))
            }
            out += [idx.a, idx.b, idx.c, idx.d, idx.e, idx.f, inv.a, inv.b, inv.c, inv.d, inv.e, inv.f,
                    lo.x - 1, hi.x + 1, lo.y - 1, hi.y + 1].map { Float($0) }
        }
        return out
    }

    var fillValue: Float {
        if case .constant(let v) = border { return v }
        return 0
    }

    var replicate: Bool { border == .replicate }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        _ = try outputShape([inputs[0].shape])
        let params = try kernelParameters()
        let p = try backend.tensor(HostTensor(shape: [matrices.count, 16], values: params))
        return OpResult(try backend.kernels.affineWarpForward(self, inputs[0], params: p), saved: [p])
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        guard context.needsGrad[0] else { return [nil] }
        let inShape = context.inputShapes[0]
        let p = try context.saved.first ?? backend.tensor(HostTensor(shape: [matrices.count, 16], values: kernelParameters()))
        return [try backend.kernels.affineWarpBackward(self, gradOutput: context.gradOutput, inputShape: inShape, params: p)]
    }
}
