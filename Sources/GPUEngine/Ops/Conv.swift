/// Explicit zero padding of the two spatial axes of an NCHW tensor, in pixels.
/// Asymmetric padding is allowed (ONNX `pads` = [top, left, bottom, right]).
public struct Padding2D: Sendable, Equatable, CustomStringConvertible {
    public var top: Int, left: Int, bottom: Int, right: Int

    public init(top: Int, left: Int, bottom: Int, right: Int) {
        self.top = top
        self.left = left
        self.bottom = bottom
        self.right = right
    }

    /// The same padding `p` on every side.
    public init(_ p: Int) { self.init(top: p, left: p, bottom: p, right: p) }

    /// From ONNX `pads` for two spatial axes: [top, left, bottom, right].
    public init(onnx pads: [Int]) throws {
        guard pads.count == 4 else {
            throw EngineError.invalidAttribute("pads must have 4 entries [top, left, bottom, right] for a 2-D operator, got \(pads)")
        }
        self.init(top: pads[0], left: pads[1], bottom: pads[2], right: pads[3])
    }

    public static let zero = Padding2D(0)

    public var description: String { "[t\(top) l\(left) b\(bottom) r\(right)]" }
    var isZero: Bool { top == 0 && left == 0 && bottom == 0 && right == 0 }
    var isNonNegative: Bool { top >= 0 && left >= 0 && bottom >= 0 && right >= 0 }
}

/// ONNX `auto_pad` of Conv, ConvTranspose and the pooling operators.
public enum AutoPad: String, Sendable, CaseIterable {
    /// Use the explicit `pads`.
    case notSet = "NOTSET"
    /// Output = ceil(input / stride); an odd total padding puts the extra pixel at the end.
    case sameUpper = "SAME_UPPER"
    /// Output = ceil(input / stride); an odd total padding puts the extra pixel at the beginning.
    case sameLower = "SAME_LOWER"
    /// No padding.
    case valid = "VALID"
}

/// Resolves ONNX `auto_pad` into explicit pads for a convolution or pooling window on an
/// input of spatial size `input` = [H, W] with `kernel` = [kH, kW], `strides` and `dilations`.
/// SAME_*: total = max(0, (ceil(in/s) − 1)·s + (k − 1)·d + 1 − in) per axis, split in half with the
/// odd pixel at the end (UPPER) or the beginning (LOWER). VALID: zero. NOTSET: `explicit`.
public func resolveAutoPad(_ mode: AutoPad, input: [Int], kernel: [Int], strides: [Int] = [1, 1],
                           dilations: [Int] = [1, 1], explicit: Padding2D = .zero) throws -> Padding2D {
    guard input.count == 2, kernel.count == 2, strides.count == 2, dilations.count == 2 else {
        throw EngineError.invalidAttribute("auto_pad needs 2 spatial sizes, kernel sizes, strides and dilations")
    }
    guard strides.allSatisfy({ $0 >= 1 }), dilations.allSatisfy({ $0 >= 1 }), kernel.allSatisfy({ $0 >= 1 }) else {
        throw EngineError.invalidAttribute("auto_pad: kernel sizes, strides and dilations must be ≥ 1")
    }
    var begin = [0, 0], end = [0, 0]
    switch mode {
    case .notSet: return explicit
    case .valid: return .zero
    case .sameUpper, .sameLower:
        for axis in 0..<2 {
            let out = (input[axis] + strides[axis] - 1) / strides[axis]
            let total = max(0, (out - 1) * strides[axis] + (kernel[axis] - 1) * dilations[axis] + 1 - input[axis])
            let small = total / 2
            begin[axis] = mode == .sameUpper ? small : total - small
            end[axis] = total - begin[axis]
        }
    }
    return Padding2D(top: begin[0], left: begin[1], bottom: end[0], right: end[1])
}

