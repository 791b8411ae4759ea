import Foundation

/// What an AM run maximizes. Each term reads one model value (a layer) and yields one score per
/// image of the batch; the objective is Σ_terms weight · score (per image), maximized by gradient
/// ascent. Units may differ per image (one unit per image of the batch).
public struct ObjectiveTerm: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// act[b, unit] of a [B, K] value (class logits, pooled features).
        case logit
        /// softmax(act[b, :])[unit] of a [B, K] value.
        case probability
        /// CNN [B, C, H, W]: mean over H×W of channel `unit`. ViT tokens [B, T, D]: mean over the
        /// patch tokens (CLS excluded, `prefixTokens` of them) of dimension `unit` (Ghiasi et al.).
        case channel
        /// One position: CNN act[b, unit, y, x] (default centre); ViT act[b, token, unit] (default: CLS token 0).
        case neuron
        /// ViT: dimension `unit` of the CLS token (token 0).
        case cls
        /// DeepDream: mean of squares of the whole layer.
        case deepdream
        /// Attention heads [B, H, T, X] (attention output per head or probabilities): mean over T×X of head `unit`.
        case head
        /// Direction in channel space (lucid's direction with cosine-similarity power): with a the
        /// spatial mean (CNN) or CLS token (ViT; the patch-token mean with `patchTokens`) of the layer and v
        /// the direction, score = (a·v̂) · max(cos(a, v), 0.1)^cossimPower. `direction` holds one vector for
        /// every image, or one per batch slot ([B, width] row-major: image b reads row b).
        case direction
        /// Caricature (lucid's recipe, spatially): with v the photo's activation at the layer (`reference`),
        /// a_p and v_p the channel vectors at position p (CNN: the H×W positions of [C, H, W], channel axis 1;
        /// ViT: every token of [T, D], CLS included, channel axis 2), P the number of positions,
        /// score = (1/P) Σ_p (a_p·v̂_p) · max(cos(a_p, v_p), 0.1)^cossimPower with v̂_p = v_p / (‖v_p‖ + 1e-8) —
        /// the `direction` score at each position, averaged. Positions where the photo is zero add 0.
        case caricature
        /// Feature inversion of the whole layer (Mahendran & Vedaldi): with v = `reference`,
        /// score = −‖a − v‖² / ‖v‖² (sums over every element of the layer without the batch axis).
        /// Negated so that, like every objective, it is maximized: 0 is a perfect inversion, −1 is as far as a = 0.
        case invert
    }

    public var kind: Kind
    public var layer: String
    /// The unit per image (one entry, or one per image of the batch).
    public var units: [Int]
    public var weight: Float = 1
    /// neuron position (x, y); nil = centre (CNN) / CLS token (ViT).
    public var position: [Int]? = nil
    /// direction vector (length = channels, or batch × channels: one row per image), for `.direction`.
    public var direction: [Float]? = nil
    /// `.direction` on a ViT token layer: read the mean of the patch tokens (after `prefixTokens`) instead of
    /// the CLS token (activation atlases sample patch tokens). nil = false.
    public var patchTokens: Bool? = nil
    public var cossimPower: Float = 1
    /// Tokens before the patch tokens (1 for a CLS token; more with register tokens).
    public var prefixTokens: Int = 1
    /// `.caricature` / `.invert`: the photo's activation at the layer, the layer's shape without the batch
    /// axis, flattened. Not written to JSON (it can hold 10⁵ numbers); `referencePhoto` names its source.
    public var reference: [Float]? = nil
    /// The photo `reference` was computed from (recorded in the sidecar).
    public var referencePhoto: String? = nil

    enum CodingKeys: String, CodingKey {
        case kind, layer, units, weight, position, direction, cossimPower, prefixTokens, referencePhoto
    }

    public init(kind: Kind, layer: String, units: [Int], weight: Float = 1) {
        self.kind = kind
        self.layer = layer
        self.units = units
        self.weight = weight
    }
}

