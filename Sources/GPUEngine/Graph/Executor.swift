/// The values a forward pass produced: the targets, and what backward will need.
public struct ForwardPass {
    /// Tensors kept after the pass (targets and values backward reads), by value.
    public var values: [ValueID: Tensor]
    /// Per node index: the values its forward saved for backward.
    var saved: [Int: [Tensor]]
    /// Node indices whose backward runs, in forward order.
    var backwardNodes: [Int]
    /// Per node index: which of its inputs need a gradient.
    var needsGrad: [Int: [Bool]]
    /// The values gradients are wanted for.
    public var differentiable: Set<ValueID>

    /// The tensor of a target (or kept) value.
    public func value(_ id: ValueID) throws -> Tensor {
        guard let t = values[id] else { throw EngineError.invalidGraph("value \(id) was not kept by this forward pass") }
        return t
    }
}

/// Runs a graph on one backend: forward only up to the requested targets, keeping exactly the
/// activations backward needs, and backward from seed gradients down to the chosen inputs.
/// Gradients of constants (weights) are never computed.
public final class Executor: @unchecked Sendable {
    public let graph: Graph
    public let backend: any Backend
    private var constantCache: [ValueID: Tensor] = [:]

    public init(graph: Graph, backend: any Backend) {
        self.graph = graph
        self.backend = backend
    }

    /// A constant's tensor on this backend (uploaded on first use).
    func constant(_ id: ValueID) throws -> Tensor? {
        if let t = constantCache[id] { return t }
        guard let host = graph.constants[id] else { return nil }
        let t = try backend.constant(host)
        constantCache[id] = t
        return t
    }

    /// Runs the nodes needed for `targets`. `feeds` gives every graph input that is needed.
    /// With `differentiable` non-empty, also keeps what backward needs to reach those inputs.
    public func forward(feeds: [ValueID: Tensor], targets: [ValueID],
                        differentiable: Set<ValueID> = []) throws -> ForwardPass {
        let nodes = graph.nodes
        // 1. Nodes needed for the targets.
        var neededValues = Set(targets)
        var needed = [Bool](repeating: false, count: nodes.count)
        for index in stride(from: nodes.count - 1, through: 0, by: -1) where neededValues.contains(nodes[index].output) {
            needed[index] = true
            neededValues.formUnion(nodes[index].inputs)
        }
        for v in neededValues where graph.values[v.index].producer == nil && graph.constants[v] == nil {
            guard let t = feeds[v] else {
                throw EngineError.invalidInput("the graph input '\(graph.name(of: v))' was not given")
            }
            guard t.shape == graph.shape(of: v) else {
                throw EngineError.shapeMismatch("input '\(graph.name(of: v))' must have shape \(graph.shape(of: v)), got \(t.shape)")
            }
        }
        // 2. Which values depend on a differentiable input, and which nodes run backward.
        var requiresGrad = differentiable
        var backwardNodes: [Int] = []
        var needsGrad: [Int: [Bool]] = [:]
        var keep = Set(targets)
        var keepOutputOf = Set<Int>()
        if !differentiable.isEmpty {
            for index in nodes.indices where needed[index] {
                let flags = nodes[index].inputs.map { requiresGrad.contains($0) }
                if flags.contains(true) {
                    requiresGrad.insert(nodes[index].output)
                    backwardNodes.append(index)
                    needsGrad[index] = flags
                    let uses = nodes[index].op.backwardUses(needsGrad: flags)
                    for (i, use) in uses.inputs.enumerated() where use && i < nodes[index].inputs.count {
                        keep.insert(nodes[index].inputs[i])
                    }
                    if uses.output { keepOutputOf.insert(index); keep.insert(nodes[index].output) }
                }
            }
        }
        // 3. Last forward use of each value, to free activations early.
        var lastUse: [ValueID: Int] = [:]
        for index in nodes.indices where needed[index] {
            for v in nodes[index].inputs { lastUse[v] = index }
        }
        // 4. Run.
        var live: [ValueID: Tensor] = [:]
        for (v, t) in feeds where neededValues.contains(v) { live[v] = t }
        var saved: [Int: [Tensor]] = [:]
        for index in nodes.indices where needed[index] {
            let node = nodes[index]
            var args: [Tensor] = []
            args.reserveCapacity(node.inputs.count)
            for v in node.inputs {
                if let t = live[v] { args.append(t) } else if let c = try constant(v) { args.append(c) } else {
                    throw EngineError.invalidGraph("node '\(node.name)' reads '\(graph.name(of: v))' before it exists")
                }
            }
            let result: OpResult
            do {
                result = try node.op.forward(args, on: backend)
            } catch let error as EngineError {
                throw EngineError.invalidGraph("node '\(node.name)' (\(node.op.typeName)) failed: \(error)")
            }
            live[node.output] = result.output
            if needsGrad[index] != nil && !result.saved.isEmpty { saved[index] = result.saved }
            for v in node.inputs where lastUse[v] == index && !keep.contains(v) { live[v] = nil }
        }
        var kept: [ValueID: Tensor] = [:]
        for v in keep { if let t = live[v] { kept[v] = t } }
        return ForwardPass(values: kept, saved: saved, backwardNodes: backwardNodes, needsGrad: needsGrad,
                           differentiable: differentiable)
    }

