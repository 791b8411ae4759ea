import Foundation
import Testing
@testable import GPUEngine

/// The atlas: unit plan and shards (engine), and the real `amgpu atlas` binary killed with SIGKILL and resumed,
/// sharded, spread over two devices, and indexed into HTML.
@Suite(.serialized) struct AtlasTests {
    /// A small random-weight CNN at 32 px with tiny optimization settings: each unit costs milliseconds.
    static let model = ["--model", "random:resnet18", "--size", "32", "--weight-seed", "3"]
    static let fast = ["--steps", "3", "--image-size", "32", "--copies", "1", "--quiet"]

    static func tempDir(_ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("amgpu-atlas-\(name)-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Every (layer, unit) present as PNG+JSON, checking along the way that every PNG decodes, every JSON
    /// decodes and names its own layer, unit and image, and that no stray file (e.g. a temporary) is left.
    static func collect(_ dir: String, layers: [String], imageSide: Int = 32) throws -> [AtlasUnit] {
        var found: [AtlasUnit] = []
        let fm = FileManager.default
        for layer in layers {
            let names = try fm.contentsOfDirectory(atPath: dir + "/" + layer)
            let pngs = names.filter { $0.hasSuffix(".png") }, jsons = names.filter { $0.hasSuffix(".json") }
            let stray = names.filter { !$0.hasSuffix(".png") && !$0.hasSuffix(".json") && $0 != "thumbs" && $0 != "index.html" }
            #expect(stray.isEmpty, "stray files in \(layer): \(stray)")
            #expect(Set(pngs.map { $0.dropLast(4) }) == Set(jsons.map { $0.dropLast(5) }.filter { $0 != "probe" }),
                    "PNG and JSON sets differ in \(layer)")
            for png in pngs {
                let image = try PNGFile.read(dir + "/" + layer + "/" + png)
                #expect(image.width == imageSide && image.height == imageSide)
                #expect(Set(image.pixels).count > 1, "\(layer)/\(png) is one flat colour")
            }
            for json in jsons where json != "probe.json" {
                let record = try JSONDecoder().decode(VisualizationSidecar.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/" + layer + "/" + json)))
                #expect(record.layer == layer && "\(record.unit).json" == json && record.image == "\(record.unit).png")
                #expect(record.objective.terms.first?.units == [record.unit] && record.finalObjective.isFinite)
                #expect(record.batchUnits?.contains(record.unit) == true)
                found.append(AtlasUnit(layer: layer, unit: record.unit))
            }
        }
        return found
    }

    /// The counts of a sharded command's summary line (`COMMAND: shard … rendered R, skipped S …, failed F …`).
    static func summaryCounts(_ stdout: String, command: String = "atlas") -> (rendered: Int, skipped: Int, failed: Int)? {
        guard let line = stdout.split(separator: "\n").first(where: { $0.hasPrefix(command + ": shard") }) else { return nil }
        func n(_ key: String) -> Int? {
            guard let r = line.range(of: key + " ") else { return nil }
            return Int(line[r.upperBound...].prefix { $0.isNumber })
        }
        guard let a = n("rendered"), let b = n("skipped"), let c = n("failed") else { return nil }
        return (a, b, c)
    }

    // MARK: Plan and shards

    @Test func shardsPartitionTheUnitListExactly() throws {
        let units = (0..<37).map { AtlasUnit(layer: $0 < 20 ? "a" : "b", unit: $0 % 20) }
        for n in [1, 2, 3, 4, 7, 40] {
            let parts = try (0..<n).map { try AtlasShard(index: $0, count: n).select(units) }
            #expect(parts.flatMap { $0 }.count == units.count, "n = \(n): overlap or loss")
            #expect(Set(parts.flatMap { $0 }) == Set(units), "n = \(n)")
            #expect(parts.map(\.count).max()! - parts.map(\.count).min()! <= 1, "n = \(n): unbalanced")
        }
        #expect(try AtlasShard(parsing: "2/5") == AtlasShard(index: 2, count: 5))
        for bad in ["5/5", "-1/3", "1/0", "x", "1/2/3"] {
            #expect(throws: EngineError.self, "\(bad)") { try AtlasShard(parsing: bad) }
        }
    }

    @Test func shardsComeFromSlurmAndKubernetesVariables() throws {
        #expect(try AtlasShard.fromEnvironment([:]) == nil)
        #expect(try AtlasShard.fromEnvironment(["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4"]) == AtlasShard(index: 2, count: 4))
        // --array=1-4: the index is relative to SLURM_ARRAY_TASK_MIN.
        #expect(try AtlasShard.fromEnvironment(["SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"]) == AtlasShard(index: 3, count: 4))
        #expect(try AtlasShard.fromEnvironment(["JOB_COMPLETION_INDEX": "1"], count: 3) == AtlasShard(index: 1, count: 3))
        #expect(try AtlasShard.fromEnvironment(["JOB_COMPLETION_INDEX": "1", "AMGPU_SHARD_COUNT": "2"]) == AtlasShard(index: 1, count: 2))
        #expect(throws: EngineError.self) { try AtlasShard.fromEnvironment(["JOB_COMPLETION_INDEX": "1"]) }
        #expect(throws: EngineError.self) { try AtlasShard.fromEnvironment(["JOB_COMPLETION_INDEX": "3"], count: 3) }
        #expect(throws: EngineError.self) { try AtlasShard.fromEnvironment(["SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "4"]) }
    }

    @Test func planListsUnitsInLayerOrderAndRejectsBadSelections() throws {
        let model = try ModelLoader.load("random:resnet18", imageSize: 32)
        let layers = try AtlasPlan.layers(["layer2", "conv1", "output"], of: model)
        #expect(layers.map(\.unitCount) == [128, 64, 1000])
        #expect(layers.map(\.objective) == [.channel, .channel, .logit])
        let units = try AtlasPlan.units(of: layers, selecting: [3, 1, 3])
        #expect(units == ["layer2", "conv1", "output"].flatMap { l in [1, 3].map { AtlasUnit(layer: l, unit: $0) } })
        #expect(try AtlasPlan.units(of: layers, selecting: nil).count == 128 + 64 + 1000)
        #expect(throws: EngineError.self) { try AtlasPlan.units(of: layers, selecting: [64]) }
        #expect(throws: EngineError.self) { try AtlasPlan.layers(["conv1", "conv1"], of: model) }
        #expect(throws: EngineError.self) { try AtlasPlan.layers(["nope"], of: model) }
        #expect(throws: EngineError.self) { try AtlasPlan.layers([], of: model) }
        // Batches never mix layers and keep the order.
        let batches = AtlasRenderer.batches(units, size: 4)
        #expect(batches.map(\.count) == [2, 2, 2] && batches.allSatisfy { Set($0.map(\.layer)).count == 1 })
        #expect(AtlasRenderer.batchSeed(0, batches[0]) != AtlasRenderer.batchSeed(0, batches[1]))
        #expect(AtlasRenderer.batchSeed(7, batches[0]) == AtlasRenderer.batchSeed(7, batches[0]))
    }

    @Test func probeScoresAreTheSpatialMeanAndBoxesSitAtTheMaximum() {
        // [1, 2, 4, 4]: channel 1 peaks at (y 3, x 1).
        var values = (0..<32).map { Float($0 % 7) * 0.25 - 0.5 }
        values[16 + 3 * 4 + 1] = 9
        let (score, box) = AtlasProbe.unitResponse(HostTensor(shape: [1, 2, 4, 4], values: values), unit: 1)
        let mean = values[16..<32].reduce(0, +) / 16
        #expect(abs(score - mean) < 1e-6)
        // side 2/4 = 0.5, centred at (1.5/4, 3.5/4), clamped into the photo.
        #expect(box.count == 3 && abs(box[2] - 0.5) < 1e-12 && abs(box[0] - 0.125) < 1e-12 && abs(box[1] - 0.5) < 1e-12)
    }

    // MARK: The binary

    /// SIGKILL mid-run, rerun: every unit exactly once, every PNG decodes, JSONs match, finished units untouched,
    /// the killed run's temporaries removed.
    @Test func killedRunResumesWithoutLossOrRepeats() throws {
        let dir = try Self.tempDir("resume")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let layers = ["conv1", "layer1"]
        let args = ["atlas"] + Self.model + ["--layers", layers.joined(separator: ","), "--units", "0-9", "--batch", "2",
                                             "--devices", "cpu", "--out", dir, "--steps", "12",
                                             "--image-size", "32", "--copies", "1", "--quiet"]
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = args
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Kill as soon as some (not all) units are done.
        let deadline = Date().addingTimeInterval(120)
        var doneBefore = 0
        while Date() < deadline && process.isRunning {
            doneBefore = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/conv1"))?.filter { $0.hasSuffix(".json") }.count ?? 0
            if doneBefore >= 2 { break }
            usleep(5_000)
        }
        #expect(process.isRunning, "the run finished before it could be killed; make it slower")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        // What the killed run left: only whole files under final names.
        let partial = try Self.collect(dir, layers: layers)
        #expect(!partial.isEmpty && partial.count < 20, "\(partial.count) units done at the kill")
        var mtimes: [AtlasUnit: Date] = [:]
        for u in partial {
            mtimes[u] = try FileManager.default.attributesOfItem(atPath: "\(dir)/\(u.layer)/\(u.unit).json")[.modificationDate] as? Date
        }
        // A temporary as a kill in the middle of a write leaves it (the killed process is dead now).
        let stale = "\(dir)/conv1/.9.png.tmp-\(process.processIdentifier)-12345-\(currentHostName())"
        try Data([0x89, 0x50, 0x4e]).write(to: URL(fileURLWithPath: stale))

        let rerun = try CLITests.run(args)
        #expect(rerun.status == 0, "\(rerun.stderr)")
        let counts = Self.summaryCounts(rerun.stdout)
        #expect(counts?.skipped == partial.count && counts?.rendered == 20 - partial.count && counts?.failed == 0, "\(rerun.stdout)")
        #expect(rerun.stdout.contains("removed 1 temporary"), "\(rerun.stdout)")
        let all = try Self.collect(dir, layers: layers)
        #expect(all.count == 20 && Set(all) == Set(layers.flatMap { l in (0..<10).map { AtlasUnit(layer: l, unit: $0) } }))
        for (u, date) in mtimes {
            let now = try FileManager.default.attributesOfItem(atPath: "\(dir)/\(u.layer)/\(u.unit).json")[.modificationDate] as? Date
            #expect(now == date, "\(u) was rendered again")
        }
        #expect(!FileManager.default.fileExists(atPath: stale))
        // A third run has nothing to do.
        let third = try CLITests.run(args)
        #expect(Self.summaryCounts(third.stdout).map { $0.rendered == 0 && $0.skipped == 20 } == true, "\(third.stdout)")
    }

    /// n shards into one folder = the unsharded set, with no unit rendered twice; shards from Slurm's variables.
    @Test func shardsTogetherRenderExactlyTheUnshardedSet() throws {
        let whole = try Self.tempDir("whole"), sharded = try Self.tempDir("sharded")
        defer { try? FileManager.default.removeItem(atPath: whole); try? FileManager.default.removeItem(atPath: sharded) }
        let layers = ["conv1", "layer2"]
        let base = ["atlas"] + Self.model + Self.fast + ["--layers", layers.joined(separator: ","), "--units", "0-6", "--batch", "3", "--devices", "cpu"]
        let w = try CLITests.run(base + ["--out", whole])
        #expect(w.status == 0, "\(w.stderr)")
        var rendered = 0
        for i in 0..<3 {
            // Shard 1 via Slurm's variables (array 1-3), the others via --shard.
            let r = i == 1
                ? try CLITests.run(base + ["--out", sharded], environment: ["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "1"])
                : try CLITests.run(base + ["--out", sharded, "--shard", "\(i)/3"])
            #expect(r.status == 0, "\(r.stderr)")
            rendered += Self.summaryCounts(r.stdout)?.rendered ?? -100
            #expect(r.stdout.contains("shard \(i)/3"), "\(r.stdout)")
        }
        #expect(rendered == 14, "each unit rendered once across shards")
        let a = try Self.collect(whole, layers: layers), b = try Self.collect(sharded, layers: layers)
        #expect(a.count == 14 && b.count == 14 && Set(a) == Set(b))
        let logs = try FileManager.default.contentsOfDirectory(atPath: sharded + "/logs").sorted()
        #expect(logs == ["shard-0-of-3.log", "shard-1-of-3.log", "shard-2-of-3.log"])
    }

    /// `--devices opencl:0,cpu`: two workers, each with its own backend, share the batches.
    @Test func twoDevicesShareTheWork() throws {
        guard let cl = Backends.requireOpenCL() else { return }
        let dir = try Self.tempDir("devices")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try CLITests.run(["atlas"] + Self.model + Self.fast + ["--layers", "conv1", "--units", "0-7", "--batch", "2",
                                                                       "--devices", "opencl:0,cpu", "--out", dir])
        #expect(r.status == 0, "\(r.stderr)")
        let records = try FileManager.default.contentsOfDirectory(atPath: dir + "/conv1").filter { $0.hasSuffix(".json") }.map {
            try JSONDecoder().decode(VisualizationSidecar.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/conv1/" + $0)))
        }
        #expect(records.count == 8)
        let used = Set(records.map(\.device))
        #expect(used.contains("cpu") && used.contains { $0.hasPrefix("opencl:0") }, "devices used: \(used)")
        print("amgpu-test: OPENCL atlas two devices ran on \(cl.name)")
    }

    /// The HTML atlas: every relative link resolves, each rendered unit is on its layer's page, and probe photos
    /// are ranked by the unit's spatial-mean activation (checked against the model run independently).
    @Test func htmlIndexLinksEveryUnitAndRanksProbePhotos() throws {
        let dir = try Self.tempDir("index"), photos = try Self.tempDir("photos")
        defer { try? FileManager.default.removeItem(atPath: dir); try? FileManager.default.removeItem(atPath: photos) }
        var rng = SeededRandom(seed: 5)
        for i in 0..<4 {
            let w = 40 + 8 * i, h = 36
            try PNGFile.write(RGBImage(width: w, height: h, pixels: (0..<(w * h * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }), to: "\(photos)/p\(i).png")
        }
        let r = try CLITests.run(["atlas"] + Self.model + Self.fast + ["--layers", "conv1,layer1", "--units", "0-4", "--devices", "cpu",
                                                                       "--out", dir, "--index", "--probe-images", photos])
        #expect(r.status == 0, "\(r.stderr)")
        let index = try String(contentsOfFile: dir + "/index.html", encoding: .utf8)
        #expect(index.contains("href=\"conv1/index.html\"") && index.contains("href=\"layer1/index.html\""))
        for layer in ["conv1", "layer1"] {
            let pagePath = "\(dir)/\(layer)/index.html"
            let page = try String(contentsOfFile: pagePath, encoding: .utf8)
            let links = Self.links(page)
            for u in 0..<5 {
                #expect(links.contains("\(u).png") && links.contains("\(u).json") && links.contains("thumbs/\(u).png"), "\(layer) unit \(u)")
            }
            for link in links where !link.hasPrefix("http") {
                let target = URL(fileURLWithPath: pagePath).deletingLastPathComponent().appendingPathComponent(link).standardized.path
                #expect(FileManager.default.fileExists(atPath: target), "broken link \(link) in \(layer)")
            }
            #expect(links.filter { $0.hasPrefix("../probe/") }.count == 5 * 3 * 2, "3 photos per unit, link + background")
        }
        // Probe ranking against an independent forward pass.
        let hits = try JSONDecoder().decode([[AtlasProbeHit]].self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/layer1/probe.json")))
        #expect(hits.count == 64 && hits.allSatisfy { $0.count == 3 })
        let model = try ModelLoader.load("random:resnet18", seed: 3, imageSize: 32)
        let id = try model.resolve(layer: "layer1")
        let runner = try ModelRunner(model: model, backend: CPUBackend())
        var means: [String: [Float]] = [:]
        for i in 0..<4 {
            let a = try runner.run(ImagePreprocessing.modelInput(try PNGFile.read("\(photos)/p\(i).png"), model.preprocessing), layers: [id])[id]!
            let plane = a.shape[2] * a.shape[3]
            means["p\(i).png"] = (0..<64).map { c in a.values[(c * plane)..<((c + 1) * plane)].reduce(0, +) / Float(plane) }
        }
        for unit in 0..<64 {
            let ranked = means.map { ($0.key, $0.value[unit]) }.sorted { $0.1 > $1.1 }.prefix(3)
            #expect(hits[unit].map(\.photo) == ranked.map(\.0), "unit \(unit)")
            for (hit, expected) in zip(hits[unit], ranked) { #expect(abs(hit.score - expected.1) <= 1e-4 * (1 + abs(expected.1))) }
        }
        let thumb = try PNGFile.read(dir + "/conv1/thumbs/0.png")
        #expect(thumb.width == 32)  // images smaller than the thumbnail side are not enlarged
    }

    @Test func badInputFailsWithOneClearMessage() throws {
        let dir = try Self.tempDir("bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = ["atlas"] + Self.model + Self.fast + ["--devices", "cpu", "--out", dir]
        func fails(_ extra: [String], _ fragment: String, environment: [String: String] = [:]) throws {
            let r = try CLITests.run(base + extra, environment: environment)
            #expect(r.status != 0 && r.stderr.contains(fragment), "\(extra): \(r.stderr)")
        }
        try fails(["--layers", "conv1", "--shard", "4/4"], "bad shard")
        try fails(["--layers", "conv1", "--units", "0-64"], "out of range")
        try fails(["--layers", "conv9"], "conv9")
        try fails(["--layers", "conv1", "--devices", "opencl:0,,cpu"], "bad device list")
        try fails(["--layers", "conv1"], "--shard-count", environment: ["JOB_COMPLETION_INDEX": "0"])
        // Same folder, other settings: refused, nothing written.
        let first = try CLITests.run(base + ["--layers", "conv1", "--units", "0-1"])
        #expect(first.status == 0, "\(first.stderr)")
        try fails(["--layers", "conv1", "--units", "0-1", "--seed", "9"], "other settings")
        let index = try CLITests.run(["atlas-index", dir + "/conv1"])
        #expect(index.status != 0 && index.stderr.contains("atlas.json"))
    }

    /// A batch that fails (here: a learning rate that overflows) marks its units failed with the reason,
    /// writes no file for them, logs them, and makes the exit status non-zero.
    @Test func failedUnitsAreReportedWithTheirReason() throws {
        let dir = try Self.tempDir("failed")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try CLITests.run(["atlas"] + Self.model + Self.fast + ["--layers", "conv1", "--units", "0-3", "--batch", "2",
                                                                       "--devices", "cpu", "--lr", "1e38", "--out", dir])
        #expect(r.status == 1)
        let counts = Self.summaryCounts(r.stdout)
        #expect(counts?.rendered == 0 && counts?.failed == 4, "\(r.stdout)")
        #expect(r.stdout.contains("failed 4 (conv1:0, conv1:1, conv1:2, conv1:3): the image parameters became"), "\(r.stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/conv1").isEmpty)
        let log = try String(contentsOfFile: dir + "/logs/" + FileManager.default.contentsOfDirectory(atPath: dir + "/logs")[0], encoding: .utf8)
        #expect(log.components(separatedBy: " failed conv1 ").count == 5, "\(log)")
    }

    static func links(_ html: String) -> [String] {
        var out: [String] = []
        for pattern in ["href=\"([^\"]+)\"", "src=\"([^\"]+)\"", "url\\('([^']+)'\\)"] {
            let re = try? NSRegularExpression(pattern: pattern)
            for m in re?.matches(in: html, range: NSRange(html.startIndex..., in: html)) ?? [] {
                if let r = Range(m.range(at: 1), in: html) { out.append(String(html[r])) }
            }
        }
        return out
    }

    /// `atlas-index --probe-images` loads the model again from atlas.json: a channels-last model
    /// with a symbolic, non-square size (inputSize nil) needs the card's size and layout, which a
    /// load with only `inputSize` cannot give (it stops at "symbolic size").
    @Test func manifestReloadsANonSquareNHWCModelWithItsCard() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/layouts/keras_channels_last.onnx")
        var proto = try Onnx_ModelProto(serializedBytes: Data(contentsOf: fixture))
        // [1, 16, 12, 3] → [1, h, w, 3]
        for (axis, name) in [(1, "h"), (2, "w")] {
            var d = Onnx_TensorShapeProto.Dimension(); d.dimParam = name
            proto.graph.input[0].type.tensorType.shape.dim[axis] = d
        }
        let dir = try Self.tempDir("reload")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/symbolic_nhwc.onnx"
        try proto.serializedData().write(to: URL(fileURLWithPath: path))
        let rendered = try ModelLoader.load(path, card: ModelCardValues.flags(size: (16, 12), layout: .nhwc))
        #expect(rendered.preprocessing.height == 16 && rendered.preprocessing.width == 12 && rendered.card.layout == .nhwc)
        let manifest = AtlasManifest(modelReference: path, architecture: nil, weightSeed: 0, inputSize: nil, modelName: rendered.name,
                                     modelSHA256: nil, family: rendered.family, layers: [], preset: .cnnLucid, seed: 0,
                                     amgpuVersion: "test", card: rendered.cardRecord)
        #expect(throws: EngineError.self) { _ = try ModelLoader.load(path, imageSize: manifest.inputSize) }
        let again = try manifest.loadModel()
        #expect(again.preprocessing == rendered.preprocessing && again.card.layout == .nhwc)
        let x = HostTensor(shape: [1, 3, 16, 12], values: (0..<(3 * 16 * 12)).map { Float(($0 * 37) % 101) / 101 - 0.4 })
        let a = try TensorCheck.run(model: rendered, input: x, seed: nil, backend: Backends.cpu).output
        let b = try TensorCheck.run(model: again, input: x, seed: nil, backend: Backends.cpu).output
        #expect(a.values == b.values && a.values.contains { $0 != 0 })
    }
}