extension ObjectiveTerm {
    /// Parses `KIND:LAYER:UNIT[:WEIGHT]` (e.g. `channel:blocks.3:7:-0.5`), the CLI's `--add-term`: one more
    /// term, the same unit for every image of the batch, weight 1 unless given (negative to minimize).
    /// `direction` needs a vector and is not accepted here.
    public static func parse(_ spec: String) throws -> ObjectiveTerm {
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let usage = "write a term as KIND:LAYER:UNIT[:WEIGHT], e.g. channel:blocks.3:7:-0.5"
        guard parts.count == 3 || parts.count == 4 else {
            throw EngineError.invalidInput("cannot read the objective term '\(spec)': \(usage)")
        }
        guard let kind = Kind(rawValue: parts[0]), kind != .direction, kind != .caricature, kind != .invert else {
            throw EngineError.invalidInput("unknown objective kind '\(parts[0])' in '\(spec)': use logit, probability, channel, neuron, cls, deepdream or head (\(usage))")
        }
        guard !parts[1].isEmpty else { throw EngineError.invalidInput("the term '\(spec)' names no layer: \(usage)") }
        guard let unit = Int(parts[2]), unit >= 0 else {
            throw EngineError.invalidInput("the unit '\(parts[2])' in '\(spec)' is not a non-negative integer: \(usage)")
        }
        var weight: Float = 1
        if parts.count == 4 {
            guard let w = Float(parts[3]), w.isFinite else {
                throw EngineError.invalidInput("the weight '\(parts[3])' in '\(spec)' is not a finite number: \(usage)")
            }
            weight = w
        }
        return ObjectiveTerm(kind: kind, layer: parts[1], units: [unit], weight: weight)
    }
}

/// Lucid's diversity term across the batch: −(mean pairwise cosine similarity of the images'
/// Gram matrices at `layer`) · weight. Pushes the images of a batch apart.
public struct DiversityTerm: Codable, Sendable, Equatable {
    public var layer: String
    public var weight: Float
    public init(layer: String, weight: Float) { self.layer = layer; self.weight = weight }
}

/// A complete objective.
public struct Objective: Codable, Sendable, Equatable {
    public var terms: [ObjectiveTerm]
    public var diversity: DiversityTerm?
    public init(terms: [ObjectiveTerm], diversity: DiversityTerm? = nil) {
        self.terms = terms
        self.diversity = diversity
    }
}

/// The objective as a graph: inputs are the model values the terms read, the output is the
/// score per image [B]. Backward through it gives the seeds for the model's backward.
public struct ObjectiveGraph {
    public let graph: Graph
    /// Model value → objective graph input.
    public let inputs: [(model: ValueID, objective: ValueID)]
    /// Score per image, [B].
    public let score: ValueID

    /// Terms computed alongside the score but not part of it (`observing`), each [B], unweighted.
    public let observed: [ValueID]

    /// With a warm term: the graph input gate [B] (see `init`).
    public let gate: ValueID?

    /// Builds the objective for `model` with batch size `batch`; `observing` are terms evaluated next to the
    /// score (e.g. the real unit while a warm start optimizes its pre-activation) that add nothing to it.
    /// With `warmTerm` the first term's score s₀ becomes s₀ + gate ⊙ (w − s₀) with w the warm term's score
    /// (same weight) and gate [B] a graph input fed per evaluation: slot b scores w where gate_b = 1, s₀ where 0.
    public init(_ objective: Objective, model: Model, observing: [ObjectiveTerm] = [], warmTerm: ObjectiveTerm? = nil) throws {
        let g = Graph()
        let batch = model.batchSize
        var inputMap: [ValueID: ValueID] = [:]
        var ordered: [(ValueID, ValueID)] = []
        func input(_ layer: String) throws -> (ValueID, [Int]) {
            let v = try model.resolve(layer: layer)
            if let existing = inputMap[v] { return (existing, g.shape(of: existing)) }
            let shape = model.graph.shape(of: v)
            guard shape.first == batch else {
                throw EngineError.invalidInput("layer '\(layer)' has shape \(shape); AM needs a value with the batch (\(batch)) first")
            }
            let id = try g.addInput("act\(ordered.count):\(layer)", shape: shape)
            inputMap[v] = id
            ordered.append((v, id))
            return (id, shape)
        }
        var total: ValueID? = nil
        var gateID: ValueID? = nil
        for (t, term) in objective.terms.enumerated() {
            let (x, shape) = try input(term.layer)
            var score = try Self.term(term, x: x, shape: shape, batch: batch, graph: g, name: "term\(t)", family: model.family)
            if t == 0, let warmTerm {
                let (wx, wshape) = try input(warmTerm.layer)
                let warm = try Self.term(warmTerm, x: wx, shape: wshape, batch: batch, graph: g, name: "warm", family: model.family)
                let gate = try g.addInput("warm-gate", shape: [batch])
                let diff = try g.add(Binary(.sub), [warm, score], name: "warm.diff")
                let gated = try g.add(Binary(.mul), [gate, diff], name: "warm.gated")
                score = try g.add(Binary(.add), [score, gated], name: "term0.gated")
                gateID = gate
            }
            let weighted = term.weight == 1 ? score : try g.add(Unary.scale(term.weight), [score], name: "term\(t).weighted")
            total = try total.map { try g.add(Binary(.add), [$0, weighted], name: "sum\(t)") } ?? weighted
        }
        if let d = objective.diversity, batch > 1 {
            let (x, shape) = try input(d.layer)
            let div = try Self.diversity(x: x, shape: shape, batch: batch, graph: g)
            let weighted = try g.add(Unary.scale(-d.weight), [div], name: "diversity.weighted")
            total = try total.map { try g.add(Binary(.add), [$0, weighted], name: "with-diversity") } ?? weighted
        }
        guard let total else { throw EngineError.invalidInput("the objective has no terms") }
        var observedIDs: [ValueID] = []
        for (t, term) in observing.enumerated() {
            let (x, shape) = try input(term.layer)
            observedIDs.append(try Self.term(term, x: x, shape: shape, batch: batch, graph: g, name: "observed\(t)", family: model.family))
        }
        observed = observedIDs
        gate = gateID
        graph = g
        inputs = ordered.map { (model: $0.0, objective: $0.1) }
        score = total
    }

