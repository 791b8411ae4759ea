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

/// What `ActivationSampler` needs to know about the layer: its vectors, its spatial grid and each position's
/// box on the input, from `ReceptiveFields` (the probe's geometry: exact for convolution/pool chains, the
/// patch for ViT tokens).
public struct SpatialLayer: Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case cnn, tokens }
    public var name: String
    public var kind: Kind
    /// Vector length (C or D).
    public var dimension: Int
    /// Spatial grid: H×W (CNN) or the patch grid (ViT).
    public var height: Int
    public var width: Int
    /// Tokens before the patch tokens (ViT; CLS = 1, more with register tokens).
    public var prefixTokens: Int
    /// The input-pixel field of each position (nil: none could be computed; the stride cell is used).
    public var field: SpatialField?

    public var positionsPerImage: Int { height * width }

    /// How `box` is computed, for the output's records.
    public var boxDescription: String {
        switch (kind, field != nil) {
        case (.cnn, true): return "the position's receptive field on the model input (from the graph's convolutions, pools and pads; ReceptiveFields)"
        case (.tokens, true): return "the token's patch on the model input (the patch embedding's field)"
        default: return "the position's stride cell on the model input (⌊x·W_in/W⌋ ..< ⌈(x+1)·W_in/W⌉): no receptive field could be traced for this layer"
        }
    }

    /// The layer `name` of `model` as a grid of vectors. Throws for a layer with no spatial positions
    /// ([B, K] vectors such as logits or pooled features).
    public init(model: Model, layer name: String) throws {
        let id = try model.resolve(layer: name)
        let shape = model.graph.shape(of: id)
        let geometry = try? ReceptiveFields(model: model).geometry(of: id, name: name)
        self.name = name
        switch (shape.count, geometry) {
        case (4, _):
            kind = .cnn
            dimension = shape[1]; height = shape[2]; width = shape[3]
            prefixTokens = 0
            if case .spatial(_, let f)? = geometry { field = f } else { field = nil }
        case (3, .tokens(_, let d, let prefix, let gh, let gw, let patch)?):
            kind = .tokens
            dimension = d; height = gh; width = gw; prefixTokens = prefix
            field = patch
        case (3, _) where shape[1] > 1:
            // No patch embedding traced: one CLS token, patches on a square grid when the count is square.
            kind = .tokens
            dimension = shape[2]
            prefixTokens = 1
            let patches = shape[1] - 1
            let side = Int(Double(patches).squareRoot().rounded())
            if side * side == patches { height = side; width = side } else { height = 1; width = patches }
            field = nil
        default:
            throw EngineError.invalidInput("layer '\(name)' has shape \(shape): it has no spatial positions (an activation atlas samples the positions of a CNN map [B,C,H,W] or the patch tokens of a ViT block [B,T,D]); pick a convolutional layer or a transformer block (see `amgpu layers \(model.name)`)")
        }
    }

    /// A layer described directly (tests, other sources of activations).
    public init(name: String, kind: Kind, dimension: Int, height: Int, width: Int, prefixTokens: Int, field: SpatialField? = nil) {
        self.name = name
        self.kind = kind
        self.dimension = dimension
        self.height = height
        self.width = width
        self.prefixTokens = prefixTokens
        self.field = field
    }

    /// The box [x0, y0, x1, y1) of grid cell (y, x) on an input of `inputHeight`×`inputWidth` pixels: from
    /// `field` when known, else the cell's share of the input, ⌊x·W_in/W⌋ ..< ⌈(x+1)·W_in/W⌉.
    public func box(y: Int, x: Int, inputHeight: Int, inputWidth: Int) -> [Int] {
        if let field {
            let b = field.box(row: y, column: x, inputHeight: inputHeight, inputWidth: inputWidth)
            return [b.x0, b.y0, b.x1, b.y1]
        }
        let x0 = x * inputWidth / width, y0 = y * inputHeight / height
        let x1 = ((x + 1) * inputWidth + width - 1) / width, y1 = ((y + 1) * inputHeight + height - 1) / height
        return [x0, y0, min(x1, inputWidth), min(y1, inputHeight)]
    }
}

/// Samples spatial activation vectors of one layer over photos: every position of every photo (after the
/// class filter) is one item of a stream in photo order, then row-major position order; a reservoir
/// (Vitter's algorithm R, `RandomSource(seed)`: item i ≥ k replaces slot j = next() mod (i+1) when j < k)
/// keeps `samples` of them uniformly. The result depends only on the photo list, the model, the layer,
/// `samples`, `seed` and the class filter — not on the batch size. Kept samples are returned in stream order.
public struct ActivationSampler {
    public let layer: SpatialLayer
    public let samples: Int
    public let classFilter: Int?
    public let inputHeight: Int
    public let inputWidth: Int
    var rng: RandomSource
    var kept: [ActivationSamplePosition] = []
    var keptVectors: [[Float]] = []
    var streamIndex = 0
    var images: [String] = []
    var predicted: [Int?] = []
    var used = 0

    public init(layer: SpatialLayer, samples: Int, seed: UInt64, classFilter: Int? = nil, inputHeight: Int, inputWidth: Int) throws {
        guard samples >= 1 else { throw EngineError.invalidInput("the number of samples must be at least 1, got \(samples)") }
        self.layer = layer
        self.samples = samples
        self.classFilter = classFilter
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        rng = RandomSource(seed: seed)
    }

