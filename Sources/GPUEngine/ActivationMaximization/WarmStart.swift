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
/// Two safeguards follow the warm-up, for units that are still (or again) at or below the threshold:
/// - **leaky floor** (`leak` = α > 0): after the warm-up, at every step where an image's unit value u ≤ threshold,
///   that image ascends s + α·z (s the real term, z the same term on the pre-activation) instead of s. For GELU,
///   min GELU′ ≈ −0.1289 (at z ≈ −0.75), so with α ≥ 0.13 the per-token derivative GELU′(z) + α is positive
///   everywhere: ascent can no longer slide down the left branch into the flat tail (where s → 0⁻). Implemented as
///   the warm gate g = α / (1 + α), i.e. the image ascends (s + α·z) / (1 + α) — Adam's step does not depend on
///   that scale. A unit that stays above the threshold after the warm-up never sees it.
/// - **keep the best** (`keepBest`): when an image's final clean objective is ≤ threshold, the run returns instead
///   the image of the step whose unit value (under that step's transforms, measured before the step's update) was
///   the highest of the run, if its clean objective is higher. An image that ends above the threshold is the last
///   one, as without the warm start.
///
/// It applies when the objective's first term is `channel`, `neuron` or `cls` on a layer whose producer is
/// an elementwise GELU/ReLU/ReLU6/SiLU node of the graph (not an activation fused into a convolution, which
/// has no separate input value); otherwise the run is unchanged. It is on by default (`WarmStart.standard`).
public struct WarmStart: Codable, Sendable, Equatable {
    /// Switch once every image's unit value is above this.
    public var threshold: Float
    /// At most this fraction of the run's steps (rounded down) is spent warming up.
    public var maxFraction: Double

    /// α of the leaky floor after the warm-up (0 = off; see above).
    public var leak: Float
    /// Return the best image of the run when the last one ends at or below the threshold (see above).
    public var keepBest: Bool

    public init(threshold: Float = 0, maxFraction: Double = 0.5, leak: Float = 0.15, keepBest: Bool = true) {
        self.threshold = threshold
        self.maxFraction = maxFraction
        self.leak = leak
        self.keepBest = keepBest
    }

    /// Threshold 0, at most half the steps, leaky floor α = 0.15 (> 0.1289, GELU's steepest descent), keep the best.
    public static let standard = WarmStart()

    enum CodingKeys: String, CodingKey { case threshold, maxFraction, leak, keepBest }

    /// Settings written before the leaky floor and keep-the-best existed decode with both off.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        threshold = try c.decode(Float.self, forKey: .threshold)
        maxFraction = try c.decode(Double.self, forKey: .maxFraction)
        leak = try c.decodeIfPresent(Float.self, forKey: .leak) ?? 0
        keepBest = try c.decodeIfPresent(Bool.self, forKey: .keepBest) ?? false
    }

    /// The warm gate of a leaky step: the image ascends s + gate·(z − s) = (s + α·z) / (1 + α).
    var leakyGate: Float { leak / (1 + leak) }

    public func validate() throws {
        guard threshold.isFinite else { throw EngineError.invalidInput("the \(SettingName.warmStart.mention) threshold must be finite, got \(threshold)") }
        guard maxFraction >= 0, maxFraction <= 1 else {
            throw EngineError.invalidInput("the \(SettingName.warmStart.mention) fraction of the steps must be in 0…1, got \(maxFraction)")
        }
        guard leak.isFinite, leak >= 0 else {
            throw EngineError.invalidInput("the \(SettingName.warmStart.mention) leak must be finite and ≥ 0, got \(leak)")
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
    /// Steps after the warm-up on which the leaky floor fired (unit value ≤ threshold); nil in older sidecars.
    public var leakySteps: Int? = nil
    /// When keep-the-best replaced the last image: the step whose image was returned (0 = the initial image,
    /// k = after k updates) and the clean objective the last image had; nil when the last image was returned.
    public var returnedStep: Int? = nil
    public var lastImageObjective: Float? = nil
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
        guard maxSteps > 0 || setting.leak > 0 || setting.keepBest else { return nil }
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
