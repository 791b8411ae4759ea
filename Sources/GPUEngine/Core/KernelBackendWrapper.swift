// A KernelBackend that forwards every entry point to another one (`base`). A kernel variant, a
// tracing or counting backend, or a tuner's choice is a type conforming to `KernelBackendWrapper`
// that implements only the entry points it changes: the compiler still checks the whole protocol,
// and everything else runs on `base`.

protocol KernelBackendWrapper: KernelBackend {
    /// Where tensors live and every entry point this type does not implement runs.
    var base: any KernelBackend { get }
}

extension KernelBackendWrapper {
    func tensor(_ host: HostTensor) throws -> Tensor { try base.tensor(host) }
    func constant(_ host: HostTensor) throws -> Tensor { try base.constant(host) }
    func full(_ shape: [Int], value: Float) throws -> Tensor { try base.full(shape, value: value) }
    func download(_ tensor: Tensor) throws -> HostTensor { try base.download(tensor) }
    func synchronize() throws { try base.synchronize() }

    func copyStrided(into dst: Tensor, dstOffset: Int, from src: Tensor, srcOffset: Int, map: IndexMap) throws {
        try base.copyStrided(into: dst, dstOffset: dstOffset, from: src, srcOffset: srcOffset, map: map)
    }

    func unaryForward(_ op: Unary, _ x: Tensor) throws -> Tensor {
        try base.unaryForward(op, x)
    }

    func unaryBackward(_ op: Unary, gradOutput: Tensor, input: Tensor) throws -> Tensor {
        try base.unaryBackward(op, gradOutput: gradOutput, input: input)
    }

    func binaryForward(_ op: Binary, _ a: Tensor, _ b: Tensor, map: IndexMap) throws -> Tensor {
        try base.binaryForward(op, a, b, map: map)
    }

    func binaryGrad(_ op: Binary, which: Int, gradOutput: Tensor, _ a: Tensor, _ b: Tensor, map: IndexMap) throws -> Tensor {
        try base.binaryGrad(op, which: which, gradOutput: gradOutput, a, b, map: map)
    }

    func reduceSum(_ x: Tensor, outShape: [Int], kept: IndexMap, reduced: IndexMap, scale: Float) throws -> Tensor {
        try base.reduceSum(x, outShape: outShape, kept: kept, reduced: reduced, scale: scale)
    }

    func reduceL2Backward(gradOutput: Tensor, input: Tensor, norm: Tensor) throws -> Tensor {
        try base.reduceL2Backward(gradOutput: gradOutput, input: input, norm: norm)
    }

    func matmul(_ a: Tensor, _ b: Tensor, bias: Tensor?, plan: MatMul.Plan) throws -> Tensor {
        try base.matmul(a, b, bias: bias, plan: plan)
    }

    func softmaxForward(_ x: Tensor, view: SoftmaxView, log: Bool) throws -> Tensor {
        try base.softmaxForward(x, view: view, log: log)
    }

    func softmaxBackward(_ dy: Tensor, output y: Tensor, view: SoftmaxView, log: Bool) throws -> Tensor {
        try base.softmaxBackward(dy, output: y, view: view, log: log)
    }

    func layerNormForward(_ x: Tensor, weight: Tensor?, bias: Tensor?, epsilon: Float) throws -> (Tensor, Tensor, Tensor) {
        try base.layerNormForward(x, weight: weight, bias: bias, epsilon: epsilon)
    }

    func layerNormBackward(_ dy: Tensor, x: Tensor, weight: Tensor?, mean: Tensor, rstd: Tensor) throws -> Tensor {
        try base.layerNormBackward(dy, x: x, weight: weight, mean: mean, rstd: rstd)
    }

    func batchNormForward(_ x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor, variance: Tensor, epsilon: Float, channels: Int, inner: Int) throws -> Tensor {
        try base.batchNormForward(x, gamma: gamma, beta: beta, mean: mean, variance: variance, epsilon: epsilon, channels: channels, inner: inner)
    }

    func batchNormBackward(_ dy: Tensor, gamma: Tensor, variance: Tensor, epsilon: Float, channels: Int, inner: Int) throws -> Tensor {
        try base.batchNormBackward(dy, gamma: gamma, variance: variance, epsilon: epsilon, channels: channels, inner: inner)
    }

    func attentionProbabilities(_ q: Tensor, _ k: Tensor, shape: AttentionShape, scale: Float) throws -> Tensor {
        try base.attentionProbabilities(q, k, shape: shape, scale: scale)
    }

    func attentionForward(_ q: Tensor, _ k: Tensor, _ v: Tensor, shape: AttentionShape, scale: Float) throws -> (Tensor, AttentionSaved) {
        try base.attentionForward(q, k, v, shape: shape, scale: scale)
    }

    func attentionBackward(_ dO: Tensor?, q: Tensor?, k: Tensor?, v: Tensor?, saved: AttentionSaved, dP: Tensor?, shape: AttentionShape, scale: Float, want: (q: Bool, k: Bool, v: Bool)) throws -> (Tensor?, Tensor?, Tensor?) {
        try base.attentionBackward(dO, q: q, k: k, v: v, saved: saved, dP: dP, shape: shape, scale: scale, want: want)
    }

    func convForward(_ x: Tensor, weight: Tensor, bias: Tensor?, activation: Unary?, savePre: Bool, geometry: ConvGeometry) throws -> (output: Tensor, pre: Tensor?) {
        try base.convForward(x, weight: weight, bias: bias, activation: activation, savePre: savePre, geometry: geometry)
    }

