import ArgumentParser
import Foundation
import GPUEngine

/// Options that name a model.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Model: a short name of a fetched model (efficientnet_lite0, dinov2_vits14), an .onnx or .safetensors path, or random:ARCH.")
    var model: String = "efficientnet_lite0"

    @Option(name: .long, help: "Architecture of a .safetensors checkpoint (e.g. vit_base_patch16_224, resnetv2_50).")
    var arch: String?

    @Option(name: .long, help: "Seed of random weights (with random:ARCH).")
    var weightSeed: UInt64 = 0

    @OptionGroup var card: ModelCardOptions

    func load(batch: Int = 1) throws -> Model {
        try ModelLoader.load(model, batch: batch, architecture: arch, seed: weightSeed, card: card.values())
    }
}

struct Layers: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List a model's layers: name, op, output shape, number of units; * marks recommended AM targets.")

    @Argument(help: "The model (as for --model).")
    var model: String

    @Option(name: .long, help: "Architecture of a .safetensors checkpoint.")
    var arch: String?

    @Flag(name: .long, help: "Also list internal values (constants excluded).")
    var all = false

    @OptionGroup var card: ModelCardOptions

    func run() throws {
        try runReportingErrors {
            let m = try ModelLoader.load(model, architecture: arch, card: card.values())
            print("\(m.name): input \(m.graph.name(of: m.input)) \(m.graph.shape(of: m.input)), output \(m.displayName(of: m.output)) \(m.graph.shape(of: m.output)), \(m.family.rawValue.uppercased())")
            print("source: \(m.source)")
            printCard(m.card)
            print("")
            for entry in describeLayers(m, includeInternal: all) {
                let mark = entry.recommended ? "*" : " "
                print("\(mark) \(entry.name.padding(toLength: max(entry.name.count, 44), withPad: " ", startingAt: 0))  \(entry.op.padding(toLength: 22, withPad: " ", startingAt: 0))  \(entry.shape)  units: \(entry.units)")
            }
            print("\n* recommended AM targets. Address a unit as LAYER:UNIT, e.g. `amgpu visualize --model \(model) --layer NAME --unit 0`.")
        }
    }
}

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a model's top classes for a photo.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var deviceOptions: DeviceOptions

    @Option(name: .long, help: "The photo (PNG); one already the model's input size is used as it is (see --resize-crop).")
    var image: String

    @Option(name: .long, help: "How many classes to print.")
    var top: Int = 5

    @Flag(name: .long, help: "Print JSON, with the full logits vector.")
    var json = false

    func run() throws {
        try runReportingErrors {
            let model = try modelOptions.load()
            let backend = try deviceOptions.makeBackend()
            let result = try classify(model: model, imagePath: image, backend: backend, top: top)
            if json {
                let data = try JSONEncoder.pretty.encode(result)
                print(String(decoding: data, as: UTF8.self))
            } else {
                print("\(model.name) on \(backend.name): \(image)")
                for (rank, p) in result.top.enumerated() {
                    print(String(format: "%2d. ", rank + 1) + p.name.padding(toLength: max(p.name.count, 32), withPad: " ", startingAt: 0) + String(format: " %6.2f%%  (class %d, logit %.3f)", p.probability * 100, p.index, p.logit))
                }
            }
        }
    }
}

struct Activations: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a layer's activations for a photo as a NumPy .npy file.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var deviceOptions: DeviceOptions

    @Option(name: .long, help: "The photo (PNG).")
    var image: String

    @Option(name: .long, help: "The layer (see `amgpu layers`).")
    var layer: String

    @Option(name: .long, help: "Output .npy path.")
    var out: String

    func run() throws {
        try runReportingErrors {
            let model = try modelOptions.load()
            let backend = try deviceOptions.makeBackend()
            let layerID = try model.resolve(layer: layer)
            let input = ImagePreprocessing.modelInput(try PNGFile.read(image), model.preprocessing)
            let values = try ModelRunner(model: model, backend: backend).run(input, layers: [layerID])
            guard let t = values[layerID] else { throw EngineError.invalidGraph("no value for \(layer)") }
            try NPYFile.write(t, to: out)
            print("wrote \(out): \(t.shape) float32 (\(model.displayName(of: layerID)))")
        }
    }
}

extension JSONEncoder {
    static var pretty: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return e
    }
}
