import Foundation

/// Settings shared by every batch of an atlas run.
public struct AtlasRenderOptions: Sendable {
    public var preset: AMPreset
    public var seed: UInt64
    /// Units optimized together in one batch (one image each, all of one layer).
    public var batch: Int
    /// Natural photos for the per-unit baseline in the JSON (empty: no baseline).
    public var baselinePhotos: [RGBImage]
    public var modelSHA256: String?
    public var amgpuVersion: String

    public init(preset: AMPreset, seed: UInt64, batch: Int, baselinePhotos: [RGBImage] = [], modelSHA256: String?, amgpuVersion: String) {
        self.preset = preset
        self.seed = seed
        self.batch = batch
        self.baselinePhotos = baselinePhotos
        self.modelSHA256 = modelSHA256
        self.amgpuVersion = amgpuVersion
    }
}

/// Where an atlas run stands (reported after every batch and every few optimization steps).
public struct AtlasProgress: Sendable {
    /// Units this run had to render (the shard's units minus those already done).
    public var total: Int
    public var rendered: Int
    public var failed: Int
    /// Fraction of a unit, summed over the batches in flight.
    public var inFlight: Double
    public var elapsedSeconds: Double

    public var finished: Int { rendered + failed }
    /// Units per minute so far (in-flight fractions included).
    public var unitsPerMinute: Double { (Double(finished) + inFlight) / max(elapsedSeconds, 1e-9) * 60 }
    /// Seconds left at the current rate (nil before any progress).
    public var etaSeconds: Double? {
        let done = Double(finished) + inFlight
        guard done > 0 else { return nil }
        return Double(total) - done <= 0 ? 0 : (Double(total) - done) / done * elapsedSeconds
    }
}

/// A unit that could not be rendered, and why.
public struct AtlasFailure: Sendable, Codable, Equatable {
    public var unit: AtlasUnit
    public var reason: String
}

/// The outcome of an atlas run.
public struct AtlasSummary: Sendable {
    /// Units of this shard.
    public var selected: Int
    /// Units already done before the run (skipped).
    public var skipped: Int
    public var rendered: Int
    public var failed: [AtlasFailure]
    public var seconds: Double
    /// Units rendered per device.
    public var perDevice: [String: Int]
    /// Hidden temporaries of killed runs that were removed at the start.
    public var removedTemporaries: Int
}

/// Renders atlas units in batches (one unit per image, all units of a batch from one layer) on one or more
/// devices, each on its own thread with its own backend and model copies, taking batches from a shared queue.
/// Each finished image is written as `<unit>.png` then `<unit>.json`, both atomically.
public final class AtlasRenderer: @unchecked Sendable {
    public let layout: AtlasLayout
    public let layers: [String: AtlasLayer]
    public let options: AtlasRenderOptions
    public let devices: [DeviceSelection]
    let loadModel: @Sendable (Int) throws -> Model

