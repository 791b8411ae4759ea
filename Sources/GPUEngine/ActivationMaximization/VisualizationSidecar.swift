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
    /// With `--baseline OUT/probe.json`: the unit's statistics over the probed data set and its best example.
    public var datasetBaseline: DatasetBaseline? = nil
    /// The image prior: parameterization, init photo and MaCo spectrum (with hashes), snapshot files.
    public var imagePrior: ImagePriorRecord?
    /// What the warm start did for this image (nil when none applied, see `WarmStart`).
    public var warmStart: WarmStartRecord?

    public init(model: String, modelSource: String, modelSHA256: String?, layer: String, unit: Int, unitName: String?,
                objective: Objective, preset: AMPreset, seed: UInt64, device: String, finalObjective: Float,
                targetProbability: Float?, naturalPhotoMean: Float?, naturalPhotoCount: Int, seconds: Double,
                steps: Int, image: String, amgpuVersion: String, batchUnits: [Int]? = nil, card: ModelCardRecord? = nil,
                imagePrior: ImagePriorRecord? = nil, warmStart: WarmStartRecord? = nil) {
        self.imagePrior = imagePrior
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

/// What a sidecar records about the image prior beyond the preset: the files it read (with SHA-256) and
/// the files it wrote next to the image.
public struct ImagePriorRecord: Codable, Sendable, Equatable {
    /// "pixel", "fourier" or "maco".
    public var parameterization: String
    /// `--init PHOTO`: the photo's path and the SHA-256 of its bytes.
    public var initPhoto: String?
    public var initPhotoSHA256: String?
    /// MaCo: "built-in" or the .npy path, and the file's SHA-256.
    public var macoSpectrum: String?
    public var macoSpectrumSHA256: String?
    /// Snapshot files in step order, and their montage.
    public var snapshots: [String]?
    public var trajectory: String?
    /// MaCo's transparency map (`NAME-alpha.png`).
    public var transparency: String?

    public init(parameterization p: ImageParameterization) throws {
        parameterization = p.kind.rawValue
        if case .photo(let path, _) = p.initialization {
            initPhoto = path
            initPhotoSHA256 = try Self.sha256(path, what: "init photo")
        }
        if p.kind == .maco {
            macoSpectrum = p.macoSpectrum ?? "built-in"
            if let path = p.macoSpectrum { macoSpectrumSHA256 = try Self.sha256(path, what: "MaCo spectrum") }
        }
    }

    static func sha256(_ path: String, what: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EngineError.io("cannot read the \(what) '\(path)' to record its hash")
        }
        return sha256Hex(data)
    }
}

/// A layer or unit name made safe as one path component: letters, digits, '.', '-', '_' kept, the rest '_'.
public func safeFileName(_ name: String) -> String {
    let s = String(name.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" ? $0 : "_" })
    return s == "." || s == ".." || s.isEmpty ? "_" + s : s
}
