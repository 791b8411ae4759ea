import Foundation

/// One image of an activation-maximization run: the unit it is for, the objective term that reads it, and
/// where its files go. Jobs are what `amgpu visualize` and `amgpu atlas` (and any other caller) hand to
/// `AMBatchRunner`, which renders them in batches.
public struct AMJob: Sendable, Equatable {
    /// The term this image maximizes. Its `units` are ignored: the runner sets them to the batch's units
    /// (or `[0]` for kinds that read no unit, see `ObjectiveTerm.Kind.readsUnit`).
    public var term: ObjectiveTerm
    /// The unit (channel, dimension or class index) the image is for, as the sidecar records it.
    public var unit: Int
    /// Where the PNG goes, and the file name the sidecar records for it.
    public var imagePath: String
    public var imageName: String
    /// Where the JSON sidecar goes.
    public var recordPath: String

    public init(term: ObjectiveTerm, unit: Int, imagePath: String, imageName: String, recordPath: String) {
        self.term = term
        self.unit = unit
        self.imagePath = imagePath
        self.imageName = imageName
        self.recordPath = recordPath
    }

    /// Whether two jobs can share a batch: their terms agree in everything but the unit.
    func batchesWith(_ other: AMJob) -> Bool {
        var a = term, b = other.term
        a.units = []
        b.units = []
        // Directions of one width batch together (one direction per image, `ObjectiveTerm.direction`).
        if a.kind == .direction, let da = a.direction, let db = b.direction, da.count == db.count {
            a.direction = []
            b.direction = []
        }
        return a == b
    }
}

/// How each batch's seed (initialization and transforms) is chosen.
public enum AMSeeding: Sendable, Equatable {
    /// seed + the position of the batch's first job in the job list (`amgpu visualize`: a run is
    /// reproducible as a whole).
    case sequential(UInt64)
    /// seed XOR FNV-1a("LAYER:U1,U2,…") of the batch's layer and units (`amgpu atlas`: a batch is
    /// reproducible whatever the shard or device that renders it).
    case perBatch(UInt64)

    /// The seed of the batch `jobs`, whose first job is at `position` in the run's job list.
    public func seed(of jobs: [AMJob], position: Int) -> UInt64 {
        switch self {
        case .sequential(let seed): return seed &+ UInt64(position)
        case .perBatch(let seed): return Self.hashed(seed, layer: jobs.first?.term.layer ?? "", units: jobs.map(\.unit))
        }
    }

