import Foundation

/// Where one sampled activation vector came from.
public struct ActivationSamplePosition: Codable, Sendable, Equatable {
    /// Index into `ActivationSamples.images`.
    public var image: Int
    /// The spatial position: CNN row `y`, column `x` of the [C, H, W] map; ViT patch token t (0-based after the
    /// prefix tokens) at `y = t / grid`, `x = t % grid` on the √T×√T patch grid (y = 0, x = t when T is not square).
    public var y: Int
    public var x: Int
    /// The input-pixel box [x0, y0, x1, y1) of the position on the model input (the photo centre-cropped and
    /// resized to the model's input size).
    public var box: [Int]
}

/// A reproducible sample of a layer's spatial activation vectors over a folder of photos.
public struct ActivationSamples: Sendable {
    public var layer: String
    /// Vector length: channels (CNN) or token width (ViT).
    public var dimension: Int
    /// The photos that were read, in order (paths as found).
    public var images: [String]
    /// The classifier's top class per photo (nil entries when the model has no classifier).
    public var predictedClass: [Int?]
    /// Files that could not be read (not fatal unless every file fails).
    public var skipped: [ImageFolder.Skipped]
    /// Positions considered (after the class filter): the stream the reservoir drew from.
    public var positionsSeen: Int
    /// Photos whose positions entered the stream (all with no class filter).
    public var imagesUsed: Int
    public var positions: [ActivationSamplePosition]
    /// [positions.count, dimension] row-major.
    public var vectors: [Float]

    public var count: Int { positions.count }
    public func vector(_ i: Int) -> ArraySlice<Float> { vectors[(i * dimension)..<((i + 1) * dimension)] }
}

/// What `ActivationSampler` needs to know about the layer.
public struct SpatialLayer: Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case cnn, tokens }
    public var name: String
    public var kind: Kind
    /// Vector length (C or D).
    public var dimension: Int
    /// Spatial grid: H×W (CNN) or the patch grid (ViT; 1×P when the patch count is not a square).
    public var height: Int
    public var width: Int
    /// Tokens before the patch tokens (ViT; CLS = 1).
    public var prefixTokens: Int

    public var positionsPerImage: Int { height * width }

    /// The layer `name` of `model` as a grid of vectors. Throws for a layer with no spatial positions
    /// ([B, K] vectors such as logits or pooled features).
    public init(model: Model, layer name: String, prefixTokens: Int = 1) throws {
        let id = try model.resolve(layer: name)
        let shape = model.graph.shape(of: id)
        self.name = name
        self.prefixTokens = prefixTokens
        switch shape.count {
        case 4:
            kind = .cnn
            dimension = shape[1]; height = shape[2]; width = shape[3]
        case 3 where shape[1] > prefixTokens:
            kind = .tokens
            dimension = shape[2]
            let patches = shape[1] - prefixTokens
            let side = Int(Double(patches).squareRoot().rounded())
            if side * side == patches { height = side; width = side } else { height = 1; width = patches }
        default:
            throw EngineError.invalidInput("layer '\(name)' has shape \(shape): it has no spatial positions (an activation atlas samples the positions of a CNN map [B,C,H,W] or the patch tokens of a ViT block [B,T,D]); pick a convolutional layer or a transformer block (see `amgpu layers \(model.name)`)")
        }
    }

    /// The box [x0, y0, x1, y1) on an input of `inputHeight`×`inputWidth` pixels covered by grid cell (y, x):
    /// the cell's share of the input, ⌊x·W_in/W⌋ ..< ⌈(x+1)·W_in/W⌉ (exact for ViT patches; for a CNN the
    /// stride cell of the position, not its full receptive field).
    public func box(y: Int, x: Int, inputHeight: Int, inputWidth: Int) -> [Int] {
        if kind == .tokens && height == 1 && width > 1 && width * width != positionsPerImage {
            return [0, 0, inputWidth, inputHeight]
        }
        let x0 = x * inputWidth / width, y0 = y * inputHeight / height
        let x1 = ((x + 1) * inputWidth + width - 1) / width, y1 = ((y + 1) * inputHeight + height - 1) / height
        return [x0, y0, min(x1, inputWidth), min(y1, inputHeight)]
    }
}

