import Foundation
import Testing
@testable import GPUEngine

/// Issue 22 part 4 (no stuck ViT units): the opt-in patch grid that puts the transforms' geometry on the model's patch
/// grid (`TransformConfig.patchGrid`, `--patch-grid`), and keep-the-best holding its parameters on the device.
@Suite struct ViTPatchGridTests {
    /// lucid's transforms on a 128 px image for a 224 px model (the DINOv2 depth grid's setting): on a 14 px patch grid
    /// every copy has scale 1, no rotation, and a shift of a whole number of patches of the model input; the random
    /// draws are those of the run without the grid.
    @Test func theGeometryOnAPatchGridShiftsByWholePatches() throws {
        let model = ModelInputSpec.imageNet(size: 224)
        var grid = TransformConfig.lucidStandard
        grid.patchGrid = 14
        grid.copies = 4
        var free = grid
        free.patchGrid = nil
        var shifts = Set<Int>()
        for step in 0..<12 {
            let on = try TransformPipeline(config: grid, step: step, totalSteps: 64, seed: 0, batch: 2,
                                           imageHeight: 128, imageWidth: 128, model: model)
            let off = try TransformPipeline(config: free, step: step, totalSteps: 64, seed: 0, batch: 2,
                                            imageHeight: 128, imageWidth: 128, model: model)
            #expect(on.draws.map(\.jitter.x) == off.draws.map(\.jitter.x) && on.draws.map(\.jitter.y) == off.draws.map(\.jitter.y))
            #expect(off.draws.contains { $0.scale != 1 || $0.degrees != 0 }, "the free draws should scale or rotate somewhere")
            // The clean view's scale: 128 image pixels onto 224 model pixels, f = 128/224; k = 0 is the clean resize.
            let f = 128.0 / 224.0
            for d in on.draws {
                #expect(d.scale == 1 && d.degrees == 0, "\(d.scale) \(d.degrees)")
                let m = d.matrix
                #expect(abs(m.a - f) <= 1e-12 && abs(m.e - f) <= 1e-12 && m.b == 0 && m.d == 0, "\(m)")
                // x = f·(u + k·14): the shift in model pixels is c/f, a whole number of patches.
                for (offset, drawn) in [(m.c, d.jitter.x + d.finalJitter.x), (m.f, d.jitter.y + d.finalJitter.y)] {
                    let pixels = offset / f
                    let k = (pixels / 14).rounded()
                    #expect(abs(pixels - 14 * k) <= 1e-9, "shift \(pixels) model px is not a multiple of 14")
                    #expect(k == ((Double(drawn) - 6) / (f * 14)).rounded(), "k = \(k) for drawn offset \(drawn)")
                    shifts.insert(Int(k))
                }
            }
        }
        #expect(shifts == [-1, 0, 1], "shifts of −1, 0 and 1 patch expected (offsets −6…6 image px, a patch is 8 image px), got \(shifts)")
        var bad = grid
        bad.patchGrid = -1
        #expect(throws: EngineError.self) { try bad.validate() }
    }

    /// With no shift drawn (k = 0) the patch-grid view is exactly the clean view (the image resized to the model input,
    /// as the final score sees it), so what the run builds on the grid is what the clean image shows; lucid's free
    /// geometry is not (its padding and crops change the scale).
    @Test func anUnshiftedPatchGridViewIsTheCleanView() throws {
        var rng = SeededRandom(seed: 1422)
        let image = try Backends.cpu.tensor(rng.tensor([1, 3, 128, 128], 0, 1))
        let model = ModelInputSpec.imageNet(size: 224)
        let clean = try TransformPipeline(config: TransformConfig(), step: 0, totalSteps: 1, seed: 0, batch: 1,
                                          imageHeight: 128, imageWidth: 128, model: model)
            .forward(image, on: Backends.cpu, differentiable: false).output
        var grid = TransformConfig.lucidStandard
        grid.jitter = 0
        grid.finalJitter = 0
        grid.patchGrid = 14
        var free = grid
        free.patchGrid = 0
        func interiorDifference(_ config: TransformConfig) throws -> Float {
            let out = try TransformPipeline(config: config, step: 3, totalSteps: 8, seed: 0, batch: 1, imageHeight: 128,
                                            imageWidth: 128, model: model).forward(image, on: Backends.cpu, differentiable: false).output
            let a = try Backends.cpu.download(out).values, b = try Backends.cpu.download(clean).values
            var worst: Float = 0
            for c in 0..<3 { for y in 1..<223 { for x in 1..<223 {
                let i = (c * 224 + y) * 224 + x
                worst = max(worst, abs(a[i] - b[i]))
            } } }
            return worst
        }
        let onGrid = try interiorDifference(grid), offGrid = try interiorDifference(free)
        #expect(onGrid <= 1e-5, "the unshifted patch-grid view differs from the clean view by \(onGrid)")
        #expect(offGrid > 0.05, "lucid's geometry (padding 12) should not be the clean view: \(offGrid)")
    }

