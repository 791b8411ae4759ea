import Foundation

/// Pointwise functions y = f(x). Raw values are the op codes of `Sources/Kernels/elementwise.cl`.
public enum UnaryFunction: Int32, Sendable, CaseIterable {
    case relu = 0, sigmoid, tanh, leakyRelu, clip, hardSigmoid, hardSwish, silu, geluErf, geluTanh
    case erf, exp, log, sqrt, neg, abs, affine, reciprocal, square, cos, sin
}

/// y = f(x) elementwise. `alpha`/`beta` parameterise some functions:
/// leakyRelu slope alpha; clip to [alpha, beta] (ReLU6 = clip 0…6); hardSigmoid max(0, min(1, alpha·x + beta));
/// affine alpha·x + beta; cos and sin in radians (sinusoidal position embeddings of XCiT, EdgeNeXt). Backward: dx = dy · f'(x) (keeps x).
public struct Unary: Operator {
    public var function: UnaryFunction
    public var alpha: Float
    public var beta: Float

    public init(_ function: UnaryFunction, alpha: Float = 0, beta: Float = 0) {
        self.function = function
        self.alpha = alpha
        self.beta = beta
    }

    public static func relu6() -> Unary { Unary(.clip, alpha: 0, beta: 6) }
    public static func scale(_ s: Float) -> Unary { Unary(.affine, alpha: s, beta: 0) }

    public var typeName: String { "Unary.\(function)" }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        try expectInputs(inputShapes, 1, typeName)
        return inputShapes[0]
    }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        return OpResult(try backend.kernels.unaryForward(self, inputs[0]))
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        let x = try context.input(0)
        return [try backend.kernels.unaryBackward(self, gradOutput: context.gradOutput, input: x)]
    }

    /// f(x), in double precision (the CPU reference).
    func apply(_ x: Double) -> Double {
        let a = Double(alpha), b = Double(beta)
        switch function {
        case .relu: return max(x, 0)
        case .sigmoid: return 1 / (1 + Foundation.exp(-x))
        case .tanh: return Foundation.tanh(x)
        case .leakyRelu: return x > 0 ? x : a * x
        case .clip: return min(max(x, a), b)
        case .hardSigmoid: return min(max(a * x + b, 0), 1)
        case .hardSwish: return x * min(max(x + 3, 0), 6) / 6
        case .silu: return x / (1 + Foundation.exp(-x))
        case .geluErf: return 0.5 * x * Foundation.erfc(-x / 2.0.squareRoot())   // 1 + erf(z) = erfc(−z)
        case .geluTanh:
            let u = (2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)
            return x / (1 + Foundation.exp(-2 * u))                          // ½x(1 + tanh u) = x·σ(2u)
        case .erf: return Foundation.erf(x)
        case .exp: return Foundation.exp(x)
        case .log: return Foundation.log(x)
        case .sqrt: return x.squareRoot()
        case .neg: return -x
        case .abs: return Swift.abs(x)
        case .affine: return a * x + b
        case .reciprocal: return 1 / x
        case .square: return x * x
        case .cos: return Foundation.cos(x)
        case .sin: return Foundation.sin(x)
        }
    }

    /// f'(x), in double precision (the CPU reference). Written without cancellation where f′ is tiny:
    /// σ′ = e/(1 + e)² with e = exp(−|x|), 1 − tanh² = sech², 1 + erf(z) = erfc(−z).
    func derivative(_ x: Double) -> Double {
        func sigmoidDerivative(_ x: Double) -> Double { let e = Foundation.exp(-Swift.abs(x)); return e / ((1 + e) * (1 + e)) }
        func sech2(_ x: Double) -> Double { let e = Foundation.exp(-2 * Swift.abs(x)); return 4 * e / ((1 + e) * (1 + e)) }
        let a = Double(alpha), b = Double(beta)
        switch function {
        case .relu: return x > 0 ? 1 : 0
        case .sigmoid: return sigmoidDerivative(x)
        case .tanh: return sech2(x)
        case .leakyRelu: return x > 0 ? 1 : a
        case .clip: return x > a && x < b ? 1 : 0
        case .hardSigmoid: let v = a * x + b; return v > 0 && v < 1 ? a : 0
        case .hardSwish: return x < -3 ? 0 : (x > 3 ? 1 : (2 * x + 3) / 6)
        case .silu: return 1 / (1 + Foundation.exp(-x)) + x * sigmoidDerivative(x)
        case .geluErf:
            return 0.5 * Foundation.erfc(-x / 2.0.squareRoot()) + x * Foundation.exp(-0.5 * x * x) / (2 * Double.pi).squareRoot()
        case .geluTanh:
            let c = (2 / Double.pi).squareRoot()
            let u = c * (x + 0.044715 * x * x * x)
            return 1 / (1 + Foundation.exp(-2 * u)) + 0.5 * x * sech2(u) * c * (1 + 3 * 0.044715 * x * x)
        case .erf: return 2 / Double.pi.squareRoot() * Foundation.exp(-x * x)
        case .exp: return Foundation.exp(x)
        case .log: return 1 / x
        case .sqrt: return 0.5 / x.squareRoot()
        case .neg: return -1
        case .abs: return x > 0 ? 1 : (x < 0 ? -1 : 0)
        case .affine: return a
        case .reciprocal: return -1 / (x * x)
        case .square: return 2 * x
        case .cos: return -Foundation.sin(x)
        case .sin: return Foundation.cos(x)
        }
    }
}

