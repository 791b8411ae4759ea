import Foundation

/// Streams images through a model in batches with one model load, handing each batch's activations of
/// some layers to a callback. `BatchClassifier` (`classify --images`), `probe` and `activation-atlas` read
/// photos through it.
///
/// Each image is read with `ImageFile.read` (JPEG or PNG, alpha over `background`, EXIF orientation),
/// fitted and normalized by `ImagePreprocessing.modelInput` with the model's preprocessing, and B of them
/// (B = the model's batch size) are stacked into one [B, 3, H, W] input; a last, short batch is filled up
/// with copies of its first image, whose rows are dropped. Inference only, so rows are independent: the
/// activations of an image do not depend on its batch.
///
/// A file that cannot be read as an image is skipped with the reason (the run goes on); the stream throws
/// only for errors that are not about one file (device, model), or when not one of the files could be read.
public final class LayerActivationStream {
    public let model: Model
    public let runner: ModelRunner
    /// The layers whose activations each batch carries.
    public let layers: [ValueID]

    /// One batch of images that were read.
    public struct Batch {
        /// The images' paths, as given.
        public var paths: [String]
        /// Their indices in the list given to `run`.
        public var indices: [Int]
        /// Per layer, the activations of these images only: [n, C, H, W] for feature maps, [n, T, D] for
        /// tokens, [n, D] for vectors (n = paths.count; the padding rows are dropped).
        public var activations: [ValueID: HostTensor]
        /// Files skipped since the previous batch (unreadable or not images), in input order.
        public var skipped: [ImageFolder.Skipped]
        /// How many of the given paths have been consumed (read or skipped) once this batch is handled.
        public var consumed: Int
    }

    /// Loads `model` (at the batch size wanted) onto `backend`; `ModelRunner` checks the device memory first.
    public init(model: Model, backend: any Backend, layers: [ValueID]) throws {
        self.model = model
        self.layers = layers
        runner = try ModelRunner(model: model, backend: backend)
    }

    /// Streams `paths` in order, calling `body` once per batch (and once more, with no images, when files
    /// after the last batch were skipped). Returns the number of images read and the skipped files.
    /// - Parameter requireOne: throw `invalidInput` when not one file could be read (default true).
    @discardableResult
    public func run(_ paths: [String], background: BackgroundColor = .white, requireOne: Bool = true,
                    _ body: (Batch) throws -> Void) throws -> (read: Int, skipped: [ImageFolder.Skipped]) {
        let batch = model.batchSize
        var pending: [(index: Int, path: String, input: HostTensor)] = []
        var skippedSinceBatch: [ImageFolder.Skipped] = []
        var allSkipped: [ImageFolder.Skipped] = []
        var read = 0
        func flush(consumed: Int) throws {
            guard let first = pending.first else {
                if !skippedSinceBatch.isEmpty {
                    try body(Batch(paths: [], indices: [], activations: [:], skipped: skippedSinceBatch, consumed: consumed))
                    skippedSinceBatch.removeAll()
                }
                return
            }
            let plane = first.input.values.count
            var values = [Float]()
            values.reserveCapacity(batch * plane)
            for i in 0..<batch { values += (i < pending.count ? pending[i] : first).input.values }
            let shape = [batch] + Array(first.input.shape.dropFirst())
            let out = try runner.run(HostTensor(shape: shape, values: values), layers: layers)
            var activations: [ValueID: HostTensor] = [:]
            for layer in layers {
                guard let t = out[layer], t.shape.first == batch else {
                    throw EngineError.invalidGraph("\(model.name): layer '\(model.displayName(of: layer))' gave no [\(batch), …] activations")
                }
                let row = t.values.count / batch
                activations[layer] = HostTensor(shape: [pending.count] + t.shape.dropFirst(),
                                                 values: Array(t.values[0..<(pending.count * row)]))
            }
            read += pending.count
            try body(Batch(paths: pending.map(\.path), indices: pending.map(\.index), activations: activations,
                           skipped: skippedSinceBatch, consumed: consumed))
            pending.removeAll()
            skippedSinceBatch.removeAll()
        }
        for (n, path) in paths.enumerated() {
            do {
                let image = try ImageFile.read(path, background: background)
                pending.append((n, path, ImagePreprocessing.modelInput(image, model.preprocessing)))
            } catch let error as EngineError {
                // The reason without the path, which `Skipped` already holds ("cannot decode image: …").
                let s = ImageFolder.Skipped(path: path, reason: "\(error)".replacingOccurrences(of: " '\(path)'", with: ""))
                skippedSinceBatch.append(s)
                allSkipped.append(s)
            }
            if pending.count == batch { try flush(consumed: n + 1) }
        }
        try flush(consumed: paths.count)
        if requireOne, read == 0, !paths.isEmpty {
            let first = allSkipped.first.map { ": '\($0.path)': \($0.reason)" } ?? ""
            throw EngineError.invalidInput("no image could be read (\(allSkipped.count) skipped)\(first)")
        }
        return (read, allSkipped)
    }
}
