import Foundation
import Testing
@testable import GPUEngine

/// The engine's AM batch runner (`AMBatchRunner`) and its two users, `UnitVisualization` (visualize) and
/// `AtlasRenderer` (atlas), driven from Swift without the CLI, on the tiny random CNN of `VisualizeTests`.
@Suite(.serialized) struct AMBatchRunnerTests {
    static func tempDir(_ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("amgpu-runner-\(name)-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static var preset: AMPreset { VisualizeTests.tinyRequest().preset }

    static func job(_ kind: ObjectiveTerm.Kind = .channel, layer: String = "conv2", unit: Int, dir: String = "/nonexistent") -> AMJob {
        AMJob(term: ObjectiveTerm(kind: kind, layer: layer, units: []), unit: unit, imagePath: "\(dir)/\(layer)_\(unit).png",
              imageName: "\(layer)_\(unit).png", recordPath: "\(dir)/\(layer)_\(unit).json")
    }

    static func settings(batch: Int, policy: AMFailurePolicy, extra: [ObjectiveTerm] = [], diversity: Float = 0) -> AMRunSettings {
        AMRunSettings(preset: preset, batchSize: batch, seeding: .sequential(42), extraTerms: extra, diversity: diversity,
                      recordedObjective: .batch, failurePolicy: policy, keepImages: true, modelSHA256: nil, amgpuVersion: "test")
    }

    @Test func jobsBatchByTermAndSizeAndTheObjectiveCoversTheBatch() throws {
        let jobs = (0..<5).map { Self.job(unit: $0) } + [Self.job(layer: "conv1", unit: 0)] + [Self.job(unit: 7), Self.job(unit: 8)]
        let batches = AMBatchRunner.batches(jobs, size: 2)
        #expect(batches.map(\.position) == [0, 2, 4, 5, 6])
        #expect(batches.map { $0.jobs.map(\.unit) } == [[0, 1], [2, 3], [4], [0], [7, 8]])
        let extra = try ObjectiveTerm.parse("channel:conv1:2:-0.5")
        let runner = try AMBatchRunner(settings: Self.settings(batch: 2, policy: .stop, extra: [extra], diversity: 0.25),
                                       devices: [.cpu]) { try VisualizeTests.tinyModel(batch: $0) }
        let two = runner.objective(of: [Self.job(unit: 3), Self.job(unit: 5)])
        #expect(two.terms.map(\.units) == [[3, 5], [2]] && two.terms.map(\.weight) == [1, -0.5])
        #expect(two.diversity == DiversityTerm(layer: "conv2", weight: 0.25))
        #expect(runner.objective(of: [Self.job(unit: 3)]).diversity == nil, "diversity needs two images")
        // DeepDream reads the whole layer: one unit entry whatever the batch.
        #expect(runner.objective(of: [Self.job(.deepdream, unit: 3), Self.job(.deepdream, unit: 4)]).terms[0].units == [0])
    }

    @Test func seedsAreSequentialForVisualizeAndHashedPerBatchForAtlases() {
        let jobs = [Self.job(unit: 3), Self.job(unit: 5)]
        #expect(AMSeeding.sequential(10).seed(of: jobs, position: 4) == 14)
        #expect(AMSeeding.sequential(UInt64.max).seed(of: jobs, position: 2) == 1, "wraps around")
        // FNV-1a-64 of "conv2:3,5" (computed independently), XOR the seed.
        #expect(AMSeeding.perBatch(7).seed(of: jobs, position: 99) == 0x1f38_8be6_ba32_a7a0)
        #expect(AtlasRenderer.batchSeed(7, [AtlasUnit(layer: "conv2", unit: 3), AtlasUnit(layer: "conv2", unit: 5)]) == 0x1f38_8be6_ba32_a7a0)
        #expect(AMSeeding.perBatch(7).seed(of: [Self.job(unit: 3)], position: 0) != AMSeeding.perBatch(7).seed(of: jobs, position: 0))
    }

    /// visualize's runner writes, for each unit, the image the `Visualizer` gives on its own for that batch and
    /// seed (byte for byte on the CPU), a sidecar recording the batch's objective and seed, and the grid.
    @Test func unitVisualizationWritesWhatTheVisualizerRenders() throws {
        let dir = try Self.tempDir("visualize")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try VisualizeTests.tinyModel(batch: 1)
        let target = try UnitVisualization.Target(model: model, layer: "conv2", units: [3, 5, 7])
        #expect(target.term.kind == .channel, "a CNN layer defaults to the channel objective")
        let run = UnitVisualization(target: target, folder: dir, preset: Self.preset, batchSize: 2, seed: 42,
                                    modelSHA256: nil, amgpuVersion: "test")
        let reports = Locked<[AMRunProgress]>([])
        let result = try run.run(model: model, devices: [.cpu], progress: { p in reports.withLock { $0.append(p) } }) {
            try VisualizeTests.tinyModel(batch: $0)
        }
        #expect(result.summary.rendered == 3 && result.summary.failed.isEmpty)
        #expect(result.images == ["3", "5", "7"].map { "\(dir)/conv2_\($0).png" })
        let last = try #require(reports.withLock { $0.last })
        #expect(last.finished == 3 && last.total == 3 && last.step == nil)
        #expect(reports.withLock { $0.contains { $0.step?.units == [3, 5] } })

        for (units, seed) in [([3, 5], UInt64(42)), ([7], UInt64(44))] {
            var request = VisualizeTests.tinyRequest(images: units.count)
            request.objective = Objective(terms: [ObjectiveTerm(kind: .channel, layer: "conv2", units: units)])
            request.seed = seed
            let alone = try Visualizer(model: VisualizeTests.tinyModel(batch: units.count), request: request, backend: Backends.cpu).run()
            for (i, u) in units.enumerated() {
                let written = try PNGFile.read("\(dir)/conv2_\(u).png")
                #expect(written.pixels == (try RGBImage(tensor: alone.images, index: i)).pixels, "unit \(u)")
                let record = try JSONDecoder().decode(VisualizationSidecar.self, from: Data(contentsOf: URL(fileURLWithPath: "\(dir)/conv2_\(u).json")))
                #expect(record.unit == u && record.seed == seed && record.image == "conv2_\(u).png" && record.batchUnits == nil)
                #expect(record.objective == request.objective, "the sidecar records the batch's objective")
                #expect(record.finalObjective == alone.finalScores[i] && record.device == "cpu")
            }
        }
        let grid = try PNGFile.read(result.grid)
        #expect(grid.width == 2 * 24 + 2 && grid.height == 2 * 24 + 2, "3 images in 2 columns with a 2-px gap")
    }

    /// A batch that fails: `.stop` rethrows its error and renders nothing after it; `.markFailed` records the
    /// reason for its jobs and renders the others.
    @Test func failuresStopTheRunOrAreMarked() throws {
        let dir = try Self.tempDir("failures")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let jobs = [Self.job(unit: 99, dir: dir), Self.job(unit: 1, dir: dir), Self.job(unit: 2, dir: dir)]   // conv2 has 16 channels
        let load: @Sendable (Int) throws -> Model = { try VisualizeTests.tinyModel(batch: $0) }
        let stopping = try AMBatchRunner(settings: Self.settings(batch: 1, policy: .stop), devices: [.cpu], loadModel: load)
        do {
            _ = try stopping.run(jobs)
            Issue.record("unit 99 of a 16-channel layer was accepted")
        } catch let error as EngineError {
            #expect(error.description.contains("99"), "\(error)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty, "no batch ran after the failure")

        let finished = Locked<[AMBatchReport]>([])
        let marking = try AMBatchRunner(settings: Self.settings(batch: 1, policy: .markFailed), devices: [.cpu, .cpu], loadModel: load)
        let summary = try marking.run(jobs, finished: { report in finished.withLock { $0.append(report) } })
        #expect(summary.rendered == 2 && summary.perDevice == ["cpu": 2])
        #expect(summary.failed.map { $0.job.unit } == [99] && summary.failed.allSatisfy { $0.reason.contains("99") })
        #expect(finished.withLock { $0.count } == 3 && finished.withLock { $0.filter { $0.failure != nil }.map { $0.jobs[0].unit } } == [99])
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir)) == ["conv2_1.png", "conv2_1.json", "conv2_2.png", "conv2_2.json"])
        #expect(summary.images.count == 2 && summary.images.allSatisfy { $0.shape == [1, 3, 24, 24] })
    }

