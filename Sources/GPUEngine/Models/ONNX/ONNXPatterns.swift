/// Recognises the written-out patterns exporters produce and lowers each to one fused operator:
///
/// - layer norm: ReduceMean → Sub → Pow(2) → ReduceMean → Add(ε) → Sqrt → Div (→ Mul γ → Add β) ⇒ `LayerNorm`
/// - GELU: x / √2 (or x · 1/√2) → Erf → Add 1 → Mul x → Mul 0.5 ⇒ `Unary(.geluErf)`
/// - attention: MatMul(Q, Kᵀ) → Div/Mul scale → Softmax(last) → MatMul(·, V) ⇒ `Attention`
///   (the Softmax output stays addressable: an `AttentionProbabilities` node under its name runs
///   only when an objective reads it)
/// - MatMul(x, W) → Add(b) ⇒ `MatMul` with bias
///
/// A pattern only matches when its intermediate values are used nowhere else.
struct ONNXPatterns {
    let nodes: [Onnx_NodeProto]
    let constants: (String) -> ConstTensor?
    let graphOutputs: Set<String>
    var consumers: [String: [Int]] = [:]
    var producers: [String: Int] = [:]
    /// False: only lower convolutions (no folding or fusion), so tests can compare fused and unfused graphs.
    var fuse = true

    struct Match { var consumed: Set<Int> }

    init(nodes: [Onnx_NodeProto], constants: @escaping (String) -> ConstTensor?, outputs: Set<String>) {
        self.nodes = nodes
        self.constants = constants
        graphOutputs = outputs
        for (i, n) in nodes.enumerated() {
            for name in n.input where !name.isEmpty { consumers[name, default: []].append(i) }
            for name in n.output { producers[name] = i }
        }
    }

    /// The single node consuming `value` when it has exactly one consumer of type `type`.
    func onlyConsumer(_ value: String, _ types: Set<String>) -> Int? {
        guard !graphOutputs.contains(value), let c = consumers[value], c.count == 1, types.contains(nodes[c[0]].opType) else { return nil }
        return c[0]
    }

    func scalar(_ name: String) -> Double? { constants(name)?.scalar }

    /// The input of binary node `n` that is not `value`.
    func other(_ n: Onnx_NodeProto, _ value: String) -> String? {
        guard n.input.count == 2 else { return nil }
        if n.input[0] == value { return n.input[1] }
        if n.input[1] == value { return n.input[0] }
        return nil
    }

    func match(at index: Int, importer im: Importer) throws -> Match? {
        let node = nodes[index]
        if !fuse { return node.opType == "Conv" ? try convolution(index, im) : nil }
        switch node.opType {
        case "ReduceMean": return try layerNorm(index, im)
        case "Div", "Mul": return try gelu(index, im)
        case "MatMul": return try attention(index, im) ?? matmulBias(index, im)
        case "Conv": return try convolution(index, im)
        default: return nil
        }
    }

    private func reduceAxes(_ n: Onnx_NodeProto) -> [Int]? {
        if let a = ONNXAttributes(n).ints("axes") { return a }
        if n.input.count > 1 { return constants(n.input[1])?.ints }
        return nil
    }

