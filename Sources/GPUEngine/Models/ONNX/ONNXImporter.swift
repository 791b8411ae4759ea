import Foundation
import SwiftProtobuf

/// Loads ONNX models (exports of PyTorch, TensorFlow, Keras) into the engine's graph.
///
/// With the input size fixed at load time, every subgraph that depends only on constants and
/// shapes is evaluated on the host (`ONNXFolding`), written-out patterns are recognised and run
/// on fused operators (`ONNXPatterns`), and the remaining nodes map to engine operators.
/// Value names are the ONNX output names; module paths recovered from torch-export node names
/// (`/backbone/encoder/layer.6/mlp/fc1/MatMul` → `backbone.encoder.layer.6.mlp.fc1`) become aliases.
public enum ONNXImporter {
    /// Loads `path`. `batch` and `imageSize` fix symbolic input dimensions.
    /// `fusePatterns` false keeps written-out patterns unfused (tests compare both).
    /// `card` holds the model-card values that take precedence over the file's metadata_props
    /// (flags first); their input size fixes symbolic dimensions like `imageSize`.
    public static func load(path: String, batch: Int = 1, imageSize: Int? = nil, name: String? = nil,
                            fusePatterns: Bool = true, card: [ModelCardValues] = []) throws -> Model {
        let url = URL(fileURLWithPath: path)
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else {
            throw EngineError.io("cannot read model '\(path)': no such file; check the path")
        }
        let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
        guard size > 0 else { throw EngineError.invalidInput("model file '\(path)' is empty: re-export or re-download it") }
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw EngineError.io("cannot read model '\(path)': \(error.localizedDescription)")
        }
        return try load(data: data, path: path, batch: batch, imageSize: imageSize, name: name, fusePatterns: fusePatterns, card: card)
    }

    /// Imports the ONNX bytes `data`; `path` names the model in messages and locates external data
    /// (`load(path:)` maps the file and calls this; the fuzz target calls it directly).
    public static func load(data: Data, path: String, batch: Int = 1, imageSize: Int? = nil, name: String? = nil,
                            fusePatterns: Bool = true, card: [ModelCardValues] = []) throws -> Model {
        let url = URL(fileURLWithPath: path)
        let proto: Onnx_ModelProto
        do {
            var options = BinaryDecodingOptions()
            options.messageDepthLimit = 100
            proto = try Onnx_ModelProto(serializedBytes: data, options: options)
        } catch {
            throw EngineError.invalidInput("'\(path)' is not a valid ONNX model (protobuf decoding failed: \(error)); check that the file is complete and is an .onnx export")
        }
        guard proto.hasGraph, !proto.graph.node.isEmpty else {
            throw EngineError.invalidInput("'\(path)' holds no ONNX graph (or an empty one): re-export the model")
        }
        var layers = card
        let metadata = try ModelCardValues.onnxMetadata(proto.metadataProps.map { ($0.key, $0.value) })
        if !metadata.isEmpty { layers.append(metadata) }
        let importer = try Importer(proto: proto.graph, modelDirectory: url.deletingLastPathComponent(),
                                    batch: batch, imageSize: imageSize)
        importer.fusePatterns = fusePatterns
        importer.cardLayers = layers
        let model: Model
        do {
            model = try importer.run(name: name ?? url.deletingPathExtension().lastPathComponent, source: path)
        } catch let error as EngineError {
            // Every import error says what is wrong; add the one fix that applies to all of them.
            throw error.appendingHint(hasFix(error) ? nil : "re-export the model (static input shape, opset 13 or newer), or open an issue with this message")
        }
        model.filePath = path
        let classes = model.hasClassifier ? model.graph.shape(of: model.output).last : nil
        model.card = try model.card.resolved(with: layers, classes: classes)
        return model
    }
}

