import Foundation
import Testing
@testable import GPUEngine

/// ONNX import against onnxruntime: small models covering every imported operator (written by
/// scripts/tools/onnx_test_models.py with the `onnx` package; reference outputs and directional
/// derivatives from onnxruntime), the real models fetched by scripts/fetch-models, fused vs unfused
/// graphs, and malformed files.
@Suite(.serialized) struct ONNXImportTests {
    static let python = ModelStore.path("venv/bin/python")

    /// Generates the test models once per test process (nil, with a note, when the venv is absent).
    static let casesFolder: String? = {
        guard FileManager.default.fileExists(atPath: python) else {
            print("amgpu-test: SKIPPED ONNX parity tests: no Python venv with onnx/onnxruntime at \(python) (run scripts/fetch-models)")
            return nil
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("amgpu-onnx-cases-\(getpid())").path
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/tools/onnx_test_models.py").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [script, dir]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return nil }
        p.waitUntilExit()
        return p.terminationStatus == 0 ? dir : nil
    }()

    static let caseNames = ["conv", "conv_bn_relu", "conv_same_depthwise", "conv_transpose", "maxpool", "avgpool",
                            "batchnorm_activations", "resize_pad", "shape_subgraph", "layernorm_gelu", "attention", "attention_sdpa",
                            "split_trig", "mod_reduce_l2", "instancenorm", "cumsum_folded", "gathernd_folded", "conv_constant_input",
                            "tile_rank5_rank6"]

    /// max|a − e| / max|e| — the relative error used throughout (a norm over the whole tensor).
    static func relativeError(_ a: HostTensor, _ e: HostTensor) -> Float {
        let scale = e.values.map(abs).max() ?? 1
        return zip(a.values, e.values).map { abs($0 - $1) }.max().map { $0 / max(scale, 1e-12) } ?? 0
    }

    @Test(arguments: TestBackend.allCases)
    func smallModelsMatchOnnxruntime(_ kind: TestBackend) throws {
        guard let dir = Self.casesFolder else { Issue.record("the ONNX test models could not be generated (scripts/fetch-models makes the venv)"); return }
        guard let backend = Backends.get(kind) else { return }
        for name in Self.caseNames {
            let path = (dir as NSString).appendingPathComponent(name)
            let x = try NPYFile.read(path + ".input.npy")
            let expected = try NPYFile.read(path + ".output.npy")
            for fuse in [true, false] {
                let model = try ONNXImporter.load(path: path + ".onnx", batch: x.shape[0], fusePatterns: fuse)
                let ex = Executor(graph: model.graph, backend: backend)
                let pass = try ex.forward(feeds: [model.input: backend.tensor(x)], targets: [model.output], differentiable: [model.input])
                let y = try backend.download(pass.value(model.output))
                #expect(y.count == expected.count, "\(name): \(y.shape) vs onnxruntime \(expected.shape)")
                let err = Self.relativeError(HostTensor(shape: expected.shape, values: y.values), expected)
                #expect(err < 1e-4, "\(name) (fused: \(fuse)) on \(backend.name): relative error \(err) vs onnxruntime")
                // Input gradient against onnxruntime's central difference along a random direction.
                let seed = try NPYFile.read(path + ".seed.npy"), direction = try NPYFile.read(path + ".direction.npy")
                let dd = Double(try NPYFile.read(path + ".dd.npy").values[0])
                let grads = try ex.backward(pass, seeds: [model.output: backend.tensor(HostTensor(shape: y.shape, values: seed.values))])
                let g = try backend.download(grads[model.input]!)
                let analytic = zip(g.values, direction.values).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                #expect(abs(analytic - dd) <= 5e-3 + 3e-3 * abs(dd), "\(name) (fused: \(fuse)) on \(backend.name): <grad, d> = \(analytic), onnxruntime finite difference \(dd)")
            }
        }
    }

    @Test func patternsAreFused() throws {
        guard let dir = Self.casesFolder else { Issue.record("the ONNX test models could not be generated (scripts/fetch-models makes the venv)"); return }
        func ops(_ name: String, fuse: Bool = true) throws -> [String] {
            try ONNXImporter.load(path: (dir as NSString).appendingPathComponent(name + ".onnx"), fusePatterns: fuse).graph.nodes.map(\.op.typeName)
        }
        #expect(try ops("layernorm_gelu").contains("LayerNorm"))
        #expect(try ops("layernorm_gelu").contains("Unary.geluErf"))
        #expect(try !ops("layernorm_gelu", fuse: false).contains("LayerNorm"))
        #expect(try ops("attention").contains("Attention"))
        #expect(try ops("attention_sdpa").contains("Attention"))
        #expect(try !ops("attention_sdpa").contains("Softmax"))
        #expect(try ops("conv_bn_relu") == ["Conv2D+relu"])
        #expect(try ops("conv_bn_relu", fuse: false).contains("BatchNorm"))
        // Shape arithmetic folds away: no Shape/Gather/Concat nodes remain, only the data path.
        #expect(try ops("shape_subgraph").allSatisfy { !$0.contains("Concat") })
    }

    @Test func realEfficientNetMatchesOnnxruntimeAndTheBuilder() throws {
        let onnxPath = ModelStore.path("models/efficientnet_lite0.onnx")
        guard FileManager.default.fileExists(atPath: onnxPath), let dir = Self.casesFolder else {
            Issue.record("the real EfficientNet-Lite0 is not fetched: run scripts/fetch-models"); return
        }
        let photo = try PNGFile.read(ModelStore.path("photos/chelsea.png"))
        let model = try ONNXImporter.load(path: onnxPath)
        let input = ImagePreprocessing.modelInput(photo, model.preprocessing)
        let inputPath = (dir as NSString).appendingPathComponent("effnet.input.npy")
        let outputPath = (dir as NSString).appendingPathComponent("effnet.output.npy")
        try NPYFile.write(input, to: inputPath)
        try runPython(["-c", "import numpy as np, onnxruntime as ort; s = ort.InferenceSession('\(onnxPath)', providers=['CPUExecutionProvider']); np.save('\(outputPath)', s.run(None, {s.get_inputs()[0].name: np.load('\(inputPath)')})[0])"])
        let expected = try NPYFile.read(outputPath)
        for kind in TestBackend.allCases {
            guard let backend = Backends.get(kind) else { continue }
            let logits = try ModelRunner(model: model, backend: backend).run(input, layers: [model.output])[model.output]!
            let err = Self.relativeError(HostTensor(shape: expected.shape, values: logits.values), expected)
            #expect(err < 1e-4, "EfficientNet-Lite0 ONNX on \(backend.name): relative error \(err) vs onnxruntime")
            #expect(logits.values.indices.max { logits.values[$0] < logits.values[$1] }.map { (281...285).contains($0) } == true)
        }
    }

    @Test func realDINOv2MatchesOnnxruntime() throws {
        let onnxPath = ModelStore.path("models/dinov2_vits14.onnx")
        guard FileManager.default.fileExists(atPath: onnxPath), let dir = Self.casesFolder else {
            Issue.record("DINOv2 is not fetched: run scripts/fetch-models"); return
        }
        guard let backend = Backends.evidence() else { return }
        let photo = try PNGFile.read(ModelStore.path("photos/coffee.png"))
        let model = try ONNXImporter.load(path: onnxPath)
        #expect(model.family == .vit)
        let input = ImagePreprocessing.modelInput(photo, model.preprocessing)
        let inputPath = (dir as NSString).appendingPathComponent("dino.input.npy")
        let outputPath = (dir as NSString).appendingPathComponent("dino.output.npy")
        try NPYFile.write(input, to: inputPath)
        try runPython(["-c", "import numpy as np, onnxruntime as ort; s = ort.InferenceSession('\(onnxPath)', providers=['CPUExecutionProvider']); np.save('\(outputPath)', s.run(None, {s.get_inputs()[0].name: np.load('\(inputPath)')})[0])"])
        let expected = try NPYFile.read(outputPath)
        let out = try ModelRunner(model: model, backend: backend).run(input, layers: [model.output])[model.output]!
        let err = Self.relativeError(HostTensor(shape: expected.shape, values: out.values), expected)
        #expect(err < 1e-4, "DINOv2 saliency output on \(backend.name): relative error \(err) vs onnxruntime")
    }

    func runPython(_ arguments: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.python)
        p.arguments = arguments
        let err = Pipe()
        p.standardError = err
        try p.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        if p.terminationStatus != 0 { Issue.record("python failed: \(message)") }
    }

