import Foundation

/// The attacks `amgpu adversarial` runs. All work on the image x ∈ [0, 1]^(3×H×W) (the photo centre-cropped
/// to the model's input size) through a perturbation δ with x = x₀ + δ.
public enum AttackKind: String, Codable, Sendable, CaseIterable {
    /// Activation maximization with total variation (the paper's attack): ascent on
    /// J(δ) = score_t(x₀ + δ) − λ·TV(δ) − μ·mean(δ²), projected, stopped early at success with a margin.
    case amTV = "am-tv"
    /// Fast gradient sign method (Goodfellow et al. 2015): one step x₀ + ε·sign(∇J).
    case fgsm
    /// Basic iterative method / I-FGSM (Kurakin et al. 2017): `steps` signed steps of α from x₀, projected.
    case bim
    /// PGD with an L∞ ball (Madry et al. 2018): as BIM, from a uniform random start in the ε-ball.
    case pgd
    /// PGD with an L2 ball: steps α·∇J/‖∇J‖₂, projection onto ‖δ‖₂ ≤ ε, random start in the ball.
    case pgdL2 = "pgd-l2"
    /// Feature-space attack: make f_L(x₀ + δ) match f_L(guide) at layer L (works on backbones without a classifier).
    case feature

    /// Parses the CLI spelling (`am-tv`, `amtv`, `pgd-l2`, `pgdl2`, `ifgsm` for BIM, …).
    public init(parsing text: String) throws {
        let t = text.lowercased().trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_", with: "-")
        switch t {
        case "am-tv", "amtv", "am+tv", "am": self = .amTV
        case "fgsm": self = .fgsm
        case "bim", "i-fgsm", "ifgsm": self = .bim
        case "pgd", "pgd-linf", "linf-pgd": self = .pgd
        case "pgd-l2", "pgdl2", "l2-pgd": self = .pgdL2
        case "feature", "features": self = .feature
        default:
            throw EngineError.invalidInput("unknown attack '\(text)': use one of \(AttackKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }
}

/// The ball δ is projected onto after every step.
public enum PerturbationNorm: String, Codable, Sendable, CaseIterable {
    /// ‖δ‖∞ ≤ ε (every value of δ in [−ε, ε]).
    case linf
    /// ‖δ‖₂ ≤ ε over all 3·H·W values (in [0, 1] units).
    case l2
}

/// What the attack maximizes per image (for a classifier; `feature` uses its own loss).
public enum AttackLoss: String, Codable, Sendable, CaseIterable {
    /// Targeted: the target's pre-softmax logit z_t. Untargeted: max_{j≠y} z_j − z_y (y the clean class).
    case logit
    /// Targeted: log softmax(z)_t (= −cross-entropy to the target). Untargeted: cross-entropy to y.
    case ce
}

/// How a step turns the gradient g = ∇_x J into a change of δ.
public enum StepRule: String, Codable, Sendable, CaseIterable {
    /// δ ← δ + α·sign(g) (FGSM/BIM/PGD L∞; sign(0) = 0).
    case sign
    /// Adam ascent with learning rate α (PyTorch defaults β = (0.9, 0.999), eps 1e-8), per image.
    case adam
    /// δ ← δ + α·g/‖g‖₂ (PGD L2, as torchattacks: ‖g‖₂ + 1e-10).
    case normalized
}

/// Everything that defines an attack run; recorded in every JSON report.
public struct AttackConfig: Codable, Sendable, Equatable {
    public var kind: AttackKind
    public var norm: PerturbationNorm
    /// Radius of the ball, in [0, 1] units (8/255 for L∞, 1.0 for L2 by default).
    public var eps: Double
    /// Step size (sign, normalized) or Adam learning rate, in [0, 1] units.
    public var alpha: Double
    /// The most gradient steps.
    public var steps: Int
    public var loss: AttackLoss
    public var stepRule: StepRule
    /// False: push the image away from its clean top-1 class instead of toward a target.
    public var targeted: Bool
    /// Start from a uniformly random point of the ball (PGD), else from x₀.
    public var randomStart: Bool
    /// λ of λ·TV(δ) (TV as `Perturbation.totalVariation`: anisotropic p = 1, mean over the 3·H·W values).
    public var tvWeight: Double
    /// μ of μ·mean(δ²).
    public var l2Weight: Double
    /// Stop an image once its attack succeeds with `margin` (logit units: z_t − max_{j≠t} z_j ≥ margin,
    /// or for untargeted max_{j≠y} z_j − z_y ≥ margin).
    public var earlyStop: Bool
    public var margin: Double
    /// Evaluate the model on the 8-bit image every step (the PNG that would be written), so the
    /// early-stop test is exactly the test the written PNG passes. The gradient then updates the
    /// float δ (straight-through).
    public var quantizedForward: Bool
    /// Seed of the random start (per example: stream = example index).
    public var seed: UInt64
    /// Feature attack: the layer whose representation is matched.
    public var layer: String?

    public init(kind: AttackKind, norm: PerturbationNorm, eps: Double, alpha: Double, steps: Int, loss: AttackLoss,
                stepRule: StepRule, targeted: Bool = true, randomStart: Bool = false, tvWeight: Double = 0,
                l2Weight: Double = 0, earlyStop: Bool = false, margin: Double = 0, quantizedForward: Bool = false,
                seed: UInt64 = 0, layer: String? = nil) {
        self.kind = kind
        self.norm = norm
        self.eps = eps
        self.alpha = alpha
        self.steps = steps
        self.loss = loss
        self.stepRule = stepRule
        self.targeted = targeted
        self.randomStart = randomStart
        self.tvWeight = tvWeight
        self.l2Weight = l2Weight
        self.earlyStop = earlyStop
        self.margin = margin
        self.quantizedForward = quantizedForward
        self.seed = seed
        self.layer = layer
    }

    /// The defaults of each attack: torchattacks' for the baselines (FGSM ε 8/255; BIM and PGD ε 8/255,
    /// α 2/255, 10 steps, cross-entropy; PGD-L2 ε 1.0, α 0.2, 10 steps), and amgpu's for AM+TV and feature.
    public static func defaults(_ kind: AttackKind) -> AttackConfig {
        switch kind {
        case .fgsm:
            return AttackConfig(kind: .fgsm, norm: .linf, eps: 8.0 / 255, alpha: 8.0 / 255, steps: 1, loss: .ce, stepRule: .sign)
        case .bim:
            return AttackConfig(kind: .bim, norm: .linf, eps: 8.0 / 255, alpha: 2.0 / 255, steps: 10, loss: .ce, stepRule: .sign)
        case .pgd:
            return AttackConfig(kind: .pgd, norm: .linf, eps: 8.0 / 255, alpha: 2.0 / 255, steps: 10, loss: .ce, stepRule: .sign,
                                randomStart: true)
        case .pgdL2:
            return AttackConfig(kind: .pgdL2, norm: .l2, eps: 1.0, alpha: 0.2, steps: 10, loss: .ce, stepRule: .normalized,
                                randomStart: true)
        case .amTV:
            return AttackConfig(kind: .amTV, norm: .linf, eps: 8.0 / 255, alpha: 0.5 / 255, steps: 40, loss: .logit,
                                stepRule: .adam, tvWeight: 3000, earlyStop: true, margin: 1.0, quantizedForward: true)
        case .feature:
            return AttackConfig(kind: .feature, norm: .linf, eps: 8.0 / 255, alpha: 1.0 / 255, steps: 40, loss: .logit,
                                stepRule: .sign, quantizedForward: true)
        }
    }

    /// foolbox 3's step counts and relative step sizes: L∞ PGD 40 steps of 0.01/0.3·ε (from a random start),
    /// L2 PGD 50 steps of 0.025·ε; others keep their defaults but run 40 steps.
    public mutating func applyFoolboxPreset() {
        switch kind {
        case .pgd, .bim:
            steps = 40
            alpha = eps * 0.01 / 0.3
        case .pgdL2:
            steps = 50
            alpha = eps * 0.025
        case .fgsm:
            break
        case .amTV, .feature:
            steps = 40
        }
    }

    /// Throws for values no attack can use.
    public func validate() throws {
        guard eps.isFinite, eps > 0 else { throw EngineError.invalidInput("--eps must be a number > 0 (e.g. 8/255), got \(eps)") }
        if norm == .linf, eps > 1 { throw EngineError.invalidInput("an L∞ ε above 1 is meaningless for images in [0, 1], got \(eps)") }
        guard alpha.isFinite, alpha > 0 else { throw EngineError.invalidInput("--alpha must be a number > 0 (e.g. 2/255), got \(alpha)") }
        guard steps >= 1, steps <= 100_000 else { throw EngineError.invalidInput("--steps must lie in 1…100000, got \(steps)") }
        guard tvWeight.isFinite, tvWeight >= 0 else { throw EngineError.invalidInput("--tv must be a finite number ≥ 0, got \(tvWeight)") }
        guard l2Weight.isFinite, l2Weight >= 0 else { throw EngineError.invalidInput("--l2 must be a finite number ≥ 0, got \(l2Weight)") }
        guard margin.isFinite, margin >= 0 else { throw EngineError.invalidInput("--margin must be a finite number ≥ 0, got \(margin)") }
    }
}

/// Parses a number or a fraction such as `8/255`, `0.03`, `2 / 255`.
public func parseFraction(_ text: String, what: String = "value") throws -> Double {
    let t = text.replacingOccurrences(of: " ", with: "")
    let parts = t.split(separator: "/", omittingEmptySubsequences: false)
    let value: Double?
    if parts.count == 1 {
        value = Double(t)
    } else if parts.count == 2, let a = Double(parts[0]), let b = Double(parts[1]), b != 0 {
        value = a / b
    } else {
        value = nil
    }
    guard let v = value, v.isFinite else {
        throw EngineError.invalidInput("\(what) '\(text)' is not a number or fraction (e.g. 8/255 or 0.031)")
    }
    return v
}
