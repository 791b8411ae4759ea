/// Sizes of a 2-D pooling window over x [n, c, h, w] → y [n, c, oh, ow]. Passed to OpenCL as the
/// `pool_geom` struct of pool.cl.
struct PoolGeometry: Equatable {
    var planes: Int, h: Int, w: Int, oh: Int, ow: Int
    var kh: Int, kw: Int, sh: Int, sw: Int, dh: Int, dw: Int
    var pt: Int, pl: Int, pb: Int, pr: Int
    var inputShape: [Int], outputShape: [Int]

    /// The `pool_geom` struct of pool.cl: 15 int32 in this order.
    var argumentBytes: [UInt8] {
        let ints: [Int32] = [planes, h, w, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr].map { Int32($0) }
        return ints.withUnsafeBytes { Array($0) }
    }

    /// Row or column `o`'s window taps, clipped: the first and last tap index (ky or kx) whose
    /// position o·s − pad + k·d lies in [lo, hi). Returns an empty range when none does.
    static func taps(_ o: Int, stride: Int, pad: Int, dilation: Int, kernel: Int, lo: Int, hi: Int) -> Range<Int> {
        var first = kernel, last = -1
        for k in 0..<kernel {
            let p = o * stride - pad + k * dilation
            if p >= lo && p < hi { first = min(first, k); last = k }
        }
        return first <= last ? first..<(last + 1) : 0..<0
    }
}

/// The output size of a pooling window along one axis, as PyTorch and ONNX (opset ≥ 19) define it:
/// ⌊ or ⌈ (in + padBegin + padEnd − d·(k − 1) − 1) / s ⌉ + 1, and with `ceilMode` a last window that
/// would start inside the end padding is dropped.
func pooledSize(_ input: Int, kernel: Int, stride: Int, dilation: Int, padBegin: Int, padEnd: Int, ceilMode: Bool) -> Int {
    let span = input + padBegin + padEnd - dilation * (kernel - 1) - 1
    if span < 0 { return 0 }
    var out = (ceilMode ? (span + stride - 1) / stride : span / stride) + 1
    if ceilMode && (out - 1) * stride >= input + padBegin { out -= 1 }
    return out
}

/// Checks a pooling operator's attributes against an input shape and returns its geometry.
func poolGeometry(_ op: String, _ shapes: [[Int]], kernel: [Int], strides: [Int], dilations: [Int],
                  pads: Padding2D, ceilMode: Bool) throws -> PoolGeometry {
    try expectInputs(shapes, 1, op)
    try checkWindow(op, strides: strides, dilations: dilations, pads: pads)
    let x = shapes[0]
    guard x.count == 4 else { throw EngineError.shapeMismatch("\(op) needs an NCHW input, got \(x)") }
    guard kernel.count == 2, kernel.allSatisfy({ $0 >= 1 }) else {
        throw EngineError.invalidAttribute("\(op): kernel_shape must be 2 values ≥ 1, got \(kernel)")
    }
    let extentH = dilations[0] * (kernel[0] - 1) + 1, extentW = dilations[1] * (kernel[1] - 1) + 1
    guard pads.top < extentH, pads.bottom < extentH, pads.left < extentW, pads.right < extentW else {
        throw EngineError.invalidAttribute("\(op): pads \(pads) must be smaller than the \(extentH)×\(extentW) window")
    }
    let oh = pooledSize(x[2], kernel: kernel[0], stride: strides[0], dilation: dilations[0], padBegin: pads.top, padEnd: pads.bottom, ceilMode: ceilMode)
    let ow = pooledSize(x[3], kernel: kernel[1], stride: strides[1], dilation: dilations[1], padBegin: pads.left, padEnd: pads.right, ceilMode: ceilMode)
    guard oh >= 1, ow >= 1 else {
        throw EngineError.shapeMismatch("\(op): the \(extentH)×\(extentW) window does not fit the padded \(x[2])×\(x[3]) input")
    }
    guard x.reduce(1, *) < Int(Int32.max) else { throw EngineError.unsupported("\(op): tensors of more than 2^31 elements") }
    return PoolGeometry(planes: x[0] * x[1], h: x[2], w: x[3], oh: oh, ow: ow, kh: kernel[0], kw: kernel[1],
                        sh: strides[0], sw: strides[1], dh: dilations[0], dw: dilations[1],
                        pt: pads.top, pl: pads.left, pb: pads.bottom, pr: pads.right,
                        inputShape: x, outputShape: [x[0], x[1], oh, ow])
}

/// What `MaxPool2D` and `AveragePool2D` share: the window attributes, their validation
/// (`poolGeometry`) and the output shape. Backward reads neither input nor output (max pooling
/// reads its saved arg-max).
protocol WindowPool2D: Operator {
    var kernel: [Int] { get }
    var strides: [Int] { get }
    var pads: Padding2D { get }
    var dilations: [Int] { get }
    var ceilMode: Bool { get }
}

extension WindowPool2D {
    func geometry(_ shapes: [[Int]]) throws -> PoolGeometry {
        try poolGeometry(typeName, shapes, kernel: kernel, strides: strides, dilations: dilations, pads: pads, ceilMode: ceilMode)
    }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] { try geometry(inputShapes).outputShape }

    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) { ([false], false) }
}