/// One import run.
final class Importer {
    let graphProto: Onnx_GraphProto
    let modelDirectory: URL
    let batch: Int
    let imageSize: Int?
    let graph = Graph()
    var fusePatterns = true
    /// Model-card values, highest precedence first (flags, config.json, metadata_props): their
    /// input size and layout are used here; `ModelCard.resolved` applies the rest.
    var cardLayers: [ModelCardValues] = []
    /// The model's own input layout and channels, and the NCHW value its Transpose prologue cancels to.
    var layout: InputLayout = .nchw
    var channels = 3
    var nchwInput: ValueID?
    var inputHeight = 224, inputWidth = 224
    var inputSizeSource = "the model's input shape"
    var layoutSource = "the model's input shape"
    var layoutNotes: [String] = []
    /// Constant values by ONNX name (folded or initializers).
    var constants: [String: ConstTensor] = [:]
    /// Runtime values by ONNX name.
    var values: [String: ValueID] = [:]
    /// Engine constants already added, by ONNX name.
    var constantIDs: [String: ValueID] = [:]
    var inputID: ValueID?

    init(proto: Onnx_GraphProto, modelDirectory: URL, batch: Int, imageSize: Int?) throws {
        graphProto = proto
        self.modelDirectory = modelDirectory
        self.batch = batch
        self.imageSize = imageSize
    }

