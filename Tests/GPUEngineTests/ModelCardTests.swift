import Foundation
import Testing
@testable import GPUEngine

/// Model cards (preprocessing and labels with their sources, in precedence order), graphs that
/// end in Softmax/LogSoftmax, and input layouts other than NCHW RGB 224 — against the committed
/// models and onnxruntime outputs of Fixtures/layouts (written by scripts/tools/layout_test_models.py).
@Suite struct ModelCardTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/layouts").path
    static func path(_ name: String) -> String { (fixtures as NSString).appendingPathComponent(name) }

    struct LayoutCase: Sendable, CustomStringConvertible {
        var name: String
        var layout: InputLayout
        var channels: Int
        var activation: OutputActivation?
        var description: String { name }
    }

    static let layoutCases = [
        LayoutCase(name: "tf_nhwc_prologue", layout: .nhwc, channels: 3, activation: .softmax),
        LayoutCase(name: "keras_channels_last", layout: .nhwc, channels: 3, activation: .logSoftmax),
        LayoutCase(name: "grey_nhwc", layout: .nhwc, channels: 1, activation: nil),
        LayoutCase(name: "torch_grey_softmax", layout: .nchw, channels: 1, activation: .softmax),
        LayoutCase(name: "timm_test_resnet", layout: .nchw, channels: 3, activation: nil),
        // Exported by the real TensorFlow toolchain (scripts/tools/tf_keras_models.py: tensorflow-cpu 2.21.0,
        // Keras 3.15.1, tf2onnx 1.17.0): a Keras MobileNet-style NHWC classifier ending in Softmax, through
        // tf2onnx.convert.from_keras and through TFLite + `tf2onnx.convert --tflite`.
        LayoutCase(name: "tf2onnx_keras_mobilenet", layout: .nhwc, channels: 3, activation: .softmax),
        LayoutCase(name: "tflite_keras_mobilenet", layout: .nhwc, channels: 3, activation: .softmax),
    ]

    /// max|a − e| / max|e|.
    static func relativeError(_ a: [Float], _ e: [Float]) -> Float {
        let scale = e.map(abs).max() ?? 1
        return zip(a, e).map { abs($0 - $1) }.max().map { $0 / max(scale, 1e-12) } ?? .infinity
    }

    /// Each model is fed amgpu's NCHW RGB batch (at the fixture's batch, non-square sizes, dynamic
    /// batch where the file has one); the engine's logits match onnxruntime's pre-softmax values,
    /// and its probabilities (softmax taken once) match onnxruntime's output within 1e-5.
    @Test(arguments: TestBackend.allCases, layoutCases)
    func layoutsMatchOnnxruntime(_ kind: TestBackend, _ c: LayoutCase) throws {
        guard let backend = Backends.get(kind) else { return }
        let x = try NPYFile.read(Self.path(c.name + ".input.npy"))
        let expected = try NPYFile.read(Self.path(c.name + ".output.npy"))
        let model = try ONNXImporter.load(path: Self.path(c.name + ".onnx"), batch: x.shape[0])
        #expect(model.graph.shape(of: model.input) == x.shape, "\(c.name): engine input \(model.graph.shape(of: model.input)) vs \(x.shape)")
        #expect(model.card.layout == c.layout && model.card.channels == c.channels, "\(c.name): \(model.card.layout) \(model.card.channels) channels")
        #expect(model.card.outputActivation == c.activation, "\(c.name): final activation \(String(describing: model.card.outputActivation))")
        #expect(model.preprocessing.height == x.shape[2] && model.preprocessing.width == x.shape[3])
        let out = try ModelRunner(model: model, backend: backend).run(x, layers: [model.output])[model.output]!
        #expect(out.shape == expected.shape, "\(c.name): output \(out.shape) vs onnxruntime \(expected.shape)")
        if c.activation != nil {
            let logits = try NPYFile.read(Self.path(c.name + ".logits.npy"))
            let err = Self.relativeError(out.values, logits.values)
            #expect(err < 1e-4, "\(c.name) on \(backend.name): logits relative error \(err) vs onnxruntime's softmax input")
            let k = expected.shape[1]
            var worst: Float = 0
            for b in 0..<expected.shape[0] {
                let p = softmax(Array(out.values[(b * k)..<((b + 1) * k)]))
                let ref = expected.values[(b * k)..<((b + 1) * k)].map { c.activation == .logSoftmax ? Float(Foundation.exp(Double($0))) : $0 }
                worst = max(worst, zip(p, ref).map { abs($0 - $1) }.max() ?? 0)
            }
            #expect(worst < 1e-5, "\(c.name) on \(backend.name): probabilities differ from onnxruntime's by \(worst)")
        } else {
            let err = Self.relativeError(out.values, expected.values)
            #expect(err < 1e-4, "\(c.name) on \(backend.name): relative error \(err) vs onnxruntime")
        }
    }

    /// The input gradient through the NHWC prologue matches a central difference of the engine's own
    /// forward along a random direction (CPU; the model is smooth: per-channel scale, dense, LogSoftmax).
    @Test(arguments: ["keras_channels_last"])
    func gradientThroughThePrologue(_ name: String) throws {
        let backend = Backends.cpu
        let model = try ONNXImporter.load(path: Self.path(name + ".onnx"), batch: 1)
        var rng = SeededRandom(seed: 23)
        let shape = model.graph.shape(of: model.input)
        let n = shape.reduce(1, *)
        let x = HostTensor(shape: shape, values: (0..<n).map { _ in rng.uniform() })
        let d = (0..<n).map { _ in rng.uniform() }
        let outShape = model.graph.shape(of: model.output)
        let r = (0..<outShape.reduce(1, *)).map { _ in rng.uniform() }
        let ex = Executor(graph: model.graph, backend: backend)
        let pass = try ex.forward(feeds: [model.input: backend.tensor(x)], targets: [model.output], differentiable: [model.input])
        let grads = try ex.backward(pass, seeds: [model.output: backend.tensor(HostTensor(shape: outShape, values: r))])
        let g = try backend.download(grads[model.input]!)
        let analytic = zip(g.values, d).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        func f(_ h: Float) throws -> Double {
            let xh = HostTensor(shape: shape, values: zip(x.values, d).map { $0 + h * $1 })
            let y = try ModelRunner(model: model, backend: backend).run(xh, layers: [model.output])[model.output]!
            return zip(y.values, r).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        let h: Float = 2e-3  // small enough not to cross ReLU kinks on this input
        let numeric = (try f(h) - f(-h)) / Double(2 * h)
        #expect(abs(analytic) > 1e-3, "\(name): the directional derivative is ~0 (\(analytic)); the check would be vacuous")
        #expect(abs(analytic - numeric) <= 2e-3 + 2e-3 * abs(numeric), "\(name): <grad, d> = \(analytic), central difference \(numeric)")
    }

    /// Through the grey prologue g = 0.299 R + 0.587 G + 0.114 B, each pixel's gradient is
    /// (0.299, 0.587, 0.114) · ∂/∂g, and ∂/∂g is not zero everywhere.
    @Test func greyGradientIsLumaWeighted() throws {
        let backend = Backends.cpu
        let model = try ONNXImporter.load(path: Self.path("grey_nhwc.onnx"), batch: 1)
        let x = try NPYFile.read(Self.path("grey_nhwc.input.npy"))
        let one = HostTensor(shape: [1] + x.shape.dropFirst(), values: Array(x.values.prefix(x.count / x.shape[0])))
        let ex = Executor(graph: model.graph, backend: backend)
        let pass = try ex.forward(feeds: [model.input: backend.tensor(one)], targets: [model.output], differentiable: [model.input])
        let outShape = model.graph.shape(of: model.output)
        let seed = HostTensor(shape: outShape, values: (0..<outShape.reduce(1, *)).map { Float($0 % 3) - 0.7 })
        let g = try backend.download(ex.backward(pass, seeds: [model.output: backend.tensor(seed)])[model.input]!)
        let plane = one.shape[2] * one.shape[3]
        var worst: Float = 0, largest: Float = 0
        for i in 0..<plane {
            let grey = g.values[i] / 0.299
            largest = max(largest, abs(grey))
            worst = max(worst, abs(g.values[plane + i] - 0.587 * grey), abs(g.values[2 * plane + i] - 0.114 * grey))
        }
        #expect(largest > 1e-3, "the gradient reaching the image is ~0")
        #expect(worst <= 1e-6 * max(1, largest), "channel gradients are not the luma weights of one grey gradient (off by \(worst))")
    }

    /// A logit objective on a model ending in Softmax maximizes the pre-softmax logit (onnxruntime's
    /// softmax input), not the probability.
    @Test func logitObjectiveTargetsPreSoftmax() throws {
        let name = "tf_nhwc_prologue"
        let x = try NPYFile.read(Self.path(name + ".input.npy"))
        let logits = try NPYFile.read(Self.path(name + ".logits.npy"))
        let probabilities = try NPYFile.read(Self.path(name + ".output.npy"))
        let model = try ONNXImporter.load(path: Self.path(name + ".onnx"), batch: x.shape[0])
        let k = 7, classes = logits.shape[1]
        let evaluator = try ObjectiveEvaluator(model: model, objective: Objective(terms: [ObjectiveTerm(kind: .logit, layer: "output", units: [k])]),
                                               backend: Backends.cpu)
        let scores = try Backends.cpu.download(evaluator.evaluate(Backends.cpu.tensor(x), gradient: false).scores)
        for b in 0..<x.shape[0] {
            let want = logits.values[b * classes + k]
            #expect(abs(scores.values[b] - want) < 1e-4 * max(1, abs(want)), "image \(b): objective \(scores.values[b]), pre-softmax logit \(want)")
            #expect(abs(scores.values[b] - probabilities.values[b * classes + k]) > 1e-2, "the objective must not be the probability")
        }
        #expect(model.resolve(layerOrNil: "output") == model.output)
        #expect(model.graph.name(of: model.output) == "logits:0")
    }

    // MARK: card sources and precedence

    @Test func onnxMetadataAndFlagsPrecedence() throws {
        let path = Self.path("tf_nhwc_prologue.onnx")
        let fromFile = try ONNXImporter.load(path: path)
        #expect(fromFile.preprocessing.mean == [0.5, 0.5, 0.5] && fromFile.preprocessing.std == [0.5, 0.5, 0.5])
        #expect(fromFile.card.sources["mean"] == "ONNX metadata_props: amgpu.mean")
        #expect(fromFile.card.sources["std"] == "ONNX metadata_props: amgpu.std", "a JSON list value")
        #expect(fromFile.classNames?.count == 1001 && fromFile.classNames?.first == "background" && fromFile.className(1) == "tench")
        #expect(fromFile.card.notes.contains { $0.contains("background") })

        let labelsPath = FileManager.default.temporaryDirectory.appendingPathComponent("amgpu-card-labels-\(getpid()).txt").path
        defer { try? FileManager.default.removeItem(atPath: labelsPath) }
        try (0..<1001).map { "kind \($0)" }.joined(separator: "\n").appending("\n").write(toFile: labelsPath, atomically: true, encoding: .utf8)
        let flags = try ModelCardValues.flags(mean: [0.25], labelsPath: labelsPath, fit: .noCrop)
        let m = try ONNXImporter.load(path: path, card: [flags])
        #expect(m.preprocessing.mean == [0.25, 0.25, 0.25] && m.card.sources["mean"] == "--mean")
        #expect(m.preprocessing.std == [0.5, 0.5, 0.5] && m.card.sources["std"] == "ONNX metadata_props: amgpu.std")
        #expect(m.className(1000) == "kind 1000" && m.card.sources["labels"] == "--labels \(labelsPath)")
        #expect(m.preprocessing.fit == .noCrop)

        // Wrong number of labels: one clear error naming both counts and the background class.
        try (0..<1000).map { "kind \($0)" }.joined(separator: "\n").write(toFile: labelsPath, atomically: true, encoding: .utf8)
        let short = try ModelCardValues.flags(labelsPath: labelsPath)
        #expect {
            _ = try ONNXImporter.load(path: path, card: [short])
        } throws: { "\($0)".contains("has 1000 class names, but the model has 1001 outputs") && "\($0)".contains("background class at index 0") }
    }

    @Test func timmConfigJSON() throws {
        let v = try ModelCardValues.configJSON(path: Self.path("timm_resnet18_config.json"))
        #expect(v.mean == [0.485, 0.456, 0.406] && v.std == [0.229, 0.224, 0.225])
        #expect(v.height == 224 && v.width == 224 && v.cropFraction == 0.95 && v.interpolation == .bicubic)
        #expect(v.keys["mean"] == "pretrained_cfg.mean" && v.keys["labels"] == "id2label")
        #expect(v.labels?.count == 1000 && v.labels?[999] == "label 999")
        #expect(ModelCardValues.configArchitecture(path: Self.path("timm_resnet18_config.json")) == "resnet18")
        // Top-level keys (no pretrained_cfg) and label_names.
        let top = try ModelCardValues.fromJSONObject(["mean": [0.5], "std": [0.25], "input_size": [1, 28, 32], "label_names": ["a", "b"]], origin: "t")
        #expect(top.mean == [0.5] && top.height == 28 && top.width == 32 && top.labels == ["a", "b"])
        // A size that is no size is an error (not a trap converting 1e30 to Int).
        #expect { _ = try ModelCardValues.fromJSONObject(["input_size": [3, 1e30, 224]], origin: "t") } throws: { "\($0)".contains("not a size in pixels") }
        #expect { _ = try ModelCardValues.fromJSONObject(["interpolation": "lanczos"], origin: "t") } throws: { "\($0)".contains("bilinear or bicubic") }
    }

    /// metadata_props: a whole card as one JSON value, single keys overriding it, plain and JSON values.
    @Test func onnxMetadataKeys() throws {
        let v = try ModelCardValues.onnxMetadata([
            ("amgpu.card", #"{"mean": [0.1, 0.2, 0.3], "std": [0.9, 0.9, 0.9], "input_size": [3, 96, 128], "crop_pct": 1.0, "interpolation": "bicubic"}"#),
            ("amgpu.std", "0.2,0.25,0.3"), ("amgpu.labels", #"["cat", "dog"]"#), ("amgpu.input_layout", "NHWC"), ("amgpu.fit", "no-crop")])
        #expect(v.mean == [0.1, 0.2, 0.3] && v.keys["mean"] == "amgpu.card.mean")
        #expect(v.std == [0.2, 0.25, 0.3] && v.keys["std"] == "amgpu.std")
        #expect(v.height == 96 && v.width == 128 && v.cropFraction == 1.0 && v.interpolation == .bicubic)
        #expect(v.labels == ["cat", "dog"] && v.layout == .nhwc && v.fit == .noCrop)
        #expect { _ = try ModelCardValues.onnxMetadata([("amgpu.card", "{not json")]) } throws: { "\($0)".contains("not a JSON object") }
        #expect { _ = try ModelCardValues.onnxMetadata([("amgpu.mean", "0.5,0.5")]) } throws: { "\($0)".contains("gives 2 mean values") }
        // Labels written on Windows (CRLF): no name keeps a trailing carriage return.
        let crlf = try ModelCardValues.onnxMetadata([("amgpu.labels", "cat\r\ndog\r\n")])
        #expect(crlf.labels == ["cat", "dog"])
        let labelFile = FileManager.default.temporaryDirectory.appendingPathComponent("amgpu-crlf-\(UUID().uuidString).txt").path
        try "cat\r\ndog\r\n".write(toFile: labelFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: labelFile) }
        #expect(try ModelCardValues.readLabelFile(labelFile) == ["cat", "dog"])
    }

    /// crop_pct far below 1 would make the resize before the crop enormous (0.001: ~224k² pixels);
    /// 0.25…2 is accepted, and the message names where the value came from.
    @Test func cropPctOutOfRangeIsRefused() throws {
        #expect { _ = try ModelCardValues.onnxMetadata([("amgpu.crop_pct", "0.001")]) } throws: {
            "\($0)".contains("amgpu.crop_pct") && "\($0)".contains("0.25…2")
        }
        #expect { _ = try ModelCardValues.fromJSONObject(["crop_pct": 0.2], origin: "config.json") } throws: {
            "\($0)".contains("crop_pct") && "\($0)".contains("0.25…2")
        }
        #expect { _ = try ModelCardValues.fromJSONObject(["crop_pct": 2.5], origin: "config.json") } throws: { "\($0)".contains("0.25…2") }
        #expect(try ModelCardValues.fromJSONObject(["crop_pct": 0.25], origin: "t").cropFraction == 0.25)
        #expect(abs(try #require(try ModelCardValues.onnxMetadata([("amgpu.crop_pct", "0.95")]).cropFraction) - 0.95) < 1e-6)
    }

    /// flags > config.json beside the .safetensors > the builder's defaults; the architecture from config.json.
    @Test func safetensorsWithConfigJSON() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("amgpu-card-st-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (_, tensors) = try ModelBuilders.buildRecordingWeights("resnet18", seed: 3, batch: 1, imageSize: 32)
        try SafetensorsFile.write(tensors, metadata: ["format": "pt"], to: dir + "/model.safetensors")
        let config: [String: Any] = ["architecture": "resnet18", "num_classes": 1000,
                                     "pretrained_cfg": ["mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6], "input_size": [3, 40, 40],
                                                        "crop_pct": 1.0, "interpolation": "bicubic"],
                                     "id2label": Dictionary(uniqueKeysWithValues: (0..<1000).map { ("\($0)", "thing \($0)") })]
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: dir + "/config.json"))
        let m = try ModelLoader.load(dir + "/model.safetensors", card: try ModelCardValues.flags(std: [0.3, 0.3, 0.3]))
        #expect(m.graph.shape(of: m.input) == [1, 3, 40, 40], "input_size from config.json")
        #expect(m.preprocessing.mean == [0.1, 0.2, 0.3] && m.card.sources["mean"]?.contains("pretrained_cfg.mean") == true)
        #expect(m.preprocessing.std == [0.3, 0.3, 0.3] && m.card.sources["std"] == "--std")
        #expect(m.preprocessing.cropFraction == 1.0 && m.preprocessing.interpolation == .bicubic)
        #expect(m.className(5) == "thing 5" && m.card.sources["labels"]?.contains("id2label") == true)
        // A config.json that is not JSON: one clear error.
        try Data("{ not json".utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        #expect { _ = try ModelLoader.load(dir + "/model.safetensors") } throws: { "\($0)".contains("is not valid JSON") }
    }

    @Test func flagValuesAreValidated() throws {
        #expect { _ = try ModelCardValues.parseTriple("0.5,0.5", flag: "--mean") } throws: { "\($0)".contains("needs 3 values") }
        #expect { _ = try ModelCardValues.flags(std: [0.2, 0, 0.2]) } throws: { "\($0)".contains("must be positive") }
        #expect { _ = try ModelCardValues.parseSize("0") } throws: { "\($0)".contains("8…8192") }
        #expect(try ModelCardValues.parseSize("192,256") == (192, 256))
        #expect(try ModelCardValues.parseTriple("0.5", flag: "--mean") == [0.5])
    }

    // MARK: fitting photos

    @Test func exactInputsAreNotResized() throws {
        var rng = SeededRandom(seed: 5)
        let image = RGBImage(width: 64, height: 48, pixels: (0..<64 * 48 * 3).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        var p = Preprocessing(height: 48, width: 64, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5])
        #expect(ImagePreprocessing.fitted(image, p).pixels == image.pixels, "auto: an image already H×W is used as it is")
        p.fit = .noCrop
        #expect(ImagePreprocessing.fitted(image, p).pixels == image.pixels)
        p.fit = .resizeCrop
        let cropped = ImagePreprocessing.fitted(image, p)
        #expect(cropped.width == 64 && cropped.height == 48 && cropped.pixels != image.pixels, "--resize-crop resizes to 1/0.875 and crops")
        // Non-square target from a larger photo: the output has the model's size.
        p.fit = .auto
        let big = ImagePreprocessing.resize(image, width: 200, height: 150)
        let f = ImagePreprocessing.fitted(big, p)
        #expect(f.width == 64 && f.height == 48)
    }

    /// The resize before the centre crop against timm 1.0.31's `transforms_imagenet_eval` (sizes
    /// printed from its Resize / ResizeKeepRatio steps on 500×375 and 375×500 photos): ⌊224/0.95⌋ =
    /// 235 (rounding would give 236), the longer side truncated; non-square inputs keep the aspect
    /// ratio; crop_mode 'squash' ignores it. Offsets are torchvision CenterCrop's (halves to even).
    @Test func resizeBeforeCropMatchesTimm() throws {
        // (H, W, crop_pct, squash, photo w×h, resized w×h)
        let cases: [(Int, Int, Double, Bool, (Int, Int), (Int, Int))] = [
            (224, 224, 0.95, false, (500, 375), (313, 235)), (224, 224, 0.95, false, (375, 500), (235, 313)),
            (224, 224, 0.9, false, (500, 375), (330, 248)), (224, 224, 0.9, false, (375, 500), (248, 330)),
            (224, 224, 0.875, false, (500, 375), (341, 256)), (224, 224, 0.875, false, (375, 500), (256, 341)),
            (192, 256, 0.9, false, (500, 375), (284, 213)), (192, 256, 0.9, false, (375, 500), (284, 379)),
            (192, 256, 0.9, true, (500, 375), (284, 213)), (192, 256, 0.9, true, (375, 500), (284, 213)),
            (224, 224, 0.9, true, (500, 375), (248, 248)), (224, 224, 0.9, true, (375, 500), (248, 248)),
        ]
        for (h, w, pct, squash, photo, want) in cases {
            let got = ImagePreprocessing.resizedSize(imageWidth: photo.0, imageHeight: photo.1, height: h, width: w,
                                                     cropFraction: pct, squash: squash)
            #expect(got.width == want.0 && got.height == want.1, "\(h)×\(w) / \(pct) squash \(squash) on \(photo): \(got)")
        }
        #expect(ImagePreprocessing.cropOffset(379, 192) == 94 && ImagePreprocessing.cropOffset(313, 224) == 44)
        // The crop itself: a photo whose pixel value is its column shows which columns were kept.
        var pixels = [UInt8](repeating: 0, count: 40 * 30 * 3)
        for y in 0..<30 { for x in 0..<40 { for c in 0..<3 { pixels[(y * 40 + x) * 3 + c] = UInt8(x * 6) } } }
        let photo = RGBImage(width: 40, height: 30, pixels: pixels)
        var p = Preprocessing(height: 16, width: 16, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], cropFraction: 0.5)
        p.fit = .squash   // 32×32 squashed (aspect lost), centre 16×16: columns 12…27 of 40 scaled by 32/40
        let squashed = ImagePreprocessing.fitted(photo, p)
        p.fit = .noCrop
        let whole = ImagePreprocessing.fitted(photo, p)
        #expect(squashed.width == 16 && squashed.height == 16)
        #expect(Int(whole.pixels[0]) < 12 && Int(squashed.pixels[0]) > 40, "squash crops (first column \(squashed.pixels[0])), no-crop does not (\(whole.pixels[0]))")
    }

    @Test func timmSquashCropModeIsNotNoCrop() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("amgpu-squash-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("config.json").path
        try #"{"pretrained_cfg": {"crop_pct": 0.9, "crop_mode": "squash"}}"#.write(toFile: path, atomically: true, encoding: .utf8)
        let v = try ModelCardValues.configJSON(path: path)
        #expect(v.fit == .squash && v.cropFraction == 0.9)
    }

    /// Bicubic and bilinear resizes against PIL (BICUBIC/BILINEAR) on a committed image: within 1
    /// level on 8-bit values (PIL rounds its first pass to 8 bits; amgpu keeps it in float).
    @Test func resizeMatchesPIL() throws {
        let src = try NPYFile.read(Self.path("resize_src.npy"))
        let (h, w) = (src.shape[0], src.shape[1])
        let image = RGBImage(width: w, height: h, pixels: src.values.map { UInt8($0) })
        for (filter, file) in [(Interpolation.bicubic, "resize_bicubic.npy"), (.bilinear, "resize_bilinear.npy")] {
            let ref = try NPYFile.read(Self.path(file))
            let out = ImagePreprocessing.resize(image, width: ref.shape[1], height: ref.shape[0], interpolation: filter)
            let diff = zip(out.pixels, ref.values).map { abs(Int($0) - Int($1)) }
            #expect((diff.max() ?? 99) <= 1, "\(filter): max difference \(diff.max() ?? -1) levels from PIL")
            let mean = Double(diff.reduce(0, +)) / Double(diff.count)
            #expect(mean < 0.3, "\(filter): mean difference \(mean) levels")
        }
        // The two filters differ (the test would catch a bicubic that falls back to bilinear).
        let a = ImagePreprocessing.resize(image, width: 13, height: 9, interpolation: .bicubic)
        let b = ImagePreprocessing.resize(image, width: 13, height: 9, interpolation: .bilinear)
        #expect(a.pixels != b.pixels)
    }
}

extension Model {
    /// `resolve(layer:)` without throwing (tests).
    func resolve(layerOrNil name: String) -> ValueID? { try? resolve(layer: name) }
}
