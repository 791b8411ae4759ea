import Foundation

/// The rest of a network after one of its layers, as a graph of its own: its input is the layer's value
/// (batch 1, e.g. [1, C, H, W]), its output the model's output (the logits [1, K]).
///
/// Built by copying, in order, every node of the model's graph that the output needs once the layer's value
/// is given — a cut at the layer. The copy shares the model's operators and constants, so for an activation
/// map A(x) of a real image, `logits(A(x))` equals the model's logits of x (up to rounding). It exists only
/// when the output depends on the input image through the layer alone: a skip connection around the layer,
/// or any other path from the image to the output that avoids it, is refused (`init` throws).
///
/// Activation atlases use it to classify a cell's mean vector v of a CNN layer [C, H, W]: `logits(constantMap: v)`
/// feeds the map whose every position holds v. For a layer followed only by global average pooling and a linear
/// classifier this is exactly the classifier applied to v; after an earlier layer, the later convolutions see a
/// spatially constant map (their zero padding makes the borders differ from the inside).
public struct LayerHead {
    public let graph: Graph
    /// The layer's value, fed by the caller.
    public let input: ValueID
    /// The model's output in `graph`.
    public let output: ValueID
    /// The layer's shape (batch 1).
    public var inputShape: [Int] { graph.shape(of: input) }

    /// - Parameters:
    ///   - model: the model, loaded at batch size 1.
    ///   - layer: a value of `model.graph` (not the model input, not the output itself).
    public init(model: Model, layer: ValueID) throws {
        let g = model.graph
        let name = model.displayName(of: layer)
        guard model.batchSize == 1 else {
            throw EngineError.invalidInput("the head after '\(name)' needs the model at batch size 1, got \(model.batchSize)")
        }
        guard layer != model.output else {
            throw EngineError.invalidInput("'\(name)' is the model's output: there is no head after it")
        }
        guard g.values[layer.index].producer != nil else {
            throw EngineError.invalidInput("'\(name)' is an input of \(model.name), not a layer: there is no head to cut after it")
        }
        // Nodes the output needs when the layer's value is given (walk back from the output, stop at the layer).
        let nodes = g.nodes
        var neededValues: Set<ValueID> = [model.output]
        var needed = [Bool](repeating: false, count: nodes.count)
        for index in stride(from: nodes.count - 1, through: 0, by: -1) {
            let out = nodes[index].output
            guard out != layer, neededValues.contains(out) else { continue }
            needed[index] = true
            neededValues.formUnion(nodes[index].inputs)
        }
        if let leak = neededValues.first(where: { $0 != layer && g.values[$0.index].producer == nil && g.constants[$0] == nil }) {
            throw EngineError.invalidInput("\(model.name)'s output depends on '\(g.name(of: leak))' other than through '\(name)' (a skip connection around it, or a layer before the last path to the head): the head cannot be applied to that layer alone; pick a layer every path to the output passes through (e.g. a block's output)")
        }
        guard neededValues.contains(layer) else {
            throw EngineError.invalidInput("\(model.name)'s output does not depend on '\(name)'")
        }
        let sub = Graph()
        let input = try sub.addInput(g.name(of: layer), shape: g.shape(of: layer))
        var mapped: [ValueID: ValueID] = [layer: input]
        for (index, node) in nodes.enumerated() where needed[index] {
            var inputs: [ValueID] = []
            for v in node.inputs {
                if let m = mapped[v] { inputs.append(m); continue }
                guard let c = g.constants[v] else {
                    throw EngineError.invalidGraph("head after '\(name)': node '\(node.name)' reads '\(g.name(of: v))' before it exists")
                }
                let m = try sub.addConstant(g.name(of: v), c)
                mapped[v] = m
                inputs.append(m)
            }
            mapped[node.output] = try sub.add(node.op, inputs, name: node.name)
        }
        guard let output = mapped[model.output] else {
            throw EngineError.invalidGraph("head after '\(name)': the output was not reached")
        }
        guard sub.shape(of: output) == g.shape(of: model.output) else {
            throw EngineError.shapeMismatch("head after '\(name)': output shape \(sub.shape(of: output)), the model's is \(g.shape(of: model.output))")
        }
        self.graph = sub
        self.input = input
        self.output = output
    }

    /// The output for a given value of the layer (shape `inputShape`).
    public func run(_ value: HostTensor, backend: any Backend) throws -> [Float] {
        guard value.shape == inputShape else {
            throw EngineError.shapeMismatch("the head's input must have shape \(inputShape), got \(value.shape)")
        }
        let executor = Executor(graph: graph, backend: backend)
        let pass = try executor.forward(feeds: [input: backend.tensor(value)], targets: [output])
        return try backend.download(pass.value(output)).values
    }

    /// The output for the map whose every position holds `vector`: [1, C, H, W] with map[c, y, x] = vector[c]
    /// for a feature map, [1, T, D] with every token = vector for a token layer, [1, D] = vector for a vector.
    public func run(constantMap vector: [Float], backend: any Backend) throws -> [Float] {
        let shape = inputShape
        let values: [Float]
        switch shape.count {
        case 4:
            guard vector.count == shape[1] else { throw EngineError.shapeMismatch("the head's channel vector must have \(shape[1]) entries, got \(vector.count)") }
            let plane = shape[2] * shape[3]
            values = vector.flatMap { [Float](repeating: $0, count: plane) }
        case 3:
            guard vector.count == shape[2] else { throw EngineError.shapeMismatch("the head's token vector must have \(shape[2]) entries, got \(vector.count)") }
            values = Array([[Float]](repeating: vector, count: shape[1]).joined())
        case 2:
            guard vector.count == shape[1] else { throw EngineError.shapeMismatch("the head's vector must have \(shape[1]) entries, got \(vector.count)") }
            values = vector
        default:
            throw EngineError.shapeMismatch("the head's input \(shape) is not a map, token list or vector")
        }
        return try run(HostTensor(shape: shape, values: values), backend: backend)
    }
}