    /// A [B, K] one-hot mask selecting unit u_b in row b.
    static func mask(_ units: [Int], batch: Int, width: Int, what: String) throws -> HostTensor {
        guard units.count == 1 || units.count == batch else {
            throw EngineError.invalidInput("\(units.count) units for a batch of \(batch): give one unit, or one per image")
        }
        var values = [Float](repeating: 0, count: batch * width)
        for b in 0..<batch {
            let u = units.count == 1 ? units[0] : units[b]
            guard u >= 0, u < width else {
                throw EngineError.invalidInput("unit \(u) is out of range for \(what), which has \(width) units (0…\(width - 1))")
            }
            values[b * width + u] = 1
        }
        return HostTensor(shape: [batch, width], values: values)
    }

    /// Σ_k x[b, k] · mask[b, k] → [B].
    static func select(_ x: ValueID, _ mask: HostTensor, graph g: Graph, name: String) throws -> ValueID {
        let m = try g.addConstant(name + ".mask", mask)
        let picked = try g.add(Binary(.mul), [x, m], name: name + ".picked")
        return try g.add(Reduce(.sum, axes: [1]), [picked], name: name)
    }

    static func term(_ t: ObjectiveTerm, x: ValueID, shape: [Int], batch: Int, graph g: Graph, name: String,
                     family: ModelFamily) throws -> ValueID {
        let layerDesc = "layer '\(t.layer)' \(shape)"
        switch t.kind {
        case .logit, .probability:
            var v = x
            if shape.count != 2 { v = try g.add(Reshape(shape: [batch, -1]), [x], name: name + ".flat") }
            let width = g.shape(of: v)[1]
            if t.kind == .probability { v = try g.add(Softmax(axis: 1), [v], name: name + ".softmax") }
            return try select(v, mask(t.units, batch: batch, width: width, what: layerDesc), graph: g, name: name)
        case .channel:
            let pooled: ValueID
            if shape.count == 4 {
                pooled = try g.add(Reduce(.mean, axes: [2, 3]), [x], name: name + ".spatial-mean")
            } else if shape.count == 3 {
                let patches = try g.add(Slice(starts: [t.prefixTokens], ends: [shape[1]], axes: [1]), [x], name: name + ".patch-tokens")
                pooled = try g.add(Reduce(.mean, axes: [1]), [patches], name: name + ".token-mean")
            } else if shape.count == 2 {
                pooled = x
            } else {
                throw EngineError.invalidInput("a channel objective needs a [B,C,H,W] or [B,T,D] layer; \(layerDesc)")
            }
            return try select(pooled, mask(t.units, batch: batch, width: g.shape(of: pooled)[1], what: layerDesc), graph: g, name: name)
        case .neuron:
            let at: ValueID
            if shape.count == 4 {
                let px = t.position?.first ?? shape[3] / 2, py = t.position.map { $0.count > 1 ? $0[1] : $0[0] } ?? shape[2] / 2
                guard px >= 0, px < shape[3], py >= 0, py < shape[2] else {
                    throw EngineError.invalidInput("position (\(px), \(py)) is outside \(layerDesc)")
                }
                let s = try g.add(Slice(starts: [py, px], ends: [py + 1, px + 1], axes: [2, 3]), [x], name: name + ".at")
                at = try g.add(Reshape(shape: [batch, shape[1]]), [s], name: name + ".flat")
            } else if shape.count == 3 {
                let token = t.position?.first ?? 0
                guard token >= 0, token < shape[1] else { throw EngineError.invalidInput("token \(token) is outside \(layerDesc)") }
                let s = try g.add(Slice(starts: [token], ends: [token + 1], axes: [1]), [x], name: name + ".token")
                at = try g.add(Reshape(shape: [batch, shape[2]]), [s], name: name + ".flat")
            } else {
                throw EngineError.invalidInput("a neuron objective needs a [B,C,H,W] or [B,T,D] layer; \(layerDesc)")
            }
            return try select(at, mask(t.units, batch: batch, width: g.shape(of: at)[1], what: layerDesc), graph: g, name: name)
        case .cls:
            guard shape.count == 3 else { throw EngineError.invalidInput("a CLS objective needs a token layer [B,T,D]; \(layerDesc)") }
            let s = try g.add(Slice(starts: [0], ends: [1], axes: [1]), [x], name: name + ".cls")
            let flat = try g.add(Reshape(shape: [batch, shape[2]]), [s], name: name + ".flat")
            return try select(flat, mask(t.units, batch: batch, width: shape[2], what: layerDesc), graph: g, name: name)
        case .deepdream:
            let sq = try g.add(Unary(.square), [x], name: name + ".square")
            let flat = try g.add(Reshape(shape: [batch, -1]), [sq], name: name + ".flat")
            return try g.add(Reduce(.mean, axes: [1]), [flat], name: name)
        case .head:
            guard shape.count == 4 else { throw EngineError.invalidInput("a head objective needs [B, heads, T, X]; \(layerDesc)") }
            let m = try g.add(Reduce(.mean, axes: [2, 3]), [x], name: name + ".head-mean")
            return try select(m, mask(t.units, batch: batch, width: shape[1], what: layerDesc), graph: g, name: name)
        case .direction:
            guard let dir = t.direction else { throw EngineError.invalidInput("a direction objective needs a direction vector") }
            let a: ValueID
            if shape.count == 4 {
                a = try g.add(Reduce(.mean, axes: [2, 3]), [x], name: name + ".spatial-mean")
            } else if shape.count == 3 && t.patchTokens == true {
                guard shape[1] > t.prefixTokens else { throw EngineError.invalidInput("\(layerDesc) has no patch tokens after \(t.prefixTokens) prefix token(s)") }
                let patches = try g.add(Slice(starts: [t.prefixTokens], ends: [shape[1]], axes: [1]), [x], name: name + ".patch-tokens")
                a = try g.add(Reduce(.mean, axes: [1]), [patches], name: name + ".token-mean")
            } else if shape.count == 3 {
                let s = try g.add(Slice(starts: [0], ends: [1], axes: [1]), [x], name: name + ".cls")
                a = try g.add(Reshape(shape: [batch, shape[2]]), [s], name: name + ".flat")
            } else {
                a = x
            }
            let width = g.shape(of: a)[1]
            guard dir.count == width || (batch > 1 && dir.count == batch * width) else {
                throw EngineError.invalidInput("the direction has \(dir.count) entries but \(layerDesc) has \(width) channels (give \(width), or \(batch) × \(width) for one direction per image)")
            }
            let rows = dir.count / width
            var normalized = [Float](repeating: 0, count: dir.count)
            for r in 0..<rows {
                let row = dir[(r * width)..<((r + 1) * width)]
                let norm = row.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
                guard norm > 0, norm.isFinite else { throw EngineError.invalidInput("the direction vector\(rows > 1 ? " of image \(r)" : "") is zero or not finite") }
                for (j, v) in row.enumerated() { normalized[r * width + j] = Float(Double(v) / norm) }
            }
            let dotFlat: ValueID
            if rows == 1 {
                let unit = try g.addConstant(name + ".direction", HostTensor(shape: [width, 1], values: normalized))
                let dot = try g.add(MatMul(), [a, unit], name: name + ".dot2d")
                dotFlat = try g.add(Reshape(shape: [batch]), [dot], name: name + ".dot")
            } else {
                // One direction per image: Σ_k a[b, k] · v̂[b, k].
                let units = try g.addConstant(name + ".directions", HostTensor(shape: [batch, width], values: normalized))
                let product = try g.add(Binary(.mul), [a, units], name: name + ".a-times-v")
                dotFlat = try g.add(Reduce(.sum, axes: [1]), [product], name: name + ".dot")
            }
            if t.cossimPower == 0 { return dotFlat }
            let sq = try g.add(Unary(.square), [a], name: name + ".a2")
            let n2 = try g.add(Reduce(.sum, axes: [1]), [sq], name: name + ".norm2")
            let eps = try g.add(Unary(.affine, alpha: 1, beta: 1e-8), [n2], name: name + ".norm2eps")
            let an = try g.add(Unary(.sqrt), [eps], name: name + ".norm")
            let cos = try g.add(Binary(.div), [dotFlat, an], name: name + ".cos")
            let floor = try g.addConstant(name + ".floor", HostTensor(shape: [1], values: [0.1]))
            let clipped = try g.add(Binary(.max), [cos, floor], name: name + ".cos-clipped")
            let exponent = try g.addConstant(name + ".power", HostTensor(shape: [1], values: [t.cossimPower]))
            let powered = t.cossimPower == 1 ? clipped : try g.add(Binary(.pow), [clipped, exponent], name: name + ".cos-pow")
            return try g.add(Binary(.mul), [dotFlat, powered], name: name)
        case .caricature:
            return try caricature(t, x: x, shape: shape, batch: batch, graph: g, name: name)
        case .invert:
            let v = try reference(t, shape: shape, layerDesc: layerDesc)
            let n2 = v.map { Double($0) * Double($0) }.reduce(0, +)
            guard n2 > 0 else { throw EngineError.invalidInput("the photo's activation at \(layerDesc) is all zero: nothing to invert; pick another layer") }
            let target = try g.addConstant(name + ".reference", HostTensor(shape: [1] + Array(shape.dropFirst()), values: v))
            let diff = try g.add(Binary(.sub), [x, target], name: name + ".diff")
            let sq = try g.add(Unary(.square), [diff], name: name + ".diff2")
            let flat = try g.add(Reshape(shape: [batch, -1]), [sq], name: name + ".flat")
            let sum = try g.add(Reduce(.sum, axes: [1]), [flat], name: name + ".sum")
            return try g.add(Unary.scale(Float(-1 / n2)), [sum], name: name)
        }
    }

