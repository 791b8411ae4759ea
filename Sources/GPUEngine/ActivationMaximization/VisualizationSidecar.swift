import Foundation

/// The JSON record written next to each rendered image (by `amgpu visualize` and `amgpu atlas`): what was
/// optimized, with which settings, on which device, and how well it did.
public struct VisualizationSidecar: Codable, Sendable, Equatable {
    public var model: String
    public var modelSource: String
    public var modelSHA256: String?
    public var layer: String
    public var unit: Int
    public var unitName: String?
    public var objective: Objective
    public var preset: AMPreset
    /// Seed of the batch the image was rendered in (initialization and transforms).
    public var seed: UInt64
    public var device: String
    /// Objective of this image without transforms.
    public var finalObjective: Float
    public var targetProbability: Float?
    public var naturalPhotoMean: Float?
    public var naturalPhotoCount: Int
    /// Wall time of the whole batch.
    public var seconds: Double
    public var steps: Int
    /// The image's file name (same folder).
    public var image: String
    public var amgpuVersion: String
    /// Atlas only: the units rendered together in this image's batch (a unit's image depends on its batch).
    public var batchUnits: [Int]?
    /// The model card the image was rendered with (preprocessing, labels, layout, each field's source).
    public var card: ModelCardRecord?
    /// What the warm start did for this image (nil when none applied, see `WarmStart`).
    public var warmStart: WarmStartRecord?

    public init(model: String, modelSource: String, modelSHA256: String?, layer: String, unit: Int, unitName: String?,
                objective: Objective, preset: AMPreset, seed: UInt64, device: String, finalObjective: Float,
                targetProbability: Float?, naturalPhotoMean: Float?, naturalPhotoCount: Int, seconds: Double,
                steps: Int, image: String, amgpuVersion: String, batchUnits: [Int]? = nil, card: ModelCardRecord? = nil,
                warmStart: WarmStartRecord? = nil) {
        self.model = model
        self.modelSource = modelSource
        self.modelSHA256 = modelSHA256
        self.layer = layer
        self.unit = unit
        self.unitName = unitName
        self.objective = objective
        self.preset = preset
        self.seed = seed
        self.device = device
        self.finalObjective = finalObjective
        self.targetProbability = targetProbability
        self.naturalPhotoMean = naturalPhotoMean
        self.naturalPhotoCount = naturalPhotoCount
        self.seconds = seconds
        self.steps = steps
        self.image = image
        self.amgpuVersion = amgpuVersion
        self.batchUnits = batchUnits
        self.card = card
        self.warmStart = warmStart
    }
}

/// A layer or unit name made safe as one path component: letters, digits, '.', '-', '_' kept, the rest '_'.
public func safeFileName(_ name: String) -> String {
    let s = String(name.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" ? $0 : "_" })
    return s == "." || s == ".." || s.isEmpty ? "_" + s : s
}
