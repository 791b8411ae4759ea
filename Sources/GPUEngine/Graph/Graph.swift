/// Identifies a value (a tensor) of a graph.
public struct ValueID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let index: Int
    public static func < (a: ValueID, b: ValueID) -> Bool { a.index < b.index }
    public var description: String { "%\(index)" }
}

/// A value: its user-facing name, static shape, and the node that makes it (nil for inputs and constants).
public struct ValueInfo: Sendable {
    public var name: String
    public var shape: [Int]
    public var producer: Int?
}

/// One operation of the graph: `output = op(inputs)`.
public struct Node: Sendable {
    /// The node's name (an ONNX node name or a timm module path).
    public var name: String
    public var op: any Operator
    public var inputs: [ValueID]
    public var output: ValueID
}

/// A dataflow graph with static shapes. Nodes are kept in topological order: a node may only
/// use values that exist when it is added. Constants (weights) live on the host and are uploaded
/// to a backend once by the executor.
public final class Graph: @unchecked Sendable {
    public private(set) var values: [ValueInfo] = []
    public private(set) var nodes: [Node] = []
    public private(set) var inputs: [ValueID] = []
    public private(set) var constants: [ValueID: HostTensor] = [:]
    private var byName: [String: ValueID] = [:]

    public init() {}

    private func newValue(_ name: String, shape: [Int], producer: Int?) throws -> ValueID {
        guard byName[name] == nil else { throw EngineError.invalidGraph("two values are named '\(name)'") }
        // Negative or overflowing shapes (from a corrupt model) stop here, before any size arithmetic downstream.
        _ = try checkedElementCount(shape, what: "value '\(name)'")
        let id = ValueID(index: values.count)
        values.append(ValueInfo(name: name, shape: shape, producer: producer))
        byName[name] = id
        return id
    }

    /// Adds a graph input (e.g. the image) of a fixed shape.
    @discardableResult
    public func addInput(_ name: String, shape: [Int]) throws -> ValueID {
        let id = try newValue(name, shape: shape, producer: nil)
        inputs.append(id)
        return id
    }

    /// Adds a constant (weights, biases, embeddings).
    @discardableResult
    public func addConstant(_ name: String, _ value: HostTensor) throws -> ValueID {
        let id = try newValue(name, shape: value.shape, producer: nil)
        constants[id] = value
        return id
    }

    /// Adds `op(inputs)` and returns its output, whose shape is inferred now (bad shapes throw here).
    @discardableResult
    public func add(_ op: any Operator, _ inputs: [ValueID], name: String) throws -> ValueID {
        for v in inputs where v.index >= values.count {
            throw EngineError.invalidGraph("node '\(name)' uses a value that does not exist")
        }
        let shape: [Int]
        do {
            shape = try op.outputShape(inputs.map { values[$0.index].shape })
        } catch let error as EngineError {
            throw EngineError.invalidGraph("node '\(name)' (\(op.typeName)): \(error)")
        }
        let id = try newValue(name, shape: shape, producer: nodes.count)
        nodes.append(Node(name: name, op: op, inputs: inputs, output: id))
        return id
    }

    /// Renames a value (e.g. so a builder's module path names the block output).
    public func rename(_ id: ValueID, to name: String) throws {
        let old = values[id.index].name
        if old == name { return }
        guard byName[name] == nil else { throw EngineError.invalidGraph("two values are named '\(name)'") }
        byName[old] = nil
        byName[name] = id
        values[id.index].name = name
        if let p = values[id.index].producer { nodes[p].name = name }
    }

    public func value(named name: String) -> ValueID? { byName[name] }
    public func shape(of id: ValueID) -> [Int] { values[id.index].shape }
    public func name(of id: ValueID) -> String { values[id.index].name }
    public var valueNames: [String] { values.map(\.name) }

    /// The value called `name`, or an error listing the closest names.
    public func requireValue(named name: String) throws -> ValueID {
        if let id = byName[name] { return id }
        let suggestions = closestNames(to: name, among: values.filter { $0.producer != nil }.map(\.name), limit: 5)
        throw EngineError.unknownValue("no layer named '\(name)' in this model"
            + (suggestions.isEmpty ? "" : "; closest: \(suggestions.joined(separator: ", "))")
            + " (run `amgpu layers MODEL` to list them)")
    }
}

/// The `limit` names closest to `query` by edit distance (case-insensitive), best first.
public func closestNames(to query: String, among names: [String], limit: Int) -> [String] {
    let q = Array(query.lowercased())
    func distance(_ s: String) -> Int {
        let t = Array(s.lowercased())
        if t.isEmpty { return q.count }
        var previous = Array(0...t.count)
        for (i, a) in q.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: t.count)
            for (j, b) in t.enumerated() {
                let deletion: Int = previous[j + 1] + 1
                let insertion: Int = current[j] + 1
                let substitution: Int = previous[j] + (a == b ? 0 : 1)
                current[j + 1] = Swift.min(deletion, insertion, substitution)
            }
            previous = current
        }
        return previous[t.count]
    }
    let scored: [(name: String, score: Int)] = names.map { (name: $0, score: distance($0)) }
    let sorted = scored.sorted { (x, y) -> Bool in
        x.score != y.score ? x.score < y.score : x.name < y.name
    }
    return sorted.prefix(limit).map { $0.name }
}