    func convBackwardInput(_ dy: Tensor, weight: Tensor, bias: Tensor?, geometry: ConvGeometry) throws -> Tensor {
        try base.convBackwardInput(dy, weight: weight, bias: bias, geometry: geometry)
    }

    func maxPoolForward(_ x: Tensor, geometry: PoolGeometry) throws -> (output: Tensor, argmax: Tensor) {
        try base.maxPoolForward(x, geometry: geometry)
    }

    func maxPoolBackward(_ dy: Tensor, argmax: Tensor, geometry: PoolGeometry) throws -> Tensor {
        try base.maxPoolBackward(dy, argmax: argmax, geometry: geometry)
    }

    func avgPoolForward(_ x: Tensor, geometry: PoolGeometry, countIncludePad: Bool) throws -> Tensor {
        try base.avgPoolForward(x, geometry: geometry, countIncludePad: countIncludePad)
    }

    func avgPoolBackward(_ dy: Tensor, geometry: PoolGeometry, countIncludePad: Bool) throws -> Tensor {
        try base.avgPoolBackward(dy, geometry: geometry, countIncludePad: countIncludePad)
    }

    func padForward(_ x: Tensor, outShape: [Int], begin: [Int], mode: PadMode, value: Float) throws -> Tensor {
        try base.padForward(x, outShape: outShape, begin: begin, mode: mode, value: value)
    }

    func padBackward(_ dy: Tensor, inShape: [Int], begin: [Int], end: [Int], mode: PadMode) throws -> Tensor {
        try base.padBackward(dy, inShape: inShape, begin: begin, end: end, mode: mode)
    }

    func resizeForward(_ x: Tensor, outShape: [Int], rows: ResizeAxisTable, cols: ResizeAxisTable) throws -> Tensor {
        try base.resizeForward(x, outShape: outShape, rows: rows, cols: cols)
    }

    func resizeBackward(_ dy: Tensor, inShape: [Int], rows: ResizeAxisTable, cols: ResizeAxisTable) throws -> Tensor {
        try base.resizeBackward(dy, inShape: inShape, rows: rows, cols: cols)
    }

    func affineWarpForward(_ op: AffineWarp, _ x: Tensor, params: Tensor) throws -> Tensor {
        try base.affineWarpForward(op, x, params: params)
    }

    func affineWarpBackward(_ op: AffineWarp, gradOutput: Tensor, inputShape: [Int], params: Tensor) throws -> Tensor {
        try base.affineWarpBackward(op, gradOutput: gradOutput, inputShape: inputShape, params: params)
    }

    func roll(_ x: Tensor, planes: Int, height: Int, width: Int, sy: Int, sx: Int) throws -> Tensor {
        try base.roll(x, planes: planes, height: height, width: width, sy: sy, sx: sx)
    }

    func channelAffineForward(_ x: Tensor, outShape: [Int], copies: Int, packed: Tensor, shared: Bool) throws -> Tensor {
        try base.channelAffineForward(x, outShape: outShape, copies: copies, packed: packed, shared: shared)
    }

    func channelAffineBackward(_ gradOutput: Tensor, inputShape: [Int], copies: Int, packed: Tensor, shared: Bool) throws -> Tensor {
        try base.channelAffineBackward(gradOutput, inputShape: inputShape, copies: copies, packed: packed, shared: shared)
    }

    func neighborDifferencesForward(_ op: NeighborDifferences, _ x: Tensor, outShape: [Int]) throws -> Tensor {
        try base.neighborDifferencesForward(op, x, outShape: outShape)
    }

    func neighborDifferencesBackward(_ op: NeighborDifferences, gradOutput: Tensor, _ x: Tensor) throws -> Tensor {
        try base.neighborDifferencesBackward(op, gradOutput: gradOutput, x)
    }

    func blurStep(_ x: Tensor, planes: Int, height: Int, width: Int, amount: Float) throws -> Tensor {
        try base.blurStep(x, planes: planes, height: height, width: width, amount: amount)
    }

    func adamStep(parameters: Tensor, gradient: Tensor, m: Tensor, v: Tensor, beta1: Float, beta2: Float, stepSize: Float, rootBiasCorrection2: Float, eps: Float, gradientSign: Float) throws {
        try base.adamStep(parameters: parameters, gradient: gradient, m: m, v: v, beta1: beta1, beta2: beta2, stepSize: stepSize, rootBiasCorrection2: rootBiasCorrection2, eps: eps, gradientSign: gradientSign)
    }

    func clampInPlace(_ t: Tensor, low: Float, high: Float) throws {
        try base.clampInPlace(t, low: low, high: high)
    }

    func allFinite(_ t: Tensor) throws -> Bool {
        try base.allFinite(t)
    }

    func attackSignStep(delta: Tensor, gradient: Tensor, alpha: Float) throws {
        try base.attackSignStep(delta: delta, gradient: gradient, alpha: alpha)
    }

    func attackNormalizedStep(delta: Tensor, gradient: Tensor, alpha: Float) throws {
        try base.attackNormalizedStep(delta: delta, gradient: gradient, alpha: alpha)
    }

    func attackProject(delta: Tensor, original: Tensor, norm: PerturbationNorm, eps: Double) throws {
        try base.attackProject(delta: delta, original: original, norm: norm, eps: eps)
    }

    func attackQuantizeLinf(_ x: Tensor, original: Tensor, bound: Int) throws -> Tensor {
        try base.attackQuantizeLinf(x, original: original, bound: bound)
    }
}
