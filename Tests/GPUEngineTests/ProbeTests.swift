import Foundation
import Testing
@testable import GPUEngine

/// Fixtures shared by the probe suites: generated images and a tiny CNN / ViT built in the test.
enum ProbeFixtures {
    static func tempDir(_ name: String) throws -> String {
        let dir = NSTemporaryDirectory() + "amgpu-probe-\(name)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// `count` random-noise PNGs of varying sizes (none all-zero) named img00.png …, plus whatever the caller adds.
    static func images(_ count: Int, in dir: String, seed: UInt64 = 5) throws -> [String] {
        var rng = SeededRandom(seed: seed)
        var paths: [String] = []
        for i in 0..<count {
            let w = 20 + (i * 7) % 23, h = 18 + (i * 5) % 29
            let pixels = (0..<(w * h * 3)).map { _ in UInt8(clamping: Int((rng.uniform(0, 1) * 255).rounded())) }
            let path = dir + String(format: "/img%02d.png", i)
            try PNGFile.write(RGBImage(width: w, height: h, pixels: pixels), to: path)
            paths.append(path)
        }
        return paths
    }

    /// [B,3,32,32] → conv 3×3 p1 (relu) → maxpool 2×2 s2 → conv 3×3 s2 p1 "conv2" [B,6,8,8] → global pool → fc [B,5].
    static func tinyCNN(batch: Int) throws -> Model {
        var rng = SeededRandom(seed: 91)
        let g = Graph()
        let x = try g.addInput("image", shape: [batch, 3, 32, 32])
        let w1 = try g.addConstant("conv1.weight", rng.tensor([4, 3, 3, 3], -0.5, 0.5))
        let c1 = try g.add(Conv2D(pads: Padding2D(1), activation: Unary(.relu)), [x, w1], name: "conv1")
        let p1 = try g.add(MaxPool2D(kernel: [2, 2], strides: [2, 2]), [c1], name: "pool1")
        let w2 = try g.addConstant("conv2.weight", rng.tensor([6, 4, 3, 3], -0.5, 0.5))
        let c2 = try g.add(Conv2D(strides: [2, 2], pads: Padding2D(1)), [p1, w2], name: "conv2")
        let gp = try g.add(GlobalAveragePool(), [c2], name: "pool")
        let f = try g.add(Reshape(shape: [batch, 6]), [gp], name: "flat")
        let w3 = try g.addConstant("fc.weight", rng.tensor([6, 5]))
        let out = try g.add(MatMul(), [f, w3], name: "fc")
        return Model(name: "tiny-probe-cnn", graph: g, input: x, output: out, family: .cnn, preprocessing: .imagenet(32),
                     classNames: (0..<5).map { "class\($0)" }, aliases: ["conv2": c2, "pool1": p1], source: "test")
    }
}

@Suite struct ReceptiveFieldTests {
    /// conv 3×3 p1 → maxpool 2×2 s2 → conv 3×3 s2 p1, by hand:
    /// conv1 (1, −1, 1); pool1 (2, −1, 2); conv2: J = 4, start = −1 − 1·2 = −3, end = 2 + (2 − 1)·2 = 4.
    @Test func smallConvPoolChain() throws {
        let model = try ProbeFixtures.tinyCNN(batch: 1)
        let rf = ReceptiveFields(model: model)
        let conv1 = try #require(rf.fields[try model.resolve(layer: "conv1")])
        #expect(conv1.x == AxisField(jump: 1, start: -1, end: 1))
        let pool1 = try #require(rf.fields[try model.resolve(layer: "pool1")])
        #expect(pool1.y == AxisField(jump: 2, start: -1, end: 2))
        let g = try rf.geometry(of: model.resolve(layer: "conv2"), name: "conv2")
        guard case .spatial(let c, let f) = g else { Issue.record("conv2 is not spatial: \(g)"); return }
        #expect(c == 6 && f.height == 8 && f.width == 8)
        #expect(f.x == AxisField(jump: 4, start: -3, end: 4) && f.y == f.x)
        // Position (row 2, column 5): rows 8−3 … 8+4 → [5, 13), columns 20−3 … 20+4 → [17, 25).
        #expect(g.box(position: 2 * 8 + 5, inputHeight: 32, inputWidth: 32) == PixelBox(x0: 17, y0: 5, x1: 25, y1: 13))
        // Clipped at the corner: position (0, 0) → [−3, 5) → [0, 5).
        #expect(g.box(position: 0, inputHeight: 32, inputWidth: 32) == PixelBox(x0: 0, y0: 0, x1: 5, y1: 5))
        // The last position (7, 7): 28−3 … 28+4 = 32 → [25, 32).
        #expect(g.box(position: 63, inputHeight: 32, inputWidth: 32) == PixelBox(x0: 25, y0: 25, x1: 32, y1: 32))
        // After the global pool: one position, the whole image; the logits are a vector.
        #expect(rf.fields[try model.resolve(layer: "pool")] == SpatialField(y: AxisField(jump: 0, start: 0, end: 31), x: AxisField(jump: 0, start: 0, end: 31), height: 1, width: 1))
        let out = try rf.geometry(of: model.output, name: "fc")
        #expect(out == .vector(dimension: 5))
        #expect(out.box(position: 0, inputHeight: 32, inputWidth: 32) == PixelBox(x0: 0, y0: 0, x1: 32, y1: 32))
    }