    /// The patch size comes from the model (the patch embedding: kernel = stride, no padding); the grid is opt-in: a run
    /// without it (nil) is the run with it off (0) to 1e-6, for a CNN and a ViT, and an explicit grid changes a run.
    @Test func thePatchGridIsOptInAndTheModelKnowsItsPatchSize() throws {
        let vit = try AnchoredObjectiveTests.tinyViT(batch: 1)
        #expect(vit.patchSize == 8)
        let cnn = try VisualizeTests.tinyModel(batch: 2)
        #expect(cnn.patchSize == nil)

        var request = VisualizeTests.tinyRequest(steps: 6, images: 2)
        #expect(request.preset.transforms.patchGrid == nil)
        let cnnDefault = try Visualizer(model: cnn, request: request, backend: Backends.cpu)
        #expect(cnnDefault.request.preset.transforms.patchGrid == nil, "a CNN's preset must stay as given")
        let defaultRun = try cnnDefault.run()
        request.preset.transforms.patchGrid = 0
        let offRun = try Visualizer(model: cnn, request: request, backend: Backends.cpu).run()
        expectClose(defaultRun.images, offRun.images, atol: 1e-6, rtol: 0, "CNN run with the default vs the grid off")
        #expect(zip(defaultRun.finalScores, offRun.finalScores).allSatisfy { abs($0 - $1) <= 1e-6 })
        // The grid is not a no-op when set explicitly (so the comparisons here could fail).
        request.preset.transforms.patchGrid = 8
        let forced = try Visualizer(model: cnn, request: request, backend: Backends.cpu).run()
        let moved = zip(forced.images.values, offRun.images.values).map { abs($0 - $1) }.max() ?? 0
        #expect(moved > 1e-3, "an explicit patch grid should change a run with scale/rotation transforms: \(moved)")

        var vitRequest = AnchoredObjectiveTests.warmRequest(.standard, unit: 4)
        vitRequest.preset.transforms = TransformConfig(padding: 2, jitter: 4, scales: [0.9, 1, 1.1], rotationsDegrees: [-5, 0, 5],
                                                       finalJitter: 2)
        let vitDefault = try Visualizer(model: vit, request: vitRequest, backend: Backends.cpu)
        #expect(vitDefault.request.preset.transforms.patchGrid == nil, "a ViT's preset must stay as given")
        let vitDefaultImages = try vitDefault.run().images
        vitRequest.preset.transforms.patchGrid = 0
        let vitOff = try Visualizer(model: vit, request: vitRequest, backend: Backends.cpu).run()
        expectClose(vitDefaultImages, vitOff.images, atol: 1e-6, rtol: 0, "ViT run with the default vs the grid off")
        vitRequest.preset.transforms.patchGrid = 8
        let vitGrid = try Visualizer(model: vit, request: vitRequest, backend: Backends.cpu).run()
        let vitMoved = zip(vitGrid.images.values, vitOff.images.values).map { abs($0 - $1) }.max() ?? 0
        #expect(vitMoved > 1e-3, "an explicit 8 px grid should change the ViT run: \(vitMoved)")
    }

    /// The sidecar records the grid a ViT run used.
    @Test func theSidecarRecordsThePatchGrid() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("amgpu-patchgrid-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let model = try AnchoredObjectiveTests.tinyViT(batch: 1)
        let target = try UnitVisualization.Target(model: model, layer: "blocks.0.mlp.act", units: [4])
        var preset = AnchoredObjectiveTests.warmRequest(nil).preset
        preset.steps = 4
        preset.transforms.patchGrid = 8
        let run = UnitVisualization(target: target, folder: folder, preset: preset, batchSize: 1, seed: 0, modelSHA256: nil, amgpuVersion: "test")
        _ = try run.run(model: model, devices: [.cpu]) { batch in try AnchoredObjectiveTests.tinyViT(batch: batch) }
        let json = try Data(contentsOf: URL(fileURLWithPath: folder + "/blocks.0.mlp.act_4.json"))
        let sidecar = try JSONDecoder().decode(VisualizationSidecar.self, from: json)
        #expect(sidecar.preset.transforms.patchGrid == 8)
    }

