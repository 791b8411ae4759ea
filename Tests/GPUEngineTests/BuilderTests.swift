import Foundation
import Testing
@testable import GPUEngine

/// Native model builders: every architecture builds with random weights, timm-named safetensors
/// files round-trip and are checked strictly, and the real EfficientNet-Lite0 classifies photos
/// and matches onnxruntime and the OpenCL backend.
@Suite("BuilderTests", .serialized)
struct BuilderTests {
    // MARK: helpers

    /// The output (and `extra` values) of `model` on `input`, on `backend`.
    static func run(_ model: Model, _ input: HostTensor, on backend: any Backend, extra: [ValueID] = []) throws -> [HostTensor] {
        let ex = Executor(graph: model.graph, backend: backend)
        let targets = [model.output] + extra
        let pass = try ex.forward(feeds: [model.input: backend.tensor(input)], targets: targets)
        return try targets.map { try backend.download(pass.value($0)) }
    }

    /// A normalised-image-like input: uniform in [−2, 2].
    static func input(_ shape: [Int], seed: UInt64 = 1) -> HostTensor {
        var rng = SeededRandom(seed: seed)
        return rng.tensor(shape, -2, 2)
    }

    static func rms(_ t: HostTensor) -> Double {
        (t.values.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(t.count, 1))).squareRoot()
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    /// max |a − b| and that divided by max |b| (the relative error used throughout: max-abs norm).
    static func difference(_ a: HostTensor, _ b: HostTensor) -> (maxAbs: Float, relative: Float) {
        var m: Float = 0, ref: Float = 0
        for i in 0..<min(a.count, b.count) {
            m = max(m, abs(a.values[i] - b.values[i]))
            ref = max(ref, abs(b.values[i]))
        }
        if a.values.contains(where: { !$0.isFinite }) { m = .nan }
        return (m, ref > 0 ? m / ref : m)
    }

    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func tempPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("amgpu-builder-\(ProcessInfo.processInfo.processIdentifier)-\(name)").path
    }

    /// Reads a little-endian float32 C-order `.npy` (format 1.x/2.x).
    static func readNPY(_ path: String) throws -> HostTensor {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let bytes = [UInt8](data)
        guard bytes.count > 10, bytes[0] == 0x93, String(bytes: bytes[1..<6], encoding: .ascii) == "NUMPY" else {
            throw EngineError.io("\(path) is not a .npy file")
        }
        let major = bytes[6]
        let headerLength = major == 1 ? Int(bytes[8]) | Int(bytes[9]) << 8
            : Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
        let start = major == 1 ? 10 : 12
        guard let header = String(bytes: bytes[start..<(start + headerLength)], encoding: .ascii),
              header.contains("'<f4'"), header.contains("'fortran_order': False"),
              let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw EngineError.io("\(path): expected a little-endian float32 C-order array")
        }
        let shape = header[open.upperBound..<close].split(separator: ",").compactMap {
            Int($0.trimmingCharacters(in: .whitespaces))
        }
        let count = shape.reduce(1, *)
        let offset = start + headerLength
        guard bytes.count - offset == count * 4 else { throw EngineError.io("\(path): \(bytes.count - offset) data bytes for shape \(shape)") }
        let values = data.withUnsafeBytes { raw in
            (0..<count).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: offset + $0 * 4, as: UInt32.self)) }
        }
        return HostTensor(shape: shape, values: values)
    }

    // MARK: the architecture list

    @Test func architectureListAndUnknownNames() throws {
        let names = Set(ModelBuilders.architectures)
        for expected in ["vit_tiny_patch16_224", "vit_small_patch16_224", "vit_base_patch16_224", "vit_large_patch16_224",
                         "vit_huge_patch14_224", "vit_huge_patch16_224", "vit_base_patch16_384", "vit_small_patch14_dinov2",
                         "vit_base_patch14_dinov2", "resnetv2_50", "resnet50", "efficientnet_lite0", "mobilenetv2_100"] {
            #expect(names.contains(expected), "missing architecture \(expected)")
        }
        #expect(ModelBuilders.architectures == ModelBuilders.architectures.sorted())
        do {
            _ = try ModelBuilders.build("resnet_50", weights: .random(seed: 0), batch: 1, imageSize: nil)
            Issue.record("an unknown architecture built")
        } catch let error as EngineError {
            #expect(error.description.contains("unknown architecture 'resnet_50'"))
            #expect(error.description.contains("resnet50"), "no suggestion in: \(error)")
        }
        #expect(throws: EngineError.self) { try ModelBuilders.build("vit_tiny_patch16_224", weights: .random(seed: 0), batch: 1, imageSize: 100) }
        #expect(throws: EngineError.self) { try ModelBuilders.build("resnet50", weights: .random(seed: 0), batch: 0, imageSize: nil) }
        #expect(throws: EngineError.self) { try ModelBuilders.build("resnet50", weights: .random(seed: 0), batch: 1, imageSize: 16) }
    }

    /// timm's sizes (embedding, depth, heads, patch) for the ViTs too big to build in a test.
    @Test func vitConfigurationsMatchTimm() {
        let expected: [String: (Int, Int, Int, Int, Int)] = [
            "vit_tiny_patch16_224": (192, 12, 3, 16, 224), "vit_small_patch16_384": (384, 12, 6, 16, 384),
            "vit_base_patch16_224": (768, 12, 12, 16, 224), "vit_large_patch16_224": (1024, 24, 16, 16, 224),
            "vit_large_patch16_384": (1024, 24, 16, 16, 384), "vit_huge_patch14_224": (1280, 32, 16, 14, 224),
            "vit_base_patch14_dinov2": (768, 12, 12, 14, 224),
        ]
        for (name, e) in expected {
            guard let c = ViTBuilder.configs[name] else { Issue.record("no config for \(name)"); continue }
            #expect((c.dim, c.depth, c.heads, c.patch, c.imageSize) == e, "\(name)")
            // Parameter count with a 1000-class head (timm: ViT-L/16 304.3 M, ViT-H/14 632.0 M).
            let d = c.dim, grid = c.checkpointSize / c.patch
            let block = 4 * d + 3 * d * d + 3 * d + d * d + d + 4 * d * d + 4 * d + 4 * d * d + d + (c.layerScale ? 2 * d : 0)
            let params = 3 * c.patch * c.patch * d + d + d + (1 + grid * grid) * d + c.depth * block + 2 * d + (c.head ? 1000 * d + 1000 : 0)
            if name == "vit_large_patch16_224" { #expect(abs(Double(params) / 1e6 - 304.33) < 0.01, "\(params)") }
            if name == "vit_huge_patch14_224" { #expect(abs(Double(params) / 1e6 - 632.05) < 0.01, "\(params)") }
        }
    }

    // MARK: random weights

    /// (architecture, batch, image size): built with random weights and run on the CPU.
    static let forwardCases: [(String, Int, Int)] = [
        ("vit_tiny_patch16_224", 1, 224), ("vit_tiny_patch16_224", 2, 96), ("vit_small_patch14_dinov2", 1, 112),
        ("resnet18", 1, 64), ("resnet50", 1, 64), ("resnetv2_50", 1, 64), ("efficientnet_lite0", 1, 96),
        ("mobilenetv2_100", 2, 64),
    ]

    @Test(arguments: forwardCases.indices)
    func randomWeightsForwardOnCPU(_ index: Int) throws {
        let (arch, batch, size) = Self.forwardCases[index]
        let clock = ContinuousClock()
        let t0 = clock.now
        let model = try ModelBuilders.build(arch, weights: .random(seed: 7), batch: batch, imageSize: size)
        let t1 = clock.now
        #expect(model.graph.shape(of: model.input) == [batch, 3, size, size])
        #expect(model.source == "random weights, seed 7")
        let dinov2 = arch.contains("dinov2")
        #expect(model.family == (arch.hasPrefix("vit") ? .vit : .cnn))
        if dinov2 {
            let tokens = 1 + (size / 14) * (size / 14)
            #expect(model.graph.shape(of: model.output) == [batch, tokens, 384])
            #expect(model.classNames == nil)
        } else {
            #expect(model.graph.shape(of: model.output) == [batch, 1000])
        }
        // Stage / block outputs to check the activation scale on.
        var probes: [String] = []
        if arch.hasPrefix("vit") {
            let depth = ViTBuilder.configs[arch]?.depth ?? 0
            probes = ["patch_embed", "blocks.0", "blocks.\(depth - 1)", "blocks.\(depth - 1).mlp.fc1", "norm"]
        } else if arch.hasPrefix("resnetv2") {
            probes = ["stem", "stages.0", "stages.3", "global_pool"]
        } else if arch.hasPrefix("resnet") {
            probes = ["stem", "layer1", "layer4", "global_pool"]
        } else {
            probes = ["stem", "blocks.0", "blocks.6", "conv_head", "global_pool"]
        }
        let ids = try probes.map { try model.resolve(layer: $0) }
        let outs = try Self.run(model, Self.input([batch, 3, size, size]), on: Backends.cpu, extra: ids)
        let t2 = clock.now
        #expect(outs[0].values.allSatisfy { $0.isFinite }, "\(arch): non-finite output")
        var report = "\(arch) batch \(batch) @\(size): build \(String(format: "%.2f", Self.seconds(t1 - t0))) s, CPU forward \(String(format: "%.2f", Self.seconds(t2 - t1))) s; rms"
        for (name, t) in zip(["output"] + probes, outs) {
            let r = Self.rms(t)
            report += " \(name) \(String(format: "%.3g", r))"
            #expect(r > 0.02 && r < 100, "\(arch): rms of \(name) is \(r): activations vanish or explode")
        }
        print("amgpu-test: \(report)")
        // Batch items are independent: item 1 of a batch equals the same image alone.
        if batch > 1 {
            let single = try ModelBuilders.build(arch, weights: .random(seed: 7), batch: 1, imageSize: size)
            let x = Self.input([batch, 3, size, size])
            let per = 3 * size * size
            let second = HostTensor(shape: [1, 3, size, size], values: Array(x.values[per..<(2 * per)]))
            let alone = try Self.run(single, second, on: Backends.cpu)[0]
            let n = alone.count
            expectClose(HostTensor(shape: alone.shape, values: Array(outs[0].values[n..<(2 * n)])), alone, atol: 1e-4, rtol: 1e-4,
                        "\(arch): batch item 1 vs alone")
        }
    }

    /// A big architecture builds (random weights, shapes only, no forward).
    @Test func bigArchitecturesBuild() throws {
        let clock = ContinuousClock()
        let t0 = clock.now
        let vit = try ModelBuilders.build("vit_base_patch16_384", weights: .random(seed: 1), batch: 1, imageSize: nil)
        print("amgpu-test: vit_base_patch16_384 built in \(String(format: "%.2f", Self.seconds(clock.now - t0))) s (no forward)")
        #expect(vit.graph.shape(of: vit.input) == [1, 3, 384, 384])
        #expect(vit.graph.shape(of: vit.output) == [1, 1000])
        #expect(vit.graph.shape(of: try vit.resolve(layer: "blocks.11.attn.probs")) == [1, 12, 577, 577])
        #expect(vit.graph.shape(of: try vit.resolve(layer: "blocks.3.mlp.fc1")) == [1, 577, 3072])
        #expect(vit.recommended.contains("blocks.3.mlp.fc1") && vit.recommended.contains("head"))
        #expect(vit.preprocessing == .inception(384))
    }

    @Test func namesAndAliases() throws {
        let r = try ModelBuilders.build("resnet50", weights: .random(seed: 3), batch: 1, imageSize: 64)
        for name in ["stem", "layer1", "layer4", "layer3.5", "layer2.0.downsample", "layer1.0.act2", "global_pool", "fc"] {
            #expect((try? r.resolve(layer: name)) != nil, "resnet50 lacks \(name)")
        }
        #expect(try r.resolve(layer: "fc") == r.output)
        #expect(r.graph.shape(of: try r.resolve(layer: "layer3")) == [1, 1024, 4, 4])
        #expect(r.preprocessing == .imagenet(64))
        let v2 = try ModelBuilders.build("resnetv2_50", weights: .random(seed: 3), batch: 1, imageSize: 64)
        for name in ["stem", "stages.0", "stages.3.blocks.2", "stages.1.blocks.0.downsample", "norm", "head.fc", "head", "global_pool"] {
            #expect((try? v2.resolve(layer: name)) != nil, "resnetv2_50 lacks \(name)")
        }
        #expect(v2.graph.shape(of: try v2.resolve(layer: "stages.3")) == [1, 2048, 2, 2])
        #expect(v2.preprocessing == .inception(64))
        let e = try ModelBuilders.build("efficientnet_lite0", weights: .random(seed: 3), batch: 1, imageSize: 224)
        for (name, shape) in [("stem", [1, 32, 112, 112]), ("blocks.0", [1, 16, 112, 112]), ("blocks.2.1", [1, 40, 28, 28]),
                              ("blocks.5", [1, 192, 7, 7]), ("conv_head", [1, 1280, 7, 7]), ("classifier", [1, 1000])] {
            #expect(e.graph.shape(of: try e.resolve(layer: name)) == shape, "efficientnet_lite0 \(name)")
        }
        #expect(e.recommended.contains("blocks.3") && e.recommended.contains("classifier"))
        do {
            _ = try e.resolve(layer: "blocks.9")
            Issue.record("an unknown layer resolved")
        } catch let error as EngineError {
            #expect(error.description.contains("closest"))
        }
        let v = try ModelBuilders.build("vit_tiny_patch16_224", weights: .random(seed: 3), batch: 1, imageSize: 224)
        for (name, shape) in [("patch_embed", [1, 196, 192]), ("blocks.6", [1, 197, 192]), ("blocks.6.mlp.fc1", [1, 197, 768]),
                              ("blocks.6.mlp.act", [1, 197, 768]), ("blocks.6.attn", [1, 197, 192]),
                              ("blocks.6.attn.probs", [1, 3, 197, 197]), ("norm", [1, 197, 192]), ("head", [1, 1000])] {
            #expect(v.graph.shape(of: try v.resolve(layer: name)) == shape, "vit_tiny \(name)")
        }
        #expect(try v.resolve(layer: "head") == v.output)
        let d = try ModelBuilders.build("vit_small_patch14_dinov2", weights: .random(seed: 3), batch: 1, imageSize: nil)
        #expect(d.graph.shape(of: d.input) == [1, 3, 224, 224])
        #expect(d.preprocessing == .imagenet(224))
        #expect(d.recommended.contains("norm"))
    }

    @Test func randomWeightsAreSeeded() throws {
        let a = try ModelBuilders.randomWeights("mobilenetv2_100", seed: 11, imageSize: 32)
        let b = try ModelBuilders.randomWeights("mobilenetv2_100", seed: 11, imageSize: 32)
        let c = try ModelBuilders.randomWeights("mobilenetv2_100", seed: 12, imageSize: 32)
        #expect(a == b)
        #expect(a["blocks.3.0.conv_pw.weight"] != c["blocks.3.0.conv_pw.weight"])
        #expect(a["blocks.3.0.bn1.running_var"]?.values.allSatisfy { $0 == 1 } == true)
        #expect(a["blocks.3.0.bn1.bias"]?.values.allSatisfy { $0 == 0 } == true)
        // Variance 2/fan_in, uniform in ±√3σ, for a conv followed by ReLU6.
        if let w = a["blocks.3.0.conv_pw.weight"] {
            let std = Self.rms(w), expected = (2.0 / Double(w.shape[1] * w.shape[2] * w.shape[3])).squareRoot()
            #expect(abs(std / expected - 1) < 0.03, "std \(std) vs \(expected)")
            #expect(w.values.allSatisfy { abs(Double($0)) <= 3.0.squareRoot() * expected * 1.0001 })
        }
    }

    // MARK: safetensors files

    /// Random weights written with the builder's own (timm) names rebuild the identical model.
    @Test(arguments: [("vit_tiny_patch16_224", 224), ("efficientnet_lite0", 64)])
    func safetensorsRoundTrip(_ arch: String, _ size: Int) throws {
        let (random, tensors) = try ModelBuilders.buildRecordingWeights(arch, seed: 5, batch: 1, imageSize: size)
        let path = Self.tempPath("\(arch).safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try SafetensorsFile.write(tensors, metadata: ["format": "pt"], to: path)
        let fromFile = try ModelBuilders.build(arch, weights: .file(SafetensorsFile(path: path)), batch: 1, imageSize: size)
        #expect(fromFile.filePath == path)
        let x = Self.input([1, 3, size, size], seed: 9)
        let a = try Self.run(fromFile, x, on: Backends.cpu)[0], b = try Self.run(random, x, on: Backends.cpu)[0]
        #expect(a == b, "\(arch): the model from the file differs from the random build (max diff \(Self.difference(a, b).maxAbs))")
        print("amgpu-test: \(arch) round trip through \(tensors.count) timm-named tensors: identical outputs")
    }

    @Test func strictFileChecks() throws {
        let arch = "mobilenetv2_100"
        let good = try ModelBuilders.randomWeights(arch, seed: 2, imageSize: 32)
        let path = Self.tempPath("strict.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        func build(_ tensors: [String: HostTensor]) throws -> Model {
            try SafetensorsFile.write(tensors, to: path)
            return try ModelBuilders.build(arch, weights: .file(SafetensorsFile(path: path)), batch: 1, imageSize: 32)
        }
        func expectError(_ tensors: [String: HostTensor], mentions: [String], _ what: String) {
            do {
                _ = try build(tensors)
                Issue.record("\(what): no error")
            } catch {
                let text = "\(error)"
                for m in mentions { #expect(text.contains(m), "\(what): '\(m)' not in: \(text)") }
            }
        }
        var t = good
        t["blocks.1.1.bn2.running_var"] = nil
        expectError(t, mentions: ["missing", "blocks.1.1.bn2.running_var [144]"], "missing tensor")
        t = good
        t["blocks.3.0.conv_dw.weight"] = HostTensor(shape: [192, 1, 5, 5], values: [Float](repeating: 0, count: 192 * 25))
        expectError(t, mentions: ["wrong shape", "blocks.3.0.conv_dw.weight", "[192, 1, 5, 5]", "[192, 1, 3, 3]"], "wrong shape")
        t = good
        t["blocks.1.0.se.conv_reduce.weight"] = HostTensor(shape: [2], values: [1, 2])
        expectError(t, mentions: ["unexpected", "blocks.1.0.se.conv_reduce.weight"], "unexpected tensor")
        t = [:]
        for (k, v) in good { t["module." + k] = v }
        expectError(t, mentions: ["missing", "strip", "module."], "prefixed names")
        // Tolerated: num_batches_tracked; a head with another number of classes.
        t = good
        t["bn1.num_batches_tracked"] = HostTensor(shape: [], values: [1])
        t["classifier.weight"] = HostTensor(shape: [10, 1280], values: [Float](repeating: 0.01, count: 12800))
        t["classifier.bias"] = HostTensor(shape: [10], values: [Float](repeating: 0, count: 10))
        let m = try build(t)
        #expect(m.graph.shape(of: m.output) == [1, 10])
        #expect(m.classNames == nil)
        // A ViT file without head.* is a backbone: its output is the final norm's tokens.
        var vit = try ModelBuilders.randomWeights("vit_tiny_patch16_224", seed: 2, imageSize: 32)
        vit["head.weight"] = nil
        vit["head.bias"] = nil
        try SafetensorsFile.write(vit, to: path)
        let backbone = try ModelBuilders.build("vit_tiny_patch16_224", weights: .file(SafetensorsFile(path: path)), batch: 1, imageSize: 32)
        #expect(backbone.graph.shape(of: backbone.output) == [1, 5, 192])
        #expect(backbone.graph.value(named: "head") == nil)
    }

    /// A checkpoint's position grid is resampled to the image size; a 224 file serves 384 inputs.
    @Test func vitPositionEmbeddingResampled() throws {
        let tensors = try ModelBuilders.randomWeights("vit_tiny_patch16_224", seed: 4)
        #expect(tensors["pos_embed"]?.shape == [1, 197, 192])
        let path = Self.tempPath("pos.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try SafetensorsFile.write(tensors, to: path)
        let model = try ModelBuilders.build("vit_tiny_patch16_224", weights: .file(SafetensorsFile(path: path)), batch: 1, imageSize: 384)
        guard let posID = model.graph.value(named: "pos_embed.pos_embed"), let pos = model.graph.constants[posID],
              let original = tensors["pos_embed"] else {
            Issue.record("no position embedding constant")
            return
        }
        let expected = try resamplePositionEmbedding(original, numPrefixTokens: 1, from: (14, 14), to: (24, 24))
        #expect(pos == expected)
        #expect(pos.shape == [1, 577, 192])
        // DINOv2: a 37×37 grid (518²) in the checkpoint, layer-scale, no head; the original
        // checkpoints' `mask_token` is tolerated. Rebuilt from its tensors it equals the random build.
        let (dinoModel, recorded) = try ModelBuilders.buildRecordingWeights("vit_small_patch14_dinov2", seed: 4, batch: 1, imageSize: 56)
        #expect(dinoModel.graph.shape(of: dinoModel.output) == [1, 17, 384])
        var dino = recorded
        #expect(dino["pos_embed"]?.shape == [1, 1 + 37 * 37, 384])
        #expect(dino["blocks.3.ls1.gamma"]?.shape == [384])
        #expect(dino["head.weight"] == nil)
        dino["mask_token"] = HostTensor(shape: [1, 384], values: [Float](repeating: 0, count: 384))
        let rebuilt = try ModelBuilders.build("vit_small_patch14_dinov2", tensors: dino, batch: 1, imageSize: 56)
        #expect(rebuilt.source == "tensors in memory")
        let x = Self.input([1, 3, 56, 56])
        #expect(try Self.run(rebuilt, x, on: Backends.cpu)[0] == Self.run(dinoModel, x, on: Backends.cpu)[0])
    }

    // MARK: parity with an independent ONNX graph

    /// Runs `python script args…` and returns (status, combined output).
    static func runPython(_ python: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(data: pipe.fileHandleForReading.readDataToEndOfFile(), encoding: .utf8) ?? ""
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    /// A random-weight ViT-B/16 and ResNetV2-50 (batch 2, with random norm statistics, norm affines
    /// and biases so the BN folding and LayerNorm affines are exercised) match an ONNX graph of the
    /// same architecture and weights built independently by scripts/tools/timm_onnx.py (patch
    /// embedding as Conv, attention as MatMul/Softmax, GELU from Erf, unfolded BatchNormalization)
    /// and run by onnxruntime, on the CPU and the OpenCL backend.
    @Test(arguments: [("vit_base_patch16_224", 64, "vit"), ("resnetv2_50", 64, "resnetv2")])
    func matchesIndependentONNXGraph(_ arch: String, _ size: Int, _ family: String) throws {
        let python = ModelStore.path("venv/bin/python")
        guard FileManager.default.isExecutableFile(atPath: python) else {
            TestEnvironment.skip("ONNX parity of \(arch)", because: "\(python) is absent (run scripts/fetch-models)")
            return
        }
        let batch = 2
        var (model, weights) = try ModelBuilders.buildRecordingWeights(arch, seed: 21, batch: batch, imageSize: size)
        var rng = SeededRandom(seed: 3)
        for name in weights.keys.sorted() {
            guard let t = weights[name], t.shape.count == 1 else { continue }
            let n = t.count
            let values: [Float]
            if name.hasSuffix("running_var") {
                values = (0..<n).map { _ in rng.uniform(0.5, 2) }
            } else if name.hasSuffix("running_mean") || name.hasSuffix(".bias") {
                values = (0..<n).map { _ in rng.uniform(-0.3, 0.3) }
            } else if name.hasSuffix(".weight") || name.hasSuffix(".gamma") {
                values = (0..<n).map { _ in rng.uniform(0.5, 1.5) }
            } else {
                continue
            }
            weights[name] = HostTensor(shape: t.shape, values: values)
        }
        if family == "vit", let id = model.graph.value(named: "pos_embed.pos_embed"), let pos = model.graph.constants[id] {
            weights["pos_embed"] = pos  // the grid at this image size, so the ONNX graph needs no resampling
        }
        model = try ModelBuilders.build(arch, tensors: weights, batch: batch, imageSize: size)
        let x = Self.input([batch, 3, size, size], seed: 17)
        let weightsPath = Self.tempPath("\(arch)-parity.safetensors")
        let inPath = Self.tempPath("\(arch)-in.npy"), outPath = Self.tempPath("\(arch)-out.npy")
        defer { for p in [weightsPath, inPath, outPath] { try? FileManager.default.removeItem(atPath: p) } }
        try SafetensorsFile.write(weights, to: weightsPath)
        try NPYFile.write(x, to: inPath)
        let script = Self.repoRoot.appendingPathComponent("scripts/tools/timm_onnx.py").path
        let heads = ViTBuilder.configs[arch]?.heads ?? 1
        let (status, log) = try Self.runPython(python, [script, family, weightsPath, "--input", inPath, "--output", outPath,
                                                        "--heads", "\(heads)"])
        #expect(status == 0, "timm_onnx.py failed: \(log)")
        guard status == 0 else { return }
        let reference = try Self.readNPY(outPath)
        #expect(reference.shape == [batch, 1000])
        let cpu = try Self.run(model, x, on: Backends.cpu)[0]
        let (maxAbs, rel) = Self.difference(cpu, reference)
        print("amgpu-test: \(arch) (random, batch \(batch) @\(size)) CPU vs onnxruntime: max |Δ| \(maxAbs), relative (max-abs / max |ref|) \(rel)")
        #expect(rel <= 1e-4, "\(arch) CPU vs onnxruntime: relative max-abs error \(rel)")
        if let cl = Backends.get(.opencl) {
            let out = try Self.run(model, x, on: cl)[0]
            let (m, r) = Self.difference(out, reference)
            print("amgpu-test: \(arch) (random, batch \(batch) @\(size)) OpenCL vs onnxruntime: max |Δ| \(m), relative \(r)")
            #expect(r <= 1e-4, "\(arch) OpenCL vs onnxruntime: relative max-abs error \(r)")
        }
    }

    // MARK: the real EfficientNet-Lite0

    static let expectedTop1: [(photo: String, classes: Set<Int>)] = [
        ("chelsea", Set(281...285)), ("coffee", [967, 968]), ("camera", [872]), ("rocket", [657, 744]),
        ("motorcycle_left", [665]), ("china", [698]),
    ]

    @Test func realEfficientNetLite0() throws {
        let weightsPath = ModelStore.path("models/efficientnet_lite0.safetensors")
        guard FileManager.default.fileExists(atPath: weightsPath) else {
            TestEnvironment.skip("realEfficientNetLite0", because: "\(weightsPath) is absent (run scripts/fetch-models)")
            return
        }
        let photos = Self.expectedTop1.map { ModelStore.path("photos/\($0.photo).png") }
        guard photos.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) else {
            TestEnvironment.skip("realEfficientNetLite0", because: "photos missing in \(ModelStore.path("photos")) (run scripts/fetch-models)")
            return
        }
        let file = try SafetensorsFile(path: weightsPath)
        let n = photos.count
        let model = try ModelBuilders.build("tf_efficientnet_lite0", weights: .file(file), batch: n, imageSize: nil)
        #expect(model.preprocessing == .imagenet(224))
        var values: [Float] = []
        for p in photos { values += ImagePreprocessing.modelInput(try PNGFile.read(p), model.preprocessing).values }
        let x = HostTensor(shape: [n, 3, 224, 224], values: values)
        let clock = ContinuousClock()
        let t0 = clock.now
        let logits = try Self.run(model, x, on: Backends.cpu)[0]
        let cpuTime = Self.seconds(clock.now - t0)
        #expect(logits.shape == [n, 1000])
        var line = "amgpu-test: efficientnet_lite0 top-1 (CPU, \(String(format: "%.2f", cpuTime)) s for \(n) photos):"
        for (i, e) in Self.expectedTop1.enumerated() {
            let row = Array(logits.values[(i * 1000)..<((i + 1) * 1000)])
            let top = row.indices.max { row[$0] < row[$1] } ?? -1
            line += " \(e.photo) → \(top) \(model.className(top));"
            #expect(e.classes.contains(top), "\(e.photo): top-1 \(top) (\(model.className(top))), expected one of \(e.classes.sorted())")
        }
        print(line)

        // onnxruntime on the same input (the first photo), through scripts/tools/onnx_parity.py.
        let onnx = ModelStore.path("models/efficientnet_lite0.onnx")
        let python = ModelStore.path("venv/bin/python")
        if FileManager.default.fileExists(atPath: onnx), FileManager.default.isExecutableFile(atPath: python) {
            let inPath = Self.tempPath("lite0-in.npy"), outPath = Self.tempPath("lite0-out.npy")
            defer {
                try? FileManager.default.removeItem(atPath: inPath)
                try? FileManager.default.removeItem(atPath: outPath)
            }
            let first = HostTensor(shape: [1, 3, 224, 224], values: Array(x.values[0..<(3 * 224 * 224)]))
            try NPYFile.write(first, to: inPath)
            let (status, output) = try Self.runPython(python, [Self.repoRoot.appendingPathComponent("scripts/tools/onnx_parity.py").path,
                                                               onnx, inPath, outPath])
            #expect(status == 0, "onnx_parity.py failed: \(output)")
            if status == 0 {
                let reference = try Self.readNPY(outPath)
                let ours = HostTensor(shape: [1, 1000], values: Array(logits.values[0..<1000]))
                #expect(reference.shape == [1, 1000])
                let (maxAbs, rel) = Self.difference(ours, reference)
                print("amgpu-test: efficientnet_lite0 vs onnxruntime (chelsea): max |Δlogit| \(maxAbs), relative (max-abs / max |ref|) \(rel)")
                #expect(rel <= 1e-4, "builder vs onnxruntime: relative max-abs error \(rel)")
            }
        } else {
            TestEnvironment.skip("EfficientNet-Lite0 onnxruntime parity", because: "\(onnx) or \(python) is absent (run scripts/fetch-models)")
        }

        // OpenCL vs CPU on the same batch.
        if let cl = Backends.get(.opencl) {
            let t1 = clock.now
            let out = try Self.run(model, x, on: cl)[0]
            let (maxAbs, rel) = Self.difference(out, logits)
            print("amgpu-test: efficientnet_lite0 OpenCL (\(String(format: "%.2f", Self.seconds(clock.now - t1))) s) vs CPU: max |Δlogit| \(maxAbs), relative \(rel)")
            #expect(rel <= 1e-4, "OpenCL vs CPU: relative max-abs error \(rel)")
        }
    }
}
