import Foundation

/// The image side of an attack step on the device, as `ImageGenerator` is for activation maximization:
/// one small graph, built once per attack and run every step, between the attack's tensors and the model.
///
/// Inputs (B = the model's batch, all [B, 3, H, W] in [0, 1] units):
///   `pixels` x: what the model sees (x0 + δ, or its 8-bit quantization);
///   `delta` δ (present only when a penalty is).
/// Values:
///   `modelInput` = (x − mean_c)/std_c as two broadcasting `Binary` ops, in the order of
///   `ImagePreprocessing.normalize` (not the AM graphs' fused `ChannelAffine` x·(1/std) − mean/std, which
///   rounds differently): the model sees bit for bit what the evaluation of the written PNG sees, so
///   the early-stop test with `quantizedForward` is the test the PNG passes;
///   `penalty` [B] = λ·TV(δ) + μ·mean(δ²), TV(δ) = (Σ|Δx δ| + Σ|Δy δ|)/(3·H·W) through the
///   `tv` regularizer (`NeighborDifferences` + `Reduce`), mean over the 3·H·W values.
/// Backward: given ∂s/∂modelInput from the model, returns ∂J/∂δ for J = s(x) − penalty(δ), with
/// ∂x/∂δ = I (straight through the quantization).
final class AttackGraph: @unchecked Sendable {
    let graph: Graph
    let pixels: ValueID
    let delta: ValueID?
    let modelInput: ValueID
    let penalty: ValueID?
    let batch: Int
    let backend: any Backend
    private let executor: Executor

    init(batch: Int, height: Int, width: Int, preprocessing p: Preprocessing, tvWeight: Double, l2Weight: Double,
         backend: any Backend) throws {
        let g = Graph()
        let shape = [batch, 3, height, width]
        pixels = try g.addInput("pixels", shape: shape)
        let mean = (0..<3).map { p.mean.count == 3 ? p.mean[$0] : 0 }
        let std = (0..<3).map { p.std.count == 3 ? p.std[$0] : 1 }
        let meanValue = try g.addConstant("mean", HostTensor(shape: [1, 3, 1, 1], values: mean))
        let stdValue = try g.addConstant("std", HostTensor(shape: [1, 3, 1, 1], values: std))
        let centered = try g.add(Binary(.sub), [pixels, meanValue], name: "center")
        modelInput = try g.add(Binary(.div), [centered, stdValue], name: "normalize")
        var total: ValueID? = nil
        var d: ValueID? = nil
        if tvWeight > 0 || l2Weight > 0 {
            let delta = try g.addInput("delta", shape: shape)
            d = delta
            let n = Double(3 * height * width)
            if tvWeight > 0 {
                total = try addRegularizers([Regularizer(.tv, weight: Float(tvWeight / n))], to: g, image: delta, name: "tv")
            }
            if l2Weight > 0 {
                let sq = try g.add(Unary(.square), [delta], name: "l2.square")
                let mean = try g.add(Reduce(.mean, axes: [1, 2, 3]), [sq], name: "l2.mean")
                let weighted = try g.add(Unary.scale(Float(l2Weight)), [mean], name: "l2.weighted")
                total = try total.map { try g.add(Binary(.add), [$0, weighted], name: "penalty") } ?? weighted
            }
        }
        delta = d
        penalty = total
        graph = g
        self.batch = batch
        self.backend = backend
        executor = Executor(graph: g, backend: backend)
    }

    struct Pass {
        /// (x − mean)/std, [B, 3, H, W].
        let modelInput: Tensor
        /// λ·TV(δ) + μ·mean(δ²) per image [B], or nil without penalties.
        let penalty: Tensor?
        let pass: ForwardPass
    }

    func forward(pixels x: Tensor, delta d: Tensor, differentiable: Bool) throws -> Pass {
        var feeds: [ValueID: Tensor] = [pixels: x]
        var targets = [modelInput]
        if let delta { feeds[delta] = d }
        if let penalty { targets.append(penalty) }
        let pass = try executor.forward(feeds: feeds, targets: targets,
                                        differentiable: differentiable ? Set(feeds.keys) : [])
        return Pass(modelInput: try pass.value(modelInput), penalty: try penalty.map { try pass.value($0) }, pass: pass)
    }

    /// ∂J/∂δ [B, 3, H, W] for J = Σ gradModelInput ⊙ modelInput − Σ_b penalty_b.
    func backward(_ pass: Pass, gradModelInput: Tensor) throws -> Tensor {
        var seeds: [ValueID: Tensor] = [modelInput: gradModelInput]
        if let penalty { seeds[penalty] = try backend.full([batch], value: -1) }
        let grads = try executor.backward(pass.pass, seeds: seeds)
        guard let gx = grads[pixels] else { throw EngineError.invalidGraph("no gradient reached the attacked image") }
        guard let delta, let gd = grads[delta] else { return gx }
        return try backend.run(Binary(.add), gx, gd)
    }
}