/// Samples spatial activation vectors of one layer over photos: every position of every photo (after the
/// class filter) is one item of a stream in photo order, then row-major position order; a reservoir
/// (Vitter's algorithm R, `RandomSource(seed)`) keeps `samples` of them uniformly. The result depends only
/// on the photo list, the model, the layer, `samples`, `seed` and the class filter — not on the batch size.
/// The kept samples are returned in stream order.
public enum ActivationSampler {
    /// The activations of one batch: for each photo of the batch, its layer value and, when asked, its logits.
    public typealias BatchSource = (_ inputs: [HostTensor]) throws -> (layer: [HostTensor], logits: [[Float]]?)

    /// Reads each photo in `paths` (skipping unreadable ones), runs `model` on batches of `model.batchSize`
    /// photos (one model load) and samples. `classFilter`: keep only photos whose top class is that index
    /// (needs a classifier).
    public static func sample(model: Model, backend: any Backend, layer: SpatialLayer, paths: [String],
                              skipped alreadySkipped: [ImageFolder.Skipped] = [], samples: Int, seed: UInt64,
                              classFilter: Int? = nil, background: BackgroundColor = .white,
                              progress: ((Int, Int) -> Void)? = nil) throws -> ActivationSamples {
        let runner = try ModelRunner(model: model, backend: backend)
        let layerID = try model.resolve(layer: layer.name)
        let withLogits = model.hasClassifier && checkedClassifier(model)
        if classFilter != nil && !withLogits {
            throw EngineError.invalidInput("--class needs a model with a classifier head; \(model.name)'s output is \(model.graph.shape(of: model.output))")
        }
        let batch = model.batchSize
        let source: BatchSource = { inputs in
            let plane = inputs[0].values.count
            var values = [Float]()
            values.reserveCapacity(batch * plane)
            for i in 0..<batch { values += (i < inputs.count ? inputs[i] : inputs[0]).values }
            let targets = withLogits ? [layerID, model.output] : [layerID]
            let out = try runner.run(HostTensor(shape: [batch] + Array(inputs[0].shape.dropFirst()), values: values), layers: targets)
            guard let a = out[layerID] else { throw EngineError.invalidGraph("\(model.name) gave no value for layer '\(layer.name)'") }
            let per = a.values.count / batch
            let layerValues = (0..<inputs.count).map { i in
                HostTensor(shape: [1] + Array(a.shape.dropFirst()), values: Array(a.values[(i * per)..<((i + 1) * per)]))
            }
            var logits: [[Float]]? = nil
            if withLogits, let l = out[model.output] {
                let k = l.values.count / batch
                logits = (0..<inputs.count).map { i in Array(l.values[(i * k)..<((i + 1) * k)]) }
            }
            return (layerValues, logits)
        }
        let p = model.preprocessing
        return try sample(layer: layer, paths: paths, skipped: alreadySkipped, batch: batch, samples: samples, seed: seed,
                          classFilter: classFilter, inputHeight: p.height, inputWidth: p.width, progress: progress,
                          read: { path in ImagePreprocessing.modelInput(try ImageFile.read(path, background: background), p) },
                          source: source)
    }

    static func checkedClassifier(_ model: Model) -> Bool { (try? checkClassifier(model)) != nil }