    /// ResNet stem: conv 7×7 s2 p3 → maxpool 3×3 s2 p1: pool position i sees 4i − 5 … 4i + 5 (11 pixels);
    /// layer1 adds four 3×3 convolutions at jump 4 (the residual union keeps the conv branch): 4i − 21 … 4i + 21 (43).
    @Test func resnetStemAndLayer1() throws {
        let model = try ModelLoader.load("random:resnet18", batch: 1, imageSize: 64)
        let rf = ReceptiveFields(model: model)
        let stem = try #require(rf.fields[try model.resolve(layer: "stem")])
        #expect(stem.x == AxisField(jump: 4, start: -5, end: 5), "\(stem)")
        let layer1 = try #require(rf.fields[try model.resolve(layer: "layer1")])
        #expect(layer1.x == AxisField(jump: 4, start: -21, end: 21) && layer1.y == layer1.x, "\(layer1)")
        let g = try rf.geometry(of: model.resolve(layer: "layer1"), name: "layer1")
        #expect(g.box(position: 3 * 16 + 6, inputHeight: 64, inputWidth: 64) == PixelBox(x0: 3, y0: 0, x1: 46, y1: 34))
        // layer2 doubles the jump.
        let layer2 = try #require(rf.fields[try model.resolve(layer: "layer2")])
        #expect(layer2.x.jump == 8)
    }

    /// ViT: patch 16 on a 32×32 input → a 2×2 grid and a class token: token 0 sees the whole image,
    /// token 3 is patch 2 = row 1, column 0 → x [0, 16), y [16, 32).
    @Test func vitPatchTokens() throws {
        let model = try ModelLoader.load("random:vit_tiny_patch16_224", batch: 1, imageSize: 32)
        let rf = ReceptiveFields(model: model)
        let layer = try model.resolve(layer: "blocks.0")
        let g = try rf.geometry(of: layer, name: "blocks.0")
        guard case .tokens(let t, let d, let prefix, let gh, let gw, _) = g else { Issue.record("not tokens: \(g)"); return }
        #expect(t == 5 && d == 192 && prefix == 1 && gh == 2 && gw == 2)
        #expect(g.box(position: 0, inputHeight: 32, inputWidth: 32) == PixelBox(x0: 0, y0: 0, x1: 32, y1: 32))
        #expect(g.box(position: 3, inputHeight: 32, inputWidth: 32) == PixelBox(x0: 0, y0: 16, x1: 16, y1: 32))
        #expect(g.box(position: 2, inputHeight: 32, inputWidth: 32) == PixelBox(x0: 16, y0: 0, x1: 32, y1: 16))
        #expect(try rf.geometry(of: model.resolve(layer: "blocks.0.mlp.fc1"), name: "fc1").units == 768)
    }

