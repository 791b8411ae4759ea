import Foundation

/// What `amgpu visualize` renders, decided from the model: one image per unit of one layer, maximizing one
/// objective term (plus extra terms), written as `FOLDER/<stem>.png` and `<stem>.json` with a `grid.png` of
/// all images. Usable from Swift without the CLI:
///
/// ```swift
/// let model = try ModelLoader.load("random:resnet18", imageSize: 32)
/// let target = try UnitVisualization.Target(model: model, layer: "layer1", units: [0, 1, 2])
/// let run = UnitVisualization(target: target, folder: "out", preset: .cnnLucid, batchSize: 4, seed: 0,
///                             modelSHA256: nil, amgpuVersion: "dev")
/// let result = try run.run(model: model, devices: [.cpu]) { batch in try ModelLoader.load("random:resnet18", batch: batch, imageSize: 32) }
/// ```
public struct UnitVisualization: Sendable {
    /// The layer, the units (one image each) and the term that reads them.
    public struct Target: Sendable, Equatable {
        /// The term (its `units` are set per batch by `AMBatchRunner`).
        public var term: ObjectiveTerm
        public var units: [Int]

        /// Resolves a target on `model`: `className` (a name or index of the model's classes) selects that
        /// class on the output with the `logit` kind unless `kind` says otherwise; else `layer` with `units`
        /// (default [0]) and `kind` (default: `logit` on a [B, K] model output, `direction` when a direction
        /// vector is given, `channel` otherwise). `caricature` and `invert` need `reference` (see
        /// `UnitVisualization.reference(toward:layer:model:)`) and render one image (unit 0).
        /// Throws for an unknown class or layer, or no layer at all.
        public init(model: Model, layer: String?, units: [Int] = [], className: String? = nil, kind: ObjectiveTerm.Kind? = nil,
                    position: [Int]? = nil, direction: [Float]? = nil, cossimPower: Float = 1,
                    reference: [Float]? = nil, referencePhoto: String? = nil) throws {
            var layerName = layer, units = units, kind = kind
            if let className {
                units = [try model.classIndex(className)]
                layerName = layerName ?? "output"
                kind = kind ?? .logit
            }
            guard let layerName else {
                throw EngineError.invalidInput("no target: name a class, or a layer and its units (see `amgpu layers \(model.name)`)")
            }
            let id = try model.resolve(layer: layerName)
            let shape = model.graph.shape(of: id)
            if units.isEmpty { units = [0] }
            let chosen = kind ?? ((id == model.output && shape.count == 2) ? .logit : (direction != nil ? .direction : .channel))
            var term = ObjectiveTerm(kind: chosen, layer: layerName, units: [])
            term.direction = direction
            term.cossimPower = cossimPower
            if chosen == .caricature || chosen == .invert {
                guard reference != nil else {
                    throw EngineError.invalidInput("the \(chosen) objective needs a photo: give it with \(SettingName.referencePhoto.mention)")
                }
                if chosen == .caricature && shape.count < 3 {
                    throw EngineError.invalidInput("a caricature needs a layer with positions ([B,C,H,W] or [B,T,D]); '\(layerName)' has shape \(shape): use the direction objective for a vector layer")
                }
                term.reference = reference
                term.referencePhoto = referencePhoto
                units = [0]
            }
            if let position { term.position = position }
            self.term = term
            self.units = units
        }
    }

    public var target: Target
    /// The output folder.
    public var folder: String
    public var settings: AMRunSettings

    /// `batchSize` images are optimized together (clamped to 1…units); batch k's seed is `seed` + the
    /// position of its first unit; `extraTerms` and `diversity` go into every batch's objective.
    public init(target: Target, folder: String, preset: AMPreset, batchSize: Int, seed: UInt64, extraTerms: [ObjectiveTerm] = [],
                diversity: Float = 0, baselinePhotos: [RGBImage] = [], modelSHA256: String?, amgpuVersion: String,
                warmStart: WarmStart? = .standard) {
        self.target = target
        self.folder = folder
        self.settings = AMRunSettings(preset: preset, batchSize: max(1, min(batchSize, target.units.count)), seeding: .sequential(seed),
                                      extraTerms: extraTerms, diversity: diversity, baselinePhotos: baselinePhotos,
                                      recordedObjective: .batch, failurePolicy: .stop, keepImages: true,
                                      modelSHA256: modelSHA256, amgpuVersion: amgpuVersion, warmStart: warmStart)
    }