    func layerNorm(_ i: Int, _ im: Importer) throws -> Match? {
        let mean1 = nodes[i]
        guard let x = mean1.input.first, im.isRuntime(x), let mOut = mean1.output.first else { return nil }
        let rank = im.graph.shape(of: im.values[x]!).count
        guard let axes = reduceAxes(mean1), axes.count == 1, axes[0] == -1 || axes[0] == rank - 1 else { return nil }
        guard let subI = onlyConsumer(mOut, ["Sub"]), nodes[subI].input == [x, mOut], let d = nodes[subI].output.first,
              let dUses = consumers[d], dUses.count == 2, !graphOutputs.contains(d) else { return nil }
        let powI = dUses.first { nodes[$0].opType == "Pow" }, divI = dUses.first { nodes[$0].opType == "Div" }
        guard let powI, let divI, nodes[powI].input.count == 2, nodes[divI].input.count == 2,
              nodes[powI].input[0] == d, scalar(nodes[powI].input[1]) == 2,
              nodes[divI].input[0] == d, let p = nodes[powI].output.first,
              let mean2I = onlyConsumer(p, ["ReduceMean"]), reduceAxes(nodes[mean2I]) == axes,
              let v = nodes[mean2I].output.first, let addI = onlyConsumer(v, ["Add"]),
              let epsName = other(nodes[addI], v), let eps = scalar(epsName),
              let ve = nodes[addI].output.first, let sqrtI = onlyConsumer(ve, ["Sqrt"]),
              let s = nodes[sqrtI].output.first, onlyConsumer(s, ["Div"]) == divI, nodes[divI].input[1] == s,
              let normalized = nodes[divI].output.first else { return nil }
        var consumed: Set<Int> = [i, subI, powI, mean2I, addI, sqrtI, divI]
        var output = normalized
        var inputs = [try im.value(x, node: mean1)]
        let c = im.graph.shape(of: inputs[0]).last ?? 0
        if let mulI = onlyConsumer(normalized, ["Mul"]), let gammaName = other(nodes[mulI], normalized),
           let gamma = constants(gammaName), gamma.count == c, let scaled = nodes[mulI].output.first {
            consumed.insert(mulI)
            output = scaled
            inputs.append(try im.addConstant(HostTensor(shape: [c], values: gamma.values.map { Float($0) }), name: gammaName))
            if let addBI = onlyConsumer(scaled, ["Add"]), let betaName = other(nodes[addBI], scaled),
               let beta = constants(betaName), beta.count == c, let shifted = nodes[addBI].output.first {
                consumed.insert(addBI)
                output = shifted
                inputs.append(try im.addConstant(HostTensor(shape: [c], values: beta.values.map { Float($0) }), name: betaName))
            }
        }
        try im.emit(LayerNorm(epsilon: Float(eps)), inputs, output: output, node: nodes[consumed.max() ?? i])
        return Match(consumed: consumed)
    }

    func gelu(_ i: Int, _ im: Importer) throws -> Match? {
        let first = nodes[i]
        guard first.input.count == 2, let x = first.input.first, im.isRuntime(x), let c = scalar(first.input[1]),
              let a = first.output.first else { return nil }
        let isDiv = first.opType == "Div"
        guard isDiv ? abs(c - 2.0.squareRoot()) < 1e-3 : abs(c - 0.5.squareRoot()) < 1e-3 else { return nil }
        guard let erfI = onlyConsumer(a, ["Erf"]), let e = nodes[erfI].output.first,
              let addI = onlyConsumer(e, ["Add"]), let one = other(nodes[addI], e), scalar(one) == 1,
              let f = nodes[addI].output.first, let mul1I = onlyConsumer(f, ["Mul"]), other(nodes[mul1I], f) == x,
              let g = nodes[mul1I].output.first, let mul2I = onlyConsumer(g, ["Mul"]),
              let half = other(nodes[mul2I], g), scalar(half) == 0.5, let y = nodes[mul2I].output.first else { return nil }
        try im.emit(Unary(.geluErf), [im.value(x, node: first)], output: y, node: nodes[mul2I])
        return Match(consumed: [i, erfI, addI, mul1I, mul2I])
    }