/// Everything a convolution kernel needs: sizes of the input x [n, cin, h, w], the output
/// [n, cout, oh, ow] and the window. Passed to OpenCL as the `conv_geom` struct of conv.cl.
/// For a transposed convolution it describes the equivalent forward convolution (its output
/// plays the input's role).
struct ConvGeometry: Equatable {
    var n: Int, cin: Int, h: Int, w: Int
    var cout: Int, oh: Int, ow: Int
    var kh: Int, kw: Int, sh: Int, sw: Int, dh: Int, dw: Int
    var pt: Int, pl: Int
    var groups: Int

    var cinG: Int { cin / groups }
    var coutG: Int { cout / groups }
    var isDepthwise: Bool { cinG == 1 }
    var isPointwise: Bool { kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0 && oh == h && ow == w }
    var inputShape: [Int] { [n, cin, h, w] }
    var outputShape: [Int] { [n, cout, oh, ow] }
    /// Multiply-adds of the forward (and of the backward-to-input).
    var macs: Int { n * cout * oh * ow * cinG * kh * kw }

    /// The `conv_geom` struct of conv.cl: 18 int32 in this order.
    var argumentBytes: [UInt8] {
        let ints: [Int32] = [n, cin, h, w, cout, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, groups, cinG, coutG].map { Int32($0) }
        return ints.withUnsafeBytes { Array($0) }
    }

    /// Checks that every tensor and kernel index fits the 32-bit offsets of the kernels.
    func checkSize(_ op: String) throws {
        let limit = Int(Int32.max)
        guard let a = checkedProduct([n, cin, h + kh * dh + pt, w + kw * dw + pl + 8 * sw]), a < limit,
              let b = checkedProduct([n, cout, oh + kh, ow + kw + 8]), b < limit else {
            throw EngineError.unsupported("\(op): tensors of more than 2^31 elements")
        }
    }
}

extension ConvGeometry {
    /// The checks `Conv2D` and `ConvTranspose2D` share: 2 or 3 inputs (x, weight, bias?), valid window
    /// attributes, and x and the weight both of rank 4 (`weightLayout` names the expected weight layout
    /// in the message). Returns x's and the weight's shapes.
    static func operands(_ op: String, _ shapes: [[Int]], strides: [Int], dilations: [Int], pads: Padding2D,
                         weightLayout: String) throws -> (x: [Int], weight: [Int]) {
        guard shapes.count == 2 || shapes.count == 3 else {
            throw EngineError.invalidGraph("\(op) takes 2 or 3 inputs (x, weight, bias?), got \(shapes.count)")
        }
        try checkWindow(op, strides: strides, dilations: dilations, pads: pads)
        let x = shapes[0], wt = shapes[1]
        guard x.count == 4, wt.count == 4 else {
            throw EngineError.shapeMismatch("\(op) needs x [N, C, H, W] and weight \(weightLayout), got \(x) and \(wt)")
        }
        return (x, wt)
    }

    /// The geometry of a convolution of x [n, input.c, input.h, input.w] by a kh×kw window into
    /// [n, output.c, output.h, output.w], checked against the kernels' 32-bit offsets (`checkSize`).
    init(_ op: String, n: Int, input: (c: Int, h: Int, w: Int), output: (c: Int, h: Int, w: Int), kh: Int, kw: Int,
         strides: [Int], dilations: [Int], pads: Padding2D, groups: Int) throws {
        self.init(n: n, cin: input.c, h: input.h, w: input.w, cout: output.c, oh: output.h, ow: output.w,
                  kh: kh, kw: kw, sh: strides[0], sw: strides[1], dh: dilations[0], dw: dilations[1],
                  pt: pads.top, pl: pads.left, groups: groups)
        try checkSize(op)
    }
}