    /// The file stem of a unit's image: `LAYER_UNIT`, or `LAYER_CLASS_UNIT` for class objectives
    /// (`output_flamingo_130`), the layer made safe as a file name.
    public static func fileStem(layer: String, kind: ObjectiveTerm.Kind, unit: Int, model: Model) -> String {
        let className = kind == .logit || kind == .probability ? model.className(unit).replacingOccurrences(of: " ", with: "_") + "_" : ""
        return "\(safeFileName(layer))_\(className)\(unit)"
    }

    /// One job per unit, in order (`model` names the classes).
    public func jobs(model: Model) -> [AMJob] {
        target.units.map { u in
            let stem = Self.fileStem(layer: target.term.layer, kind: target.term.kind, unit: u, model: model)
            return AMJob(term: target.term, unit: u, imagePath: (folder as NSString).appendingPathComponent(stem + ".png"),
                         imageName: stem + ".png", recordPath: (folder as NSString).appendingPathComponent(stem + ".json"))
        }
    }

    /// What a run wrote.
    public struct Result: Sendable {
        public var summary: AMRunSummary
        /// The PNG of every unit, in order.
        public var images: [String]
        /// `FOLDER/grid.png`: all images, ⌈√n⌉ columns.
        public var grid: String
    }

    /// Creates the folder, renders every unit (the first failure ends the run and is thrown), writes the grid.
    /// `model` is the model at any batch size (it names the classes); `loadModel(batch)` loads it at `batch`.
    public func run(model: Model, devices: [DeviceSelection], notice: @escaping @Sendable (String) -> Void = { _ in },
                    progress: @escaping @Sendable (AMRunProgress) -> Void = { _ in },
                    finished: @escaping @Sendable (AMBatchReport) -> Void = { _ in },
                    loadModel: @escaping @Sendable (Int) throws -> Model) throws -> Result {
        let jobs = jobs(model: model)
        let runner = try AMBatchRunner(settings: settings, devices: devices, notice: notice, loadModel: loadModel)
        try createOutputFolder(folder)
        let summary = try runner.run(jobs, progress: progress, finished: finished)
        let all = summary.images
        guard let first = all.first else { throw EngineError.invalidInput("nothing was rendered") }
        let combined = HostTensor(shape: [all.reduce(0) { $0 + $1.shape[0] }] + Array(first.shape.dropFirst()), values: all.flatMap(\.values))
        let grid = (folder as NSString).appendingPathComponent("grid.png")
        try PNGFile.write(imageGrid(combined, columns: Int(Double(combined.shape[0]).squareRoot().rounded(.up))), to: grid)
        return Result(summary: summary, images: jobs.map(\.imagePath), grid: grid)
    }

    /// The direction of the `direction` objective toward a photo: the photo's activation at `layer`
    /// (on the CPU backend), summarized by `channelSummary`.
    public static func direction(toward photo: RGBImage, layer: String, model: Model) throws -> [Float] {
        let id = try model.resolve(layer: layer)
        let input = ImagePreprocessing.modelInput(photo, model.preprocessing)
        guard let activation = try ModelRunner(model: model, backend: CPUBackend()).run(input, layers: [id])[id] else {
            throw EngineError.invalidGraph("no value for layer '\(layer)'")
        }
        return channelSummary(activation)
    }
}

extension UnitVisualization {
    /// The reference of the `caricature` and `invert` objectives: the photo's activation at `layer` (centre-cropped
    /// and normalized for the model, run on the CPU backend), the layer's shape without the batch axis, flattened.
    public static func reference(toward photo: RGBImage, layer: String, model: Model) throws -> [Float] {
        let id = try model.resolve(layer: layer)
        let input = ImagePreprocessing.modelInput(photo, model.preprocessing)
        guard let activation = try ModelRunner(model: model, backend: CPUBackend()).run(input, layers: [id])[id] else {
            throw EngineError.invalidGraph("no value for layer '\(layer)'")
        }
        guard activation.values.allSatisfy(\.isFinite) else {
            throw EngineError.numerical("the photo's activation at '\(layer)' is not finite")
        }
        return activation.values
    }
}

/// One vector per activation: the spatial mean per channel of a CNN value [1, C, H, W], the CLS token
/// (token 0) of a ViT value [1, T, D], or the vector itself ([1, K]).
public func channelSummary(_ t: HostTensor) -> [Float] {
    if t.shape.count == 4 {
        let c = t.shape[1], plane = t.shape[2] * t.shape[3]
        return (0..<c).map { ch in t.values[(ch * plane)..<((ch + 1) * plane)].reduce(0, +) / Float(plane) }
    }
    if t.shape.count == 3 { return Array(t.values[0..<t.shape[2]]) }
    return t.values
}
