import Foundation

/// One row of `amgpu layers`.
public struct LayerDescription: Sendable {
    public var name: String
    public var op: String
    public var shape: [Int]
    /// Units an objective can address: channels (CNN [B,C,H,W]), token dims ([B,T,D]), classes ([B,K]).
    public var units: Int
    public var recommended: Bool
}

/// The addressable values of a model: aliases (module paths) first, in graph order, then — with
/// `includeInternal` — every other computed value.
public func describeLayers(_ model: Model, includeInternal: Bool) -> [LayerDescription] {
    let g = model.graph
    func units(_ shape: [Int]) -> Int { shape.count == 4 ? shape[1] : (shape.last ?? 1) }
    var rows: [LayerDescription] = []
    var seen = Set<ValueID>()
    let aliasOrder = model.aliases.sorted { a, b in a.value.index != b.value.index ? a.value.index < b.value.index : a.key < b.key }
    for (name, id) in aliasOrder {
        let producer = g.values[id.index].producer
        let op = producer.map { g.nodes[$0].op.typeName } ?? "input"
        rows.append(LayerDescription(name: name, op: op, shape: g.shape(of: id), units: units(g.shape(of: id)),
                                     recommended: model.recommended.contains(name)))
        seen.insert(id)
    }
    if includeInternal || model.aliases.isEmpty {
        for node in g.nodes where !seen.contains(node.output) {
            let name = g.name(of: node.output)
            rows.append(LayerDescription(name: name, op: node.op.typeName, shape: g.shape(of: node.output),
                                         units: units(g.shape(of: node.output)), recommended: model.recommended.contains(name)))
        }
    } else if !seen.contains(model.output) {
        let name = g.name(of: model.output)
        rows.append(LayerDescription(name: name, op: g.values[model.output.index].producer.map { g.nodes[$0].op.typeName } ?? "?",
                                     shape: g.shape(of: model.output), units: units(g.shape(of: model.output)), recommended: true))
    }
    return rows
}

/// One class of a classification.
public struct ClassScore: Codable, Sendable {
    public var index: Int
    public var name: String
    public var probability: Float
    public var logit: Float
}

/// The result of `amgpu classify`.
public struct Classification: Codable, Sendable {
    public var model: String
    public var image: String
    public var device: String
    public var top: [ClassScore]
    public var logits: [Float]
}

/// Classifies a photo (JPEG or PNG, alpha over `background`; centre crop and normalization as the model expects).
public func classify(model: Model, imagePath: String, backend: any Backend, top: Int,
                     background: BackgroundColor = .white) throws -> Classification {
    try checkClassifier(model)
    let input = ImagePreprocessing.modelInput(try ImageFile.read(imagePath, background: background), model.preprocessing)
    let out = try ModelRunner(model: model, backend: backend).run(input, layers: [model.output])
    guard let logits = out[model.output]?.values else { throw EngineError.invalidGraph("no logits") }
    return classification(model: model, image: imagePath, device: backend.name, logits: logits, top: top)
}

/// Throws unless the model's output is a [B, K] classifier with K > 1.
func checkClassifier(_ model: Model) throws {
    let shape = model.graph.shape(of: model.output)
    guard shape.count == 2, shape[1] > 1 else {
        throw EngineError.invalidInput("\(model.name) has no classifier (its output is \(shape)); use `amgpu activations` or a feature objective instead")
    }
}

/// The top `top` classes of one image's logits (probabilities p = softmax(logits)).
/// (`classify` and `BatchClassifier` both go through here.)
func classification(model: Model, image: String, device: String, logits: [Float], top: Int) -> Classification {
    let probabilities = softmax(logits)
    let order = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] }
    let scores = order.prefix(max(1, top)).map {
        ClassScore(index: $0, name: model.className($0), probability: probabilities[$0], logit: logits[$0])
    }
    return Classification(model: model.name, image: image, device: device, top: scores, logits: logits)
}

/// Numerically stable softmax, in Double.
public func softmax(_ x: [Float]) -> [Float] {
    guard let m = x.max() else { return [] }
    let e = x.map { Foundation.exp(Double($0 - m)) }
    let s = e.reduce(0, +)
    return e.map { Float($0 / s) }
}