/// Checks stride/dilation/pads attributes of a 2-D window operator.
func checkWindow(_ op: String, strides: [Int], dilations: [Int], pads: Padding2D) throws {
    guard strides.count == 2, strides.allSatisfy({ $0 >= 1 }) else {
        throw EngineError.invalidAttribute("\(op): strides must be 2 values ≥ 1, got \(strides)")
    }
    guard dilations.count == 2, dilations.allSatisfy({ $0 >= 1 }) else {
        throw EngineError.invalidAttribute("\(op): dilations must be 2 values ≥ 1, got \(dilations)")
    }
    guard pads.isNonNegative else {
        throw EngineError.invalidAttribute("\(op): negative pads \(pads) are not supported (crop with Slice instead)")
    }
}

/// Whether a fused activation's derivative can be read from the output (relu, clip, leaky relu
/// with a positive slope), so the pre-activation need not be saved.
func activationInvertibleFromOutput(_ act: Unary) -> Bool {
    switch act.function {
    case .relu: return true
    case .clip: return act.alpha < act.beta
    case .leakyRelu: return act.alpha > 0
    default: return false
    }
}

/// dL/dz for y = act(z), from dL/dy and either z or (for `activationInvertibleFromOutput`) y.
func activationBackward(_ act: Unary, gradOutput: Tensor, at value: Tensor, on backend: any Backend) throws -> Tensor {
    try backend.kernels.unaryBackward(act, gradOutput: gradOutput, input: value)
}

/// 2-D convolution (ONNX Conv on NCHW) with an optional fused bias and activation:
///
///     z[n, co, oy, ox] = bias[co] + Σ_{ci ∈ group(co), ky, kx}
///                        W[co, ci − g·Cin/G, ky, kx] · x[n, ci, oy·sH − pT + ky·dH, ox·sW − pL + kx·dW]
///     y = activation(z)   (or y = z)
///
/// positions outside the input read 0. Shapes: x [N, Cin, H, W], W [Cout, Cin/G, kH, kW],
/// optional bias [Cout]; y [N, Cout, OH, OW] with OH = ⌊(H + pT + pB − dH·(kH − 1) − 1) / sH⌋ + 1
/// (same for OW). `groups` G divides Cin and Cout; G = Cin is depthwise (with channel multiplier
/// Cout/Cin). Use `resolveAutoPad` for ONNX `auto_pad`.
///
/// Backward (to x only): dz = dy · activation'(z), then dx = the transposed convolution of dz
/// (OpenCL: a gather kernel, no atomics). The derivative of relu / clip / leaky relu (slope > 0)
/// is read from the output; for the other fused activations forward saves z in `OpResult.saved`.
/// A weight gradient is not supported (weights are constants); the bias gradient is Σ dz.
public struct Conv2D: Operator {
    public var strides: [Int]
    public var dilations: [Int]
    public var pads: Padding2D
    public var groups: Int
    /// Applied after the bias in the same kernel (OpenCL fuses relu, sigmoid, tanh, leaky relu,
    /// clip/ReLU6, hard sigmoid, hard swish and SiLU; any other runs as a separate `Unary`).
    public var activation: Unary?

    public init(strides: [Int] = [1, 1], dilations: [Int] = [1, 1], pads: Padding2D = .zero, groups: Int = 1,
                activation: Unary? = nil) {
        self.strides = strides
        self.dilations = dilations
        self.pads = pads
        self.groups = groups
        self.activation = activation
    }

    public var typeName: String { activation.map { "Conv2D+\($0.function)" } ?? "Conv2D" }

