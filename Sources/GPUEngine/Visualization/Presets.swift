import Foundation

/// Every image-side hyperparameter of an activation-maximization run, as data: chosen by model
/// family, overridable field by field (the CLI maps one flag to each), and `Codable` so the JSON
/// sidecar records all of them.
///
/// ```swift
/// var preset = AMPreset.cnnLucid
/// preset.steps = 256
/// preset.optimizer.learningRate = 0.03
/// let json = try JSONEncoder().encode(preset)
/// ```
public struct AMPreset: Codable, Equatable, Sendable {
    public var name: String
    public var parameterization: ImageParameterization
    /// Side of the rendered (square) image X; the pipeline resizes it to the model's input.
    public var imageSize: Int
    public var steps: Int
    public var optimizer: AdamConfig
    public var transforms: TransformConfig
    public var regularizers: [Regularizer]
    /// lucid's `blur_input_each_step` as an in-place step on pixel parameters after each update
    /// (x ← (1 − amount)·x + amount·blur(x)); 0 = off.
    public var blurAmount: Float

    public init(name: String, parameterization: ImageParameterization, imageSize: Int, steps: Int,
                optimizer: AdamConfig, transforms: TransformConfig, regularizers: [Regularizer] = [], blurAmount: Float = 0) {
        self.name = name
        self.parameterization = parameterization
        self.imageSize = imageSize
        self.steps = steps
        self.optimizer = optimizer
        self.transforms = transforms
        self.regularizers = regularizers
        self.blurAmount = blurAmount
    }

    /// lucid / lucent defaults for CNNs: Fourier (decay 1, sd 0.01) with decorrelated colour and
    /// sigmoid, 128 px upsampled to the model by the pipeline, lucid's standard transforms,
    /// Adam lr 0.05 (β 0.9, 0.999), constant, 512 steps, no TV.
    public static let cnnLucid = AMPreset(
        name: "cnn-lucid",
        parameterization: .fourier(decay: 1, decorrelated: true, sd: 0.01),
        imageSize: 128, steps: 512,
        optimizer: AdamConfig(learningRate: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8, schedule: .constant),
        transforms: .lucidStandard)

    /// Ghiasi et al. (2022) for ViTs (`experiments/it15/vis35.py`): pixel parameters with uniform
    /// [0, 1) init, clamped to [0, 1] after each step, 224 px, 8 copies with colour jitter, decaying
    /// noise and roll ±32, Adam lr 0.1 with betas (0.5, 0.99), cosine to 0 over 400 steps,
    /// TV p = 2 with weight 5e-4·tv, tv = 0.1.
    public static let vitGhiasi = AMPreset(
        name: "vit-ghiasi",
        parameterization: .pixel(.clamp, decorrelated: false, initialization: .uniform(low: 0, high: 1)),
        imageSize: 224, steps: 400,
        optimizer: AdamConfig(learningRate: 0.1, beta1: 0.5, beta2: 0.99, eps: 1e-8, schedule: .cosine),
        transforms: .ghiasiViT,
        regularizers: [Regularizer(.tv2, weight: 5e-5)])   // 5e-4 · tv with tv = 0.1

    /// MaCo for CNNs (Fel et al. 2023, xplique `maco`): phase-only parameterization with the built-in
    /// natural-image magnitude, phase init normal sd 1, otherwise `cnnLucid`'s image size, transforms
    /// and steps, Adam lr 0.1 on the phase (radians). Not a default: the quality harness decides that.
    public static let cnnMaco = AMPreset(
        name: "cnn-maco",
        parameterization: .maco(),
        imageSize: 128, steps: 512,
        optimizer: AdamConfig(learningRate: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, schedule: .constant),
        transforms: .lucidStandard)

    public static let all: [AMPreset] = [.cnnLucid, .vitGhiasi, .cnnMaco]

    /// The preset called `name` ("cnn-lucid", "vit-ghiasi", or the short forms "cnn", "vit").
    public static func named(_ name: String) throws -> AMPreset {
        switch name.lowercased() {
        case "cnn", "cnn-lucid", "lucid": return .cnnLucid
        case "vit", "vit-ghiasi", "ghiasi": return .vitGhiasi
        case "maco", "cnn-maco": return .cnnMaco
        default:
            throw EngineError.invalidInput("no preset named '\(name)'; choose one of: \(all.map(\.name).joined(separator: ", "))")
        }
    }

    /// Checks every field (the CLI calls this after applying overrides).
    public func validate() throws {
        try parameterization.validate()
        try optimizer.validate()
        try transforms.validate()
        for r in regularizers { try r.validate() }
        guard imageSize >= 2 else { throw EngineError.invalidAttribute("image size must be ≥ 2, got \(imageSize)") }
        guard steps >= 1 else { throw EngineError.invalidAttribute("steps must be ≥ 1, got \(steps)") }
        guard blurAmount.isFinite, blurAmount >= 0, blurAmount <= 1 else {
            throw EngineError.invalidAttribute("blur amount must lie in [0, 1], got \(blurAmount)")
        }
        if blurAmount > 0 && parameterization.kind != .pixel {
            throw EngineError.invalidAttribute("blur acts on pixel parameters; it has no meaning for the \(parameterization.kind) parameterization")
        }
    }
}
