import Foundation

/// What kind of network a model is; it picks the AM preset and the default objective.
public enum ModelFamily: String, Codable, Sendable { case cnn, vit }

/// How an image in [0, 1] becomes the model's input: fitted to `height`×`width` (`fit`,
/// `cropFraction`, `interpolation`), then x' = (x − mean[c]) / std[c].
public struct Preprocessing: Codable, Sendable, Equatable {
    public var height: Int
    public var width: Int
    public var mean: [Float]
    public var std: [Float]
    /// timm crop_pct: the image is resized to cover (height, width) / cropFraction before the centre crop.
    public var cropFraction: Double
    public var interpolation: Interpolation
    public var fit: ImageFit

    public init(height: Int, width: Int, mean: [Float], std: [Float], cropFraction: Double = 0.875,
                interpolation: Interpolation = .bilinear, fit: ImageFit = .auto) {
        self.height = height
        self.width = width
        self.mean = mean
        self.std = std
        self.cropFraction = cropFraction
        self.interpolation = interpolation
        self.fit = fit
    }

    public init(inputSize: Int, mean: [Float], std: [Float]) {
        self.init(height: inputSize, width: inputSize, mean: mean, std: std)
    }

    /// The side of a square input (the height when the input is not square).
    public var inputSize: Int {
        get { height }
        set { height = newValue; width = newValue }
    }

    public static func imagenet(_ size: Int = 224) -> Preprocessing {
        Preprocessing(inputSize: size, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])
    }
    /// Inception-style: (x − 0.5) / 0.5, i.e. inputs in [−1, 1].
    public static func inception(_ size: Int = 224) -> Preprocessing {
        Preprocessing(inputSize: size, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5])
    }
}

/// A loaded network: its graph (input [batch, 3, H, W]), the output value, how inputs are
/// preprocessed, and the user-facing names of its layers.
public final class Model: @unchecked Sendable {
    public let name: String
    public let graph: Graph
    public let input: ValueID
    public let output: ValueID
    public let family: ModelFamily
    /// Preprocessing, labels, input layout and final activation, with where each came from.
    public var card: ModelCard
    /// How photos become the input (the card's).
    public var preprocessing: Preprocessing {
        get { card.preprocessing }
        set { card.preprocessing = newValue }
    }
    /// Class names when `output` is a classifier's logits (index = class; the card's labels).
    public var classNames: [String]? {
        get { card.labels }
        set { card.labels = newValue }
    }
    /// Friendly layer names (timm module paths, or module paths recovered from an ONNX export's
    /// node names) → values.
    public var aliases: [String: ValueID]
    /// Names `amgpu layers` marks as recommended AM targets.
    public var recommended: Set<String>
    /// Where the model came from (file path or "random weights, seed N").
    public var source: String
    /// The model file, when loaded from one.
    public var filePath: String?

    public init(name: String, graph: Graph, input: ValueID, output: ValueID, family: ModelFamily,
                preprocessing: Preprocessing, classNames: [String]? = nil, aliases: [String: ValueID] = [:],
                recommended: Set<String> = [], source: String, filePath: String? = nil) {
        self.name = name
        self.graph = graph
        self.input = input
        self.output = output
        self.family = family
        self.card = ModelCard(preprocessing: preprocessing, labels: classNames)
        self.aliases = aliases
        self.recommended = recommended
        self.source = source
        self.filePath = filePath
    }

    /// SHA-256 (hex) of the model file, or nil for a model built in memory.
    public func fileSHA256() -> String? {
        guard let filePath, let data = try? Data(contentsOf: URL(fileURLWithPath: filePath), options: .alwaysMapped) else { return nil }
        return sha256Hex(data)
    }

    /// True when `output` is a vector of class logits.
    public var hasClassifier: Bool { classNames != nil || graph.shape(of: output).last.map { $0 > 1 && graph.shape(of: output).count == 2 } == true }

    public var batchSize: Int { graph.shape(of: input)[0] }

    /// The value for a layer name: an alias (module path), a value name, or the special "output"
    /// (the logits; before a final softmax) and "input" (the normalized NCHW RGB image fed to the graph).
    /// Unknown names throw with the closest matches.
    public func resolve(layer: String) throws -> ValueID {
        if layer == "output" || layer == "logits" { return output }
        if let id = aliases[layer] { return id }
        if let id = graph.value(named: layer), graph.values[id.index].producer != nil || id == input { return id }
        if layer == "input" { return input }   // the NCHW RGB image amgpu feeds, whatever the model calls it
        let candidates = Array(aliases.keys) + graph.values.filter { $0.producer != nil }.map(\.name)
        let close = closestNames(to: layer, among: candidates, limit: 5)
        throw EngineError.unknownValue("no layer named '\(layer)' in \(name)"
            + (close.isEmpty ? "" : "; closest: \(close.joined(separator: ", "))")
            + " (run `amgpu layers \(name)` to list them)")
    }

    /// The user-facing name of a value (its alias when it has one).
    public func displayName(of id: ValueID) -> String {
        aliasByValue[id] ?? graph.name(of: id)
    }

    public lazy var aliasByValue: [ValueID: String] = {
        var out: [ValueID: String] = [:]
        for (name, id) in aliases where out[id] == nil || name.count < out[id]!.count { out[id] = name }
        return out
    }()

    /// Looks up a class by index ("207") or by name (case-insensitive, exact first, then prefix/contains).
    public func classIndex(_ query: String) throws -> Int {
        let count = graph.shape(of: output).last ?? 0
        if let i = Int(query) {
            guard i >= 0, i < count else {
                throw EngineError.invalidInput("class \(i) is out of range: \(name) has \(count) classes (0…\(count - 1))")
            }
            return i
        }
        guard let names = classNames else {
            throw EngineError.invalidInput("\(name) has no class names; give the class as a number (0…\(count - 1))")
        }
        let q = query.lowercased().replacingOccurrences(of: "_", with: " ")
        if let i = names.firstIndex(where: { $0.lowercased() == q }) { return i }
        if let i = names.firstIndex(where: { $0.lowercased().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.contains(q) }) { return i }
        let partial = names.enumerated().filter { $0.element.lowercased().contains(q) }
        if partial.count == 1 { return partial[0].offset }
        let close = partial.isEmpty ? closestNames(to: q, among: names, limit: 5) : partial.prefix(5).map(\.element)
        throw EngineError.invalidInput("no class named '\(query)'" + (close.isEmpty ? "" : "; did you mean: \(close.joined(separator: "; "))?"))
    }

    public func className(_ index: Int) -> String {
        guard let names = classNames, names.indices.contains(index) else { return "class \(index)" }
        return names[index].split(separator: ",").first.map(String.init) ?? names[index]
    }
}
