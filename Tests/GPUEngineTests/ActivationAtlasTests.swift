import Foundation
import Testing
@testable import GPUEngine

/// `amgpu activation-atlas` in the engine: PCA through LAPACK against hand-computed cases, the seeded
/// reservoir, binning and averaging, one direction per image in an AM batch, and a tiny end-to-end atlas on
/// the random CNN of `VisualizeTests` over generated photos (rendered, resumed, sharded, assembled).
@Suite(.serialized) struct ActivationAtlasTests {
    static func tempDir(_ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("amgpu-actatlas-\(name)-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Six generated 40×40 photos (smooth gradients plus noise, so the CNN's positions differ), a text file
    /// and a truncated PNG.
    static func photos(_ name: String) throws -> String {
        let dir = try tempDir(name)
        var rng = SeededRandom(seed: 31)
        for i in 0..<6 {
            var pixels = [UInt8](repeating: 0, count: 40 * 40 * 3)
            for y in 0..<40 {
                for x in 0..<40 {
                    for c in 0..<3 {
                        let base = Double((x * (i + 1) + y * (6 - i) + c * 40 * i) % 256)
                        pixels[(y * 40 + x) * 3 + c] = UInt8(max(0, min(255, base + Double(rng.uniform(-30, 30)))))
                    }
                }
            }
            try PNGFile.write(RGBImage(width: 40, height: 40, pixels: pixels), to: "\(dir)/photo\(i).png")
        }
        try Data("not a photo\n".utf8).write(to: URL(fileURLWithPath: "\(dir)/notes.txt"))
        let png = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/photo0.png"))
        try png.prefix(png.count / 2).write(to: URL(fileURLWithPath: "\(dir)/zz-truncated.png"))
        return dir
    }

    // MARK: PCA

    @Test func symmetricEigenOfAKnownMatrix() throws {
        // [[2,1,0],[1,2,0],[0,0,5]]: eigenvalues 1, 3, 5 with vectors (1,−1,0)/√2, (1,1,0)/√2, (0,0,1).
        let (values, vectors) = try PCA.symmetricEigen([2, 1, 0, 1, 2, 0, 0, 0, 5], order: 3)
        for (v, e) in zip(values, [Float(1), 3, 5]) { #expect(abs(v - e) < 1e-5, "eigenvalues \(values)") }
        let r = Float(0.5).squareRoot()
        let expected: [[Float]] = [[r, -r, 0], [r, r, 0], [0, 0, 1]]
        for j in 0..<3 {
            let v = Array(vectors[(j * 3)..<(j * 3 + 3)])
            let dot = zip(v, expected[j]).map { $0 * $1 }.reduce(0, +)
            #expect(abs(abs(dot) - 1) < 1e-5, "eigenvector \(j): \(v)")
        }
    }

    /// Points c + aᵢ·u + bᵢ·w on a plane with orthonormal u = (2,3,6)/7, w = (3,−6,2)/7, a = (−3,−1,1,3,0,0)·k,
    /// b = (1,−1,−1,1,0,0) (Σa = Σb = Σab = 0): the components are u and −w (sign-normalized: the largest
    /// entry of w is −6/7), the variances Σa²/(n−1) and Σb²/(n−1), the coordinates (aᵢ, −bᵢ).
    @Test func pcaRecoversAPlaneWithKnownAxesAndSigns() throws {
        let u: [Float] = [2, 3, 6].map { $0 / 7 }, w: [Float] = [3, -6, 2].map { $0 / 7 }, c: [Float] = [1, -2, 0.5]
        let a: [Float] = [-3, -1, 1, 3, 0, 0].map { $0 * 2 }, b: [Float] = [1, -1, -1, 1, 0, 0]
        let n = a.count
        var x = [Float]()
        for i in 0..<n { for j in 0..<3 { x.append(c[j] + a[i] * u[j] + b[i] * w[j]) } }
        let pca = try PCA.fit(x, count: n, dimension: 3, components: 2)
        for j in 0..<3 {
            #expect(abs(pca.mean[j] - c[j]) < 1e-5)
            #expect(abs(pca.components[0][j] - u[j]) < 1e-4, "first component \(pca.components[0])")
            #expect(abs(pca.components[1][j] + w[j]) < 1e-4, "second component \(pca.components[1]) (sign-normalized −w)")
        }
        let va = a.map { $0 * $0 }.reduce(0, +) / Float(n - 1), vb = b.map { $0 * $0 }.reduce(0, +) / Float(n - 1)
        #expect(abs(pca.explainedVariance[0] - va) < 1e-4 && abs(pca.explainedVariance[1] - vb) < 1e-4, "\(pca.explainedVariance)")
        #expect(abs(pca.totalVariance - (va + vb)) < 1e-4)
        for i in 0..<n {
            #expect(abs(pca.coordinates[i * 2] - a[i]) < 1e-4 && abs(pca.coordinates[i * 2 + 1] + b[i]) < 1e-4, "point \(i)")
        }
        #expect(throws: EngineError.self) { try PCA.fit([1, 2, 3], count: 1, dimension: 3) }
        #expect(throws: EngineError.self) { try PCA.fit([1, .nan, 3, 4], count: 2, dimension: 2) }
    }

    // MARK: Sampling

    static let cnnLayer = SpatialLayer(name: "s", kind: .cnn, dimension: 3, height: 2, width: 3, prefixTokens: 0)

    /// Image i's [3, 2, 3] map: value 100·i + 10·c + position.
    static func cnnActivation(_ i: Int) -> [Float] {
        (0..<3).flatMap { ch in (0..<6).map { Float(100 * i + 10 * ch + $0) } }
    }

    static func sampleCNN(samples: Int, seed: UInt64, images: Int = 5) throws -> ActivationSamples {
        var s = try ActivationSampler(layer: cnnLayer, samples: samples, seed: seed, inputHeight: 12, inputWidth: 12)
        for i in 0..<images { try s.add(image: "img\(i)", activation: cnnActivation(i)[...], logits: nil) }
        return try s.finish(skipped: [])
    }

    @Test func reservoirKeepsEveryPositionWhenItFitsInStreamOrder() throws {
        let all = try Self.sampleCNN(samples: 40, seed: 1)
        #expect(all.count == 30 && all.positionsSeen == 30 && all.imagesUsed == 5)
        for (k, p) in all.positions.enumerated() {
            #expect(p.image == k / 6 && p.y == (k % 6) / 3 && p.x == k % 3, "position \(k): \(p)")
            let at = p.y * 3 + p.x
            #expect(Array(all.vector(k)) == (0..<3).map { Float(100 * p.image + 10 * $0 + at) }, "vector \(k)")
            // Stride cells of a 2×3 grid on 12×12 pixels: 6 rows, 4 columns each.
            #expect(p.box == [p.x * 4, p.y * 6, p.x * 4 + 4, p.y * 6 + 6])
        }
    }

    @Test func reservoirIsSeededAndUniform() throws {
        let a = try Self.sampleCNN(samples: 7, seed: 9), b = try Self.sampleCNN(samples: 7, seed: 9), c = try Self.sampleCNN(samples: 7, seed: 10)
        #expect(a.positions == b.positions && a.vectors == b.vectors, "same seed, same sample")
        #expect(a.positions != c.positions, "another seed, another sample")
        #expect(a.count == 7 && a.positionsSeen == 30)
        // Each of the 30 positions is kept with probability 7/30 ≈ 0.233 (2000 seeds: ±0.05 is > 5 standard deviations).
        var hits = [Int](repeating: 0, count: 30)
        for seed in 0..<2000 {
            for p in try Self.sampleCNN(samples: 7, seed: UInt64(seed)).positions { hits[p.image * 6 + p.y * 3 + p.x] += 1 }
        }
        for (i, h) in hits.enumerated() { #expect(abs(Double(h) / 2000 - 7.0 / 30) < 0.05, "position \(i) kept \(h) of 2000 times") }
    }

    @Test func tokenLayersSampleThePatchTokensOnly() throws {
        let layer = SpatialLayer(name: "t", kind: .tokens, dimension: 2, height: 2, width: 2, prefixTokens: 1)
        var s = try ActivationSampler(layer: layer, samples: 100, seed: 0, inputHeight: 8, inputWidth: 8)
        // Token 0 (CLS) holds 99s, which must never be sampled; patch token t holds (t, −t).
        for i in 0..<3 {
            var a: [Float] = [99, 99]
            for t in 1...4 {
                let v = Float(t + 10 * i)
                a += [v, -v]
            }
            try s.add(image: "p\(i)", activation: a[...], logits: nil)
        }
        let r = try s.finish(skipped: [])
        #expect(r.count == 12 && !r.vectors.contains(99))
        for (k, p) in r.positions.enumerated() {
            let t = p.y * 2 + p.x + 1
            #expect(Array(r.vector(k)) == [Float(t + 10 * p.image), -Float(t + 10 * p.image)])
        }
    }

    @Test func samplingThroughTheModelIsBatchIndependentAndListsBadFiles() throws {
        let dir = try Self.photos("stream")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let listing = try ImageFolder.list(dir)
        #expect(listing.images.count == 7 && listing.skipped.count == 1)
        var results: [ActivationSamples] = []
        for batch in [2, 3] {
            let model = try VisualizeTests.tinyModel(batch: batch)
            let layer = try SpatialLayer(model: model, layer: "conv2")
            #expect(layer.kind == .cnn && layer.dimension == 16 && layer.height == 16 && layer.width == 16)
            #expect(layer.field != nil, "conv2's receptive field is traced")
            results.append(try ActivationSampler.sample(model: model, backend: Backends.cpu, layer: layer, paths: listing.images,
                                                        skipped: listing.skipped, samples: 200, seed: 4))
        }
        let (a, b) = (results[0], results[1])
        #expect(a.images.count == 6 && a.positionsSeen == 6 * 256 && a.count == 200)
        #expect(a.skipped.map { ($0.path as NSString).lastPathComponent } == ["notes.txt", "zz-truncated.png"])
        #expect(a.positions == b.positions)
        #expect(zip(a.vectors, b.vectors).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($0)) }, "batch 2 and batch 3 give the same sample")
        #expect(a.vectors.contains { $0 != 0 })
        // conv2 (3×3, stride 2, pad 1 after a 3×3 pad-1 conv): position (y, x) sees input rows 2y−2 … 2y+2.
        let p = try #require(a.positions.first { $0.y == 5 && $0.x == 7 } ?? a.positions.first { $0.y > 0 && $0.x > 0 })
        #expect(p.box == [2 * p.x - 2, 2 * p.y - 2, 2 * p.x + 3, 2 * p.y + 3], "box \(p.box) at (\(p.y), \(p.x))")
        #expect(throws: EngineError.self) { try SpatialLayer(model: VisualizeTests.tinyModel(batch: 1), layer: "fc") }
    }

    @Test func classFilterKeepsOnlyPhotosOfTheClass() throws {
        let dir = try Self.photos("class")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let paths = try ImageFolder.list(dir).images
        let model = try VisualizeTests.tinyModel(batch: 2)
        let layer = try SpatialLayer(model: model, layer: "conv2")
        let all = try ActivationSampler.sample(model: model, backend: Backends.cpu, layer: layer, paths: paths, samples: 50, seed: 1)
        let predicted = all.predictedClass.compactMap { $0 }
        #expect(predicted.count == 6)
        let cls = try #require(predicted.first)
        let filtered = try ActivationSampler.sample(model: model, backend: Backends.cpu, layer: layer, paths: paths, samples: 5000, seed: 1, classFilter: cls)
        let wanted = predicted.filter { $0 == cls }.count
        #expect(filtered.imagesUsed == wanted && filtered.positionsSeen == wanted * 256)
        #expect(filtered.positions.allSatisfy { filtered.predictedClass[$0.image] == cls })
        let absent = (0..<10).first { !predicted.contains($0) }
        if let absent {
            #expect(throws: EngineError.self) { try ActivationSampler.sample(model: model, backend: Backends.cpu, layer: layer, paths: paths, samples: 5, seed: 1, classFilter: absent) }
        }
    }

    // MARK: Grid

    @Test func gridBinsAndAveragesByHand() throws {
        // Grid 2 over [0, 1]²: column ⌊2u⌋, row 1 − ⌊2v⌋ (clamped); vectors (i, 10 i).
        let layout: [Float] = [0, 0, 1, 1, 0, 1, 1, 0, 0.2, 0.1, 0.9, 0.95]
        let vectors: [Float] = (0..<6).flatMap { [Float($0), Float(10 * $0)] }
        let cells = try ActivationGrid.bin(layout: layout, vectors: vectors, count: 6, dimension: 2, grid: 2)
        #expect(cells.map(\.index) == [0, 1, 2, 3] && cells.map(\.count) == [1, 2, 2, 1])
        #expect(cells.map(\.row) == [0, 0, 1, 1] && cells.map(\.column) == [0, 1, 0, 1])
        #expect(cells.map(\.mean) == [[2, 20], [3, 30], [2, 20], [3, 30]])
        #expect(cells.map(\.nearest) == [[2], [1, 5], [0, 4], [3]])
        let dense = try ActivationGrid.bin(layout: layout, vectors: vectors, count: 6, dimension: 2, grid: 2, minCount: 2)
        #expect(dense.map(\.index) == [1, 2])
        // A layout with no spread on one axis puts every point in the middle column.
        let flat = try ActivationGrid.bin(layout: [0, 0, 0, 1, 0, 2], vectors: [1, 2, 3], count: 3, dimension: 1, grid: 3)
        #expect(flat.map(\.column) == [1, 1, 1] && flat.map(\.row) == [0, 1, 2] && flat.map(\.mean) == [[3], [2], [1]])
        #expect(throws: EngineError.self) { try ActivationGrid.bin(layout: layout, vectors: vectors, count: 6, dimension: 2, grid: 0) }
        #expect(throws: EngineError.self) { try ActivationGrid.bin(layout: [0, .nan], vectors: [1], count: 1, dimension: 1, grid: 2) }
    }

    /// photoClasses counts the model's top-1 class of each member's photo, most frequent first (ties: lower
    /// class first), at most three, and skips photos without a prediction.
    @Test func photoClassesCountTheMembersPhotosClassesByHand() throws {
        // Photos 0…4 predicted 7, 2, 7, nil, 5; members' photos: 0, 0, 1, 2, 3, 4, 1, 4 → 7: 3, 2: 2, 5: 2 (nil: 1 not counted).
        let photos = [0, 0, 1, 2, 3, 4, 1, 4, 2]
        let s = ActivationSamples(layer: "l", dimension: 1, images: (0..<5).map { "p\($0)" }, predictedClass: [7, 2, 7, nil, 5],
                                  skipped: [], positionsSeen: 9, imagesUsed: 5,
                                  positions: photos.map { ActivationSamplePosition(image: $0, y: 0, x: 0, box: [0, 0, 1, 1]) },
                                  vectors: photos.map(Float.init))
        let shares = ActivationAtlas.photoClasses(members: Array(0..<8), samples: s, className: { "c\($0)" })
        #expect(shares.map(\.index) == [7, 2, 5] && shares.map(\.samples) == [3, 2, 2] && shares.map(\.name) == ["c7", "c2", "c5"])
        let expectedFractions: [Float] = [0.375, 0.25, 0.25]
        #expect(shares.map(\.fraction) == expectedFractions)
        let one = ActivationAtlas.photoClasses(members: [4, 5], samples: s, className: { "c\($0)" })   // photos 3 (no class), 4 (5)
        #expect(one.map(\.index) == [5] && one.map(\.samples) == [1] && one.map(\.fraction) == [0.5])
        #expect(ActivationAtlas.photoClasses(members: [4], samples: s, className: { "c\($0)" }).isEmpty)
        // A tie (photos 2 → 7 and 4 → 5, one sample each) lists the lower class first.
        #expect(ActivationAtlas.photoClasses(members: [3, 5], samples: s, className: { "c\($0)" }).map(\.index) == [5, 7])
    }

    // MARK: The head after a layer

    /// `LayerHead`: after conv2 of the tiny CNN only global pooling and the linear classifier follow, so the head of a
    /// constant map v is v·W by hand; after conv1 the head of an image's real conv1 map gives the model's own logits;
    /// a skip connection around the layer, the output itself and a batch above 1 are refused.
    @Test func layerHeadIsTheRestOfTheNetwork() throws {
        let model = try VisualizeTests.tinyModel(batch: 1)
        let cpu = Backends.cpu
        let g = model.graph
        let w = try #require(g.value(named: "fc.weight").flatMap { g.constants[$0] })   // [16, 10]
        var rng = SeededRandom(seed: 12)
        let v = (0..<16).map { _ in rng.uniform(-2, 2) }
        let head2 = try LayerHead(model: model, layer: model.resolve(layer: "conv2"))
        #expect(head2.inputShape == [1, 16, 16, 16])
        let logits = try head2.run(constantMap: v, backend: cpu)
        let byHand = (0..<10).map { k in (0..<16).reduce(Float(0)) { $0 + v[$1] * w.values[$1 * 10 + k] } }
        #expect(logits.count == 10 && byHand.contains { abs($0) > 0.1 })
        for k in 0..<10 { #expect(abs(logits[k] - byHand[k]) <= 1e-5 * max(1, abs(byHand[k])), "logit \(k): \(logits[k]) vs \(byHand[k])") }

        let image = rng.tensor([1, 3, 32, 32])
        let runner = try ModelRunner(model: model, backend: cpu)
        let conv1 = try model.resolve(layer: "conv1")
        let full = try runner.run(image, layers: [conv1, model.output])
        let a1 = try #require(full[conv1]), want = try #require(full[model.output]?.values)
        let head1 = try LayerHead(model: model, layer: conv1)
        let got = try head1.run(a1, backend: cpu)
        #expect(want.contains { abs($0) > 0.01 })
        for k in 0..<10 { #expect(abs(got[k] - want[k]) <= 1e-5 * max(1, abs(want[k])), "logit \(k): \(got[k]) vs \(want[k])") }
        // The constant map after conv1 is not the same as after conv2 (conv2 sees zero padding): a different function.
        #expect(throws: EngineError.self) { try head1.run(constantMap: v, backend: cpu) }   // 16 entries for 8 channels
        #expect(throws: EngineError.self) { try LayerHead(model: model, layer: model.output) }
        #expect(throws: EngineError.self) { try LayerHead(model: model, layer: model.input) }
        #expect(throws: EngineError.self) { try LayerHead(model: VisualizeTests.tinyModel(batch: 2), layer: conv1) }

        // x → a = conv(x) → b = conv(a) → a + b → pool → fc: the output reaches a without b, so no head after b; after a, yes.
        let sg = Graph()
        let x = try sg.addInput("image", shape: [1, 3, 8, 8])
        let a = try sg.add(Conv2D(pads: Padding2D(1)), [x, sg.addConstant("wa", rng.tensor([4, 3, 3, 3]))], name: "a")
        let b = try sg.add(Conv2D(pads: Padding2D(1)), [a, sg.addConstant("wb", rng.tensor([4, 4, 3, 3]))], name: "b")
        let sum = try sg.add(Binary(.add), [a, b], name: "sum")
        let pooled = try sg.add(Reshape(shape: [1, 4]), [sg.add(GlobalAveragePool(), [sum], name: "pool")], name: "flat")
        let out = try sg.add(MatMul(), [pooled, sg.addConstant("fc.weight", rng.tensor([4, 3]))], name: "fc")
        let skip = Model(name: "skip", graph: sg, input: x, output: out, family: .cnn, preprocessing: .imagenet(8),
                         aliases: ["a": a, "b": b], recommended: [], source: "test")
        #expect(throws: EngineError.self) { try LayerHead(model: skip, layer: b) }
        let afterA = try LayerHead(model: skip, layer: a)
        let skipRun = try ModelRunner(model: skip, backend: cpu).run(rng.tensor([1, 3, 8, 8]), layers: [a, out])
        let headOut = try afterA.run(#require(skipRun[a]), backend: cpu), skipOut = try #require(skipRun[out]?.values)
        for k in 0..<3 { #expect(abs(headOut[k] - skipOut[k]) <= 1e-5 * max(1, abs(skipOut[k]))) }
    }

    // MARK: One direction per image

    /// A batch of two images with two directions scores each image as a batch of one with its own direction
    /// does, and the runner puts cells of different directions in one batch.
    @Test func perImageDirectionsScoreEachImageAgainstItsOwnDirection() throws {
        var rng = SeededRandom(seed: 8)
        let d1 = (0..<16).map { _ in rng.uniform(-1, 1) }, d2 = (0..<16).map { _ in rng.uniform(-1, 1) }
        let input = rng.tensor([2, 3, 32, 32])
        func term(_ v: [Float]) -> ObjectiveTerm {
            var t = ObjectiveTerm(kind: .direction, layer: "conv2", units: [])
            t.direction = v
            return t
        }
        let cpu = Backends.cpu
        let both = try ObjectiveEvaluator(model: VisualizeTests.tinyModel(batch: 2), objective: Objective(terms: [term(d1 + d2)]), backend: cpu)
        let scores = try cpu.download(both.evaluate(cpu.tensor(input), gradient: false).scores).values
        for (i, v) in [d1, d2].enumerated() {
            let one = try ObjectiveEvaluator(model: VisualizeTests.tinyModel(batch: 1), objective: Objective(terms: [term(v)]), backend: cpu)
            let image = HostTensor(shape: [1, 3, 32, 32], values: Array(input.values[(i * 3072)..<((i + 1) * 3072)]))
            let alone = try cpu.download(one.evaluate(cpu.tensor(image), gradient: false).scores).values[0]
            #expect(abs(scores[i] - alone) <= 1e-5 * max(1, abs(alone)), "image \(i): \(scores[i]) vs \(alone)")
            #expect(alone != 0)
        }
        #expect(abs(scores[0] - scores[1]) > 1e-6, "the two directions give different scores")
        let jobs = [d1, d2].enumerated().map { i, v in
            AMJob(term: term(v), unit: i, imagePath: "/x/\(i).png", imageName: "\(i).png", recordPath: "/x/\(i).json")
        }
        #expect(AMBatchRunner.batches(jobs, size: 4).map { $0.jobs.count } == [2])
        let runner = try AMBatchRunner(settings: AMRunSettings(preset: VisualizeTests.tinyRequest().preset, batchSize: 2, seeding: .perBatch(0),
                                                               recordedObjective: .unit, failurePolicy: .stop, modelSHA256: nil, amgpuVersion: "test"),
                                       devices: [.cpu]) { try VisualizeTests.tinyModel(batch: $0) }
        #expect(runner.objective(of: jobs).terms[0].direction == d1 + d2)
        #expect(runner.objective(of: [jobs[0]]).terms[0].direction == d1)
    }

    // MARK: End to end

    static func settings(dir: String, grid: Int = 3, layout: String = "pca") -> ActivationAtlasSettings {
        var preset = VisualizeTests.tinyRequest(steps: 2).preset
        preset.transforms.copies = 1
        return ActivationAtlasSettings(model: "tiny", modelName: "tiny", modelSHA256: nil, layer: "conv2", images: dir, samples: 300, seed: 5,
                                       className: nil, classIndex: nil, grid: grid, minCount: 1, layout: layout, preset: preset)
    }

    static func makePlan(out: String, photos: String, settings: ActivationAtlasSettings,
                         source: ActivationAtlasLayoutSource = .pca) throws -> (ActivationAtlasPlan, Bool) {
        let model = try VisualizeTests.tinyModel(batch: 2)
        let layer = try SpatialLayer(model: model, layer: "conv2")
        let listing = try ImageFolder.list(photos)
        let r = try ActivationAtlas.loadOrCreatePlan(out: out, settings: settings) {
            let s = try ActivationAtlas.samples(out: out, settings: settings) {
                try ActivationSampler.sample(model: model, backend: Backends.cpu, layer: layer, paths: listing.images,
                                             skipped: listing.skipped, samples: settings.samples, seed: settings.seed)
            }
            return try ActivationAtlas.plan(samples: s, settings: settings, layer: layer, layerShape: [16, 16, 16], family: .cnn,
                                            source: source, amgpuVersion: "test")
        }
        return (r.plan, r.created)
    }

    static func render(_ plan: ActivationAtlasPlan, out: String, shard: AtlasShard = .whole) throws -> ActivationAtlasRenderSummary {
        try ActivationAtlas.render(plan: plan, out: out, shard: shard, batch: 4, devices: [.cpu], seed: plan.settings.seed, amgpuVersion: "test") {
            try VisualizeTests.tinyModel(batch: $0)
        }
    }

    @Test func tinyAtlasRendersResumesShardsAndAssembles() throws {
        let photos = try Self.photos("e2e-photos")
        let root = try Self.tempDir("e2e")
        defer {
            try? FileManager.default.removeItem(atPath: photos)
            try? FileManager.default.removeItem(atPath: root)
        }
        let whole = root + "/whole", sharded = root + "/sharded"
        for dir in [whole, sharded] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let settings = Self.settings(dir: photos)
        let (plan, created) = try Self.makePlan(out: whole, photos: photos, settings: settings)
        #expect(created && plan.sampleCount == 300 && plan.imagesRead == 6 && plan.skipped.count == 2)
        #expect(plan.layout.method == "pca" && plan.layout.explainedVariance?.count == 2)
        if let ev = plan.layout.explainedVariance { #expect(ev[0] >= ev[1] && ev[1] > 0) }
        #expect(plan.cells.count >= 3 && plan.cells.count <= 9 && plan.cells.map(\.count).reduce(0, +) == 300)
        #expect(plan.boxes.contains("receptive field"))
        // The cell means are the means of the members' vectors: check one cell against the saved samples.
        let samples = try NPYFile.read(whole + "/samples.npy")
        let coords = try NPYFile.read(whole + "/layout.npy")
        #expect(samples.shape == [300, 16] && coords.shape == [300, 2])
        let regrid = try ActivationGrid.bin(layout: coords.values, vectors: samples.values, count: 300, dimension: 16, grid: 3)
        #expect(regrid.map(\.mean) == plan.cells.map(\.mean) && regrid.map(\.count) == plan.cells.map(\.count))
        // Planning again reuses the plan; other settings are refused.
        #expect(try Self.makePlan(out: whole, photos: photos, settings: settings).1 == false)
        #expect(throws: EngineError.self) { try Self.makePlan(out: whole, photos: photos, settings: Self.settings(dir: photos, grid: 4)) }
        #expect(throws: EngineError.self) { try ActivationAtlasAssembly.assemble(out: whole, model: nil, backend: nil) }

        let all = Set(plan.cells.map(\.index))
        let first = try Self.render(plan, out: whole)
        #expect(first.rendered == plan.cells.count && first.failed.isEmpty && first.skipped == 0)
        #expect(ActivationAtlas.doneCells(plan, out: whole) == all)
        let record = try JSONDecoder().decode(VisualizationSidecar.self, from: Data(contentsOf: URL(fileURLWithPath: "\(whole)/cells/\(plan.cells[0].index).json")))
        #expect(record.objective.terms.first?.kind == .direction && record.objective.terms.first?.direction == plan.cells[0].mean)

        // Resume: a lost JSON and a killed run's temporary; only that cell is rendered again.
        let lost = plan.cells[plan.cells.count / 2].index
        try FileManager.default.removeItem(atPath: "\(whole)/cells/\(lost).json")
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: "\(whole)/cells/.\(lost).png.tmp-2147483000-abc-\(currentHostName())"))
        let again = try Self.render(plan, out: whole)
        #expect(again.rendered == 1 && again.skipped == plan.cells.count - 1 && again.removedTemporaries == 1)
        #expect(ActivationAtlas.doneCells(plan, out: whole) == all)

        // Shards into another folder with the same plan: shard 0 alone renders positions ≡ 0 mod 2; both cover every cell.
        try ActivationAtlas.writePlan(plan, out: sharded)
        let s0 = try Self.render(plan, out: sharded, shard: AtlasShard(index: 0, count: 2))
        let even = Set(stride(from: 0, to: plan.cells.count, by: 2).map { plan.cells[$0].index })
        #expect(s0.rendered == even.count && ActivationAtlas.doneCells(plan, out: sharded) == even)
        let s1 = try Self.render(plan, out: sharded, shard: AtlasShard(index: 1, count: 2))
        #expect(s1.rendered == plan.cells.count - even.count)
        #expect(ActivationAtlas.doneCells(plan, out: sharded) == ActivationAtlas.doneCells(plan, out: whole))

        // Assembly: the grid PNG, the page, patches and top classes.
        let result = try ActivationAtlasAssembly.assemble(out: whole, model: VisualizeTests.tinyModel(batch: 1), backend: Backends.cpu,
                                                          tile: 16, patches: 2)
        let png = try PNGFile.read(result.png)
        #expect(png.width == 48 && png.height == 48)
        for row in 0..<3 {
            for column in 0..<3 {
                let tile = (0..<16).flatMap { y in (0..<16 * 3).map { png.pixels[((row * 16 + y) * 48 + column * 16) * 3 + $0] } }
                let filled = all.contains(row * 3 + column)
                #expect(filled == tile.contains { $0 != 255 }, "cell (\(row), \(column)) filled \(filled)")
            }
        }
        let html = try String(contentsOfFile: result.html, encoding: .utf8)
        for i in all { #expect(html.contains("src=\"cells/\(i).png\"") && html.contains("id=\"cell-\(i)\"")) }
        #expect(html.contains("PCA (LAPACK ssyevd") && html.contains("Top classes of the rendered image"))
        let assembled = try ActivationAtlas.readPlan(whole)
        #expect(assembled.cells.allSatisfy { $0.topClasses?.count == 3 } && assembled.classes != nil)
        // The head on each cell's mean vector: conv2 → global pool → fc, so softmax(mean·W) by hand.
        let fc = try VisualizeTests.tinyModel(batch: 1).graph
        let w = try #require(fc.value(named: "fc.weight").flatMap { fc.constants[$0] })
        #expect(assembled.meanClassesNote?.contains("mean vector") == true && html.contains("Top classes of the mean vector"))
        for cell in assembled.cells {
            let logits = (0..<10).map { k in (0..<16).reduce(Float(0)) { $0 + cell.mean[$1] * w.values[$1 * 10 + k] } }
            let p = softmax(logits)
            let order = p.indices.sorted { p[$0] > p[$1] }
            let got = try #require(cell.meanClasses)
            #expect(got.map(\.index) == Array(order.prefix(3)), "cell \(cell.index): \(got.map(\.index)) vs \(order.prefix(3))")
            for c in got { #expect(abs(c.probability - p[c.index]) <= 1e-5 && abs(c.logit - logits[c.index]) <= 1e-4 * max(1, abs(logits[c.index]))) }
        }
        #expect(html.contains("Classes of the photos its samples come from"))
        let tinyNames = try VisualizeTests.tinyModel(batch: 1)
        // photoClasses against the saved samples' predictions, counted here over each re-binned cell's members.
        let saved = try JSONDecoder().decode(ActivationAtlas.SamplesRecord.self, from: Data(contentsOf: URL(fileURLWithPath: whole + "/samples.json")))
        #expect(saved.predictedClass.allSatisfy { $0 != nil } && assembled.photoClassesNote?.contains("top-1") == true)
        for (cell, re) in zip(assembled.cells, regrid) {
            var counts: [Int: Int] = [:]
            for i in re.members { if let k = saved.predictedClass[saved.positions[i].image] { counts[k, default: 0] += 1 } }
            let best = try #require(counts.values.max())
            let shares = try #require(cell.photoClasses)
            #expect(re.members.count == cell.count && shares.first?.samples == best && shares.count == min(3, counts.count))
            for share in shares {
                let fraction = Float(share.samples) / Float(cell.count)
                let name = tinyNames.className(share.index)
                #expect(counts[share.index] == share.samples)
                #expect(share.fraction == fraction && share.name == name)
            }
        }
        let patchFiles = assembled.cells.flatMap { $0.nearest.compactMap(\.file) }
        #expect(result.patches == patchFiles.count && patchFiles.count >= plan.cells.count)
        for f in patchFiles { #expect(try PNGFile.read("\(whole)/patches/\(f)").width == 64) }

        // A layout from a file ([n, 2]): recorded as such, with its sidecar's parameters; a wrong shape is refused.
        let external = root + "/external"
        try FileManager.default.createDirectory(atPath: external, withIntermediateDirectories: true)
        try NPYFile.write(HostTensor(shape: [300, 2], values: (0..<600).map { Float(($0 * 7919) % 101) }), to: root + "/umap.npy")
        try Data("{\"method\": \"umap\", \"n_neighbors\": 15}".utf8).write(to: URL(fileURLWithPath: root + "/umap.json"))
        let (filePlan, _) = try Self.makePlan(out: external, photos: photos, settings: Self.settings(dir: photos, layout: root + "/umap.npy"),
                                              source: .file(root + "/umap.npy"))
        #expect(filePlan.layout.method == "file" && filePlan.layout.parameters?["n_neighbors"] == "15")
        try NPYFile.write(HostTensor(shape: [299, 2], values: [Float](repeating: 1, count: 598)), to: root + "/short.npy")
        let s = try ActivationAtlas.samples(out: external, settings: Self.settings(dir: photos, layout: root + "/umap.npy")) {
            throw EngineError.invalidInput("the cached samples should have been reused")
        }
        #expect(throws: EngineError.self) { try ActivationAtlas.layoutCoordinates(s, source: .file(root + "/short.npy")) }
    }

    // MARK: The binary

    /// The real binary: SIGKILL mid-run, rerun — every cell exactly once, finished cells untouched, the killed run's
    /// temporary removed, the atlas assembled; and two Slurm array shards into one folder give the unsharded cell set.
    @Test func killedRunResumesAndSlurmShardsCoverTheSameCells() throws {
        let photos = try Self.photos("cli-photos")
        let root = try Self.tempDir("cli")
        defer {
            try? FileManager.default.removeItem(atPath: photos)
            try? FileManager.default.removeItem(atPath: root)
        }
        let base = ["activation-atlas", "--model", "random:resnet18", "--size", "32", "--images", photos, "--layer", "layer1",
                    "--grid", "4", "--samples", "300", "--steps", "10", "--image-size", "32", "--copies", "1", "--tile", "16",
                    "--device", "cpu", "--quiet"]
        let dir = root + "/killed"
        let args = base + ["--batch", "1", "--out", dir]
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = args
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(180)
        while Date() < deadline && process.isRunning {
            let done = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/cells"))?.filter { $0.hasSuffix(".json") }.count ?? 0
            if done >= 2 { break }
            usleep(5_000)
        }
        #expect(process.isRunning, "the run finished before it could be killed; make it slower")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let plan = try ActivationAtlas.readPlan(dir)
        let partial = ActivationAtlas.doneCells(plan, out: dir)
        #expect(!partial.isEmpty && partial.count < plan.cells.count, "\(partial.count) of \(plan.cells.count) cells done at the kill")
        var mtimes: [Int: Date] = [:]
        for i in partial { mtimes[i] = try FileManager.default.attributesOfItem(atPath: "\(dir)/cells/\(i).json")[.modificationDate] as? Date }
        let stale = "\(dir)/cells/.\(plan.cells.last?.index ?? 0).png.tmp-\(process.processIdentifier)-12345-\(currentHostName())"
        try Data([0x89, 0x50, 0x4e]).write(to: URL(fileURLWithPath: stale))

        let rerun = try CLITests.run(args)
        #expect(rerun.status == 0, "\(rerun.stderr)")
        let counts = AtlasTests.summaryCounts(rerun.stdout, command: "activation-atlas")
        #expect(counts?.skipped == partial.count && counts?.rendered == plan.cells.count - partial.count && counts?.failed == 0, "\(rerun.stdout)")
        #expect(ActivationAtlas.doneCells(plan, out: dir) == Set(plan.cells.map(\.index)))
        for (i, date) in mtimes {
            #expect(try FileManager.default.attributesOfItem(atPath: "\(dir)/cells/\(i).json")[.modificationDate] as? Date == date, "cell \(i) was rendered again")
        }
        #expect(!FileManager.default.fileExists(atPath: stale))
        #expect(FileManager.default.fileExists(atPath: dir + "/atlas.png") && FileManager.default.fileExists(atPath: dir + "/index.html"))

        // One --plan-only job plans (atlas.json, nothing rendered), then Slurm array tasks 1 and 2 of --array=1-2
        // (SLURM_ARRAY_TASK_MIN 1) render from that plan into one folder without planning again.
        let sharded = root + "/slurm"
        let planned = try CLITests.run(base + ["--batch", "4", "--out", sharded, "--plan-only"])
        #expect(planned.status == 0 && planned.stdout.contains("planned"), "\(planned.stdout)\(planned.stderr)")
        let planFile = sharded + "/atlas.json"
        let planBytes = try Data(contentsOf: URL(fileURLWithPath: planFile))
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: sharded + "/cells")) ?? []).isEmpty, "--plan-only rendered cells")
        #expect(!FileManager.default.fileExists(atPath: sharded + "/index.html"))
        let again = try CLITests.run(base + ["--batch", "4", "--out", sharded, "--plan-only"])
        #expect(again.status == 0 && again.stdout.contains("already there"), "\(again.stdout)")
        for task in ["1", "2"] {
            let r = try CLITests.run(base + ["--batch", "4", "--out", sharded],
                                     environment: ["SLURM_ARRAY_TASK_ID": task, "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MIN": "1"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains("shard \(Int(task)! - 1)/2"), "\(r.stdout)")
        }
        let shardedPlan = try ActivationAtlas.readPlan(sharded)
        #expect(shardedPlan.cells.map(\.mean) == (try JSONDecoder().decode(ActivationAtlasPlan.self, from: planBytes)).cells.map(\.mean), "the shards re-planned")
        #expect(shardedPlan.cells.allSatisfy { $0.photoClasses?.isEmpty == false && $0.meanClasses?.count == 3 }, "random:resnet18 has a head after layer1")
        #expect(shardedPlan.cells.map(\.index) == plan.cells.map(\.index) && shardedPlan.cells.map(\.count) == plan.cells.map(\.count))
        #expect(ActivationAtlas.doneCells(shardedPlan, out: sharded) == Set(plan.cells.map(\.index)))
        #expect(FileManager.default.fileExists(atPath: sharded + "/index.html"), "the shard that finished last assembled")
    }
}