    func run(name: String, source: String) throws -> Model {
        // 1. Refuse unsupported ops before any work, listing all of them.
        var unsupported: [String: String] = [:]
        for node in graphProto.node {
            let domainOK = node.domain.isEmpty || node.domain == "ai.onnx"
            if !domainOK || !(ONNXFolding.foldable.contains(node.opType) || ONNXOpMapping.supported.contains(node.opType)) {
                let key = domainOK ? node.opType : "\(node.domain).\(node.opType)"
                if unsupported[key] == nil { unsupported[key] = node.name.isEmpty ? (node.output.first ?? "?") : node.name }
            }
        }
        // Ops that amgpu only evaluates at load time (on constants) are refused here too when they take a
        // value that depends on the image: the graph's non-initializer inputs, propagated through every node
        // except Shape and Size (whose outputs are the static shape). This under-approximates what stays
        // at run time (a Shape of a symbolic size may still not fold), so it never refuses a model that loads.
        let initializerNames = Set(graphProto.initializer.map(\.name))
        var dependsOnImage = Set(graphProto.input.map(\.name).filter { !initializerNames.contains($0) })
        for node in graphProto.node where !["Shape", "Size"].contains(node.opType) {
            guard node.input.contains(where: { dependsOnImage.contains($0) }) else { continue }
            for o in node.output where !o.isEmpty { dependsOnImage.insert(o) }
            if ONNXOpMapping.loadTimeOnly.contains(node.opType) {
                let key = "\(node.opType) of a value that depends on the image"
                if unsupported[key] == nil { unsupported[key] = node.name.isEmpty ? (node.output.first ?? "?") : node.name }
            }
        }
        if !unsupported.isEmpty {
            let list = unsupported.keys.sorted().map { "\($0) (first at node '\(unsupported[$0]!)')" }.joined(separator: ", ")
            throw EngineError.unsupported("this ONNX model uses operators amgpu does not support: \(list). Re-export the model without them, or open an issue with the list")
        }
        // 2. Initializers.
        for t in graphProto.initializer {
            constants[t.name] = try ConstTensor(proto: t, modelDirectory: modelDirectory)
        }
        // 3. The one image input.
        let runtimeInputs = graphProto.input.filter { constants[$0.name] == nil }
        guard runtimeInputs.count == 1, let inputProto = runtimeInputs.first else {
            throw EngineError.unsupported("amgpu needs a model with exactly one image input; this one has \(runtimeInputs.count): \(runtimeInputs.map(\.name).joined(separator: ", "))")
        }
        let dims = inputProto.type.tensorType.shape.dim
        guard !dims.isEmpty else {
            throw EngineError.unsupported("input '\(inputProto.name)' has no shape (rank 0); amgpu needs an image input [batch, 3, H, W]: re-export the model with a static or named input shape")
        }
        let input: ValueID
        if dims.count == 4 {
            let adapted = try addImageInput(inputProto, dims: dims.map { $0.dimValue > 0 ? Int($0.dimValue) : nil })
            values[inputProto.name] = adapted.value
            input = adapted.input
        } else {
            // Not an image (test graphs on token tensors): static sizes, the batch replaced.
            guard dims.dropFirst().allSatisfy({ $0.dimValue > 0 }) else {
                throw EngineError.unsupported("input '\(inputProto.name)' has rank \(dims.count) and symbolic sizes; amgpu needs an image input [batch, 3, H, W] or [batch, H, W, 3]")
            }
            let shape = [batch] + dims.dropFirst().map { Int($0.dimValue) }
            input = try graph.addInput(inputProto.name, shape: shape)
            values[inputProto.name] = input
        }
        inputID = input

        // 4. Fold every node that depends on constants only (so patterns see constants defined
        //    after the node they start at), then run the nodes in order.
        var folded = Set<Int>()
        // An NHWC input's Transpose(perm [0,3,1,2]) (tf2onnx's prologue) cancels the one amgpu adds.
        if layout == .nhwc {
            for (index, node) in graphProto.node.enumerated() where node.opType == "Transpose" && node.input.first == inputProto.name
                && ONNXAttributes(node).ints("perm") == [0, 3, 1, 2] && node.output.count == 1 {
                if let nchwInput { values[node.output[0]] = nchwInput }
                folded.insert(index)
            }
        }
        for (index, node) in graphProto.node.enumerated() where ONNXFolding.foldable.contains(node.opType)
            && node.opType != "Shape" && node.opType != "Size"
            && node.input.allSatisfy({ $0.isEmpty || constants[$0] != nil }) {
            let inputConsts: [ConstTensor?] = node.input.map { $0.isEmpty ? nil : constants[$0] }
            if let outs = try ONNXFolding.evaluate(node, inputConsts, shapeOf: node.input.map { constants[$0]?.shape },
                                                   modelDirectory: modelDirectory) {
                for (name, value) in zip(node.output, outs) { constants[name] = value }
                folded.insert(index)
            }
        }
        // 4. Nodes.
        var patterns = ONNXPatterns(nodes: graphProto.node, constants: { [unowned self] in self.constants[$0] },
                                    outputs: Set(graphProto.output.map(\.name)))
        patterns.fuse = fusePatterns
        let nodes = graphProto.node
        var skip = folded
        for (index, node) in nodes.enumerated() where !skip.contains(index) {
            // Fold constant subgraphs.
            let inputConsts: [ConstTensor?] = node.input.map { $0.isEmpty ? nil : constants[$0] }
            let allConstant = node.input.allSatisfy { $0.isEmpty || constants[$0] != nil }
            let shapeOnly = node.opType == "Shape" || node.opType == "Size"
            if ONNXFolding.foldable.contains(node.opType) && (allConstant || shapeOnly) {
                let shapes: [[Int]?] = node.input.map { name in
                    if let c = constants[name] { return c.shape }
                    if let v = values[name] { return graph.shape(of: v) }
                    return nil
                }
                if let outs = try ONNXFolding.evaluate(node, inputConsts, shapeOf: shapes, modelDirectory: modelDirectory) {
                    for (name, value) in zip(node.output, outs) { constants[name] = value }
                    continue
                }
            }
            // Recognised patterns become one fused node.
            if let fused = try patterns.match(at: index, importer: self) {
                skip.formUnion(fused.consumed)
                continue
            }
            try ONNXOpMapping.add(node, importer: self)
        }
        // 5. Output.
        guard let outName = graphProto.output.first?.name, let graphOutput = values[outName] else {
            throw EngineError.invalidGraph("the model's output does not depend on its input (nothing to visualize or attack)")
        }
        let (output, finalActivation) = try logitsBeforeSoftmax(graphOutput)
        // 6. Aliases from torch-export scopes: the last value computed inside each module scope.
        var aliases: [String: ValueID] = [:]
        var modulePaths: [String: String] = [:]
        // Without any scope (torch 2.13's dynamo export of timm's ViT at opsets 17/18 carries no node
        // metadata at all), module paths come from the parameter names the nodes read.
        let hasScopes = nodes.contains { $0.name.hasPrefix("/") || Self.dynamoNameScopes($0) != nil }
        let parameterPaths = hasScopes ? nil : Self.parameterScopes(nodes: nodes, initializers: initializerNames, runtime: dependsOnImage)
        var scopeNotes: [String] = []
        if let parameterPaths {
            let found = parameterPaths.contains { !$0.isEmpty }
            // Dynamo exports name their nodes `node_<op>_<n>` (TorchScript ones `/scope/Op_n`).
            let dynamo = nodes.contains { $0.name.hasPrefix("node_") }
            if found || dynamo {
                scopeNotes.append("the export names no module scopes (no '/' node names, no pkg.torch.onnx.name_scopes metadata"
                    + (dynamo ? "; torch's dynamo exporter drops them when it converts to an opset below 18: export with opset_version=18 or newer to keep them" : "")
                    + "): " + (found
                        ? "layer names come from the parameter names the nodes read (`blocks.3.mlp.fc1.bias` → blocks.3.mlp.fc1; a numbered block such as blocks.3 ends at the last node before the next module's parameters; a parameter read by several nodes names nothing)"
                        : "no parameter names a module either (a parameter read by several nodes names nothing), so only the logits are recommended"))
            }
        }
        for (index, node) in nodes.enumerated() {
            guard let out = node.output.first, let id = values[out] else { continue }
            if let parameterPaths {
                for path in parameterPaths[index] {
                    aliases[path] = id   // later nodes overwrite: the module's last value
                    modulePaths[path] = path
                }
            } else if node.name.hasPrefix("/") {
                var parts = node.name.split(separator: "/").map(String.init)
                parts.removeLast()  // the op name
                while !parts.isEmpty {
                    let alias = parts.joined(separator: ".")
                    aliases[alias] = id   // later nodes overwrite: the scope's last value
                    if modulePaths[alias] == nil { modulePaths[alias] = Self.modulePath(scopes: parts) }
                    parts.removeLast()
                }
            } else if let scopes = Self.dynamoNameScopes(node) {
                // Dynamo exports name nodes `node_MatMul_12`; their module paths are in the metadata.
                for path in scopes {
                    aliases[path] = id
                    if modulePaths[path] == nil { modulePaths[path] = path }
                }
            }
        }
        // A ViT has softmaxes inside (attention); a CNN may end in one.
        let innerSoftmaxes = nodes.filter { $0.opType == "Softmax" }.count - (finalActivation == .softmax ? 1 : 0)
        let family: ModelFamily = innerSoftmaxes > 0 && nodes.contains { $0.opType == "MatMul" } ? .vit : .cnn
        let outShape = graph.shape(of: output)
        var classNames = (outShape.count == 2 && outShape[1] == 1000) ? ImageNetClasses.load() : nil
        var notes: [String] = []
        if outShape.count == 2, outShape[1] == 1001, let imagenet = ImageNetClasses.load() {
            classNames = ["background"] + imagenet
            notes.append("1001 outputs: index 0 is taken as the background class and 1…1000 as the ImageNet classes (the TF-slim/TFLite convention); give --labels FILE if the model differs")
        }
        var recommended = Set<String>()
        for (alias, id) in aliases where Self.isRecommendedTarget(modulePath: modulePaths[alias] ?? alias) {
            // A channels-last map [B, H, W, C] inside the graph (ConvNeXt's Linear mlp.fc1, Swin's stages)
            // would be read as C = H channels: not recommended (H = W ≠ last axis marks it).
            let shape = graph.shape(of: id)
            if shape.count == 4, shape[1] == shape[2], shape[2] != shape[3] { continue }
            recommended.insert(alias)
        }
        recommended.insert(graph.name(of: output))
        let model = Model(name: name, graph: graph, input: input, output: output, family: family,
                          preprocessing: .imagenet(inputHeight), classNames: classNames,
                          aliases: aliases, recommended: recommended, source: source)
        model.preprocessing.width = inputWidth
        model.card.layout = layout
        model.card.channels = channels
        model.card.notes = notes + layoutNotes + scopeNotes
        model.card.sources["input_size"] = inputSizeSource
        model.card.sources["layout"] = layoutSource
        model.card.sources["labels"] = classNames == nil ? "default: none (the output is not 1000 or 1001 classes)" : "default (ImageNet class names)"
        model.card.sources["mean"] = "default (ImageNet)"
        model.card.sources["std"] = "default (ImageNet)"
        if let finalActivation {
            model.card.outputActivation = finalActivation
            model.card.graphOutputName = outName
            model.card.sources["output"] = "the graph ends in \(finalActivation.rawValue): classify and logit objectives use its input (pre-softmax logits)"
        } else {
            model.card.sources["output"] = "the graph's output"
        }
        return model
    }