    /// The sampling itself, over any source of per-photo activations ([1, C, H, W] or [1, T, D]).
    public static func sample(layer: SpatialLayer, paths: [String], skipped alreadySkipped: [ImageFolder.Skipped] = [],
                              batch: Int, samples: Int, seed: UInt64, classFilter: Int? = nil,
                              inputHeight: Int, inputWidth: Int, progress: ((Int, Int) -> Void)? = nil,
                              read: (String) throws -> HostTensor, source: BatchSource) throws -> ActivationSamples {
        guard samples >= 1 else { throw EngineError.invalidInput("the number of samples must be at least 1, got \(samples)") }
        guard batch >= 1 else { throw EngineError.invalidInput("the batch must be at least 1, got \(batch)") }
        let d = layer.dimension
        var rng = RandomSource(seed: seed)
        var kept: [ActivationSamplePosition] = []
        var keptVectors: [[Float]] = []
        var streamIndex = 0
        var images: [String] = []
        var predicted: [Int?] = []
        var skipped = alreadySkipped
        var used = 0
        var pending: [(path: String, input: HostTensor)] = []

        func offer(_ position: ActivationSamplePosition, _ vector: [Float]) {
            if kept.count < samples {
                kept.append(position)
                keptVectors.append(vector)
            } else {
                let j = Int(rng.next() % UInt64(streamIndex + 1))
                if j < samples {
                    kept[j] = position
                    keptVectors[j] = vector
                }
            }
            streamIndex += 1
        }

        func flush() throws {
            guard !pending.isEmpty else { return }
            let (values, logits) = try source(pending.map(\.input))
            for (i, item) in pending.enumerated() {
                let a = values[i]
                let imageIndex = images.count
                images.append(item.path)
                let top = logits.flatMap { rows -> Int? in
                    let row = rows[i]
                    guard !row.isEmpty else { return nil }
                    var best = 0
                    for k in 1..<row.count where row[k] > row[best] { best = k }
                    return best
                }
                predicted.append(top)
                if let classFilter, top != classFilter { continue }
                guard a.values.allSatisfy(\.isFinite) else {
                    throw EngineError.numerical("layer '\(layer.name)' is not finite (NaN or infinite) on '\(item.path)'")
                }
                used += 1
                switch layer.kind {
                case .cnn:
                    let plane = layer.height * layer.width
                    guard a.values.count == d * plane else { throw EngineError.shapeMismatch("layer '\(layer.name)': \(a.shape) is not [1, \(d), \(layer.height), \(layer.width)]") }
                    for y in 0..<layer.height {
                        for x in 0..<layer.width {
                            let at = y * layer.width + x
                            let vector = (0..<d).map { a.values[$0 * plane + at] }
                            offer(ActivationSamplePosition(image: imageIndex, y: y, x: x,
                                                           box: layer.box(y: y, x: x, inputHeight: inputHeight, inputWidth: inputWidth)), vector)
                        }
                    }
                case .tokens:
                    let patches = layer.positionsPerImage
                    guard a.values.count == (patches + layer.prefixTokens) * d else { throw EngineError.shapeMismatch("layer '\(layer.name)': \(a.shape) is not [1, \(patches + layer.prefixTokens), \(d)]") }
                    for t in 0..<patches {
                        let start = (layer.prefixTokens + t) * d
                        let y = t / layer.width, x = t % layer.width
                        offer(ActivationSamplePosition(image: imageIndex, y: y, x: x,
                                                       box: layer.box(y: y, x: x, inputHeight: inputHeight, inputWidth: inputWidth)),
                              Array(a.values[start..<(start + d)]))
                    }
                }
            }
            pending.removeAll()
        }

        for (n, path) in paths.enumerated() {
            do {
                pending.append((path, try read(path)))
            } catch let error as EngineError {
                skipped.append(ImageFolder.Skipped(path: path, reason: "\(error)".replacingOccurrences(of: " '\(path)'", with: "")))
            }
            if pending.count == batch { try flush() }
            progress?(n + 1, paths.count)
        }
        try flush()
        guard !images.isEmpty else {
            let first = skipped.first.map { ": first '\($0.path)': \($0.reason)" } ?? ""
            throw EngineError.invalidInput("no image could be read (\(skipped.count) skipped)\(first)")
        }
        guard streamIndex > 0 else {
            throw EngineError.invalidInput("none of the \(images.count) photos is classified as the requested class, so there is nothing to sample: pick another class or add photos of it")
        }
        // Stream order (image, then position) whatever the reservoir's slots.
        func key(_ p: ActivationSamplePosition) -> Int { (p.image * layer.height + p.y) * layer.width + p.x }
        let order: [Int] = kept.indices.sorted { (a: Int, b: Int) -> Bool in key(kept[a]) < key(kept[b]) }
        var vectors = [Float]()
        vectors.reserveCapacity(order.count * d)
        for i in order { vectors += keptVectors[i] }
        return ActivationSamples(layer: layer.name, dimension: d, images: images, predictedClass: predicted, skipped: skipped,
                                 positionsSeen: streamIndex, imagesUsed: used, positions: order.map { kept[$0] }, vectors: vectors)
    }
}