    /// Keep-the-best keeps the best step's parameters on the device: a run with it downloads exactly as often as the same
    /// run without it (the trajectory is the same; the last image ends above 0, so nothing is replaced at the end),
    /// although the unit improves at most of its 40 steps. (Before, each improving step downloaded the parameters.)
    @Test func keepingTheBestDownloadsNothingInTheStepLoop() throws {
        let model = try AnchoredObjectiveTests.tinyViT(batch: 1)
        var counts: [Int] = []
        var images: [HostTensor] = []
        for keep in [false, true] {
            let backend = DownloadCountingCPU()
            let request = AnchoredObjectiveTests.warmRequest(WarmStart(keepBest: keep))
            let r = try Visualizer(model: model, request: request, backend: backend).run(reportEvery: 1000)
            #expect(r.finalScores[0] > 1, "the unit should rise (improving at many steps): \(r.finalScores[0])")
            #expect(r.warmStart?.first?.returnedStep == nil)
            counts.append(backend.downloads)
            images.append(r.images)
        }
        print("amgpu-test: downloads over 40 steps: keep-best off \(counts[0]), on \(counts[1])")
        #expect(counts[0] == counts[1], "downloads without keep-best \(counts[0]), with it \(counts[1])")
        expectClose(images[1], images[0], atol: 0, rtol: 0, "keep-best must not change the trajectory")
    }

    /// Two images, only one replaced at the end: the device-side selection returns the best step of that image and
    /// leaves the other's last image.
    @Test func keepingTheBestReplacesOnlyTheImagesThatEndedLow() throws {
        let model = try AnchoredObjectiveTests.bowl(batch: 2)
        var request = AnchoredObjectiveTests.warmRequest(.standard, unit: 0)
        request.objective.terms[0].layer = "bowl.act"
        request.preset.parameterization = .pixel(.sigmoid)
        request.preset.optimizer.learningRate = 0.2
        request.preset.steps = 6
        request.images = 2
        request.objective.terms[0].units = [0, 1]
        var plainRequest = request
        plainRequest.warmStart = nil
        let plain = try Visualizer(model: model, request: plainRequest, backend: Backends.cpu).run()
        let kept = try Visualizer(model: model, request: request, backend: Backends.cpu).run()
        let records = try #require(kept.warmStart)
        print("amgpu-test: bowl units 0, 1: plain \(plain.finalScores), keep-best \(kept.finalScores) \(records)")
        #expect(plain.finalScores[0] <= 0 && records[0].returnedStep == 0 && kept.finalScores[0] > 0.3, "\(records[0])")
        let plane = 3 * 16 * 16
        let initial = try ImageGenerator(parameterization: request.preset.parameterization, batch: 2, height: 16, width: 16,
                                         regularizers: [], backend: Backends.cpu)
            .render(Backends.cpu.tensor(request.preset.parameterization.initialParameters(batch: 2, size: 16, seed: request.seed)))
        let d0 = zip(kept.images.values[0..<plane], initial.values[0..<plane]).map { abs($0 - $1) }.max() ?? 1
        #expect(d0 <= 1e-6, "image 0 should be its initial image: \(d0)")
        if records[1].returnedStep == nil && records[1].leakySteps == 0 && records[1].steps == 0 {
            let d1 = zip(kept.images.values[plane...], plain.images.values[plane...]).map { abs($0 - $1) }.max() ?? 1
            #expect(d1 <= 1e-6, "image 1 was not replaced and should be the plain run's last image: \(d1)")
        }
    }
}

/// The CPU backend, counting host downloads.
final class DownloadCountingCPU: KernelBackendWrapper, @unchecked Sendable {
    var base: any KernelBackend { Backends.cpu }
    var name: String { "cpu (counting downloads)" }
    private let lock = NSLock()
    private var count = 0
    var downloads: Int { lock.withLock { count } }

    func download(_ tensor: Tensor) throws -> HostTensor {
        lock.withLock { count += 1 }
        return try base.download(tensor)
    }
}