    /// Matches both exporter forms: MatMul(Q, Kᵀ) → Div/Mul(scale) → Softmax → MatMul(·, V), and
    /// torch's scaled_dot_product_attention form MatMul(Q·√s, Kᵀ·√s) → Softmax → MatMul(·, V).
    func attention(_ i: Int, _ im: Importer) throws -> Match? {
        let qk = nodes[i]
        guard qk.input.count == 2, im.isRuntime(qk.input[0]), im.isRuntime(qk.input[1]), let s = qk.output.first else { return nil }
        var qName = qk.input[0], kTName = qk.input[1]
        var scale: Float = 1
        var consumed: Set<Int> = [i]
        var softmaxInput = s
        if let scaleI = onlyConsumer(s, ["Div", "Mul"]), nodes[scaleI].input.count == 2, nodes[scaleI].input[0] == s,
           let c = scalar(nodes[scaleI].input[1]),
           let s2 = nodes[scaleI].output.first {
            scale = Float(nodes[scaleI].opType == "Div" ? 1 / c : c)
            consumed.insert(scaleI)
            softmaxInput = s2
        } else {
            // Pre-scaled operands: Q·a and Kᵀ·b, each used only here.
            for (k, name) in qk.input.enumerated() {
                guard let p = producers[name], nodes[p].opType == "Mul", nodes[p].input.count == 2, consumers[name]?.count == 1,
                      let c = scalar(nodes[p].input[1]), im.isRuntime(nodes[p].input[0]) else { continue }
                scale *= Float(c)
                if k == 0 { qName = nodes[p].input[0] } else { kTName = nodes[p].input[0] }
            }
        }
        guard let softI = onlyConsumer(softmaxInput, ["Softmax"]), let p = nodes[softI].output.first,
              let pvI = consumers[p]?.first(where: { nodes[$0].opType == "MatMul" && nodes[$0].input.first == p }),
              consumers[p]?.count == 1, nodes[pvI].input.count == 2, im.isRuntime(nodes[pvI].input[1]),
              let out = nodes[pvI].output.first else { return nil }
        let q = try im.value(qName, node: qk)
        let kT = try im.value(kTName, node: qk)
        let v = try im.value(nodes[pvI].input[1], node: nodes[pvI])
        let qs = im.graph.shape(of: q), ks = im.graph.shape(of: kT), vs = im.graph.shape(of: v)
        guard qs.count == 4, ks.count == 4, vs.count == 4, qs[3] == ks[2], ks[3] == vs[2], qs[0...1] == vs[0...1], ks[0...1] == qs[0...1] else { return nil }
        let softAxis = ONNXAttributes(nodes[softI]).int("axis", -1)
        guard softAxis == -1 || softAxis == 3 else { return nil }
        consumed.formUnion([softI, pvI])
        // K as [B, H, T, D]: undo the transpose that made Kᵀ.
        let k = try im.emitInternal(Transpose(perm: [0, 1, 3, 2]), [kT], name: out + "/key")
        try im.emit(Attention(scale: scale), [q, k, v], output: out, node: nodes[pvI])
        // Keep the attention map addressable by its ONNX name (computed only when an objective asks).
        let probabilities = try im.graph.add(AttentionProbabilities(scale: scale), [q, k], name: p)
        im.values[p] = probabilities
        return Match(consumed: consumed)
    }

    func matmulBias(_ i: Int, _ im: Importer) throws -> Match? {
        let mm = nodes[i]
        guard mm.input.count == 2, im.isRuntime(mm.input[0]), let w = constants(mm.input[1]), w.shape.count == 2,
              let out = mm.output.first, let addI = onlyConsumer(out, ["Add"]), let biasName = other(nodes[addI], out),
              let bias = constants(biasName), bias.count == w.shape[1], bias.shape.last == w.shape[1],
              let y = nodes[addI].output.first else { return nil }
        let x = try im.value(mm.input[0], node: mm)
        guard im.graph.shape(of: x).count >= 2 else { return nil }
        let wID = try im.value(mm.input[1], node: mm)
        let bID = try im.addConstant(HostTensor(shape: [w.shape[1]], values: bias.values.map { Float($0) }), name: biasName)
        let product = try im.emitInternal(MatMul(), [x, wID, bID], name: y + "/matmul")
        let shape = try ONNXOpMapping.onnxMatMulShape(im.graph.shape(of: x), w.shape)
        let full = try broadcastShapes(shape, bias.shape)
        try im.emit(Reshape(shape: full), [product], output: y, node: nodes[addI])
        return Match(consumed: [i, addI])
    }
}