    func geometry(_ shapes: [[Int]]) throws -> ConvGeometry {
        let (x, wt) = try ConvGeometry.operands("Conv2D", shapes, strides: strides, dilations: dilations, pads: pads,
                                                weightLayout: "[Cout, Cin/groups, kH, kW]")
        guard groups >= 1, x[1] % groups == 0, wt[0] % groups == 0, wt[1] * groups == x[1] else {
            throw EngineError.shapeMismatch("Conv2D: input channels \(x[1]) and weight \(wt) do not match groups \(groups) (weight must be [Cout, Cin/groups, kH, kW], Cout divisible by groups)")
        }
        if shapes.count == 3, shapes[2] != [wt[0]] {
            throw EngineError.shapeMismatch("Conv2D bias must have shape [\(wt[0])], got \(shapes[2])")
        }
        let kh = wt[2], kw = wt[3]
        let oh = (x[2] + pads.top + pads.bottom - dilations[0] * (kh - 1) - 1) / strides[0] + 1
        let ow = (x[3] + pads.left + pads.right - dilations[1] * (kw - 1) - 1) / strides[1] + 1
        guard kh >= 1, kw >= 1, x[2] + pads.top + pads.bottom >= dilations[0] * (kh - 1) + 1,
              x[3] + pads.left + pads.right >= dilations[1] * (kw - 1) + 1, oh >= 1, ow >= 1 else {
            throw EngineError.shapeMismatch("Conv2D: the \(kh)×\(kw) window (dilation \(dilations)) does not fit the padded \(x[2])×\(x[3]) input (pads \(pads))")
        }
        return try ConvGeometry("Conv2D", n: x[0], input: (x[1], x[2], x[3]), output: (wt[0], oh, ow), kh: kh, kw: kw,
                                strides: strides, dilations: dilations, pads: pads, groups: groups)
    }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        try geometry(inputShapes).outputShape
    }

    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) {
        var uses = [false, needsGrad[0]]
        if needsGrad.count == 3 { uses.append(false) }
        let fromOutput = activation.map(activationInvertibleFromOutput) ?? false
        return (uses, fromOutput)
    }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        let g = try geometry(inputs.map(\.shape))
        let bias = inputs.count == 3 ? inputs[2] : nil
        let savePre = activation.map { !activationInvertibleFromOutput($0) } ?? false
        let (out, pre) = try backend.kernels.convForward(inputs[0], weight: inputs[1], bias: bias, activation: activation,
                                                         savePre: savePre, geometry: g)
        return OpResult(out, saved: pre.map { [$0] } ?? [])
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        if context.needsGrad.count > 1, context.needsGrad[1] {
            throw EngineError.unsupported("Conv2D: gradients with respect to the weight are not supported (weights must be constants)")
        }
        let g = try geometry(context.inputShapes)
        var dz = context.gradOutput
        if let act = activation {
            let at = activationInvertibleFromOutput(act) ? try context.requireOutput() : try savedPreActivation(context)
            dz = try activationBackward(act, gradOutput: dz, at: at, on: backend)
        }
        var grads: [Tensor?] = Array(repeating: nil, count: context.inputShapes.count)
        if context.needsGrad[0] {
            let w = try context.input(1)
            grads[0] = try backend.kernels.convBackwardInput(dz, weight: w, bias: nil, geometry: g)
        }
        if context.needsGrad.count == 3, context.needsGrad[2] {
            grads[2] = try backend.run(Reduce(.sum, axes: [0, 2, 3]), dz)
        }
        return grads
    }

    private func savedPreActivation(_ context: BackwardContext) throws -> Tensor {
        guard let z = context.saved.first else {
            throw EngineError.invalidGraph("Conv2D backward needs the saved pre-activation, which the forward pass did not keep")
        }
        return z
    }
}

/// Transposed 2-D convolution (ONNX ConvTranspose on NCHW), the adjoint of `Conv2D`:
///
///     y[n, co, oy, ox] = bias[co] + Σ_{ci ∈ group(co), ky, kx : oy = iy·sH − pT + ky·dH, ox = ix·sW − pL + kx·dW}
///                        W[ci, co − g·Cout/G, ky, kx] · x[n, ci, iy, ix]
///
/// Shapes: x [N, Cin, H, W], W [Cin, Cout/G, kH, kW], optional bias [Cout]; y [N, Cout, OH, OW] with
/// OH = sH·(H − 1) + outputPadding[0] + dH·(kH − 1) + 1 − pT − pB (same for OW).
/// Its forward is `Conv2D`'s backward-to-input and its backward-to-input is a `Conv2D` forward:
/// both backends share those kernels. No weight gradient; the bias gradient is Σ dy.
public struct ConvTranspose2D: Operator {
    public var strides: [Int]
    public var dilations: [Int]
    public var pads: Padding2D
    public var outputPadding: [Int]
    public var groups: Int