/// Binary operators with numpy broadcasting. Raw values are the op codes of elementwise.cl.
public enum BinaryFunction: Int32, Sendable, CaseIterable {
    /// `mod`: a − b·⌊a/b⌋ (the result takes the divisor's sign: ONNX Mod fmod=0, Python's %);
    /// `fmod`: a − b·trunc(a/b) (the dividend's sign: ONNX Mod fmod=1, C's fmod).
    /// Both are piecewise a − k·b, so ∂/∂a = 1 and ∂/∂b = −k (k the floor or truncated quotient).
    case add = 0, sub, mul, div, pow, max, min, mod, fmod
}

/// out = a ∘ b with numpy broadcasting; out shape = broadcast(a.shape, b.shape).
/// Backward: d/da = g · ∂(a∘b)/∂a summed over a's broadcast axes (same for b).
public struct Binary: Operator {
    public var function: BinaryFunction
    public init(_ function: BinaryFunction) { self.function = function }

    public var typeName: String { "Binary.\(function)" }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        try expectInputs(inputShapes, 2, typeName)
        return try broadcastShapes(inputShapes[0], inputShapes[1])
    }

    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) {
        switch function {
        case .add, .sub: return ([false, false], false)
        case .mul: return ([needsGrad[1], needsGrad[0]], false)
        default: return ([true, true], false)
        }
    }

    /// The map from output index to (a offset, b offset).
    func indexMap(_ a: [Int], _ b: [Int]) throws -> IndexMap {
        let out = try broadcastShapes(a, b)
        return try IndexMap(dims: out, strides0: broadcastStrides(a, to: out), strides1: broadcastStrides(b, to: out))
    }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        let map = try indexMap(inputs[0].shape, inputs[1].shape)
        return OpResult(try backend.kernels.binaryForward(self, inputs[0], inputs[1], map: map))
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        let shapes = context.inputShapes
        let outShape = context.gradOutput.shape
        var grads: [Tensor?] = [nil, nil]
        for which in 0..<2 where context.needsGrad[which] {
            var full: Tensor
            switch function {
            case .add:
                full = context.gradOutput
            case .sub:
                full = which == 0 ? context.gradOutput : try backend.run(Unary(.neg), context.gradOutput)
            case .mul:
                // d(a·b)/da = b: only the other operand is needed.
                let other = try context.input(1 - which)
                full = try backend.run(Binary(.mul), context.gradOutput, other)
            default:
                let a = try context.input(0), b = try context.input(1)
                let map = try indexMap(a.shape, b.shape)
                full = try backend.kernels.binaryGrad(self, which: which, gradOutput: context.gradOutput, a, b, map: map)
            }
            if full.shape != outShape { full = try backend.run(Expand(shape: outShape), full) }
            grads[which] = try sumToShape(full, shapes[which], on: backend)
        }
        return grads
    }

    func apply(_ a: Float, _ b: Float) -> Float {
        switch function {
        case .add: return a + b
        case .sub: return a - b
        case .mul: return a * b
        case .div: return a / b
        case .pow: return Foundation.pow(a, b)
        case .max: return Swift.max(a, b)
        case .min: return Swift.min(a, b)
        case .mod: return a - b * (a / b).rounded(.down)
        case .fmod: return Foundation.fmod(a, b)
        }
    }

    func partial(_ which: Int, _ a: Float, _ b: Float) -> Float {
        switch function {
        case .add: return 1
        case .sub: return which == 0 ? 1 : -1
        case .mul: return which == 0 ? b : a
        case .div: return which == 0 ? 1 / b : -a / (b * b)
        case .pow: return which == 0 ? b * Foundation.pow(a, b - 1) : Foundation.pow(a, b) * Foundation.log(a)
        case .max: return which == 0 ? (a >= b ? 1 : 0) : (a >= b ? 0 : 1)
        case .min: return which == 0 ? (a <= b ? 1 : 0) : (a <= b ? 0 : 1)
        case .mod: return which == 0 ? 1 : -(a / b).rounded(.down)
        case .fmod: return which == 0 ? 1 : -(a / b).rounded(.towardZero)
        }
    }
}

/// Sums `tensor` (of a broadcast shape) down to `shape` — the backward of broadcasting.
public func sumToShape(_ tensor: Tensor, _ shape: [Int], on backend: any Backend) throws -> Tensor {
    if tensor.shape == shape { return tensor }
    let offset = tensor.rank - shape.count
    guard offset >= 0 else { throw EngineError.shapeMismatch("cannot sum \(tensor.shape) down to \(shape)") }
    var axes: [Int] = Array(0..<offset)
    for i in shape.indices where shape[i] == 1 && tensor.shape[i + offset] != 1 { axes.append(i + offset) }
    let summed = try backend.run(Reduce(.sum, axes: axes, keepDims: false), tensor)
    return try summed.reshaped(shape)
}
