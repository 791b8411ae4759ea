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
    static let configuration = CommandConfiguration(
        abstract: "Print a model's top classes for a photo, several photos or a folder of photos.",
        discussion: """
            With one --image, prints the top classes as a table (or JSON with --json). With several --image
            or --images DIR (every JPEG and PNG under DIR, recursively, sorted by path; other files are skipped),
            the model is loaded once and the images run in batches of --batch, one line per image (--format
            text, csv or json; --output FILE writes it atomically). Skipped files are listed on stderr.
            Exit status: 0 when every file was classified, 2 when some were skipped (the others are still
            printed or written), 1 on an error (nothing is written).
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var deviceOptions: DeviceOptions
    @OptionGroup var imageOptions: ImageOptions

    @Option(name: .long, help: "A photo (JPEG or PNG); repeat for several. One already the model's input size is used as it is (see --resize-crop).")
    var image: [String] = []

    @Option(name: .long, help: "A folder of photos (JPEG and PNG, searched recursively); repeat for several.")
    var images: [String] = []

    @Option(name: .long, help: "How many classes to print.")
    var top: Int = 5

    @Flag(name: .long, help: "Print JSON, with the full logits vector (with several images: --format json).")
    var json = false

    /// The largest --batch (as for `adversarial`).
    static let maxBatch = 256

    @Option(name: .long, help: "Images per forward pass with several images (1…256).")
    var batch: Int = 8

    @Option(name: .long, help: "Output format with several images (default: text, or json with --json).")
    var format: BatchClassification.Format?

    @Option(name: .long, help: "Write the results to this file (atomically) instead of stdout.")
    var output: String?

    func validate() throws {
        // Before anything is loaded: a model built at a huge batch would allocate batch × 3 × S × S and more.
        guard (1...Self.maxBatch).contains(batch) else { throw ValidationError("--batch must lie in 1…\(Self.maxBatch), got \(batch)") }
        guard !image.isEmpty || !images.isEmpty else { throw ValidationError("give a photo with --image FILE (repeatable) or a folder with --images DIR") }
    }

    func run() throws {
        var partial = false
        try runReportingErrors {
            let background = imageOptions.backgroundColor()
            if image.count == 1 && images.isEmpty && format == nil && output == nil {
                let model = try modelOptions.load()
                let backend = try deviceOptions.makeBackend()
                let result = try classify(model: model, imagePath: image[0], backend: backend, top: top, background: background)
                if json {
                    let data = try JSONEncoder.pretty.encode(result)
                    print(String(decoding: data, as: UTF8.self))
                } else {
                    print("\(model.name) on \(backend.name): \(image[0])")
                    for (rank, p) in result.top.enumerated() {
                        print(String(format: "%2d. ", rank + 1) + p.name.padding(toLength: max(p.name.count, 32), withPad: " ", startingAt: 0) + String(format: " %6.2f%%  (class %d, logit %.3f)", p.probability * 100, p.index, p.logit))
                    }
                }
                return
            }
            partial = try runBatch(background: background)
        }
        if partial { throw ExitCode(2) }
    }

    /// Several images: one model load, batches, one line per image. Returns whether files were skipped.
    func runBatch(background: BackgroundColor) throws -> Bool {
        let outputFormat = format ?? (json ? .json : .text)
        guard top >= 1 else { throw EngineError.invalidInput("--top must be ≥ 1, got \(top)") }
        if let output {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory), isDirectory.boolValue {
                throw EngineError.io("cannot write '\(output)': it is a folder; give a file name with --output")
            }
        }
        var paths = image
        var skipped: [ImageFolder.Skipped] = []
        for dir in images {
            let listing = try ImageFolder.list(dir)
            paths += listing.images
            skipped += listing.skipped
        }
        let model = try modelOptions.load(batch: max(1, min(batch, paths.count)))
        let backend = try deviceOptions.makeBackend()
        let result = try BatchClassifier(model: model, backend: backend).classify(paths, top: top, background: background, skipped: skipped)
        let text = try result.formatted(outputFormat)
        reportSkipped(result.skipped)
        if let output {
            try writeAtomically(Data(text.utf8), to: output)
            printError("wrote \(output): \(result.results.count) image(s) classified, \(result.skipped.count) skipped (\(model.name) on \(backend.name))")
        } else {
            print(text, terminator: "")
        }
        return !result.skipped.isEmpty
    }
}

struct Activations: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a layer's activations for a photo as a NumPy .npy file.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var deviceOptions: DeviceOptions
    @OptionGroup var imageOptions: ImageOptions

    @Option(name: .long, help: "The photo (JPEG or PNG).")
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
            let input = ImagePreprocessing.modelInput(try imageOptions.read(image), model.preprocessing)
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
