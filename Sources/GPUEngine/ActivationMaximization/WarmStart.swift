import Foundation

/// Warm start for units behind a flat activation. A unit read after a GELU, ReLU, ReLU6 or SiLU can start where
/// that activation is flat (GELU(z) for z ≪ 0: GELU′(−10) ≈ 8·10⁻²²), so gradient ascent on it never moves
/// (the DINOv2 depth grid had 7 of 24 such fc1 neurons). With a warm start the run first maximizes the same
/// term (kind, unit, tokens/positions) on the activation's *input* — the pre-activation z, whose gradient does
/// not vanish — and switches to the real term for good at the first step where that image's unit value u (the
/// real term under that step's transforms, mean over the copies, measured before the step's gradient is taken)
/// is above `threshold`, or after `maxFraction` of the steps. An image whose unit starts above the threshold is
/// never warmed.
///
/// It applies when the objective's first term is `channel`, `neuron` or `cls` on a layer whose producer is
/// an elementwise GELU/ReLU/ReLU6/SiLU node of the graph (not an activation fused into a convolution, which
/// has no separate input value); otherwise the run is unchanged. It is on by default (`WarmStart.standard`).
public struct WarmStart: Codable, Sendable, Equatable {
    /// Switch once every image's unit value is above this.
    public var threshold: Float
    /// At most this fraction of the run's steps (rounded down) is spent warming up.
    public var maxFraction: Double

    public init(threshold: Float = 0, maxFraction: Double = 0.5) {
        self.threshold = threshold
        self.maxFraction = maxFraction
    }

    /// Threshold 0, at most half the steps.
    public static let standard = WarmStart()

    public func validate() throws {
        guard threshold.isFinite else { throw EngineError.invalidInput("the \(SettingName.warmStart.mention) threshold must be finite, got \(threshold)") }
        guard maxFraction >= 0, maxFraction <= 1 else {
            throw EngineError.invalidInput("the \(SettingName.warmStart.mention) fraction of the steps must be in 0…1, got \(maxFraction)")
        }
    }
}

/// What a warm start did for one image (the sidecar's `warmStart`).
public struct WarmStartRecord: Codable, Sendable, Equatable {
    /// The value optimized during the warm-up (the activation's input).
    public var preActivationLayer: String
    /// The activation it skipped (e.g. `geluErf`).
    public var activation: String
    public var threshold: Float
    /// Steps this image spent on the pre-activation (0: its unit was above the threshold at the first step; the gate
    /// of a step is set from that step's own unit values, so such a unit is never warmed).
    public var steps: Int
    /// The unit value (the real term under the step's transforms) at the first step and at the switch (at the first
    /// step when the run ended still warming).
    public var valueAtStart: Float
    public var valueAtSwitch: Float
    /// False when the warm-up ran out of steps (`maxFraction`) before this unit passed the threshold.
    public var reachedThreshold: Bool
}

/// A warm start prepared for one run: the evaluator of the gated objective (per image, the first term on the
/// pre-activation while the image warms up, the real term after; observing the real term).
struct WarmStartPlan {
    let evaluator: ObjectiveEvaluator
    let preActivationLayer: String
    let activation: String
    let setting: WarmStart
    let maxSteps: Int

    /// The pre-activation of `layer` when its producer is an elementwise flat-tailed activation:
    /// (its name as a layer, the activation's name), or nil.
    static func preActivation(of layer: String, model: Model) -> (layer: String, activation: String)? {
        guard let id = try? model.resolve(layer: layer), let producer = model.graph.values[id.index].producer else { return nil }
        let node = model.graph.nodes[producer]
        guard let unary = node.op as? Unary, let pre = node.inputs.first else { return nil }
        let flat: Bool
        switch unary.function {
        case .relu, .geluErf, .geluTanh, .silu: flat = true
        case .clip: flat = unary.alpha == 0 && unary.beta > 0   // ReLU6
        default: flat = false
        }
        guard flat, model.graph.values[pre.index].producer != nil else { return nil }
        let name = model.displayName(of: pre)
        guard (try? model.resolve(layer: name)) == pre else { return nil }
        return (name, unary.function == .clip ? "relu6" : "\(unary.function)")
    }

    /// The plan for `objective` (units already expanded per batch slot), or nil when no warm start applies.
    static func make(_ setting: WarmStart?, objective: Objective, model: Model, steps: Int, backend: any Backend) throws -> WarmStartPlan? {
        guard let setting, let main = objective.terms.first, [.channel, .neuron, .cls].contains(main.kind),
              let (preLayer, activation) = preActivation(of: main.layer, model: model) else { return nil }
        try setting.validate()
        let maxSteps = Int(Double(steps) * setting.maxFraction)
        guard maxSteps > 0 else { return nil }
        var warmTerm = main
        warmTerm.layer = preLayer
        var observed = main
        observed.weight = 1
        let evaluator = try ObjectiveEvaluator(model: model, objective: objective, backend: backend, observing: [observed], warmTerm: warmTerm)
        return WarmStartPlan(evaluator: evaluator, preActivationLayer: preLayer, activation: activation, setting: setting, maxSteps: maxSteps)
    }

    /// The per-image unit values [images] from an observed term [images × copies] (mean over the copies).
    static func perImage(_ values: [Float], images: Int) -> [Float] {
        let copies = max(1, values.count / max(images, 1))
        return (0..<images).map { b in values[(b * copies)..<((b + 1) * copies)].reduce(0, +) / Float(copies) }
    }
}
