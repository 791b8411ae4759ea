import Foundation

/// Native builders for the architectures amgpu knows by name, with timm's tensor names, so a timm
/// `model.safetensors` loads as is, or with seeded random weights for benchmarks and tests.
///
/// Every builder makes a graph with one input "input" [batch, 3, S, S] (S = `imageSize`, default
/// the architecture's training size) and names its values by timm module path (`blocks.6.mlp.fc1`,
/// `layer3.5`, `stages.2.blocks.1`, `head`, …); `Model.aliases` adds the stage outputs, `stem`,
/// `global_pool` and the logits' module names, and `Model.recommended` marks the usual AM targets.
public enum ModelBuilders {
    /// Every architecture name `build` accepts, sorted.
    public static let architectures: [String] =
        (Array(ViTBuilder.configs.keys) + Array(ResNetBuilder.configs.keys) + Array(EfficientNetBuilder.configs.keys)).sorted()

    /// Builds `architecture` with `weights` for inputs [batch, 3, S, S].
    ///
    /// - Parameters:
    ///   - architecture: one of `architectures` (timm's model name).
    ///   - weights: `.random(seed:)` or `.file(SafetensorsFile)`. A file is checked strictly: a missing,
    ///     unexpected or wrong-shaped tensor is an error that names it (extras tolerated:
    ///     `num_batches_tracked`, DINOv2's `mask_token`). The classifier's number of classes is read
    ///     from the file's head weight (fine-tuned checkpoints), and a ViT file without `head.*`
    ///     builds the backbone only (output: the final norm's tokens).
    ///   - batch: the input's batch size (≥ 1).
    ///   - imageSize: S; nil → the architecture's default (224; 384 for `*_384`). A ViT resamples its
    ///     position embedding (bicubic, as timm) when S / patch differs from the checkpoint's grid.
    public static func build(_ architecture: String, weights: ModelWeights, batch: Int, imageSize: Int?) throws -> Model {
        guard batch >= 1, batch <= 4096 else {
            throw EngineError.invalidInput("batch size must be between 1 and 4096, got \(batch)")
        }
        if let s = imageSize, s < 1 || s > 4096 {
            throw EngineError.invalidInput("image size must be between 1 and 4096 pixels, got \(s)")
        }
        let source = WeightSource(weights, architecture: architecture)
        return try build(architecture, source: source, batch: batch, imageSize: imageSize)
    }

    /// The tensors (timm names → values) of `architecture` with `.random(seed:)` weights: written to
    /// a safetensors file they rebuild the identical model (tests, ONNX export in the test tooling).
    static func randomWeights(_ architecture: String, seed: UInt64, imageSize: Int? = nil) throws -> [String: HostTensor] {
        try buildRecordingWeights(architecture, seed: seed, batch: 1, imageSize: imageSize).weights
    }

    /// `build(architecture, weights: .random(seed:), …)` and its tensors by timm name.
    static func buildRecordingWeights(_ architecture: String, seed: UInt64, batch: Int,
                                      imageSize: Int?) throws -> (model: Model, weights: [String: HostTensor]) {
        let source = WeightSource(.random(seed: seed), architecture: architecture)
        source.record = [:]
        let model = try build(architecture, source: source, batch: batch, imageSize: imageSize)
        return (model, source.record ?? [:])
    }

    /// `architecture` with weights from an in-memory timm name → tensor table, checked like a file
    /// (tests: weights changed in memory without a file round trip).
    static func build(_ architecture: String, tensors: [String: HostTensor], batch: Int, imageSize: Int?) throws -> Model {
        try build(architecture, source: WeightSource(tensors: tensors, label: "tensors in memory", architecture: architecture),
                  batch: batch, imageSize: imageSize)
    }

    private static func build(_ architecture: String, source: WeightSource, batch: Int, imageSize: Int?) throws -> Model {
        let model: Model
        if let c = ViTBuilder.configs[architecture] {
            model = try ViTBuilder(config: c, name: architecture, weights: source).build(batch: batch, imageSize: imageSize)
        } else if let c = ResNetBuilder.configs[architecture] {
            model = try ResNetBuilder(config: c, name: architecture, weights: source).build(batch: batch, imageSize: imageSize)
        } else if let c = EfficientNetBuilder.configs[architecture] {
            model = try EfficientNetBuilder(config: c, name: architecture, weights: source).build(batch: batch, imageSize: imageSize)
        } else {
            let close = closestNames(to: architecture, among: architectures, limit: 4)
            throw EngineError.invalidInput("unknown architecture '\(architecture)'"
                + (close.isEmpty ? "" : "; did you mean \(close.joined(separator: ", "))?")
                + " (known: \(architectures.joined(separator: ", ")))")
        }
        switch source.origin {
        case .random(let seed):
            model.source = "random weights, seed \(seed)"
        case .file(let file):
            model.source = file.path
            model.filePath = file.path
        case .tensors(_, let label):
            model.source = label
        }
        return model
    }
}

/// What every builder shares: the graph under construction, the weights, and the names.
class BuilderBase {
    let name: String
    let weights: WeightSource
    let graph = Graph()
    var aliases: [String: ValueID] = [:]
    var recommended: Set<String> = []

    init(name: String, weights: WeightSource) {
        self.name = name
        self.weights = weights
    }

    /// Records `alias` → `id` (and marks it recommended when asked).
    func alias(_ alias: String, _ id: ValueID, recommend: Bool = false) {
        aliases[alias] = id
        if recommend { recommended.insert(alias) }
    }

    /// ImageNet-1k class names when `classes` is 1000, else nil.
    func classNames(_ classes: Int?) -> [String]? {
        classes == 1000 ? ImageNetClasses.load() : nil
    }

    /// The number of classes of a classifier whose weight is `weightName` with `features` inputs
    /// (`trailing` extra dims, e.g. [1, 1] for a 1×1 conv head): read from the file when it has
    /// the tensor with a plausible shape, else `fallback`.
    func classCount(_ weightName: String, features: Int, trailing: [Int] = [], fallback: Int = 1000) -> Int {
        if let s = weights.fileShape(weightName), s.count == 2 + trailing.count, s[1] == features,
           Array(s.dropFirst(2)) == trailing, s[0] >= 1 {
            return s[0]
        }
        return fallback
    }
}
