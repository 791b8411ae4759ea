import Foundation

/// Turns what a user types after `--model` into a `Model`:
/// - a path to an `.onnx` file, or to a `.safetensors` file (with `architecture` naming the builder,
///   or recorded in the file's metadata as `amgpu.architecture`),
/// - a short name of a fetched real model (`efficientnet_lite0`, `dinov2_vits14`; see `scripts/fetch-models`),
/// - an architecture with seeded random weights (`vit_base_patch16_224`, `resnetv2_50`, …) when
///   `randomWeights` is true or the name is given as `random:ARCH`.
public enum ModelLoader {
    public static func load(_ reference: String, batch: Int = 1, architecture: String? = nil,
                            randomWeights: Bool = false, seed: UInt64 = 0, imageSize: Int? = nil) throws -> Model {
        var ref = reference
        var random = randomWeights
        if ref.hasPrefix("random:") { ref = String(ref.dropFirst(7)); random = true }
        if random {
            return try ModelBuilders.build(ref, weights: .random(seed: seed), batch: batch, imageSize: imageSize)
        }
        if let known = ModelStore.fetched[ref] {
            let path = ModelStore.path(known.file)
            guard FileManager.default.fileExists(atPath: path) else {
                throw EngineError.io(ModelStore.missingMessage(ref, known.file))
            }
            let arch = ref.hasSuffix(".onnx") ? nil : ref
            let model = try loadFile(path, batch: batch, architecture: arch, imageSize: imageSize, name: ref)
            return model
        }
        if ref.hasSuffix(".onnx") || ref.hasSuffix(".safetensors") || ref.contains("/") {
            guard FileManager.default.fileExists(atPath: ref) else {
                throw EngineError.io("model file '\(ref)' does not exist; check the path")
            }
            return try loadFile(ref, batch: batch, architecture: architecture, imageSize: imageSize)
        }
        if ModelBuilders.architectures.contains(ref) {
            throw EngineError.invalidInput("'\(ref)' is an architecture, not a trained model here: pass a checkpoint (--model path/to/model.safetensors --arch \(ref)) or use random weights (--model random:\(ref))")
        }
        let known = Array(ModelStore.fetched.keys) + ModelBuilders.architectures.map { "random:" + $0 }
        throw EngineError.invalidInput("unknown model '\(reference)': give an .onnx or .safetensors path, or one of: \(known.sorted().joined(separator: ", "))")
    }

    static func loadFile(_ path: String, batch: Int, architecture: String?, imageSize: Int?, name: String? = nil) throws -> Model {
        if path.hasSuffix(".onnx") {
            return try ONNXImporter.load(path: path, batch: batch, imageSize: imageSize, name: name)
        }
        let file = try SafetensorsFile(path: path)
        guard let arch = architecture ?? file.metadata["amgpu.architecture"] ?? file.metadata["architecture"] else {
            throw EngineError.invalidInput("'\(path)' does not say which architecture it holds: pass --arch NAME (one of \(ModelBuilders.architectures.joined(separator: ", ")))")
        }
        let model = try ModelBuilders.build(arch, weights: .file(file), batch: batch, imageSize: imageSize)
        model.filePath = path
        model.source = path
        return model
    }
}
