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

/// `Probe`: top-k and statistics against an independent computation, shards merged == unsharded, resume after
/// SIGKILL (the real binary), and the bad inputs.
@Suite(.serialized) struct ProbeRunTests {
    /// 11 generated images, one of them twice under another name (a tie, broken by path), and a text file.
    static func folder(_ name: String) throws -> (dir: String, folder: ImageFolder) {
        let dir = try ProbeFixtures.tempDir(name)
        let paths = try ProbeFixtures.images(11, in: dir)
        try FileManager.default.copyItem(atPath: paths[4], toPath: dir + "/dup04.png")
        try Data("notes".utf8).write(to: URL(fileURLWithPath: dir + "/notes.txt"))
        try Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0]).write(to: URL(fileURLWithPath: dir + "/broken.png"))
        return (dir, try ImageFolder.list(dir))
    }

    /// Per image, the unit's values over positions from a batch-1 model, one image at a time.
    static func independent(_ model: Model, layer: String, unit: Int, paths: [String]) throws -> [String: (max: Float, argmax: Int, mean: Double)] {
        let runner = try ModelRunner(model: model, backend: CPUBackend())
        let id = try model.resolve(layer: layer)
        var out: [String: (Float, Int, Double)] = [:]
        for path in paths {
            guard let image = try? ImageFile.read(path) else { continue }
            let t = try #require(try runner.run(ImagePreprocessing.modelInput(image, model.preprocessing), layers: [id])[id])
            let plane = t.shape.count == 4 ? t.shape[2] * t.shape[3] : 1
            let values = Array(t.values[(unit * plane)..<((unit + 1) * plane)])
            let m = values.max()!
            out[path] = (m, values.firstIndex(of: m)!, values.reduce(0.0) { $0 + Double($1) } / Double(plane))
        }
        return out
    }

    @Test func topKAndStatisticsMatchAnIndependentComputation() throws {
        let (dir, folder) = try Self.folder("topk")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/out"
        let model = try ProbeFixtures.tinyCNN(batch: 4)
        let summary = try Probe.run(model: model, backend: CPUBackend(), folder: folder,
                                    request: ProbeRequest(layers: ["conv2", "fc"], units: [1, 4], top: 5), out: out)
        let result = try #require(summary.result)
        #expect(result.images == 12 && result.listed == 13 && result.skipped.map { URL(fileURLWithPath: $0.path).lastPathComponent } == ["notes.txt", "broken.png"])
        let single = try ProbeFixtures.tinyCNN(batch: 1)
        let truth = try Self.independent(single, layer: "conv2", unit: 4, paths: folder.images)
        let ranked = truth.sorted { $0.value.max != $1.value.max ? $0.value.max > $1.value.max : Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
        let top = try #require(result.layers["conv2"]?["4"])
        #expect(top.map(\.image) == ranked.prefix(5).map(\.key))
        for (e, t) in zip(top, ranked) {
            #expect(abs(e.value - t.value.max) <= 1e-5 * max(1, abs(t.value.max)), "\(e.image): \(e.value) vs \(t.value.max)")
            #expect(e.position == [t.value.argmax / 8, t.value.argmax % 8])
            let g = try ReceptiveFields(model: single).geometry(of: single.resolve(layer: "conv2"), name: "conv2")
            #expect(e.box == g.box(position: t.value.argmax, inputHeight: 32, inputWidth: 32))
        }
        // The duplicate image ties with its original: both ranked, the smaller path first, wherever they are.
        let all = try Probe.run(model: model, backend: CPUBackend(), folder: folder,
                                request: ProbeRequest(layers: ["conv2"], units: [4], top: 12), out: dir + "/all").result
        let names = try #require(all?.layers["conv2"]?["4"]).map { URL(fileURLWithPath: $0.image).lastPathComponent }
        let i = try #require(names.firstIndex(of: "dup04.png")), j = try #require(names.firstIndex(of: "img04.png"))
        #expect(j == i + 1, "tie order: \(names)")
        // Statistics of the per-image maximum and mean, against the independent values.
        let stats = try #require(result.statistics["conv2"]?["4"])
        let maxima = truth.values.map { Double($0.max) }, means = truth.values.map(\.mean)
        let mu = maxima.reduce(0, +) / Double(maxima.count)
        let sd = (maxima.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Double(maxima.count)).squareRoot()
        #expect(stats.max.count == 12 && abs(stats.max.mean - mu) < 1e-5 && abs(stats.max.std - sd) < 1e-5, "\(stats.max) vs \(mu) ± \(sd)")
        #expect(abs(stats.mean.mean - means.reduce(0, +) / 12) < 1e-5)
        #expect(stats.max.fractionPositive == Double(maxima.filter { $0 > 0 }.count) / 12)
        let sorted = maxima.sorted()
        for q in RunningSummary.reportedQuantiles {
            let exact = sorted[Int((q * 11).rounded(.down))]
            let got = try #require(stats.max.quantiles[String(format: "%g", q)])
            #expect(abs(got - exact) <= 0.0101 * abs(exact) + 1e-9, "quantile \(q): \(got) vs \(exact)")
        }
        // The logits are a vector: position [], the whole image.
        let logit = try #require(result.layers["fc"]?["1"]?.first)
        #expect(logit.position == [] && logit.box == PixelBox(x0: 0, y0: 0, x1: 32, y1: 32))
        // Montages and probe.json were written; the JSON reads back equal.
        #expect(FileManager.default.fileExists(atPath: out + "/conv2/4.png") && FileManager.default.fileExists(atPath: out + "/fc/1.png"))
        let png = try PNGFile.read(out + "/conv2/4.png")
        #expect(png.width >= 5 * 64 && png.pixels.contains { $0 != 255 })
        #expect(try ProbeResult.read(out) == result)
    }

    /// Three shards merged give exactly the unsharded top-k (values, images, positions, boxes) and statistics
    /// (counts, extremes, quantiles exactly; mean and std to rounding), for a CNN map, logits and ViT tokens.
    @Test(arguments: ["cnn", "vit"]) func mergedShardsEqualTheUnshardedRun(_ kind: String) throws {
        let (dir, folder) = try Self.folder("merge-\(kind)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = kind == "cnn" ? try ProbeFixtures.tinyCNN(batch: 3)
                                  : try ModelLoader.load("random:vit_tiny_patch16_224", batch: 3, imageSize: 32)
        let layers = kind == "cnn" ? ["conv2", "fc"] : ["blocks.0", "blocks.1.mlp.fc1"]
        let units = kind == "cnn" ? nil : [0, 5, 17, 100]
        let whole = try #require(try Probe.run(model: model, backend: CPUBackend(), folder: folder,
                                               request: ProbeRequest(layers: layers, units: units, top: 4), out: dir + "/whole").result)
        for i in 0..<3 {
            let s = try Probe.run(model: model, backend: CPUBackend(), folder: folder,
                                  request: ProbeRequest(layers: layers, units: units, top: 4, shard: try AtlasShard(index: i, count: 3),
                                                        checkpointEvery: 1), out: dir + "/sharded")
            #expect(s.result == nil && s.state.complete && s.state.shardImages == [6, 4, 3][i])
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/sharded/probe.json"))
        let merged = try Probe.merge(inputs: [dir + "/sharded"])
        #expect(merged.layers == whole.layers, "merged top-k differs from the unsharded run")
        #expect(merged.images == whole.images && merged.listed == whole.listed && Set(merged.skipped.map(\.path)) == Set(whole.skipped.map(\.path)))
        #expect(merged.shards == 3 && whole.shards == 1)
        for (layer, units) in whole.statistics {
            for (unit, w) in units {
                let m = try #require(merged.statistics[layer]?[unit])
                for (a, b) in [(m.max, w.max), (m.mean, w.mean)] {
                    #expect(a.count == b.count && a.min == b.min && a.max == b.max && a.quantiles == b.quantiles && a.fractionPositive == b.fractionPositive)
                    #expect(abs(a.mean - b.mean) <= 1e-12 * max(1, abs(b.mean)) && abs(a.std - b.std) <= 1e-9 * max(1, b.std), "\(layer):\(unit) \(a.mean) vs \(b.mean)")
                }
            }
        }
        if kind == "vit" {
            let e = try #require(whole.layers["blocks.0"]?["5"]?.first)
            #expect(e.position.count == 1 && e.position[0] >= 1 && e.box.width == 16 && e.box.height == 16, "\(e)")
        }
        // A merge that lacks a shard, or has one twice, is refused.
        try FileManager.default.moveItem(atPath: dir + "/sharded/shards/shard-2-of-3.json", toPath: dir + "/s2.json")
        do { _ = try Probe.merge(inputs: [dir + "/sharded"]); Issue.record("a merge without shard 2 succeeded") } catch {
            #expect("\(error)".contains("shards 2/3 are missing"), "\(error)")
        }
        do { _ = try Probe.merge(inputs: [dir + "/sharded", dir + "/s2.json", dir + "/s2.json", dir + "/whole"]); Issue.record("a mixed merge succeeded") } catch {
            #expect("\(error)".contains("another probe"), "\(error)")
        }
    }

    /// A state from a killed run is resumed: the result equals an uninterrupted run's.
    @Test func interruptedRunResumesFromItsCheckpoint() throws {
        let (dir, folder) = try Self.folder("resume")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try ProbeFixtures.tinyCNN(batch: 2)
        let request = ProbeRequest(layers: ["conv2", "fc"], top: 3, checkpointEvery: 2)
        let whole = try #require(try Probe.run(model: model, backend: CPUBackend(), folder: folder, request: request, out: dir + "/a").result)
        struct Stop: Error {}
        do {
            _ = try Probe.run(model: model, backend: CPUBackend(), folder: folder, request: request, out: dir + "/b") { p in
                if p.done >= 7 { throw Stop() }
            }
        } catch is Stop {}
        let partial = try ProbeState.read(Probe.statePath(out: dir + "/b", shard: .whole))
        #expect(!partial.complete && partial.consumed > 0 && partial.consumed < folder.images.count, "\(partial.consumed)")
        let resumed = try Probe.run(model: model, backend: CPUBackend(), folder: folder, request: request, out: dir + "/b")
        #expect(resumed.resumedAt == partial.consumed)
        #expect(resumed.result == whole)
        // Another request on the same folder is refused, not mixed in.
        var other = request
        other.top = 4
        do { _ = try Probe.run(model: model, backend: CPUBackend(), folder: folder, request: other, out: dir + "/b"); Issue.record("a different --top resumed") } catch {
            #expect("\(error)".contains("belongs to another probe"), "\(error)")
        }
    }

    @Test func quantileSketchIsWithinOnePercentAndMergesExactly() throws {
        var rng = SeededRandom(seed: 3)
        var all = QuantileSketch(), a = QuantileSketch(), b = QuantileSketch()
        var values: [Double] = []
        for i in 0..<2000 {
            let x = Double(rng.uniform(-1, 1)) * exp(Double(rng.uniform(-6, 6))) + (i % 97 == 0 ? 0 : 0)
            values.append(x)
            all.add(x)
            if i % 3 == 0 { a.add(x) } else { b.add(x) }
        }
        values.append(0); all.add(0); b.add(0)
        a.merge(b)
        #expect(a == all)
        let sorted = values.sorted()
        for q in [0.0, 0.01, 0.1, 0.5, 0.9, 0.99, 1.0] {
            let exact = sorted[Int((q * Double(sorted.count - 1)).rounded(.down))]
            let got = try #require(all.quantile(q))
            #expect(abs(got - exact) <= 0.01 * abs(exact) + 1e-9, "q \(q): \(got) vs \(exact)")
        }
        // A sketch that ignored its input (all zeros) or flipped signs would fail the checks above.
        #expect(all.quantile(0.01)! < 0 && all.quantile(0.99)! > 0)
        let data = try JSONEncoder().encode(all)
        #expect(try JSONDecoder().decode(QuantileSketch.self, from: data) == all)
    }

    // MARK: the binary

    static let model = ["--model", "random:resnet18", "--size", "32", "--weight-seed", "3"]

    /// SIGKILL mid-run (after a checkpoint), rerun: the result equals an uninterrupted run's.
    @Test func killedBinaryResumesToTheSameResult() throws {
        let dir = try ProbeFixtures.tempDir("kill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try ProbeFixtures.images(40, in: dir, seed: 8)
        let args = ["probe"] + Self.model + ["--images", dir, "--layers", "layer1,output", "--units", "0-7", "--top", "4",
                                             "--batch", "2", "--checkpoint-every", "1", "--device", "cpu", "--quiet"]
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = args + ["--out", dir + "-killed"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let state = Probe.statePath(out: dir + "-killed", shard: .whole)
        defer { try? FileManager.default.removeItem(atPath: dir + "-killed"); try? FileManager.default.removeItem(atPath: dir + "-whole") }
        let deadline = Date().addingTimeInterval(120)
        var consumed = 0
        while Date() < deadline && process.isRunning {
            consumed = (try? ProbeState.read(state))?.consumed ?? 0
            if consumed >= 6 { break }
            usleep(5_000)
        }
        #expect(process.isRunning, "the run finished before it could be killed")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        let partial = try ProbeState.read(state)
        #expect(!partial.complete && partial.consumed > 0 && partial.consumed < 40)
        #expect(!FileManager.default.fileExists(atPath: dir + "-killed/probe.json"))
        let rerun = try CLITests.run(args + ["--out", dir + "-killed"])
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(rerun.stdout.contains("resumed at"), "\(rerun.stdout)")
        let whole = try CLITests.run(args + ["--out", dir + "-whole"])
        #expect(whole.status == 0, "\(whole.stderr)")
        #expect(try ProbeResult.read(dir + "-killed") == ProbeResult.read(dir + "-whole"))
    }

    /// Shards through the CLI (one through Slurm's variables) and probe-merge give the unsharded probe.json.
    @Test func cliShardsAndMerge() throws {
        let dir = try ProbeFixtures.tempDir("cli")
        defer { for s in ["", "-s", "-w", "-m"] { try? FileManager.default.removeItem(atPath: dir + s) } }
        _ = try ProbeFixtures.images(7, in: dir, seed: 9)
        let args = ["probe"] + Self.model + ["--images", dir, "--layers", "layer2", "--units", "3,5", "--top", "3", "--device", "cpu", "--quiet"]
        #expect(try CLITests.run(args + ["--out", dir + "-w"]).status == 0)
        let s0 = try CLITests.run(args + ["--out", dir + "-s", "--shard", "0/2"])
        let s1 = try CLITests.run(args + ["--out", dir + "-s"], environment: ["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MIN": "1"])
        #expect(s0.status == 0 && s1.status == 0, "\(s0.stderr) \(s1.stderr)")
        #expect(s1.stdout.contains("shard 1/2") && s1.stdout.contains("probe-merge"), "\(s1.stdout)")
        let m = try CLITests.run(["probe-merge", dir + "-s", "--out", dir + "-m"])
        #expect(m.status == 0, "\(m.stderr)")
        let a = try ProbeResult.read(dir + "-m"), b = try ProbeResult.read(dir + "-w")
        #expect(a.layers == b.layers && a.images == 7 && b.images == 7)
        #expect(FileManager.default.fileExists(atPath: dir + "-m/layer2/5.png"))
    }

    /// --baseline: visualize and atlas record the unit's dataset statistics; atlas-index shows the dataset examples.
    @Test func baselineInSidecarsAndAtlasIndex() throws {
        let dir = try ProbeFixtures.tempDir("baseline")
        defer { for s in ["", "-p", "-v", "-a"] { try? FileManager.default.removeItem(atPath: dir + s) } }
        _ = try ProbeFixtures.images(5, in: dir, seed: 10)
        let p = try CLITests.run(["probe"] + Self.model + ["--images", dir, "--layers", "layer2", "--units", "3,5", "--top", "2", "--device", "cpu", "--quiet", "--out", dir + "-p"])
        #expect(p.status == 0, "\(p.stderr)")
        let probe = try ProbeResult.read(dir + "-p/probe.json")
        let v = try CLITests.run(["visualize"] + Self.model + ["--layer", "layer2", "--unit", "3", "--steps", "2", "--no-baseline", "--quiet", "--device", "cpu",
                                                              "--baseline", dir + "-p/probe.json", "--out", dir + "-v"])
        #expect(v.status == 0, "\(v.stderr)")
        let jsons = try FileManager.default.contentsOfDirectory(atPath: dir + "-v").filter { $0.hasSuffix(".json") }
        #expect(jsons.count == 1)
        let record = try JSONDecoder().decode(VisualizationSidecar.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "-v/" + jsons[0])))
        let b = try #require(record.datasetBaseline)
        let stats = try #require(probe.statistics["layer2"]?["3"])
        #expect(b.unit == 3 && b.layer == "layer2" && b.images == 5 && b.mean == stats.mean && b.max == stats.max)
        #expect(b.topValue == probe.layers["layer2"]?["3"]?.first?.value && b.topValue != 0)
        let a = try CLITests.run(["atlas"] + Self.model + ["--layers", "layer2", "--units", "3,5,7", "--steps", "2", "--image-size", "32", "--copies", "1",
                                                          "--batch", "3", "--quiet", "--device", "cpu", "--baseline", dir + "-p/probe.json", "--index", "--out", dir + "-a"])
        #expect(a.status == 0, "\(a.stderr)")
        #expect(a.stdout.contains("2 of 3 unit JSONs have the dataset reference"), "\(a.stdout)")
        let page = try String(contentsOfFile: dir + "-a/layer2/index.html", encoding: .utf8)
        #expect(page.contains("../dataset/layer2/5.png") && page.contains("../dataset/layer2/3.png") && !page.contains("../dataset/layer2/7.png"))
        #expect(try PNGFile.read(dir + "-a/dataset/layer2/5.png") == PNGFile.read(dir + "-p/layer2/5.png"))
    }
}