/// 2-D max pooling (ONNX MaxPool on NCHW):
///
///     y[n, c, oy, ox] = max_{ky, kx} x[n, c, oy·sH − pT + ky·dH, ox·sW − pL + kx·dW]
///
/// over the taps inside the input (padding never wins). x [N, C, H, W] → y [N, C, OH, OW], sizes
/// from `pooledSize` (`ceilMode` as PyTorch / ONNX opset 19). Pads must be smaller than the window.
/// Forward also saves the arg-max (the flat index iy·W + ix in its plane, stored as a float tensor
/// shaped like y; ties go to the first maximum in row-major window order; −1 for a window without
/// any input tap, whose y is 0).
/// Backward: dx[n, c, i] = Σ over windows whose arg-max is i of dy (a gather, no atomics).
public struct MaxPool2D: WindowPool2D {
    public var kernel: [Int]
    public var strides: [Int]
    public var pads: Padding2D
    public var dilations: [Int]
    public var ceilMode: Bool

    public init(kernel: [Int], strides: [Int]? = nil, pads: Padding2D = .zero, dilations: [Int] = [1, 1], ceilMode: Bool = false) {
        self.kernel = kernel
        self.strides = strides ?? [1, 1]
        self.pads = pads
        self.dilations = dilations
        self.ceilMode = ceilMode
    }

    public var typeName: String { "MaxPool2D" }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        let g = try geometry(inputs.map(\.shape))
        let (y, argmax) = try backend.kernels.maxPoolForward(inputs[0], geometry: g)
        return OpResult(y, saved: [argmax])
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        let g = try geometry(context.inputShapes)
        guard let argmax = context.saved.first else {
            throw EngineError.invalidGraph("MaxPool2D backward needs the saved arg-max, which the forward pass did not keep")
        }
        return [try backend.kernels.maxPoolBackward(context.gradOutput, argmax: argmax, geometry: g)]
    }
}

/// 2-D average pooling (ONNX AveragePool on NCHW):
///
///     y[n, c, oy, ox] = (1 / count) · Σ_{taps inside the input} x[n, c, oy·sH − pT + ky·dH, ox·sW − pL + kx·dW]
///
/// `count` is the number of taps inside the input, or with `countIncludePad` the number of taps
/// inside the padded input [−pT, H + pB) × [−pL, W + pR) (so with `ceilMode` a window that runs past
/// the end padding is not counted there — PyTorch's rule). x [N, C, H, W] → y [N, C, OH, OW].
/// Backward: dx[n, c, iy, ix] = Σ over windows containing (iy, ix) of dy / count (a gather).
public struct AveragePool2D: WindowPool2D {
    public var kernel: [Int]
    public var strides: [Int]
    public var pads: Padding2D
    public var dilations: [Int]
    public var ceilMode: Bool
    public var countIncludePad: Bool

    public init(kernel: [Int], strides: [Int]? = nil, pads: Padding2D = .zero, dilations: [Int] = [1, 1],
                ceilMode: Bool = false, countIncludePad: Bool = false) {
        self.kernel = kernel
        self.strides = strides ?? [1, 1]
        self.pads = pads
        self.dilations = dilations
        self.ceilMode = ceilMode
        self.countIncludePad = countIncludePad
    }

    public var typeName: String { "AveragePool2D" }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        let g = try geometry(inputs.map(\.shape))
        return OpResult(try backend.kernels.avgPoolForward(inputs[0], geometry: g, countIncludePad: countIncludePad))
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        let g = try geometry(context.inputShapes)
        return [try backend.kernels.avgPoolBackward(context.gradOutput, geometry: g, countIncludePad: countIncludePad)]
    }
}

/// Global average pooling (ONNX GlobalAveragePool): y[n, c, 0, 0] = mean_{h, w} x[n, c, h, w].
/// x [N, C, H, W] (any rank ≥ 3: every axis after the channels is averaged) → y [N, C, 1, 1].
/// Runs as `Reduce(.mean)` over the spatial axes with kept dimensions (reduce.cl `reduce_sum`);
/// backward broadcasts dy / (H·W).
public struct GlobalAveragePool: Operator {
    public init() {}

    public var typeName: String { "GlobalAveragePool" }

    func reduce(rank: Int) -> Reduce { Reduce(.mean, axes: Array(2..<max(rank, 2)), keepDims: true) }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        try expectInputs(inputShapes, 1, typeName)
        guard inputShapes[0].count >= 3 else {
            throw EngineError.shapeMismatch("GlobalAveragePool needs an input [N, C, spatial...], got \(inputShapes[0])")
        }
        return try reduce(rank: inputShapes[0].count).outputShape(inputShapes)
    }

    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) { ([false], false) }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        _ = try outputShape(inputs.map(\.shape))
        return try reduce(rank: inputs[0].rank).forward(inputs, on: backend)
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        try reduce(rank: context.inputShapes[0].count).backward(context, on: backend)
    }
}
