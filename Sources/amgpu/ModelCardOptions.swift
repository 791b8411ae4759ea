import ArgumentParser
import Foundation
import GPUEngine

/// The model-card flags shared by every command that loads a model (classify, activations,
/// visualize, adversarial, atlas, layers). They override a config.json beside the model and ONNX
/// metadata_props, which override the defaults (see `ModelCard`).
struct ModelCardOptions: ParsableArguments {
    @Option(name: .long, help: "Input size N (square) or H,W: fixes a model's symbolic size, or resizes a ViT's position grid.")
    var size: String?

    @Option(name: .long, help: "Normalization mean R,G,B of images in [0, 1] (e.g. 0.5,0.5,0.5 for inputs in [-1, 1]).")
    var mean: String?

    @Option(name: .long, help: "Normalization std R,G,B (every value > 0).")
    var std: String?

    @Option(name: .long, help: "Class names, one per line (as many lines as the model has outputs).")
    var labels: String?

    @Flag(name: .long, help: "Always resize and centre-crop photos (also those already the model's input size).")
    var resizeCrop = false

    @Flag(name: .long, help: "Resize photos to the input size without cropping (an image already that size is used as it is).")
    var noCrop = false

    @Option(name: .long, help: "The model's input layout when its shape is ambiguous.")
    var layout: InputLayout?

    func validate() throws {
        // Engine errors (not ValidationError) so that a bad flag exits 1 with one error line, as every bad input does.
        if resizeCrop && noCrop { throw EngineError.invalidInput("--resize-crop and --no-crop contradict each other: give one of them") }
        _ = try parsed(readLabels: false)
    }

    /// The square size for code that takes one (nil when not given or not square).
    var squareSize: Int? {
        guard let size, let s = try? ModelCardValues.parseSize(size), s.height == s.width else { return nil }
        return s.height
    }

    /// The flags as card values (the label file is read here, after validation).
    func values() throws -> ModelCardValues { try parsed(readLabels: true) }

    private func parsed(readLabels: Bool) throws -> ModelCardValues {
        return try ModelCardValues.flags(
            mean: try mean.map { try ModelCardValues.parseTriple($0, flag: "--mean") },
            std: try std.map { try ModelCardValues.parseTriple($0, flag: "--std") },
            size: try size.map(ModelCardValues.parseSize),
            labelsPath: readLabels ? labels : nil,
            fit: resizeCrop ? .resizeCrop : noCrop ? .noCrop : nil,
            layout: layout)
    }
}

/// The card as printed by `amgpu layers` (and kept in the sidecars as JSON).
func printCard(_ card: ModelCard) {
    print("card:")
    for row in card.describe() {
        print("  \(row.field.padding(toLength: 14, withPad: " ", startingAt: 0)) \(row.value)")
        print("  \("".padding(toLength: 14, withPad: " ", startingAt: 0))   from \(row.source)")
    }
    for note in card.notes { print("  note: \(note)") }
}
