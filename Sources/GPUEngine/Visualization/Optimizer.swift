import Foundation

/// How the learning rate changes over the steps.
public enum LearningRateSchedule: String, Codable, Sendable, CaseIterable {
    /// lr at every step.
    case constant
    /// PyTorch `CosineAnnealingLR(T_max: steps, eta_min: 0)`: lr_t = lr · (1 + cos(π·t/T)) / 2 at step t = 0…T−1.
    case cosine
}

/// Adam's hyperparameters (PyTorch names and defaults, lucid's lr 0.05) plus the schedule and direction.
public struct AdamConfig: Codable, Equatable, Sendable {
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var eps: Float
    public var schedule: LearningRateSchedule
    /// Gradient ascent (PyTorch `maximize=True`): the step follows +gradient.
    public var maximize: Bool

    public init(learningRate: Float = 0.05, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8,
                schedule: LearningRateSchedule = .constant, maximize: Bool = true) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.schedule = schedule
        self.maximize = maximize
    }

    public func validate() throws {
        guard learningRate.isFinite, learningRate > 0 else {
            throw EngineError.invalidAttribute("learning rate must be a finite number > 0, got \(learningRate)")
        }
        guard beta1 >= 0, beta1 < 1, beta2 >= 0, beta2 < 1 else {
            throw EngineError.invalidAttribute("Adam betas must lie in [0, 1), got (\(beta1), \(beta2))")
        }
        guard eps.isFinite, eps >= 0 else { throw EngineError.invalidAttribute("Adam eps must be finite and ≥ 0, got \(eps)") }
    }

    /// The learning rate used at step `step` (0-based) of `totalSteps`.
    public func learningRate(atStep step: Int, of totalSteps: Int) -> Float {
        switch schedule {
        case .constant:
            return learningRate
        case .cosine:
            guard totalSteps > 0 else { return learningRate }
            let t = Double(min(max(step, 0), totalSteps)) / Double(totalSteps)
            return Float(Double(learningRate) * (1 + DeterministicMath.cos(DeterministicMath.pi * t)) / 2)
        }
    }
}

/// Adam on one parameter tensor, updated in place on its backend (one `adam_step` kernel per step).
/// The moment estimates m, v live on the same backend. Bias correction as PyTorch:
///   g' = maximize ? −g : g;  m ← β1·m + (1 − β1)·g';  v ← β2·v + (1 − β2)·g'²;
///   p ← p − (lr_t / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps),  t = 1, 2, …
public final class AdamOptimizer: @unchecked Sendable {
    public let config: AdamConfig
    public let totalSteps: Int
    public let backend: any Backend
    /// Steps taken so far (PyTorch's `state['step']`).
    public private(set) var stepCount = 0
    let m: Tensor
    let v: Tensor
    private var beta1Power = 1.0
    private var beta2Power = 1.0

    public init(config: AdamConfig, parameterShape: [Int], totalSteps: Int, backend: any Backend) throws {
        try config.validate()
        guard totalSteps >= 1 else { throw EngineError.invalidAttribute("the number of steps must be ≥ 1, got \(totalSteps)") }
        self.config = config
        self.totalSteps = totalSteps
        self.backend = backend
        m = try backend.zeros(parameterShape)
        v = try backend.zeros(parameterShape)
    }

    /// The learning rate the next `step` will use.
    public var currentLearningRate: Float { config.learningRate(atStep: stepCount, of: totalSteps) }

    /// One Adam step: updates `parameters` in place from `gradient` (same shape, same backend).
    public func step(parameters: Tensor, gradient: Tensor) throws {
        guard parameters.shape == m.shape, gradient.shape == m.shape else {
            throw EngineError.shapeMismatch("Adam was set up for parameters \(m.shape), got parameters \(parameters.shape) and gradient \(gradient.shape)")
        }
        let lr = Double(currentLearningRate)
        beta1Power *= Double(config.beta1)
        beta2Power *= Double(config.beta2)
        stepCount += 1
        let stepSize = Float(lr / (1 - beta1Power))
        let rootBC2 = Float((1 - beta2Power).squareRoot())
        let sign: Float = config.maximize ? -1 : 1
        guard parameters.count > 0 else { return }
        try backend.kernels.adamStep(parameters: parameters, gradient: gradient, m: m, v: v, beta1: config.beta1, beta2: config.beta2,
                                     stepSize: stepSize, rootBiasCorrection2: rootBC2, eps: config.eps, gradientSign: sign)
    }
}

/// Clamps every element of `tensor` to [low, high], in place (pixel + clamp after each step).
public func clampInPlace(_ tensor: Tensor, low: Float = 0, high: Float = 1, on backend: any Backend) throws {
    guard low <= high else { throw EngineError.invalidAttribute("clamp range [\(low), \(high)] is empty") }
    guard tensor.count > 0 else { return }
    try backend.kernels.clampInPlace(tensor, low: low, high: high)
}

/// True when no element of `tensor` is NaN or ±Inf. On OpenCL: one small kernel and a 4-byte read.
public func allFinite(_ tensor: Tensor, on backend: any Backend) throws -> Bool {
    guard tensor.count > 0 else { return true }
    return try backend.kernels.allFinite(tensor)
}

/// Throws `EngineError.numerical` naming `what` and `step` when `tensor` holds NaN or Inf.
public func requireFinite(_ tensor: Tensor, _ what: String, step: Int, on backend: any Backend) throws {
    if try !allFinite(tensor, on: backend) {
        throw EngineError.numerical("\(what) became NaN or infinite at step \(step); the learning rate is likely too high (try a smaller \(SettingName.learningRate.mention)) or a regularizer weight too large")
    }
}

/// lucid's `blur_input_each_step` as a step: x ← (1 − amount)·x + amount·blur(x) on an NCHW tensor,
/// in place; blur = 3×3 kernel (centre 1, ring 0.5), zero padded, divided by the kernel's sum over
/// the pixels inside the image. For pixel parameterizations (the blur acts on P; with clamp, P is the image).
public func blurInPlace(_ tensor: Tensor, amount: Float, on backend: any Backend) throws {
    guard tensor.rank == 4 else { throw EngineError.shapeMismatch("blur needs an [N, C, H, W] tensor, got \(tensor.shape)") }
    guard amount.isFinite, amount >= 0, amount <= 1 else {
        throw EngineError.invalidAttribute("blur amount must lie in [0, 1], got \(amount)")
    }
    guard amount > 0, tensor.count > 0 else { return }
    let planes = tensor.shape[0] * tensor.shape[1], h = tensor.shape[2], w = tensor.shape[3]
    let blurred = try backend.kernels.blurStep(tensor, planes: planes, height: h, width: w, amount: amount)
    let map = try IndexMap(dims: [tensor.count], strides0: [1], strides1: [1])
    try copyStrided(into: tensor, dstOffset: 0, from: blurred, srcOffset: 0, map: map, on: backend)
}