    @Test func layersWithoutABoxAreRefused() throws {
        let model = try ModelLoader.load("random:vit_tiny_patch16_224", batch: 1, imageSize: 32)
        let rf = ReceptiveFields(model: model)
        // The attention probabilities [B, heads, T, T] are 4-D but not a feature map of the image.
        guard let attn = model.graph.values.indices.map({ ValueID(index: $0) }).first(where: {
            let s = model.graph.shape(of: $0); return s.count == 4 && s[2] == 5 && s[3] == 5 }) else {
            Issue.record("no [B, h, T, T] value in the ViT"); return
        }
        do { _ = try rf.geometry(of: attn, name: "attn"); Issue.record("a 4-D attention value got a box") } catch {
            #expect("\(error)".contains("'attn'") && "\(error)".contains("no box"), "\(error)")
        }
    }

    @Test func pixelBoxIsAJSONArray() throws {
        let data = try JSONEncoder().encode(PixelBox(x0: 1, y0: 2, x1: 3, y1: 4))
        #expect(String(decoding: data, as: UTF8.self) == "[1,2,3,4]")
        #expect(try JSONDecoder().decode(PixelBox.self, from: data) == PixelBox(x0: 1, y0: 2, x1: 3, y1: 4))
    }
}

@Suite struct LayerActivationStreamTests {
    /// Batches of 3 over 7 good images and 2 bad files give each image's activations exactly as a batch of 1 does,
    /// with the bad files skipped and listed in order.
    @Test func batchesMatchSingleImagesAndSkipBadFiles() throws {
        let dir = try ProbeFixtures.tempDir("stream")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var paths = try ProbeFixtures.images(7, in: dir)
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: dir + "/bad.png"))
        let truncated = dir + "/trunc.png"
        try Data(try Data(contentsOf: URL(fileURLWithPath: paths[0])).prefix(60)).write(to: URL(fileURLWithPath: truncated))
        paths.insert(dir + "/bad.png", at: 2)
        paths.append(truncated)
        let batched = try ProbeFixtures.tinyCNN(batch: 3)
        let single = try ProbeFixtures.tinyCNN(batch: 1)
        let layers3 = try ["conv2", "fc"].map { try batched.resolve(layer: $0) }
        let stream = try LayerActivationStream(model: batched, backend: CPUBackend(), layers: layers3)
        var seen: [String] = [], skipped: [String] = [], rows: [String: [Float]] = [:], consumed: [Int] = []
        let summary = try stream.run(paths) { b in
            seen += b.paths
            skipped += b.skipped.map(\.path)
            consumed.append(b.consumed)
            for (i, p) in b.paths.enumerated() {
                let t = try #require(b.activations[layers3[0]])
                #expect(t.shape == [b.paths.count, 6, 8, 8])
                rows[p] = Array(t.values[(i * 384)..<((i + 1) * 384)])
            }
        }
        #expect(summary.read == 7 && summary.skipped.map(\.path) == [dir + "/bad.png", truncated])
        #expect(seen == paths.filter { !$0.contains("bad") && !$0.contains("trunc") })
        #expect(skipped == [dir + "/bad.png", truncated])
        #expect(consumed.last == paths.count)
        let one = try LayerActivationStream(model: single, backend: CPUBackend(), layers: [try single.resolve(layer: "conv2")])
        var distinct = Set<Int>()
        try one.run(seen) { b in
            let a = try #require(b.activations.values.first)
            let expected = try #require(rows[b.paths[0]])
            let worst = zip(a.values, expected).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst < 1e-5, "\(b.paths[0]): batched activations differ by \(worst)")
            distinct.insert(Int((a.values.reduce(0, +) * 1000).rounded()))
        }
        #expect(distinct.count == 7, "different images gave the same activations")
    }

    @Test func allFilesBadIsAnError() throws {
        let dir = try ProbeFixtures.tempDir("stream-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = dir + "/a.jpg", b = dir + "/b.png"
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 1, 2]).write(to: URL(fileURLWithPath: a))
        try Data("x".utf8).write(to: URL(fileURLWithPath: b))
        let model = try ProbeFixtures.tinyCNN(batch: 2)
        let stream = try LayerActivationStream(model: model, backend: CPUBackend(), layers: [model.output])
        do { try stream.run([a, b]) { _ in }; Issue.record("a run where no file could be read succeeded") } catch {
            #expect("\(error)".contains("no image could be read (2 skipped)") && "\(error)".contains(a), "\(error)")
        }
    }
}