    /// Backpropagates `seeds` (dL/d value, each shaped like its value) through the pass and
    /// returns dL/d input for every differentiable input (zeros where no path reaches it).
    /// Consumes the pass's saved activations as it goes.
    public func backward(_ pass: ForwardPass, seeds: [ValueID: Tensor]) throws -> [ValueID: Tensor] {
        var pass = pass
        var grads: [ValueID: Tensor] = [:]
        for (v, g) in seeds {
            guard g.shape == graph.shape(of: v) else {
                throw EngineError.shapeMismatch("seed for '\(graph.name(of: v))' has shape \(g.shape), expected \(graph.shape(of: v))")
            }
            grads[v] = try accumulate(grads[v], g)
        }
        for index in pass.backwardNodes.reversed() {
            let node = graph.nodes[index]
            guard let g = grads.removeValue(forKey: node.output) else { continue }
            let flags = pass.needsGrad[index] ?? []
            let uses = node.op.backwardUses(needsGrad: flags)
            var inputs: [Tensor?] = []
            for (i, v) in node.inputs.enumerated() {
                let use = i < uses.inputs.count && uses.inputs[i]
                inputs.append(use ? (try pass.values[v] ?? constant(v)) : nil)
            }
            let context = BackwardContext(gradOutput: g, inputs: inputs,
                                          inputShapes: node.inputs.map { graph.shape(of: $0) },
                                          output: uses.output ? pass.values[node.output] : nil,
                                          saved: pass.saved.removeValue(forKey: index) ?? [],
                                          needsGrad: flags)
            let inputGrads: [Tensor?]
            do {
                inputGrads = try node.op.backward(context, on: backend)
            } catch let error as EngineError {
                throw EngineError.invalidGraph("backward of node '\(node.name)' (\(node.op.typeName)) failed: \(error)")
            }
            for (i, v) in node.inputs.enumerated() where flags[i] {
                guard i < inputGrads.count, let dv = inputGrads[i] else { continue }
                guard dv.shape == graph.shape(of: v) else {
                    throw EngineError.invalidGraph("backward of '\(node.name)' gave a gradient of shape \(dv.shape) for '\(graph.name(of: v))' of shape \(graph.shape(of: v))")
                }
                grads[v] = try accumulate(grads[v], dv)
            }
        }
        var result: [ValueID: Tensor] = [:]
        for v in pass.differentiable {
            result[v] = try grads[v] ?? backend.zeros(graph.shape(of: v))
        }
        return result
    }

    private func accumulate(_ existing: Tensor?, _ g: Tensor) throws -> Tensor {
        guard let existing else { return g }
        return try backend.run(Binary(.add), existing, g)
    }
}