    /// seed ^ FNV-1a-64("LAYER:U1,U2,…").
    public static func hashed(_ seed: UInt64, layer: String, units: [Int]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "\(layer):\(units.map { String($0) }.joined(separator: ","))".utf8 {
            h = (h ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return seed ^ h
    }
}

/// Which objective a sidecar records.
public enum AMRecordedObjective: Sendable, Equatable {
    /// The batch's whole objective (every unit of the batch, extra terms, diversity) — `amgpu visualize`.
    case batch
    /// The image's own term with its unit only, plus the batch's units in `batchUnits` — `amgpu atlas`.
    case unit
}

/// What to do when a batch fails.
public enum AMFailurePolicy: Sendable, Equatable {
    /// Stop taking batches and rethrow the first error from `run` (one image run: `amgpu visualize`).
    case stop
    /// Mark the batch's jobs failed with the reason and go on (long runs that are rerun: `amgpu atlas`).
    case markFailed
}

/// Settings shared by every batch of a run.
public struct AMRunSettings: Sendable {
    public var preset: AMPreset
    /// Jobs per batch (one image each); the model is loaded at batch `batchSize × preset.transforms.copies`.
    public var batchSize: Int
    public var seeding: AMSeeding
    /// Terms added to every batch's objective (same unit for every image).
    public var extraTerms: [ObjectiveTerm]
    /// Weight of lucid's diversity term on the main term's layer, in batches of two or more images (0 = off).
    public var diversity: Float
    /// Natural photos for the per-unit baseline in the sidecars (empty: no baseline).
    public var baselinePhotos: [RGBImage]
    public var recordedObjective: AMRecordedObjective
    public var failurePolicy: AMFailurePolicy
    /// Keep each batch's images [n, 3, S, S] in the summary (for a grid); off for long runs.
    public var keepImages: Bool
    public var modelSHA256: String?
    public var amgpuVersion: String
    /// Write each image every this many steps (`NAME-step0032.png`, with step 0 and the last step) and
    /// their montage `NAME-trajectory.png`; 0 = off.
    public var snapshotEvery: Int
    /// Warm start for units behind a flat activation (`WarmStart`); nil = off.
    public var warmStart: WarmStart?

    public init(preset: AMPreset, batchSize: Int, seeding: AMSeeding, extraTerms: [ObjectiveTerm] = [], diversity: Float = 0,
                baselinePhotos: [RGBImage] = [], recordedObjective: AMRecordedObjective, failurePolicy: AMFailurePolicy,
                keepImages: Bool = false, modelSHA256: String?, amgpuVersion: String, snapshotEvery: Int = 0,
                warmStart: WarmStart? = .standard) {
        self.snapshotEvery = snapshotEvery
        self.preset = preset
        self.batchSize = batchSize
        self.seeding = seeding
        self.extraTerms = extraTerms
        self.diversity = diversity
        self.baselinePhotos = baselinePhotos
        self.recordedObjective = recordedObjective
        self.failurePolicy = failurePolicy
        self.keepImages = keepImages
        self.modelSHA256 = modelSHA256
        self.amgpuVersion = amgpuVersion
        self.warmStart = warmStart
    }
}

/// Where a run stands: reported every few optimization steps of every batch and after each batch.
public struct AMRunProgress: Sendable {
    /// Jobs (images) this run renders.
    public var total: Int
    public var rendered: Int
    public var failed: Int
    /// Fraction of a job, summed over the batches in flight.
    public var inFlight: Double
    public var elapsedSeconds: Double
    /// The optimization step of the batch that reported (nil for the report at a batch's end).
    public var step: Step?

    public struct Step: Sendable {
        /// The batch's jobs (their layer and units).
        public var layer: String
        public var units: [Int]
        public var step: Int
        public var steps: Int
        /// Mean objective over the batch under this step's transforms.
        public var objective: Float
        /// Seconds since the batch started.
        public var batchSeconds: Double
    }

    public var finished: Int { rendered + failed }
    /// Jobs per minute so far (in-flight fractions included).
    public var jobsPerMinute: Double { (Double(finished) + inFlight) / max(elapsedSeconds, 1e-9) * 60 }
    /// Seconds left at the current rate (nil before any progress).
    public var etaSeconds: Double? {
        let done = Double(finished) + inFlight
        guard done > 0 else { return nil }
        return Double(total) - done <= 0 ? 0 : (Double(total) - done) / done * elapsedSeconds
    }
}

/// What one image scored (the numbers its sidecar records).
public struct AMJobResult: Sendable {
    public var job: AMJob
    public var unitName: String?
    /// The objective without transforms.
    public var finalObjective: Float
    public var targetProbability: Float?
    public var naturalPhotoMean: Float?
}

/// A finished batch: its results, or why it failed.
public struct AMBatchReport: Sendable {
    public var jobs: [AMJob]
    /// The backend's name (nil when no device could take the batch).
    public var device: String?
    /// The per-image results (empty when the batch failed).
    public var results: [AMJobResult]
    public var failure: String?
}

/// The outcome of `AMBatchRunner.run`.
public struct AMRunSummary: Sendable {
    public var rendered: Int
    /// Jobs that failed, with the reason (only with `AMFailurePolicy.markFailed`).
    public var failed: [(job: AMJob, reason: String)]
    public var seconds: Double
    /// Jobs rendered per device.
    public var perDevice: [String: Int]
    /// The images [n, 3, S, S] of each batch in job order (with `keepImages`; failed batches left out).
    public var images: [HostTensor]
}

/// Renders a list of AM jobs in batches — consecutive jobs whose terms agree up to the unit, at most
/// `settings.batchSize` per batch, one image each — on one or more devices, each on its own thread with its
/// own backend and one model per batch size, taking batches from a shared queue. For each finished image it
/// writes the PNG, then the JSON sidecar (`VisualizationSidecar`), each atomically.
///
/// Per batch of units u₁…uₙ: objective = term(u₁…uₙ) + extra terms (+ diversity when n ≥ 2), seed from
/// `settings.seeding`, `Visualizer` at batch n × copies.
///
/// ```swift
/// let runner = try AMBatchRunner(settings: settings, devices: [.cpu]) { batch in try ModelLoader.load(name, batch: batch) }
/// let summary = try runner.run(jobs)
/// ```
public final class AMBatchRunner: @unchecked Sendable {
    public let settings: AMRunSettings
    public let devices: [DeviceSelection]
    let loadModel: @Sendable (Int) throws -> Model
    let notice: @Sendable (String) -> Void

    /// `loadModel(batch)` loads the model at batch size `batch` (called once per batch size and device);
    /// `notice` receives the backends' one-line notices (e.g. `auto` falling back to the CPU).
    public init(settings: AMRunSettings, devices: [DeviceSelection], notice: @escaping @Sendable (String) -> Void = { _ in },
                loadModel: @escaping @Sendable (Int) throws -> Model) throws {
        guard settings.batchSize >= 1 else { throw EngineError.invalidInput("the batch size must be at least 1, got \(settings.batchSize)") }
        guard !devices.isEmpty else { throw EngineError.invalidInput("no devices given: name at least one device") }
        guard settings.snapshotEvery >= 0 else { throw EngineError.invalidInput("the snapshot interval must be ≥ 0 steps, got \(settings.snapshotEvery)") }
        try settings.preset.validate()
        try settings.warmStart?.validate()
        self.settings = settings
        self.devices = devices
        self.notice = notice
        self.loadModel = loadModel
    }

    /// Splits `jobs` into batches of at most `size` consecutive jobs that can share a batch; each with the
    /// position of its first job.
    public static func batches(_ jobs: [AMJob], size: Int) -> [(position: Int, jobs: [AMJob])] {
        var out: [(position: Int, jobs: [AMJob])] = []
        for (i, job) in jobs.enumerated() {
            if let last = out.last, last.jobs.count < size, last.jobs[0].batchesWith(job) { out[out.count - 1].jobs.append(job) }
            else { out.append((i, [job])) }
        }
        return out
    }

    /// The objective of a batch: the jobs' term at their units, the extra terms, and diversity.
    public func objective(of jobs: [AMJob]) -> Objective {
        var term = jobs[0].term
        term.units = term.kind.readsUnit ? jobs.map(\.unit) : [0]
        if term.kind == .direction, jobs.count > 1, jobs.contains(where: { $0.term.direction != term.direction }) {
            term.direction = jobs.flatMap { $0.term.direction ?? [] }   // one row per image
        }
        let diversity = settings.diversity > 0 && jobs.count > 1 ? DiversityTerm(layer: term.layer, weight: settings.diversity) : nil
        return Objective(terms: [term] + settings.extraTerms, diversity: diversity)
    }

    /// Renders `jobs`, calling `progress` as it goes and `finished` after each batch (both under one lock, so
    /// calls never interleave). With `.stop` it rethrows the first failure (a device that cannot open, a model
    /// that cannot load, a run that diverges, a file that cannot be written); with `.markFailed` it never throws.
    public func run(_ jobs: [AMJob], progress: @escaping @Sendable (AMRunProgress) -> Void = { _ in },
                    finished: @escaping @Sendable (AMBatchReport) -> Void = { _ in }) throws -> AMRunSummary {
        let start = Date()
        let state = SharedState(batches: Self.batches(jobs, size: settings.batchSize), total: jobs.count, workers: devices.count,
                                start: start, stopOnFailure: settings.failurePolicy == .stop, progress: progress, finished: finished)
        let group = DispatchGroup(), ready = DispatchGroup()
        for _ in devices { ready.enter() }   // all entered before any worker can wait on it
        for (w, device) in devices.enumerated() {
            group.enter()
            let thread = Thread { [self] in
                defer { group.leave() }
                self.work(worker: w, device: device, state: state, ready: ready)
            }
            thread.stackSize = 16 << 20
            thread.start()
        }
        group.wait()
        if let error = state.firstError { throw error }
        // Batches no device could take (every device failed to open).
        let leftover = state.remainingBatches()
        if !leftover.isEmpty {
            let reason = "no device could run it (\(state.deviceErrors.joined(separator: "; ")))"
            for batch in leftover { state.finish(batch.jobs, position: batch.position, outcome: .failure(reason), device: nil) }
        }
        let images = settings.keepImages ? state.images.sorted { $0.key < $1.key }.map(\.value) : []
        return AMRunSummary(rendered: state.rendered, failed: state.failures, seconds: Date().timeIntervalSince(start),
                            perDevice: state.perDevice, images: images)
    }

    /// One device's loop. Workers open their backends, then wait for each other (`ready`) before taking
    /// batches, so that with at least as many batches as devices every device that opened gets work.
    func work(worker: Int, device: DeviceSelection, state: SharedState, ready: DispatchGroup) {
        let backend: any Backend
        do { backend = try device.makeBackend(notice: notice) } catch {
            state.deviceFailed("\(device): \(error)", error: error)
            ready.leave()
            return
        }
        ready.leave()
        ready.wait()
        var models: [Int: Model] = [:]
        while let batch = state.take() {
            do {
                let images = batch.jobs.count * max(1, settings.preset.transforms.copies)
                let model: Model
                if let cached = models[images] { model = cached } else {
                    model = try AMBatchRunner.loadLock.withLock { try loadModel(images) }
                    models[images] = model
                }
                let (results, tensor) = try render(batch.jobs, position: batch.position, model: model, backend: backend) { p in
                    state.stepped(worker, p)
                }
                state.finish(batch.jobs, position: batch.position, outcome: .success(results, settings.keepImages ? tensor : nil),
                             device: backend.name, worker: worker)
            } catch {
                state.finish(batch.jobs, position: batch.position, outcome: .error(error), device: backend.name, worker: worker)
            }
        }
    }

    /// Model loading is serialized (parsers and caches are not meant to run concurrently; it happens once per
    /// batch size and device).
    static let loadLock = NSLock()

    /// Optimizes one batch and writes its files (PNG, then JSON, each atomically).
    func render(_ jobs: [AMJob], position: Int, model: Model, backend: any Backend,
                step: (AMRunProgress.Step) -> Void) throws -> ([AMJobResult], HostTensor) {
        let objective = objective(of: jobs)
        let units = jobs.map(\.unit)
        let seed = settings.seeding.seed(of: jobs, position: position)
        let request = VisualizationRequest(objective: objective, preset: settings.preset, seed: seed, images: jobs.count,
                                           warmStart: settings.warmStart)
        let visualizer = try Visualizer(model: model, request: request, backend: backend)
        let layer = jobs[0].term.layer
        // Snapshots: written as they come (atomically), kept as 8-bit images for the trajectory montage.
        var snapshots: [[(step: Int, name: String, image: RGBImage)]] = Array(repeating: [], count: jobs.count)
        let result = try visualizer.run(naturalImages: settings.baselinePhotos, snapshotEvery: settings.snapshotEvery, snapshot: { s, images in
            for (i, job) in jobs.enumerated() {
                let image = try RGBImage(tensor: images, index: i)
                let name = AMOutputFiles.snapshotName(job.imageName, step: s)
                try PNGFile.write(image, to: AMOutputFiles.sibling(job.imagePath, name))
                snapshots[i].append((s, name, image))
            }
        }) { p in
            step(AMRunProgress.Step(layer: layer, units: units, step: p.step, steps: p.steps, objective: p.objective,
                                    batchSeconds: p.elapsedSeconds))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var results: [AMJobResult] = []
        for (i, job) in jobs.enumerated() {
            let kind = job.term.kind
            let unitName = kind == .logit || kind == .probability ? model.className(job.unit) : nil
            try PNGFile.write(RGBImage(tensor: result.images, index: i), to: job.imagePath)
            var prior = try ImagePriorRecord(parameterization: settings.preset.parameterization)
            if !snapshots[i].isEmpty {
                let name = AMOutputFiles.trajectoryName(job.imageName)
                let montage = try Montage.compose(snapshots[i].map(\.image), captions: snapshots[i].map { ["step \($0.step)"] },
                                                  columns: min(snapshots[i].count, 8))
                try PNGFile.write(montage, to: AMOutputFiles.sibling(job.imagePath, name))
                prior.snapshots = snapshots[i].map(\.name)
                prior.trajectory = name
            }
            if let transparency = result.transparency {
                let name = AMOutputFiles.alphaName(job.imageName)
                try PNGFile.write(transparencyImage(transparency, index: i), to: AMOutputFiles.sibling(job.imagePath, name))
                prior.transparency = name
            }
            var ownTerm = job.term
            ownTerm.units = [job.unit]
            let record = VisualizationSidecar(
                model: model.name, modelSource: model.source, modelSHA256: settings.modelSHA256, layer: job.term.layer,
                unit: job.unit, unitName: unitName,
                objective: settings.recordedObjective == .batch ? objective : Objective(terms: [ownTerm]),
                preset: visualizer.request.preset, seed: seed, device: backend.name, finalObjective: result.finalScores[i],
                targetProbability: result.targetProbabilities?[i], naturalPhotoMean: result.naturalMean?[i],
                naturalPhotoCount: settings.baselinePhotos.count, seconds: result.seconds, steps: result.stepsRun,
                image: job.imageName, amgpuVersion: settings.amgpuVersion,
                batchUnits: settings.recordedObjective == .unit ? units : nil, card: model.cardRecord, imagePrior: prior,
                warmStart: result.warmStart?[i])
            try writeAtomically(encoder.encode(record), to: job.recordPath)
            results.append(AMJobResult(job: job, unitName: unitName, finalObjective: result.finalScores[i],
                                       targetProbability: result.targetProbabilities?[i], naturalPhotoMean: result.naturalMean?[i]))
        }
        return (results, result.images)
    }

    enum Outcome {
        case success([AMJobResult], HostTensor?)
        case error(any Error)
        case failure(String)
    }

    /// The batch queue and the counters, behind one lock.
    final class SharedState: @unchecked Sendable {
        let lock = NSLock()
        var batches: [(position: Int, jobs: [AMJob])]
        var next = 0
        let total: Int
        var rendered = 0
        var failures: [(job: AMJob, reason: String)] = []
        var perDevice: [String: Int] = [:]
        var deviceErrors: [String] = []
        var images: [Int: HostTensor] = [:]
        /// With `stopOnFailure`: the first error, after which no batch is taken.
        var firstError: (any Error)?
        let stopOnFailure: Bool
        var inFlight: [Double]
        let start: Date
        let progress: @Sendable (AMRunProgress) -> Void
        let finished: @Sendable (AMBatchReport) -> Void

        init(batches: [(position: Int, jobs: [AMJob])], total: Int, workers: Int, start: Date, stopOnFailure: Bool,
             progress: @escaping @Sendable (AMRunProgress) -> Void, finished: @escaping @Sendable (AMBatchReport) -> Void) {
            self.batches = batches
            self.total = total
            self.inFlight = Array(repeating: 0, count: workers)
            self.start = start
            self.stopOnFailure = stopOnFailure
            self.progress = progress
            self.finished = finished
        }

        func take() -> (position: Int, jobs: [AMJob])? {
            lock.withLock {
                guard next < batches.count, firstError == nil else { return nil }
                defer { next += 1 }
                return batches[next]
            }
        }

        func remainingBatches() -> [(position: Int, jobs: [AMJob])] {
            lock.withLock {
                defer { next = batches.count }
                return Array(batches[next...])
            }
        }

        /// A device that failed to open; with `stopOnFailure` its error ends the run (when no other device
        /// took over, i.e. with one device).
        func deviceFailed(_ message: String, error: any Error) {
            lock.withLock {
                deviceErrors.append(message)
                if stopOnFailure && deviceErrors.count == inFlight.count && firstError == nil { firstError = error }
            }
        }

        /// Reports progress under the lock (so reports never interleave).
        func report(_ step: AMRunProgress.Step?) {
            progress(AMRunProgress(total: total, rendered: rendered, failed: failures.count, inFlight: inFlight.reduce(0, +),
                                   elapsedSeconds: Date().timeIntervalSince(start), step: step))
        }

        func stepped(_ worker: Int, _ step: AMRunProgress.Step) {
            lock.withLock {
                inFlight[worker] = Double(step.step) / Double(max(step.steps, 1)) * Double(step.units.count)
                report(step)
            }
        }

        func finish(_ jobs: [AMJob], position: Int, outcome: Outcome, device: String?, worker: Int? = nil) {
            lock.withLock {
                if let worker { inFlight[worker] = 0 }
                var report = AMBatchReport(jobs: jobs, device: device, results: [], failure: nil)
                switch outcome {
                case .success(let results, let tensor):
                    rendered += jobs.count
                    if let device { perDevice[device, default: 0] += jobs.count }
                    if let tensor { images[position] = tensor }
                    report.results = results
                case .error(let error):
                    if stopOnFailure {
                        if firstError == nil { firstError = error }
                        return
                    }
                    failures.append(contentsOf: jobs.map { ($0, "\(error)") })
                    report.failure = "\(error)"
                case .failure(let reason):
                    failures.append(contentsOf: jobs.map { ($0, reason) })
                    report.failure = reason
                }
                finished(report)
                self.report(nil)
            }
        }
    }
}

/// The names of the files written next to an image `NAME.png`.
public enum AMOutputFiles {
    static func stem(_ imageName: String) -> String { (imageName as NSString).deletingPathExtension }
    /// `NAME-step0032.png`.
    public static func snapshotName(_ imageName: String, step: Int) -> String { "\(stem(imageName))-step\(String(format: "%04d", step)).png" }
    /// `NAME-trajectory.png`: the snapshots in rows of 8, captioned with their steps.
    public static func trajectoryName(_ imageName: String) -> String { "\(stem(imageName))-trajectory.png" }
    /// `NAME-alpha.png`: MaCo's transparency map.
    public static func alphaName(_ imageName: String) -> String { "\(stem(imageName))-alpha.png" }
    /// `name` in the folder of `path`.
    static func sibling(_ path: String, _ name: String) -> String {
        ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(name)
    }
}

/// MaCo's transparency map of image `index` of a [N, 3, H, W] accumulation A as a grey image:
/// a[h, w] = Σ_c A[c, h, w] / max_{h,w} Σ_c A[c, h, w] (all 0 when A is 0), written as 8-bit grey.
public func transparencyImage(_ accumulated: HostTensor, index: Int) throws -> RGBImage {
    let s = accumulated.shape
    guard s.count == 4, s[1] == 3, index < s[0] else {
        throw EngineError.shapeMismatch("a transparency map needs a [N, 3, H, W] tensor, got \(s)")
    }
    let plane = s[2] * s[3], base = index * 3 * plane
    var sum = [Float](repeating: 0, count: plane)
    for c in 0..<3 { for i in 0..<plane { sum[i] += accumulated.values[base + c * plane + i] } }
    let peak = sum.max() ?? 0
    let scale: Float = peak > 0 && peak.isFinite ? 1 / peak : 0
    let grey = sum.map { UInt8(min(max(($0 * scale * 255).rounded(), 0), 255)) }
    return RGBImage(width: s[3], height: s[2], pixels: grey.flatMap { [$0, $0, $0] })
}

extension ObjectiveTerm.Kind {
    /// Whether the term reads a unit per image (`direction` reads a vector, `deepdream`, `caricature` and
    /// `invert` the whole layer).
    public var readsUnit: Bool { ![.direction, .deepdream, .caricature, .invert].contains(self) }
}