    @Test func malformedFilesFailClearly() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("amgpu-bad-onnx-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let garbage = dir.appendingPathComponent("garbage.onnx")
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 2654435761) }).write(to: garbage)
        #expect(throws: EngineError.self) { try ONNXImporter.load(path: garbage.path) }
        let empty = dir.appendingPathComponent("empty.onnx")
        try Data().write(to: empty)
        #expect(throws: EngineError.self) { try ONNXImporter.load(path: empty.path) }
        #expect(throws: EngineError.self) { try ONNXImporter.load(path: dir.appendingPathComponent("missing.onnx").path) }
        if let casesDir = Self.casesFolder {
            let good = try Data(contentsOf: URL(fileURLWithPath: (casesDir as NSString).appendingPathComponent("conv.onnx")))
            let truncated = dir.appendingPathComponent("truncated.onnx")
            try good.prefix(good.count * 2 / 3).write(to: truncated)
            #expect(throws: EngineError.self) { try ONNXImporter.load(path: truncated.path) }
        }
    }

    /// `TensorCheck` (behind `amgpu run-tensor` and scripts/onnx-zoo): the output and the input gradient
    /// of r·f on a raw tensor match onnxruntime; a tensor of the wrong shape or with NaN is refused.
    @Test func tensorCheckMatchesOnnxruntime() throws {
        guard let dir = Self.casesFolder else { Issue.record("the ONNX test models could not be generated (scripts/fetch-models makes the venv)"); return }
        let path = (dir as NSString).appendingPathComponent("split_trig")
        let x = try NPYFile.read(path + ".input.npy"), expected = try NPYFile.read(path + ".output.npy")
        let seed = try NPYFile.read(path + ".seed.npy"), direction = try NPYFile.read(path + ".direction.npy")
        let dd = Double(try NPYFile.read(path + ".dd.npy").values[0])
        let model = try ONNXImporter.load(path: path + ".onnx", batch: x.shape[0])
        let result = try TensorCheck.run(model: model, input: x, seed: seed, backend: Backends.cpu)
        #expect(Self.relativeError(HostTensor(shape: expected.shape, values: result.output.values), expected) < 1e-4)
        let g = try #require(result.inputGradient)
        let analytic = zip(g.values, direction.values).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        #expect(abs(analytic - dd) <= 5e-3 + 3e-3 * abs(dd), "<grad, d> = \(analytic), onnxruntime \(dd)")
        #expect(try TensorCheck.run(model: model, input: x, seed: nil, backend: Backends.cpu).inputGradient == nil)
        #expect(throws: EngineError.self) {
            try TensorCheck.run(model: model, input: HostTensor(shape: [1, 3, 9, 11], values: Array(x.values[..<297])), seed: nil, backend: Backends.cpu)
        }
        var bad = x
        bad.values[5] = .nan
        #expect(throws: EngineError.self) { try TensorCheck.run(model: model, input: bad, seed: nil, backend: Backends.cpu) }
    }

    /// Writes `graph` as an ONNX model with image input `x` [1, 3, 8, 8] and output `z` to a temporary file
    /// `amgpu-NAME-PID.onnx`; returns its path.
    static func writeImageGraph(_ graph: Onnx_GraphProto, name: String) throws -> String {
        var graph = graph
        var input = Onnx_ValueInfoProto()
        input.name = "x"
        var tensorType = Onnx_TypeProto.Tensor()
        tensorType.elemType = 1
        var shape = Onnx_TensorShapeProto()
        shape.dim = [Int64(1), 3, 8, 8].map { var d = Onnx_TensorShapeProto.Dimension(); d.dimValue = $0; return d }
        tensorType.shape = shape
        input.type.tensorType = tensorType
        graph.input = [input]
        var out = Onnx_ValueInfoProto(); out.name = "z"
        graph.output = [out]
        var model = Onnx_ModelProto()
        model.graph = graph
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("amgpu-\(name)-\(getpid()).onnx").path
        try model.serializedData().write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func unsupportedOperatorsAreListedBeforeWork() throws {
        var node = Onnx_NodeProto()
        node.opType = "NonMaxSuppression"; node.name = "nms1"; node.input = ["x"]; node.output = ["y"]
        var node2 = Onnx_NodeProto()
        node2.opType = "TopK"; node2.name = "topk1"; node2.input = ["y"]; node2.output = ["z"]
        var graph = Onnx_GraphProto()
        graph.node = [node, node2]
        let path = try Self.writeImageGraph(graph, name: "unsupported")
        do {
            _ = try ONNXImporter.load(path: path)
            Issue.record("a model with unsupported operators loaded")
        } catch let error as EngineError {
            let text = error.description
            #expect(text.contains("NonMaxSuppression") && text.contains("nms1") && text.contains("TopK") && text.contains("topk1"))
        }
    }

    /// CumSum and GatherND are only folded on constants: on a value that depends on the image they are
    /// listed with the unsupported operators before any work (not a failure while mapping). The Tile staging
    /// keeps every intermediate at rank ≤ 8.
    @Test func loadTimeOnlyOperatorsOnTheImageAreListedBeforeWork() throws {
        func node(_ type: String, _ name: String, _ inputs: [String], _ output: String) -> Onnx_NodeProto {
            var n = Onnx_NodeProto(); n.opType = type; n.name = name; n.input = inputs; n.output = [output]; return n
        }
        func int64s(_ name: String, _ dims: [Int64], _ values: [Int64]) -> Onnx_TensorProto {
            var t = Onnx_TensorProto(); t.name = name; t.dims = dims; t.dataType = 7; t.int64Data = values; return t
        }
        var graph = Onnx_GraphProto()
        // Shape(x) → CumSum is shape arithmetic (folded, allowed); CumSum(x) and GatherND(CumSum(x)) are not.
        graph.node = [node("Shape", "shape1", ["x"], "s"), node("CumSum", "cs_shape", ["s", "ax"], "sc"),
                      node("Relu", "relu1", ["x"], "r"), node("CumSum", "cs_image", ["r", "ax"], "c"),
                      node("GatherND", "gnd_image", ["c", "idx"], "z")]
        graph.initializer = [int64s("ax", [], [1]), int64s("idx", [1, 2], [0, 1])]
        let path = try Self.writeImageGraph(graph, name: "loadtimeonly")
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect {
            _ = try ONNXImporter.load(path: path)
        } throws: { error in
            let text = "\(error)"
            return text.contains("operators amgpu does not support")
                && text.contains("CumSum of a value that depends on the image (first at node 'cs_image')")
                && text.contains("GatherND of a value that depends on the image (first at node 'gnd_image')")
                && !text.contains("cs_shape")
        }
        // Tile stages: ≤ maxRank − rank split axes per stage, size-1 axes in the first, all repeats applied once.
        for (shape, reps) in [([2, 3, 3, 3, 11], [2, 2, 2, 1, 2]), ([4, 6, 2, 3, 3, 22], [1, 2, 2, 1, 2, 2]),
                              ([1, 5, 1, 7, 2, 3, 4], [3, 2, 4, 2, 2, 1, 2]), ([2, 3], [1, 1])] {
            let stages = try ONNXOpMapping.tileStages(shape: shape, repeats: reps, node: "t")
            let product = stages.reduce(Array(repeating: 1, count: shape.count)) { acc, s in zip(acc, s).map { $0 * $1 } }
            #expect(product == reps, "\(shape) × \(reps): stages \(stages)")
            for s in stages { #expect(shape.count + shape.indices.filter { s[$0] > 1 && shape[$0] > 1 }.count <= maxRank) }
        }
        #expect(throws: EngineError.self) { try ONNXOpMapping.tileStages(shape: Array(repeating: 2, count: 8), repeats: [2, 1, 1, 1, 1, 1, 1, 1], node: "t") }
    }

    /// Dynamo exports (`torch.onnx.export(..., dynamo=True)`) name nodes `node_Relu_0`, with the module
    /// path in the node metadata `pkg.torch.onnx.name_scopes` (seen on torch 2.13 exports): those become
    /// aliases and recommended targets as the TorchScript scopes do.
    @Test func dynamoNameScopesGiveAliasesAndRecommendedTargets() throws {
        func node(_ type: String, _ name: String, _ input: String, _ output: String, _ scopes: String) -> Onnx_NodeProto {
            var n = Onnx_NodeProto(); n.opType = type; n.name = name; n.input = [input]; n.output = [output]
            var m = Onnx_StringStringEntryProto(); m.key = "pkg.torch.onnx.name_scopes"; m.value = scopes
            var other = Onnx_StringStringEntryProto(); other.key = "namespace"; other.value = ": __main__.M/x: y"
            n.metadataProps = [other, m]
            return n
        }
        var graph = Onnx_GraphProto()
        graph.node = [node("Relu", "node_Relu_0", "x", "a", "['', 'blocks', 'blocks.0', 'blocks.0.act', 'relu']"),
                      node("Sigmoid", "node_Sigmoid_1", "a", "b", "['', 'blocks', 'blocks.0', 'sigmoid']"),
                      node("Tanh", "node_Tanh_2", "b", "c", "['', 'blocks', 'blocks.1', 'blocks.1.mlp', 'blocks.1.mlp.fc1', 'tanh']"),
                      node("GlobalAveragePool", "node_mean", "c", "z", "['', 'head', 'mean']")]
        let path = try Self.writeImageGraph(graph, name: "dynamo-scopes")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let model = try ONNXImporter.load(path: path)
        let valueName: (String) -> String? = { alias in model.aliases[alias].map { model.graph.name(of: $0) } }
        #expect(valueName("blocks.0") == "b")   // the scope's last value
        #expect(valueName("blocks.0.act") == "a")
        #expect(valueName("blocks.1.mlp.fc1") == "c")
        #expect(model.aliases["relu"] == nil && model.aliases["tanh"] == nil)             // FX node names are not modules
        #expect(model.recommended.isSuperset(of: ["blocks.0", "blocks.1", "blocks.1.mlp.fc1"]), "\(model.recommended)")
        #expect(!model.recommended.contains("blocks.0.act") && !model.recommended.contains("head"))
        var bare = Onnx_NodeProto(); bare.name = "node_Add_3"
        #expect(Importer.dynamoNameScopes(bare) == nil)
    }

    /// An export with no module scopes at all (torch 2.13's dynamo export of timm's ViT at opsets 17/18:
    /// nodes `node_MatMul_11`, no metadata): module paths come from the parameter names the nodes read.
    /// A ViT-like graph: patch Conv → tokens → two pre-norm MLP blocks (block 0's fc1 a MatMul of an
    /// anonymous constant plus `blocks.0.mlp.fc1.bias`; block 1's fc1 a MatMul of a folded Transpose of
    /// `blocks.1.mlp.fc1.weight`, no bias) → final norm → mean → head. A block is its residual Add, an
    /// fc1 its last node; a parameter read by two nodes (torch merges equal initializers), a malformed
    /// name_scopes entry and anonymous or non-path initializer names (`val_3`, `onnx::MatMul_9`) still
    /// import and name nothing.
    @Test func parameterNamesGiveAliasesWithoutScopes() throws {
        func node(_ type: String, _ inputs: [String], _ output: String, _ attributes: [Onnx_AttributeProto] = []) -> Onnx_NodeProto {
            var n = Onnx_NodeProto(); n.opType = type; n.name = "node_\(type)_\(output)"; n.input = inputs; n.output = [output]
            n.attribute = attributes
            return n
        }
        func ints(_ name: String, _ values: [Int64]) -> Onnx_AttributeProto {
            var a = Onnx_AttributeProto(); a.name = name; a.type = .ints; a.ints = values; return a
        }
        func int(_ name: String, _ value: Int64) -> Onnx_AttributeProto {
            var a = Onnx_AttributeProto(); a.name = name; a.type = .int; a.i = value; return a
        }
        var rng = SeededRandom(seed: 18)
        func floats(_ name: String, _ dims: [Int64]) -> Onnx_TensorProto {
            var t = Onnx_TensorProto(); t.name = name; t.dims = dims; t.dataType = 1
            t.floatData = (0..<Int(dims.reduce(1, *))).map { _ in rng.uniform(-0.5, 0.5) }
            return t
        }
        func int64s(_ name: String, _ values: [Int64]) -> Onnx_TensorProto {
            var t = Onnx_TensorProto(); t.name = name; t.dims = [Int64(values.count)]; t.dataType = 7; t.int64Data = values; return t
        }
        var graph = Onnx_GraphProto()
        graph.initializer = [floats("patch_embed.proj.weight", [6, 3, 4, 4]), floats("patch_embed.proj.bias", [6]),
                             int64s("val_1", [1, 6, 4]), floats("pos_embed", [1, 4, 6])]
        var nodes = [node("Conv", ["x", "patch_embed.proj.weight", "patch_embed.proj.bias"], "conv", [ints("strides", [4, 4])]),
                     node("Reshape", ["conv", "val_1"], "view"), node("Transpose", ["view"], "tokens", [ints("perm", [0, 2, 1])]),
                     node("Add", ["tokens", "pos_embed"], "t0")]
        for b in 0..<2 {
            let p = "blocks.\(b)"
            graph.initializer += [floats("\(p).norm1.weight", [6]), floats("\(p).norm1.bias", [6])]
            // One fc2 bias for both blocks, as torch's exporter merges equal initializers: it names nothing.
            if b == 0 { graph.initializer.append(floats("blocks.0.mlp.fc2.bias", [6])) }
            nodes.append(node("LayerNormalization", ["t\(b)", "\(p).norm1.weight", "\(p).norm1.bias"], "ln\(b)", [int("axis", -1)]))
            if b == 0 {
                graph.initializer += [floats("val_3", [6, 10]), floats("\(p).mlp.fc1.bias", [10])]
                nodes += [node("MatMul", ["ln0", "val_3"], "mm0"), node("Add", ["mm0", "\(p).mlp.fc1.bias"], "fc1_0")]
            } else {
                graph.initializer.append(floats("\(p).mlp.fc1.weight", [10, 6]))
                nodes += [node("Transpose", ["\(p).mlp.fc1.weight"], "val_7", [ints("perm", [1, 0])]),
                          node("MatMul", ["ln1", "val_7"], "fc1_1")]
            }
            graph.initializer.append(floats(b == 0 ? "onnx::MatMul_9" : "val_11", [10, 6]))
            nodes += [node("Relu", ["fc1_\(b)"], "act\(b)"), node("MatMul", ["act\(b)", b == 0 ? "onnx::MatMul_9" : "val_11"], "mm2_\(b)"),
                      node("Add", ["mm2_\(b)", "blocks.0.mlp.fc2.bias"], "fc2_\(b)"), node("Add", ["t\(b)", "fc2_\(b)"], "t\(b + 1)")]
        }
        graph.initializer += [floats("norm.weight", [6]), floats("norm.bias", [6]), floats("head.weight", [6, 5])]
        nodes += [node("LayerNormalization", ["t2", "norm.weight", "norm.bias"], "normed", [int("axis", -1)]),
                  node("ReduceMean", ["normed"], "pooled", [ints("axes", [1]), int("keepdims", 0)]),
                  node("MatMul", ["pooled", "head.weight"], "z")]
        // A name_scopes entry that is not a list literal: no scopes (the fallback still applies).
        var bad = Onnx_StringStringEntryProto(); bad.key = "pkg.torch.onnx.name_scopes"; bad.value = "garbage"
        nodes[1].metadataProps = [bad]
        graph.node = nodes
        let path = try Self.writeImageGraph(graph, name: "param-scopes")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let model = try ONNXImporter.load(path: path)
        let valueName: (String) -> String? = { alias in model.aliases[alias].map { model.graph.name(of: $0) } }
        #expect(valueName("blocks.0") == "t1" && valueName("blocks.1") == "t2", "a block is its residual Add")
        #expect(valueName("blocks.0.mlp.fc1") == "fc1_0", "fc1 with a bias: the bias Add")
        #expect(valueName("blocks.1.mlp.fc1") == "fc1_1", "fc1 through a folded Transpose of its weight")
        #expect(model.aliases["blocks.0.mlp.fc2"] == nil, "a parameter read by two nodes names no module")
        #expect(valueName("blocks.1.norm1") == "ln1")
        #expect(valueName("patch_embed.proj") == "conv" && valueName("norm") == "normed" && valueName("head") == "z")
        #expect(model.aliases["blocks.0.mlp"] == nil && model.aliases["blocks"] == nil, "modules without parameters of their own get no name")
        #expect(model.aliases["pos_embed"] == nil && model.aliases["val_3"] == nil && model.aliases["onnx::MatMul_9"] == nil)
        #expect(model.recommended == ["blocks.0", "blocks.1", "blocks.0.mlp.fc1", "blocks.1.mlp.fc1", "z"], "\(model.recommended)")
        #expect(model.card.notes.contains { $0.contains("parameter names") }, "\(model.card.notes)")
        // With a scope on any node, the parameter names are not used.
        var scoped = graph
        var scope = Onnx_StringStringEntryProto(); scope.key = "pkg.torch.onnx.name_scopes"; scope.value = "['', 'stem', 'conv2d']"
        scoped.node[0].metadataProps = [scope]
        let scopedPath = try Self.writeImageGraph(scoped, name: "param-scopes-scoped")
        defer { try? FileManager.default.removeItem(atPath: scopedPath) }
        let scopedModel = try ONNXImporter.load(path: scopedPath)
        #expect(scopedModel.aliases.keys.sorted() == ["stem"] && !scopedModel.card.notes.contains { $0.contains("parameter names") })
        // The fallback on its own: only runtime nodes name anything; a folded node passes its module on.
        let scopes = Importer.parameterScopes(nodes: nodes, initializers: Set(graph.initializer.map(\.name)),
                                              runtime: Set(nodes.map { $0.output[0] }).subtracting(["val_7"]))
        #expect(scopes[nodes.firstIndex { $0.output == ["val_7"] }!] == [])
        #expect(scopes[nodes.firstIndex { $0.output == ["fc1_1"] }!] == ["blocks.1", "blocks.1.mlp.fc1"])
        #expect(scopes[nodes.firstIndex { $0.output == ["act1"] }!] == ["blocks.1"])
        #expect(scopes[nodes.firstIndex { $0.output == ["pooled"] }!] == [])
    }

    /// GatherND folding on crafted int64 indices: 2^63 − 1 (2^63 as a Double, which Int(_:) traps
    /// on) and NaN are refused with a message, an in-range index still folds.
    @Test func gatherNDFoldingRefusesHugeIndices() throws {
        var node = Onnx_NodeProto()
        node.opType = "GatherND"; node.name = "gnd"; node.input = ["d", "i"]; node.output = ["y"]
        let data = ConstTensor(shape: [3, 2], values: [1, 2, 3, 4, 5, 6], isInteger: false)
        let good = try ONNXFolding.evaluate(node, [data, ConstTensor(shape: [1, 1], values: [-1], isInteger: true)],
                                            shapeOf: [nil, nil], modelDirectory: nil)
        #expect(good?.first?.values == [5, 6] && good?.first?.shape == [1, 2])
        for bad in [Double(Int64.max), -Double(Int64.max), .nan, 3] {
            let indices = ConstTensor(shape: [1, 1], values: [bad], isInteger: true)
            #expect {
                _ = try ONNXFolding.evaluate(node, [data, indices], shapeOf: [nil, nil], modelDirectory: nil)
            } throws: { "\($0)".contains("GatherND 'gnd'") && "\($0)".contains("out of range") }
        }
    }

    /// `run-tensor` builds the model for the .npy's batch: 0 or a huge N is refused before that.
    @Test func tensorCheckBatchIsBounded() throws {
        #expect(try TensorCheck.batch(of: HostTensor(shape: [2, 3, 2, 2], values: (0..<24).map(Float.init))) == 2)
        #expect(try TensorCheck.batch(of: HostTensor(shape: [256, 1], values: [Float](repeating: 0.5, count: 256))) == 256)
        for shape in [[0, 3, 2, 2], [257, 1], [100_000, 1]] {
            let t = HostTensor(shape: shape, values: [Float](repeating: 0.5, count: shape.reduce(1, *)))
            #expect { _ = try TensorCheck.batch(of: t) } throws: { "\($0)".contains("batch of \(shape[0])") && "\($0)".contains("1…256") }
        }
        #expect(throws: EngineError.self) { _ = try TensorCheck.batch(of: HostTensor(shape: [4], values: [1, 2, 3, 4])) }
    }
}