    // MARK: recommended AM targets

    /// The module paths of a node exported by PyTorch's dynamo exporter, from its metadata
    /// `pkg.torch.onnx.name_scopes`, a Python list literal of the enclosing modules' full paths and then
    /// the FX node: `['', 'blocks', 'blocks.1', 'blocks.1.fc2', 'linear_3']` → ["blocks", "blocks.1",
    /// "blocks.1.fc2"] (the root '' and the FX node name dropped). Nil without that metadata.
    static func dynamoNameScopes(_ node: Onnx_NodeProto) -> [String]? {
        guard let text = node.metadataProps.first(where: { $0.key == "pkg.torch.onnx.name_scopes" })?.value else { return nil }
        // The quoted items of the literal (module paths hold no quotes).
        let items = text.split(separator: "'", omittingEmptySubsequences: false).enumerated()
            .filter { $0.offset % 2 == 1 }.map { String($0.element) }
        guard items.count >= 2 else { return nil }
        return items.dropLast().filter { !$0.isEmpty }
    }

    /// Module paths recovered from parameter names, for an export without scope names or name_scopes
    /// metadata: one list of paths per node (empty: none). A parameter is an initializer whose name is a
    /// dotted PyTorch path (`blocks.3.mlp.fc1.bias`, `stages.1.blocks.0.conv_dw.weight`; not `val_12`,
    /// `onnx::MatMul_7` or `pos_embed`) read by exactly one node; its module is the name without the last
    /// part (`blocks.3.mlp.fc1`).
    /// A node reading parameters belongs to their module M (the common prefix when they differ) and names
    /// M and M's numbered prefixes (`blocks.3`; `stages.1`, `stages.1.blocks.0`). A node reading none names
    /// only the numbered prefixes of the last module read before it in graph order, so a numbered block or
    /// stage is the last node before the next module's parameters (ViT's second residual Add for
    /// `blocks.3`). Modules without parameters of their own (`blocks.3.mlp`, `blocks.3.attn`) get no name:
    /// which node ends them is not recoverable from the parameters. Only nodes with an output in `runtime`
    /// (the values that depend on the image) name anything or move the current module.
    static func parameterScopes(nodes: [Onnx_NodeProto], initializers: Set<String>, runtime: Set<String>) -> [[String]] {
        // Constants computed from a parameter (a folded Transpose of `blocks.3.mlp.fc1.weight`) keep its module.
        var derived: [String: [Substring]] = [:]
        // A parameter read by several nodes says nothing about where a module is: torch's exporter merges
        // equal initializers (random-init biases are all zeros, LayerNorm weights all ones), so
        // `blocks.0.norm1.bias` may stand for every zero bias of the model.
        var readers: [String: Int] = [:]
        for node in nodes { for name in Set(node.input) where initializers.contains(name) { readers[name, default: 0] += 1 } }
        func module(_ name: String) -> [Substring]? {
            if let m = derived[name] { return m }
            guard readers[name] == 1,
                  name.range(of: #"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*\.[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) != nil
            else { return nil }
            return Array(name.split(separator: ".").dropLast())
        }
        func numberedPrefixes(_ parts: [Substring]) -> [String] {
            parts.indices.filter { k in k > 0 && parts[k].allSatisfy(\.isNumber) }
                .map { parts[...$0].joined(separator: ".") }
        }
        var current: [Substring] = []
        return nodes.map { (node: Onnx_NodeProto) -> [String] in
            let modules = node.input.compactMap(module)
            var m = modules.first ?? []
            for other in modules.dropFirst() {
                m = Array(zip(m, other).prefix { $0.0 == $0.1 }.map(\.0))
            }
            guard node.output.contains(where: runtime.contains) else {
                // Load-time only (folded): passes its module on to its outputs, names nothing.
                if !m.isEmpty { for o in node.output where !o.isEmpty { derived[o] = m } }
                return []
            }
            guard !modules.isEmpty else { return numberedPrefixes(current) }
            current = m
            guard !m.isEmpty else { return [] }
            let path = m.joined(separator: ".")
            return numberedPrefixes(m).filter { $0 != path } + [path]
        }
    }

    /// The PyTorch module path of a TorchScript-export scope list: the exporter writes each scope as
    /// the child's attribute path inside its parent (`/stages/stages.0/blocks/blocks.1/mlp/fc1/Conv`),
    /// so a scope that the next one repeats as its prefix is dropped: ["stages", "stages.0", "blocks",
    /// "blocks.1", "mlp", "fc1"] → "stages.0.blocks.1.mlp.fc1" (timm's name; the alias itself stays
    /// the scopes joined by ".", `stages.stages.0.blocks.blocks.1.mlp.fc1`).
    static func modulePath(scopes: [String]) -> String {
        var kept: [String] = []
        for (k, part) in scopes.enumerated() where !(k + 1 < scopes.count && scopes[k + 1].hasPrefix(part + ".")) {
            kept.append(part)
        }
        return kept.joined(separator: ".")
    }

    /// Containers whose numbered children are blocks or stages, as timm / torchvision / Hugging Face
    /// name them: `blocks.3` (ViT, DeiT, BEiT, CaiT, XCiT, EVA, MLP-Mixer), `blocks.3.1` (EfficientNet,
    /// MobileNetV3, GhostNet, LCNet), `stages.2` and `stages.2.blocks.1` (ConvNeXt, PoolFormer, EdgeNeXt,
    /// FastViT, RepViT, TinyViT, MobileViT, LeViT, PVTv2, EfficientFormer, MobileOne), `layers.1.blocks.0`
    /// (Swin), `layer3.1` (ResNet), `transformers.1.blocks.0` (PiT), `serial_blocks2.0` (CoaT),
    /// `cls_attn_blocks.0` (XCiT), `blocks_token_only.0` (CaiT), `encoder.layer.5` (Hugging Face).
    static let blockContainers = #"(blocks|layers?|stages|layer\d+|features|transformers|serial_blocks\d*|parallel_blocks|cls_attn_blocks|blocks_token_only|network|levels)"#

    /// Whether a value with this module path is a recommended AM target: a block or stage output
    /// (a numbered child of a block container, or RegNet's `s2` / `s2.b1`, DenseNet's `denseblock2` /
    /// `denseblock2.denselayer3`, ResNet's `layer3`), or an MLP's hidden layer (`…fc1`, Hugging Face's
    /// `intermediate.dense`: the expanded, per-neuron features).
    static func isRecommendedTarget(modulePath m: String) -> Bool {
        let last = m.split(separator: ".").last.map(String.init) ?? m
        if last == "fc1" || m.hasSuffix("intermediate.dense") { return true }
        let patterns = [#"(^|\.)"# + blockContainers + #"(\.\d+)+$"#,
                        #"(^|\.)s\d+(\.b\d+)?$"#,
                        #"(^|\.)denseblock\d+(\.denselayer\d+)?$"#,
                        #"^layer\d+$"#]
        return patterns.contains { m.range(of: $0, options: .regularExpression) != nil }
    }

    // MARK: helpers for op mapping

    /// The engine value for an ONNX input name: a runtime value or a constant (added on first use).
    func value(_ name: String, node: Onnx_NodeProto) throws -> ValueID {
        if let v = values[name] { return v }
        if let id = constantIDs[name] { return id }
        guard let c = constants[name] else {
            throw EngineError.invalidGraph("node '\(node.name)' (\(node.opType)) reads '\(name)', which no node or initializer defines before it (ONNX graphs must be in topological order, without cycles)")
        }
        let id = try graph.addConstant(uniqueConstantName(name), c.host)
        constantIDs[name] = id
        return id
    }

    func uniqueConstantName(_ name: String) -> String {
        var candidate = name.isEmpty ? "const" : name
        var n = 1
        while graph.value(named: candidate) != nil { candidate = "\(name)#\(n)"; n += 1 }
        return candidate
    }

    /// The engine value of input `i` of `node` (a missing or empty input is an error).
    func input(_ node: Onnx_NodeProto, _ i: Int) throws -> ValueID {
        guard i < node.input.count, !node.input[i].isEmpty else {
            throw EngineError.invalidGraph("node '\(node.name)' (\(node.opType)) lacks input \(i)")
        }
        return try value(node.input[i], node: node)
    }

    func constant(_ name: String) -> ConstTensor? { name.isEmpty ? nil : constants[name] }

    func isRuntime(_ name: String) -> Bool { values[name] != nil }

    /// Adds an engine op producing ONNX value `output`.
    @discardableResult
    func emit(_ op: any Operator, _ inputs: [ValueID], output: String, node: Onnx_NodeProto) throws -> ValueID {
        let id = try graph.add(op, inputs, name: output.isEmpty ? uniqueConstantName(node.name) : output)
        values[output] = id
        return id
    }

    /// Adds an intermediate engine op (a helper value inside one ONNX node's lowering).
    func emitInternal(_ op: any Operator, _ inputs: [ValueID], name: String) throws -> ValueID {
        try graph.add(op, inputs, name: uniqueConstantName(name))
    }

    func addConstant(_ host: HostTensor, name: String) throws -> ValueID {
        try graph.addConstant(uniqueConstantName(name), host)
    }
}

/// Hex SHA-256 of `data` (FIPS 180-4), for recording which model file produced a result.
func sha256Hex(_ data: Data) -> String {
    var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
    let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]
    var message = [UInt8](data)
    let bitLength = UInt64(message.count) * 8
    message.append(0x80)
    while message.count % 64 != 56 { message.append(0) }
    for i in (0..<8).reversed() { message.append(UInt8((bitLength >> (UInt64(i) * 8)) & 0xff)) }
    var w = [UInt32](repeating: 0, count: 64)
    func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
    for chunk in stride(from: 0, to: message.count, by: 64) {
        for i in 0..<16 {
            let b = chunk + i * 4
            w[i] = UInt32(message[b]) << 24 | UInt32(message[b + 1]) << 16 | UInt32(message[b + 2]) << 8 | UInt32(message[b + 3])
        }
        for i in 16..<64 {
            let s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
            let s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
            w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
        }
        var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7]
        for i in 0..<64 {
            let s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
            let ch = (e & f) ^ (~e & g)
            let t1 = hh &+ s1 &+ ch &+ k[i] &+ w[i]
            let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
            let maj = (a & b) ^ (a & c) ^ (b & c)
            let t2 = s0 &+ maj
            hh = g; g = f; f = e; e = d &+ t1; d = c; c = b; b = a; a = t1 &+ t2
        }
        h[0] = h[0] &+ a; h[1] = h[1] &+ b; h[2] = h[2] &+ c; h[3] = h[3] &+ d
        h[4] = h[4] &+ e; h[5] = h[5] &+ f; h[6] = h[6] &+ g; h[7] = h[7] &+ hh
    }
    return h.map { String(format: "%08x", $0) }.joined()
}

/// Whether an import error already says how to fix it (then no generic hint is added).
private func hasFix(_ error: EngineError) -> Bool {
    let text = error.description
    return ["re-export", "re-download", "--size", "--arch", "check the path", "keep it next to", "beside the model", "Re-export"].contains { text.contains($0) }
}