    mutating func offer(_ position: ActivationSamplePosition, _ vector: [Float]) {
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

    /// Adds one photo: its layer value ([C, H, W] or [T, D] values, batch row dropped) and, when known, its logits.
    public mutating func add(image path: String, activation a: ArraySlice<Float>, logits: ArraySlice<Float>?) throws {
        let d = layer.dimension
        let imageIndex = images.count
        images.append(path)
        var top: Int? = nil
        if let logits, let first = logits.indices.first {
            var best = first
            for k in logits.indices where logits[k] > logits[best] { best = k }
            top = best - first
        }
        predicted.append(top)
        if let classFilter, top != classFilter { return }
        guard a.allSatisfy(\.isFinite) else {
            throw EngineError.numerical("layer '\(layer.name)' is not finite (NaN or infinite) on '\(path)'")
        }
        used += 1
        let base = a.startIndex
        switch layer.kind {
        case .cnn:
            let plane = layer.height * layer.width
            guard a.count == d * plane else { throw EngineError.shapeMismatch("layer '\(layer.name)': \(a.count) values per image, not \(d)×\(layer.height)×\(layer.width)") }
            for y in 0..<layer.height {
                for x in 0..<layer.width {
                    let at = y * layer.width + x
                    let vector = (0..<d).map { a[base + $0 * plane + at] }
                    offer(ActivationSamplePosition(image: imageIndex, y: y, x: x,
                                                   box: layer.box(y: y, x: x, inputHeight: inputHeight, inputWidth: inputWidth)), vector)
                }
            }
        case .tokens:
            let patches = layer.positionsPerImage
            guard a.count == (patches + layer.prefixTokens) * d else { throw EngineError.shapeMismatch("layer '\(layer.name)': \(a.count) values per image, not (\(patches) + \(layer.prefixTokens)) × \(d)") }
            for t in 0..<patches {
                let start = base + (layer.prefixTokens + t) * d
                let y = t / layer.width, x = t % layer.width
                offer(ActivationSamplePosition(image: imageIndex, y: y, x: x,
                                               box: layer.box(y: y, x: x, inputHeight: inputHeight, inputWidth: inputWidth)),
                      Array(a[start..<(start + d)]))
            }
        }
    }

    /// The samples, in stream order. Throws when no position entered the stream.
    public func finish(skipped: [ImageFolder.Skipped]) throws -> ActivationSamples {
        guard !images.isEmpty else {
            let first = skipped.first.map { ": first '\($0.path)': \($0.reason)" } ?? ""
            throw EngineError.invalidInput("no image could be read (\(skipped.count) skipped)\(first)")
        }
        guard streamIndex > 0 else {
            throw EngineError.invalidInput("none of the \(images.count) photos is classified as the requested class (class \(classFilter ?? -1)), so there is nothing to sample: pick another --class or add photos of it")
        }
        let h = layer.height, w = layer.width
        func key(_ p: ActivationSamplePosition) -> Int { (p.image * h + p.y) * w + p.x }
        let order: [Int] = kept.indices.sorted { (a: Int, b: Int) -> Bool in key(kept[a]) < key(kept[b]) }
        var vectors = [Float]()
        vectors.reserveCapacity(order.count * layer.dimension)
        for i in order { vectors += keptVectors[i] }
        return ActivationSamples(layer: layer.name, dimension: layer.dimension, images: images, predictedClass: predicted, skipped: skipped,
                                 positionsSeen: streamIndex, imagesUsed: used, positions: order.map { kept[$0] }, vectors: vectors)
    }

    /// Streams `paths` through `model` (loaded at the batch size wanted; `LayerActivationStream`: one model load,
    /// unreadable files skipped and listed) and samples. `classFilter`: keep only photos whose top class is
    /// that index (needs a classifier).
    public static func sample(model: Model, backend: any Backend, layer: SpatialLayer, paths: [String],
                              skipped alreadySkipped: [ImageFolder.Skipped] = [], samples: Int, seed: UInt64,
                              classFilter: Int? = nil, background: BackgroundColor = .white) throws -> ActivationSamples {
        let layerID = try model.resolve(layer: layer.name)
        let withLogits = (try? checkClassifier(model)) != nil
        if classFilter != nil && !withLogits {
            throw EngineError.invalidInput("--class needs a model with a classifier head; \(model.name)'s output is \(model.graph.shape(of: model.output))")
        }
        let p = model.preprocessing
        var sampler = try ActivationSampler(layer: layer, samples: samples, seed: seed, classFilter: classFilter,
                                            inputHeight: p.height, inputWidth: p.width)
        let stream = try LayerActivationStream(model: model, backend: backend, layers: withLogits ? [layerID, model.output] : [layerID])
        let (_, skipped) = try stream.run(paths, background: background, requireOne: false) { batch in
            guard let a = batch.activations[layerID] ?? (batch.paths.isEmpty ? HostTensor(shape: [0], values: []) : nil) else {
                throw EngineError.invalidGraph("\(model.name) gave no value for layer '\(layer.name)'")
            }
            let n = batch.paths.count
            guard n > 0 else { return }
            let per = a.values.count / n
            let logits = withLogits ? batch.activations[model.output] : nil
            let k = logits.map { $0.values.count / n } ?? 0
            for (i, path) in batch.paths.enumerated() {
                try sampler.add(image: path, activation: a.values[(i * per)..<((i + 1) * per)],
                                logits: logits.map { $0.values[(i * k)..<((i + 1) * k)] })
            }
        }
        return try sampler.finish(skipped: alreadySkipped + skipped)
    }
}