    /// `loadModel(batch)` loads the model with batch size `batch` (called once per batch size and device).
    public init(layout: AtlasLayout, layers: [AtlasLayer], options: AtlasRenderOptions, devices: [DeviceSelection],
                loadModel: @escaping @Sendable (Int) throws -> Model) throws {
        guard options.batch >= 1 else { throw EngineError.invalidInput("--batch must be at least 1, got \(options.batch)") }
        guard !devices.isEmpty else { throw EngineError.invalidInput("no devices given: use e.g. --devices opencl:0,cpu or all") }
        self.layout = layout
        self.layers = Dictionary(layers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.options = options
        self.devices = devices
        self.loadModel = loadModel
    }

    /// Splits `units` into batches of at most `size` consecutive units of one layer.
    public static func batches(_ units: [AtlasUnit], size: Int) -> [[AtlasUnit]] {
        var out: [[AtlasUnit]] = []
        for u in units {
            if let last = out.last, last.count < size, last[0].layer == u.layer { out[out.count - 1].append(u) }
            else { out.append([u]) }
        }
        return out
    }

    /// The seed of a batch: the run's seed mixed (FNV-1a) with the layer and the batch's units, so a batch is
    /// reproducible whatever the shard or device that renders it.
    public static func batchSeed(_ seed: UInt64, _ batch: [AtlasUnit]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "\(batch.first?.layer ?? ""):\(batch.map { String($0.unit) }.joined(separator: ","))".utf8 {
            h = (h ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return seed ^ h
    }

    /// Renders `units` (skipping those already done), calling `progress` as it goes. Never throws: a batch
    /// that fails marks its units failed with the reason, and the other batches go on.
    public func run(units: [AtlasUnit], log: AtlasLog? = nil,
                    progress: @escaping @Sendable (AtlasProgress) -> Void = { _ in }) -> AtlasSummary {
        let start = Date()
        let removed = layout.removeStaleTemporaries(layers: Array(layers.values))
        let done = layout.doneUnits(units)
        let pending = units.filter { !done.contains($0) }
        let state = SharedState(batches: Self.batches(pending, size: options.batch), total: pending.count,
                                workers: devices.count, start: start, progress: progress)
        let group = DispatchGroup(), ready = DispatchGroup()
        for _ in devices { ready.enter() }   // all entered before any worker can wait on it
        for (w, device) in devices.enumerated() {
            group.enter()
            let thread = Thread { [self] in
                defer { group.leave() }
                self.work(worker: w, device: device, state: state, log: log, ready: ready)
            }
            thread.stackSize = 16 << 20
            thread.start()
        }
        group.wait()
        // Batches no device could take (every device failed to open).
        let leftover = state.remainingBatches()
        if !leftover.isEmpty {
            let reason = "no device could run it (\(state.deviceErrors.joined(separator: "; ")))"
            for batch in leftover { state.finish(batch, failure: reason, device: nil, log: log) }
        }
        return AtlasSummary(selected: units.count, skipped: units.count - pending.count, rendered: state.rendered,
                            failed: state.failures, seconds: Date().timeIntervalSince(start),
                            perDevice: state.perDevice, removedTemporaries: removed)
    }

    /// One device's loop. Workers open their backends, then wait for each other (`ready`) before taking
    /// batches, so that with at least as many batches as devices every device that opened gets work.
    func work(worker: Int, device: DeviceSelection, state: SharedState, log: AtlasLog?, ready: DispatchGroup) {
        let backend: any Backend
        do { backend = try device.makeBackend() } catch {
            state.deviceFailed("\(device): \(error)")
            log?.append("device \(device) failed to open: \(error)")
            ready.leave()
            return
        }
        ready.leave()
        ready.wait()
        var models: [Int: Model] = [:]
        while let batch = state.take() {
            do {
                let images = batch.count * max(1, options.preset.transforms.copies)
                let model: Model
                if let cached = models[images] { model = cached } else {
                    model = try AtlasRenderer.loadLock.withLock { try loadModel(images) }
                    models[images] = model
                }
                try render(batch, model: model, backend: backend) { fraction in state.setInFlight(worker, fraction) }
                state.setInFlight(worker, 0)
                state.finish(batch, failure: nil, device: backend.name, log: log)
            } catch {
                state.setInFlight(worker, 0)
                state.finish(batch, failure: "\(error)", device: backend.name, log: log)
            }
        }
    }

    /// Model loading is serialized (parsers and caches are not meant to run concurrently; it happens once per
    /// batch size and device).
    static let loadLock = NSLock()

    /// Optimizes one batch and writes its files (PNG, then JSON, each atomically).
    func render(_ batch: [AtlasUnit], model: Model, backend: any Backend, step: (Double) -> Void) throws {
        guard let layer = layers[batch[0].layer] else { throw EngineError.invalidInput("unknown atlas layer '\(batch[0].layer)'") }
        let units = batch.map(\.unit)
        let objective = Objective(terms: [ObjectiveTerm(kind: layer.objective, layer: layer.name, units: units)])
        let seed = Self.batchSeed(options.seed, batch)
        let request = VisualizationRequest(objective: objective, preset: options.preset, seed: seed, images: units.count)
        let visualizer = try Visualizer(model: model, request: request, backend: backend)
        let result = try visualizer.run(naturalImages: options.baselinePhotos) { p in
            step(Double(p.step) / Double(max(p.steps, 1)) * Double(units.count))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        for (i, u) in batch.enumerated() {
            try PNGFile.write(RGBImage(tensor: result.images, index: i), to: layout.imagePath(u))
            let record = VisualizationSidecar(
                model: model.name, modelSource: model.source, modelSHA256: options.modelSHA256, layer: layer.name,
                unit: u.unit, unitName: layer.objective == .logit ? model.className(u.unit) : nil,
                objective: Objective(terms: [ObjectiveTerm(kind: layer.objective, layer: layer.name, units: [u.unit])]),
                preset: options.preset, seed: seed, device: backend.name, finalObjective: result.finalScores[i],
                targetProbability: result.targetProbabilities?[i], naturalPhotoMean: result.naturalMean?[i],
                naturalPhotoCount: options.baselinePhotos.count, seconds: result.seconds, steps: result.stepsRun,
                image: layout.imageName(u.unit), amgpuVersion: options.amgpuVersion, batchUnits: units,
                card: model.cardRecord)
            try writeAtomically(encoder.encode(record), to: layout.recordPath(u))
        }
    }

    /// The batch queue and the counters, behind one lock.
    final class SharedState: @unchecked Sendable {
        let lock = NSLock()
        var batches: [[AtlasUnit]]
        var next = 0
        let total: Int
        var rendered = 0
        var failures: [AtlasFailure] = []
        var perDevice: [String: Int] = [:]
        var deviceErrors: [String] = []
        var inFlight: [Double]
        let start: Date
        let progress: @Sendable (AtlasProgress) -> Void

        init(batches: [[AtlasUnit]], total: Int, workers: Int, start: Date, progress: @escaping @Sendable (AtlasProgress) -> Void) {
            self.batches = batches
            self.total = total
            self.inFlight = Array(repeating: 0, count: workers)
            self.start = start
            self.progress = progress
        }

        func take() -> [AtlasUnit]? {
            lock.withLock {
                guard next < batches.count else { return nil }
                defer { next += 1 }
                return batches[next]
            }
        }

        func remainingBatches() -> [[AtlasUnit]] {
            lock.withLock {
                defer { next = batches.count }
                return Array(batches[next...])
            }
        }

        func deviceFailed(_ message: String) { lock.withLock { deviceErrors.append(message) } }

        /// Reports progress under the lock (so reports never interleave).
        func report() {
            progress(AtlasProgress(total: total, rendered: rendered, failed: failures.count,
                                   inFlight: inFlight.reduce(0, +), elapsedSeconds: Date().timeIntervalSince(start)))
        }

        func setInFlight(_ worker: Int, _ fraction: Double) {
            lock.withLock {
                inFlight[worker] = fraction
                if fraction > 0 { report() }
            }
        }

        func finish(_ batch: [AtlasUnit], failure: String?, device: String?, log: AtlasLog?) {
            lock.withLock {
                if let failure {
                    failures.append(contentsOf: batch.map { AtlasFailure(unit: $0, reason: failure) })
                    for u in batch { log?.append("failed \(u.layer) \(u.unit): \(failure)") }
                } else {
                    rendered += batch.count
                    if let device { perDevice[device, default: 0] += batch.count }
                    for u in batch { log?.append("done \(u.layer) \(u.unit) on \(device ?? "?")") }
                }
                report()
            }
        }
    }
}

extension DeviceSelection {
    /// Parses a device list for several workers: "opencl:0,opencl:1", "opencl:0,cpu", or "all" (every OpenCL
    /// device; the CPU backend when there is none). A device may be listed twice (two workers on it).
    public static func list(parsing text: String) throws -> [DeviceSelection] {
        let t = text.lowercased().trimmingCharacters(in: .whitespaces)
        if t == "all" {
            let devices = (try? OpenCLRuntime.devices()) ?? []
            return devices.isEmpty ? [.cpu] : devices.map { .opencl($0.index) }
        }
        let parts = t.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingCharacters(in: .whitespaces) }
        guard !parts.isEmpty, !parts.contains(where: \.isEmpty) else {
            throw EngineError.invalidInput("bad device list '\(text)': use e.g. opencl:0,opencl:1, opencl:0,cpu or all")
        }
        return try parts.map { try DeviceSelection(parsing: $0) }
    }
}