    /// Engine messages name the engine's settings (⟨units⟩), which a front end maps to its own names (the CLI:
    /// flags, checked by the bad-input corpus and AtlasTests).
    @Test func engineMessagesNameSettingsNotFlags() throws {
        let layers = try AtlasPlan.layers(["conv2"], of: VisualizeTests.tinyModel(batch: 1))
        do {
            _ = try AtlasPlan.units(of: layers, selecting: [16])
            Issue.record("unit 16 of a 16-channel layer was accepted")
        } catch let error as EngineError {
            #expect(error.description.contains("narrow ⟨units⟩") && !error.description.contains("--"), "\(error)")
        }
        #expect(SettingName.replacingMentions(in: "narrow ⟨units⟩, ⟨shard count⟩", with: { "<\($0)>" }) == "narrow <units>, <shardCount>")
    }

    /// The atlas through the engine: one file pair per unit (logit units named after their class), the
    /// per-unit objective and batch units in each sidecar, and a rerun that skips everything.
    @Test func atlasRendererRendersAndResumesWithoutTheCLI() throws {
        let dir = try Self.tempDir("atlas")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try VisualizeTests.tinyModel(batch: 1)
        let layers = try AtlasPlan.layers(["conv2", "output"], of: model)
        #expect(layers.map(\.objective) == [.channel, .logit])
        let units = try AtlasPlan.units(of: layers, selecting: [0, 1, 2])
        let layout = AtlasLayout(root: dir)
        try layout.prepare(layers: layers)
        let options = AtlasRenderOptions(preset: Self.preset, seed: 5, batch: 2, modelSHA256: nil, amgpuVersion: "test")
        let renderer = try AtlasRenderer(layout: layout, layers: layers, options: options, devices: [.cpu]) {
            try VisualizeTests.tinyModel(batch: $0)
        }
        let first = renderer.run(units: units)
        #expect(first.rendered == 6 && first.skipped == 0 && first.failed.isEmpty)
        for u in units {
            let record = try JSONDecoder().decode(VisualizationSidecar.self, from: Data(contentsOf: URL(fileURLWithPath: layout.recordPath(u))))
            let batch = u.unit < 2 ? [0, 1] : [2]
            #expect(record.objective.terms.map(\.units) == [[u.unit]] && record.batchUnits == batch, "\(u)")
            #expect(record.seed == AtlasRenderer.batchSeed(5, batch.map { AtlasUnit(layer: u.layer, unit: $0) }))
            #expect(record.unitName == (u.layer == "output" ? "class \(u.unit)" : nil))
            #expect(FileManager.default.fileExists(atPath: layout.imagePath(u)))
        }
        let second = renderer.run(units: units)
        #expect(second.rendered == 0 && second.skipped == 6 && second.failed.isEmpty)
    }
}

/// A value behind a lock, for callbacks that run on the runner's worker threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