    /// The reference of a caricature/inversion term, checked against the layer's shape.
    static func reference(_ t: ObjectiveTerm, shape: [Int], layerDesc: String) throws -> [Float] {
        guard let v = t.reference else {
            throw EngineError.invalidInput("a \(t.kind) objective needs a photo's activation at the layer (give the photo with \(SettingName.referencePhoto.mention))")
        }
        let count = shape.dropFirst().reduce(1, *)
        guard v.count == count else {
            throw EngineError.invalidInput("the photo's activation has \(v.count) values but \(layerDesc) has \(count) per image")
        }
        return v
    }

    /// `.caricature` (see `ObjectiveTerm.Kind.caricature`): per position p, (a_p·v̂_p)·max(cos(a_p, v_p), 0.1)^power,
    /// averaged over the positions → [B].
    static func caricature(_ t: ObjectiveTerm, x: ValueID, shape: [Int], batch: Int, graph g: Graph, name: String) throws -> ValueID {
        let layerDesc = "layer '\(t.layer)' \(shape)"
        guard shape.count == 3 || shape.count == 4 else {
            throw EngineError.invalidInput("a caricature needs a [B,C,H,W] or [B,T,D] layer; \(layerDesc) has no positions (use the direction objective for a vector)")
        }
        let v = try reference(t, shape: shape, layerDesc: layerDesc)
        // a: [B, C, P] (CNN) or [B, T, D] (ViT); the channel axis is 1 or 2.
        let channelAxis = shape.count == 4 ? 1 : 2
        let a = shape.count == 4 ? try g.add(Reshape(shape: [batch, shape[1], shape[2] * shape[3]]), [x], name: name + ".flat") : x
        let aShape = g.shape(of: a)
        let channels = aShape[channelAxis], positions = aShape[3 - channelAxis]
        // v̂_p = v_p / (‖v_p‖ + 1e-8), laid out like a without the batch.
        var unit = v
        for p in 0..<positions {
            let index: (Int) -> Int = channelAxis == 1 ? { c in c * positions + p } : { c in p * channels + c }
            var n2 = 0.0
            for c in 0..<channels { n2 += Double(v[index(c)]) * Double(v[index(c)]) }
            let inv = 1 / (n2.squareRoot() + 1e-8)
            for c in 0..<channels { unit[index(c)] = Float(Double(v[index(c)]) * inv) }
        }
        let vhat = try g.addConstant(name + ".reference-unit", HostTensor(shape: [1] + Array(aShape.dropFirst()), values: unit))
        let prod = try g.add(Binary(.mul), [a, vhat], name: name + ".av")
        let dot = try g.add(Reduce(.sum, axes: [channelAxis]), [prod], name: name + ".dot")            // [B, P]
        var perPosition = dot
        if t.cossimPower != 0 {
            let sq = try g.add(Unary(.square), [a], name: name + ".a2")
            let n2 = try g.add(Reduce(.sum, axes: [channelAxis]), [sq], name: name + ".norm2")         // [B, P]
            let eps = try g.add(Unary(.affine, alpha: 1, beta: 1e-8), [n2], name: name + ".norm2eps")
            let an = try g.add(Unary(.sqrt), [eps], name: name + ".norm")
            let cos = try g.add(Binary(.div), [dot, an], name: name + ".cos")
            let floor = try g.addConstant(name + ".floor", HostTensor(shape: [1], values: [0.1]))
            let clipped = try g.add(Binary(.max), [cos, floor], name: name + ".cos-clipped")
            let exponent = try g.addConstant(name + ".power", HostTensor(shape: [1], values: [t.cossimPower]))
            let powered = t.cossimPower == 1 ? clipped : try g.add(Binary(.pow), [clipped, exponent], name: name + ".cos-pow")
            perPosition = try g.add(Binary(.mul), [dot, powered], name: name + ".weighted")
        }
        return try g.add(Reduce(.mean, axes: [1]), [perPosition], name: name)
    }

