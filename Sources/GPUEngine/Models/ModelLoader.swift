import Foundation

/// Turns what a user types after `--model` into a `Model`:
/// - a path to an `.onnx` file, or to a `.safetensors` file (with `architecture` naming the builder,
///   or recorded in the file's metadata as `amgpu.architecture`),
/// - a short name of a fetched real model (`efficientnet_lite0`, `dinov2_vits14`; see `scripts/fetch-models`),
/// - an architecture with seeded random weights (`vit_base_patch16_224`, `resnetv2_50`, …) when
///   `randomWeights` is true or the name is given as `random:ARCH`.
///
/// `card` holds the model-card values given on the command line (`ModelCardValues.flags`); they
/// take precedence over a config.json beside a .safetensors file and over ONNX metadata_props
/// (see `ModelCard`).
public enum ModelLoader {
    public static func load(_ reference: String, batch: Int = 1, architecture: String? = nil,
                            randomWeights: Bool = false, seed: UInt64 = 0, imageSize: Int? = nil,
                            card: ModelCardValues? = nil) throws -> Model {
        let layers = card.map { $0.isEmpty ? [] : [$0] } ?? []
        let model = try loadModel(reference, batch: batch, architecture: architecture, randomWeights: randomWeights,
                                  seed: seed, imageSize: imageSize, card: layers)
        return model
    }

    static func loadModel(_ reference: String, batch: Int, architecture: String?, randomWeights: Bool, seed: UInt64,
                          imageSize: Int?, card layers: [ModelCardValues]) throws -> Model {
        // A builder takes one square size: from --size, else from the card.
        func builderSize(_ layers: [ModelCardValues]) throws -> Int? {
            if let imageSize { return imageSize }
            guard let l = layers.first(where: { $0.height != nil }), let h = l.height else { return nil }
            guard h == (l.width ?? h) else {
                throw EngineError.invalidInput("\(l.source("input_size")) asks for a \(h)×\(l.width ?? h) input; amgpu's built-in architectures take square inputs")
            }
            return h
        }
        var ref = reference
        var random = randomWeights
        if ref.hasPrefix("random:") { ref = String(ref.dropFirst(7)); random = true }
        if random {
            let model = try ModelBuilders.build(ref, weights: .random(seed: seed), batch: batch, imageSize: builderSize(layers))
            return try applyCard(model, layers)
        }
        if let known = ModelStore.fetched[ref] {
            let path = ModelStore.path(known.file)
            guard FileManager.default.fileExists(atPath: path) else {
                throw EngineError.io(ModelStore.missingMessage(ref, known.file))
            }
            let arch = ref.hasSuffix(".onnx") ? nil : (ModelStore.fetchedArchitectures[ref] ?? ref)
            return try loadFile(path, batch: batch, architecture: arch, imageSize: imageSize, name: ref, card: layers)
        }
        if ref.hasSuffix(".onnx") || ref.hasSuffix(".safetensors") || ref.contains("/") {
            guard FileManager.default.fileExists(atPath: ref) else {
                throw EngineError.io("model file '\(ref)' does not exist; check the path")
            }
            return try loadFile(ref, batch: batch, architecture: architecture, imageSize: imageSize, card: layers)
        }
        if ModelBuilders.architectures.contains(ref) {
            throw EngineError.invalidInput("'\(ref)' is an architecture, not a trained model here: pass a checkpoint (--model path/to/model.safetensors --arch \(ref)) or use random weights (--model random:\(ref))")
        }
        let known = Array(ModelStore.fetched.keys) + ModelBuilders.architectures.map { "random:" + $0 }
        throw EngineError.invalidInput("unknown model '\(reference)': give an .onnx or .safetensors path, or one of: \(known.sorted().joined(separator: ", "))")
    }

    static func loadFile(_ path: String, batch: Int, architecture: String?, imageSize: Int?, name: String? = nil,
                         card flagLayers: [ModelCardValues] = []) throws -> Model {
        if path.hasSuffix(".onnx") {
            return try ONNXImporter.load(path: path, batch: batch, imageSize: imageSize, name: name, card: flagLayers)
        }
        // A timm/Hugging Face config.json beside the checkpoint is the card's second layer.
        var layers = flagLayers
        var configArchitecture: String?
        if let config = ModelCardValues.configJSONPath(besideModel: path) {
            layers.append(try ModelCardValues.configJSON(path: config))
            configArchitecture = ModelCardValues.configArchitecture(path: config)
        }
        let file = try SafetensorsFile(path: path)
        guard var arch = architecture ?? file.metadata["amgpu.architecture"] ?? file.metadata["architecture"] ?? configArchitecture else {
            throw EngineError.invalidInput("'\(path)' does not say which architecture it holds: pass --arch NAME (one of \(ModelBuilders.architectures.joined(separator: ", ")))")
        }
        // scripts/fetch-models before 2026-12-02 labelled its TensorFlow-ported EfficientNet-Lite0
        // (BN eps 1e-3, TF "SAME" padding) `efficientnet_lite0`, which in timm is the PyTorch variant.
        if architecture == nil, arch == "efficientnet_lite0", file.metadata["bn_eps"] == "1e-3" {
            arch = "tf_efficientnet_lite0"
        }
        var size = imageSize
        if size == nil, let l = layers.first(where: { $0.height != nil }), let h = l.height {
            guard h == (l.width ?? h) else {
                throw EngineError.invalidInput("\(l.source("input_size")) asks for a \(h)×\(l.width ?? h) input; amgpu's built-in architectures take square inputs")
            }
            size = h
        }
        let model = try ModelBuilders.build(arch, weights: .file(file), batch: batch, imageSize: size)
        model.filePath = path
        model.source = path
        return try applyCard(model, layers)
    }

    /// Resolves the card of a built (not imported) model: builder defaults under `layers`.
    static func applyCard(_ model: Model, _ layers: [ModelCardValues]) throws -> Model {
        let shape = model.graph.shape(of: model.input)
        if model.card.sources["mean"] == nil { model.card.sources["mean"] = "default (the architecture's)" }
        if model.card.sources["std"] == nil { model.card.sources["std"] = "default (the architecture's)" }
        model.preprocessing.height = shape[2]
        model.preprocessing.width = shape[3]
        if let l = layers.first(where: { $0.height != nil }) { model.card.sources["input_size"] = l.source("input_size") }
        else { model.card.sources["input_size"] = "default (the architecture's)" }
        model.card.sources["layout"] = "the architecture (NCHW RGB)"
        if model.card.sources["labels"] == nil {
            model.card.sources["labels"] = model.classNames == nil ? "default: none" : "default (ImageNet class names)"
        }
        model.card.sources["output"] = "the graph's output"
        let classes = model.hasClassifier ? model.graph.shape(of: model.output).last : nil
        model.card = try model.card.resolved(with: layers, classes: classes)
        return model
    }
}
