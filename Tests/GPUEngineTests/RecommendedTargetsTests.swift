import Foundation
import Testing
@testable import GPUEngine

/// The recommended AM targets of imported models (issue #18 part 3): which layer names `amgpu layers`
/// stars for each family of the ONNX zoo sweep (scripts/onnx-zoo), and that a short visualization of
/// a recommended unit raises it above its mean over the natural photos.
///
/// Fixtures: `Fixtures/am-families/{vit,convnext,swin}.onnx`, timm's VisionTransformer, ConvNeXt and
/// SwinTransformer with reduced sizes and random weights, exported with the TorchScript exporter by
/// `scripts/tools/am_family_fixtures.py`. The whole sweep (every family that imports) is
/// `scripts/onnx-zoo --am` (docs/logs/onnx-zoo-am.md).
@Suite(.serialized) struct RecommendedTargetsTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/am-families")

    /// `scripts/onnx-zoo --am` picks the unit it visualizes from the photos' activations (the largest
    /// spread over the photos among the units non-zero on every photo; dead, sparse, constant and
    /// offset-dominated units lose) and reduces token layers as the channel objective does: its
    /// `--self-test` checks both on hand-made arrays (numpy only, the fetched venv's python).
    @Test func zooSweepUnitChoice() throws {
        let python = ModelStore.path("venv/bin/python")
        guard FileManager.default.isExecutableFile(atPath: python) else {
            TestEnvironment.skip("the onnx-zoo unit-choice self-test", because: "\(python) is missing (run scripts/fetch-models)")
            return
        }
        let script = Self.fixtures.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/tools/onnx_zoo_am.py").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [script, "--self-test"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "onnx_zoo_am.py --self-test failed: \(text)")
        #expect(text.contains("self-test passed"), "onnx_zoo_am.py --self-test printed: \(text)")
    }

    @Test func modulePathDropsTheRepeatedScopes() {
        #expect(Importer.modulePath(scopes: ["stages", "stages.0", "blocks", "blocks.1", "mlp", "fc1"]) == "stages.0.blocks.1.mlp.fc1")
        #expect(Importer.modulePath(scopes: ["blocks", "blocks.3", "blocks.3.1"]) == "blocks.3.1")
        #expect(Importer.modulePath(scopes: ["layer3", "layer3.1", "conv1"]) == "layer3.1.conv1")
        #expect(Importer.modulePath(scopes: ["s2", "b1"]) == "s2.b1")
        #expect(Importer.modulePath(scopes: ["head"]) == "head")
    }

    /// timm / torchvision / Hugging Face module paths of the sweep's families (as the TorchScript
    /// exporter's scopes give them): block and stage outputs and MLP hidden layers are recommended;
    /// stems, heads, norms, attention parts and single convolutions are not.
    static let recommendedPaths: [(family: String, yes: [String], no: [String])] = [
        ("ViT/DeiT/BEiT/EVA", ["blocks.0", "blocks.11", "blocks.5.mlp.fc1"], ["patch_embed", "blocks.5.attn", "blocks.5.norm1", "norm", "head"]),
        ("CaiT", ["blocks.3", "blocks_token_only.1", "blocks.3.mlp.fc1"], ["blocks_token_only.1.attn"]),
        ("XCiT", ["blocks.3", "cls_attn_blocks.0"], ["cls_attn_blocks.0.attn", "patch_embed.proj.0"]),
        ("PiT", ["transformers.1", "transformers.1.blocks.0"], ["transformers.1.pool"]),
        ("CoaT", ["serial_blocks2.0", "parallel_blocks.0"], ["cpe1"]),
        ("Swin", ["layers.1", "layers.1.blocks.0", "layers.1.blocks.0.mlp.fc1"], ["layers.1.downsample", "layers.1.blocks.0.attn"]),
        ("ConvNeXt/EdgeNeXt/PoolFormer/FastViT/RepViT/TinyViT/LeViT/PVTv2",
         ["stages.2", "stages.2.blocks.1", "stages.2.blocks.1.mlp.fc1"], ["stem", "stem.0", "stages.2.downsample", "stages.2.blocks.1.conv_dw", "head.fc"]),
        ("MobileViT/MobileOne/LCNet", ["stages.3", "stages.3.1"], ["stages.3.1.conv_kxk"]),
        ("EfficientNet/MobileNetV3/GhostNet", ["blocks.3", "blocks.3.1"], ["blocks.3.1.conv_pw", "conv_stem", "conv_head"]),
        ("ResNet", ["layer3", "layer3.1"], ["layer3.1.conv1", "conv1", "fc"]),
        ("RegNet", ["s2", "s2.b1"], ["s2.b1.conv1", "stem"]),
        ("DenseNet", ["features.denseblock2", "features.denseblock2.denselayer3"], ["features.transition1", "features.conv0"]),
        ("MLP-Mixer", ["blocks.3", "blocks.3.mlp_channels.fc1"], ["stem"]),
        ("Hugging Face ViT", ["vit.encoder.layer.5", "vit.encoder.layer.5.intermediate.dense"], ["vit.embeddings", "classifier"]),
    ]

    @Test(arguments: recommendedPaths.indices)
    func familyTargets(_ i: Int) {
        let (family, yes, no) = Self.recommendedPaths[i]
        for p in yes { #expect(Importer.isRecommendedTarget(modulePath: p), "\(family): \(p) should be recommended") }
        for p in no { #expect(!Importer.isRecommendedTarget(modulePath: p), "\(family): \(p) should not be recommended") }
    }

    /// (fixture, recommended aliases it must have — the names `amgpu layers` prints —, the target that is
    /// visualized, its unit)
    static let fixtureCases: [(String, [String], String, Int)] = [
        ("vit", ["blocks.blocks.0", "blocks.blocks.1", "blocks.blocks.1.mlp.fc1"], "blocks.blocks.1.mlp.fc1", 3),
        ("convnext", ["stages.stages.1", "stages.stages.2.blocks.blocks.0", "stages.stages.3"], "stages.stages.2", 5),
        ("swin", ["layers.layers.0.blocks.blocks.0", "layers.layers.1.blocks.blocks.0.mlp.fc1"], "layers.layers.1.blocks.blocks.0.mlp.fc1", 2),
    ]

    @Test(arguments: fixtureCases.indices)
    func fixtureRecommendsAndVisualizationBeatsPhotos(_ i: Int) throws {
        let (name, expected, target, unit) = Self.fixtureCases[i]
        let model = try ONNXImporter.load(path: Self.fixtures.appendingPathComponent("\(name).onnx").path)
        for alias in expected {
            #expect(model.recommended.contains(alias), "\(name): \(alias) is not recommended; recommended: \(model.recommended.sorted())")
        }
        #expect(model.recommended.contains(target))
        for alias in model.recommended {
            let shape = model.graph.shape(of: try model.resolve(layer: alias))
            #expect(!(shape.count == 4 && shape[1] == shape[2] && shape[2] != shape[3]), "\(name): \(alias) \(shape) is channels-last")
        }
        let dir = ModelStore.path("photos")
        let photos = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".png") }.sorted()
        guard !photos.isEmpty else {
            TestEnvironment.skip("\(name) visualization vs photos", because: "no photos in \(dir) (run scripts/fetch-models)")
            return
        }
        let images = try photos.map { try PNGFile.read((dir as NSString).appendingPathComponent($0)) }
        var preset = model.family == .vit ? AMPreset.vitGhiasi : AMPreset.cnnLucid
        preset.steps = 32
        preset.transforms.copies = 1
        let request = VisualizationRequest(objective: Objective(terms: [ObjectiveTerm(kind: .channel, layer: target, units: [unit])]),
                                           preset: preset, seed: 0, images: 1)
        let result = try Visualizer(model: model, request: request, backend: Backends.cpu).run(naturalImages: images)
        let natural = try #require(result.naturalMean)
        print("amgpu-test: AM-FAMILY \(name) \(target):\(unit): visualization \(result.finalScores[0]) vs natural photos mean \(natural[0]) (\(images.count) photos, 32 steps)")
        #expect(result.finalScores[0] > natural[0] + 0.1 * abs(natural[0]),
                "\(name) \(target):\(unit): the visualization (\(result.finalScores[0])) does not beat the photos' mean (\(natural[0]))")
    }
}