    /// Mean over pairs b ≠ b' of cos(Gram_b, Gram_b'), as a [B] vector (each image's mean similarity to the others).
    static func diversity(x: ValueID, shape: [Int], batch: Int, graph g: Graph) throws -> ValueID {
        let channels = shape.count == 4 ? shape[1] : shape.last ?? 1
        // [B, C, P] with P positions (CNN) or tokens (ViT: [B, T, D] → [B, D, T]).
        let features: ValueID
        if shape.count == 4 {
            features = try g.add(Reshape(shape: [batch, channels, -1]), [x], name: "div.flat")
        } else if shape.count == 3 {
            features = try g.add(Transpose(perm: [0, 2, 1]), [x], name: "div.tokens")
        } else {
            throw EngineError.invalidInput("diversity needs a [B,C,H,W] or [B,T,D] layer")
        }
        let gram = try g.add(MatMul(transposeB: true), [features, features], name: "div.gram")
        let flat = try g.add(Reshape(shape: [batch, channels * channels]), [gram], name: "div.gram-flat")
        let sq = try g.add(Unary(.square), [flat], name: "div.sq")
        let n2 = try g.add(Reduce(.sum, axes: [1], keepDims: true), [sq], name: "div.n2")
        let n2e = try g.add(Unary(.affine, alpha: 1, beta: 1e-12), [n2], name: "div.n2e")
        let n = try g.add(Unary(.sqrt), [n2e], name: "div.norm")
        let unit = try g.add(Binary(.div), [flat, n], name: "div.unit")
        let sim = try g.add(MatMul(transposeB: true), [unit, unit], name: "div.sim")
        var offDiagonal = [Float](repeating: 1 / Float(max(batch - 1, 1)), count: batch * batch)
        for b in 0..<batch { offDiagonal[b * batch + b] = 0 }
        let m = try g.addConstant("div.offdiag", HostTensor(shape: [batch, batch], values: offDiagonal))
        let masked = try g.add(Binary(.mul), [sim, m], name: "div.masked")
        return try g.add(Reduce(.sum, axes: [1]), [masked], name: "diversity")
    }
}