    public init(strides: [Int] = [1, 1], dilations: [Int] = [1, 1], pads: Padding2D = .zero,
                outputPadding: [Int] = [0, 0], groups: Int = 1) {
        self.strides = strides
        self.dilations = dilations
        self.pads = pads
        self.outputPadding = outputPadding
        self.groups = groups
    }

    public var typeName: String { "ConvTranspose2D" }

    /// The geometry of the forward convolution whose backward-to-input this op is.
    func geometry(_ shapes: [[Int]]) throws -> ConvGeometry {
        let (x, wt) = try ConvGeometry.operands("ConvTranspose2D", shapes, strides: strides, dilations: dilations, pads: pads,
                                                weightLayout: "[Cin, Cout/groups, kH, kW]")
        guard groups >= 1, wt[0] == x[1], x[1] % groups == 0 else {
            throw EngineError.shapeMismatch("ConvTranspose2D: weight \(wt) must be [Cin = \(x[1]), Cout/groups, kH, kW] with Cin divisible by groups \(groups)")
        }
        guard outputPadding.count == 2, outputPadding.allSatisfy({ $0 >= 0 }),
              outputPadding[0] < max(strides[0], dilations[0]), outputPadding[1] < max(strides[1], dilations[1]) else {
            throw EngineError.invalidAttribute("ConvTranspose2D: output_padding \(outputPadding) must be 2 values ≥ 0, each below its stride or dilation")
        }
        let cout = wt[1] * groups
        if shapes.count == 3, shapes[2] != [cout] {
            throw EngineError.shapeMismatch("ConvTranspose2D bias must have shape [\(cout)], got \(shapes[2])")
        }
        let kh = wt[2], kw = wt[3]
        let oh = strides[0] * (x[2] - 1) + outputPadding[0] + dilations[0] * (kh - 1) + 1 - pads.top - pads.bottom
        let ow = strides[1] * (x[3] - 1) + outputPadding[1] + dilations[1] * (kw - 1) + 1 - pads.left - pads.right
        guard kh >= 1, kw >= 1, oh >= 1, ow >= 1 else {
            throw EngineError.shapeMismatch("ConvTranspose2D: pads \(pads) leave no output for input \(x) and kernel \(kh)×\(kw)")
        }
        // The equivalent convolution maps y [N, Cout, OH, OW] to x [N, Cin, H, W].
        return try ConvGeometry("ConvTranspose2D", n: x[0], input: (cout, oh, ow), output: (x[1], x[2], x[3]), kh: kh, kw: kw,
                                strides: strides, dilations: dilations, pads: pads, groups: groups)
    }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        try geometry(inputShapes).inputShape
    }

    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) {
        var uses = [false, needsGrad[0]]
        if needsGrad.count == 3 { uses.append(false) }
        return (uses, false)
    }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        let g = try geometry(inputs.map(\.shape))
        let bias = inputs.count == 3 ? inputs[2] : nil
        return OpResult(try backend.kernels.convBackwardInput(inputs[0], weight: inputs[1], bias: bias, geometry: g))
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        if context.needsGrad.count > 1, context.needsGrad[1] {
            throw EngineError.unsupported("ConvTranspose2D: gradients with respect to the weight are not supported (weights must be constants)")
        }
        let g = try geometry(context.inputShapes)
        let dy = context.gradOutput
        var grads: [Tensor?] = Array(repeating: nil, count: context.inputShapes.count)
        if context.needsGrad[0] {
            let w = try context.input(1)
            grads[0] = try backend.kernels.convForward(dy, weight: w, bias: nil, activation: nil, savePre: false, geometry: g).output
        }
        if context.needsGrad.count == 3, context.needsGrad[2] {
            grads[2] = try backend.run(Reduce(.sum, axes: [0, 2, 3]), dy)
        }
        return grads
    }
}
