import Foundation

/// What `amgpu probe` is asked to do.
public struct ProbeRequest: Sendable {
    /// Layer names (as `amgpu layers` lists them; "output" for the logits).
    public var layers: [String]
    /// Units of every layer (nil: all).
    public var units: [Int]?
    /// Examples kept per unit (k ≥ 1).
    public var top: Int
    public var shard: AtlasShard
    /// A checkpoint (the shard's state, atomically) every this many batches, and at the end.
    public var checkpointEvery: Int
    /// Side of each patch in the unit montages, in pixels.
    public var patchSize: Int
    public var background: BackgroundColor

    public init(layers: [String], units: [Int]? = nil, top: Int = 9, shard: AtlasShard = .whole, checkpointEvery: Int = 8,
                patchSize: Int = 64, background: BackgroundColor = .white) {
        self.layers = layers
        self.units = units
        self.top = top
        self.shard = shard
        self.checkpointEvery = checkpointEvery
        self.patchSize = patchSize
        self.background = background
    }

    public func validate() throws {
        guard top >= 1 else { throw EngineError.invalidInput("\(SettingName.top.mention) must be at least 1, got \(top)") }
        guard checkpointEvery >= 1 else { throw EngineError.invalidInput("the checkpoint interval must be at least 1 batch, got \(checkpointEvery)") }
        guard patchSize >= 8, patchSize <= 512 else { throw EngineError.invalidInput("the patch size must lie in 8…512 pixels, got \(patchSize)") }
    }
}

/// Progress of a probe shard: files done (read or skipped) of the shard's, rate and ETA.
public struct ProbeProgress: Sendable {
    public var done: Int
    public var total: Int
    public var read: Int
    public var skipped: Int
    public var imagesPerMinute: Double
    public var etaSeconds: Double?
}

/// The outcome of `Probe.run`: the shard's final state, where it resumed, and the result when the run
/// was unsharded (then probe.json and the montages are written).
public struct ProbeRunSummary {
    public var state: ProbeState
    /// Files of the shard already done by an earlier (killed) run.
    public var resumedAt: Int
    public var statePath: String
    public var result: ProbeResult?
    public var seconds: Double
}

/// Dataset examples: streams a folder of images through a model and keeps, per unit of some layers, the
/// top-k images (value = the maximum over the layer's positions — spatial positions of a feature map, patch
/// tokens of a ViT layer — with that position and its receptive-field box) and statistics over the images.
///
/// Sharded like `atlas`, by batches: with batch size B, shard i of n takes the listing's images at positions p with
/// ⌊p / B⌋ mod n = i (whole batches, interleaved), and runs them in those same batches (`LayerActivationStream`'s
/// aligned batching), so every image is computed with the same batch-mates in the same slot as in an unsharded
/// run and its activations agree to the last bit. Each shard writes
/// its state to OUT/shards/shard-i-of-n.json (atomically, every `checkpointEvery` batches), so a killed shard
/// resumes after the last checkpoint. `merge` combines the shards' states exactly: top-k by the total order of
/// `ProbeExample.ranks` over the union (each shard's top k holds every one of its images that can be in the
/// global top k), summaries by `RunningSummary.merge`.
public enum Probe {
    /// The layers and units to probe, with their geometry. Throws for unknown layers, units out of range, a
    /// layer listed twice, and layers without positions in the image.
    public static func plan(model: Model, layers names: [String], units: [Int]?) throws -> [(layer: ProbeLayer, value: ValueID, geometry: LayerGeometry)] {
        guard !names.isEmpty else { throw EngineError.invalidInput("no layers given: pass \(SettingName.layers.mention) L1,L2 (see `amgpu layers \(model.name)`)") }
        let fields = ReceptiveFields(model: model)
        var seen = Set<String>(), dirs = [String: String]()
        var out: [(ProbeLayer, ValueID, LayerGeometry)] = []
        for name in names {
            guard seen.insert(name).inserted else { throw EngineError.invalidInput("layer '\(name)' is listed twice in \(SettingName.layers.mention)") }
            let id = try model.resolve(layer: name)
            let geometry = try fields.geometry(of: id, name: name)
            let count = geometry.units
            let selected = units.map { Array(Set($0)).sorted() } ?? Array(0..<count)
            if let bad = selected.first(where: { $0 < 0 || $0 >= count }) {
                throw EngineError.invalidInput("unit \(bad) is out of range for layer '\(name)' (\(count) units, 0–\(count - 1)): narrow \(SettingName.units.mention)")
            }
            guard !selected.isEmpty else { throw EngineError.invalidInput("no units selected for layer '\(name)'") }
            let directory = safeFileName(name)
            if let other = dirs[directory] {
                throw EngineError.invalidInput("layers '\(other)' and '\(name)' would share the folder '\(directory)'")
            }
            dirs[directory] = name
            var shape = model.graph.shape(of: id)
            shape[0] = 1
            let (kind, reduction, position): (String, String, String)
            switch geometry {
            case .spatial(_, let f):
                (kind, reduction, position) = ("spatial", "max over the \(f.height)×\(f.width) spatial positions", "[row, column] of the \(f.height)×\(f.width) map")
            case .tokens(let t, _, let prefix, let gh, let gw, _):
                (kind, reduction, position) = ("tokens", "max over the \(gh * gw) patch tokens (the \(prefix) class/register token\(prefix == 1 ? "" : "s") excluded)",
                                               "[token] index in 0..<\(t); patch tokens start at \(prefix), row-major over the \(gh)×\(gw) patch grid")
            case .vector:
                (kind, reduction, position) = ("vector", "the value itself (one position, the whole image)", "[] (none)")
            }
            out.append((ProbeLayer(name: name, shape: shape, kind: kind, reduction: reduction, position: position,
                                   directory: directory, units: selected), id, geometry))
        }
        return out
    }

    /// The images of `shard`: whole batches of `batch` consecutive listing positions, batch k to shard k mod n.
    public static func shardImages(_ images: [String], shard: AtlasShard, batch: Int) -> [String] {
        images.indices.filter { ($0 / max(batch, 1)) % shard.count == shard.index }.map { images[$0] }
    }

    public static func statePath(out: String, shard: AtlasShard) -> String {
        (out as NSString).appendingPathComponent("shards/shard-\(shard.index)-of-\(shard.count).json")
    }

    /// Probes the shard `request.shard` of `folder` with `model` (loaded at the batch size wanted) on `backend`.
    /// Resumes from OUT/shards/shard-i-of-n.json when it belongs to the same run; an unsharded run also writes
    /// probe.json and the montages (`write`).
    public static func run(model: Model, backend: any Backend, folder: ImageFolder, request: ProbeRequest, out: String,
                           progress: ((ProbeProgress) throws -> Void)? = nil) throws -> ProbeRunSummary {
        try request.validate()
        let plan = try plan(model: model, layers: request.layers, units: request.units)
        let shard = request.shard
        let mine = shardImages(folder.images, shard: shard, batch: model.batchSize)
        let inputHeight = model.preprocessing.height, inputWidth = model.preprocessing.width
        let statePath = statePath(out: out, shard: shard)
        // A run that fails before its first checkpoint leaves nothing behind: the folders it created go.
        let fm = FileManager.default
        let created = [out, (statePath as NSString).deletingLastPathComponent].filter { !fm.fileExists(atPath: $0) }
        try makeFolder((statePath as NSString).deletingLastPathComponent)
        var checkpointed = false
        func cleanUp() {
            guard !checkpointed else { return }
            for dir in created.reversed() where ((try? fm.contentsOfDirectory(atPath: dir)) ?? ["?"]).isEmpty { try? fm.removeItem(atPath: dir) }
        }
        var state = ProbeState(model: model.name, modelSHA256: model.fileSHA256(), preprocessing: model.preprocessing, top: request.top, batch: model.batchSize,
                               layers: plan.map(\.layer), listingSHA256: sha256Hex(Data(folder.images.joined(separator: "\n").utf8)),
                               listed: folder.images.count, listingSkipped: folder.skipped, shardIndex: shard.index, shardCount: shard.count,
                               shardImages: mine.count, consumed: 0, complete: false, read: 0, skipped: [],
                               units: plan.map { p in p.layer.units.map { ProbeUnitState(unit: $0) } })
        if FileManager.default.fileExists(atPath: statePath) {
            let old = try ProbeState.read(statePath)
            guard old.runKey == state.runKey, old.shardImages == state.shardImages, old.shardIndex == state.shardIndex else {
                throw EngineError.invalidInput("'\(statePath)' belongs to another probe (a different model, images, layers, units, top, batch size or shard count); give a new \(SettingName.outputFolder.mention) or delete that folder")
            }
            state = old
        }
        let resumedAt = state.consumed
        let start = Date()
        if !state.complete {
            do {
                let stream = try LayerActivationStream(model: model, backend: backend, layers: plan.map(\.value))
                var batches = 0
                let base = state.consumed
                try progress?(ProbeProgress(done: base, total: mine.count, read: state.read, skipped: state.skipped.count, imagesPerMinute: 0, etaSeconds: nil))
                // Unsharded, not one readable image is an error; a shard may hold only bad files (the merge checks the total).
                try stream.run(Array(mine[base...]), background: request.background, requireOne: shard.count == 1 && base == 0, aligned: true) { batch in
                    state.skipped += batch.skipped
                    for (l, p) in plan.enumerated() {
                        guard let t = batch.activations[p.value] else { continue }
                        accumulate(t, count: batch.paths.count, paths: batch.paths, geometry: p.geometry, units: &state.units[l],
                                   k: request.top, inputHeight: inputHeight, inputWidth: inputWidth)
                    }
                    state.read += batch.paths.count
                    state.consumed = base + batch.consumed
                    batches += 1
                    if batches % request.checkpointEvery == 0, state.read > 0 {
                        try state.write(to: statePath)
                        checkpointed = true
                    }
                    let elapsed = Date().timeIntervalSince(start)
                    let rate = Double(state.consumed - base) / max(elapsed, 1e-9) * 60
                    try progress?(ProbeProgress(done: state.consumed, total: mine.count, read: state.read, skipped: state.skipped.count,
                                            imagesPerMinute: rate, etaSeconds: rate > 0 ? Double(mine.count - state.consumed) / rate * 60 : nil))
                }
                state.consumed = mine.count
                state.complete = true
                try state.write(to: statePath)
                checkpointed = true
            } catch {
                cleanUp()
                throw error
            }
        }
        var result: ProbeResult?
        if shard.count == 1 {
            let merged = try merge(states: [state])
            try write(merged, to: out, patchSize: request.patchSize, background: request.background)
            result = merged
        }
        return ProbeRunSummary(state: state, resumedAt: resumedAt, statePath: statePath, result: result,
                               seconds: Date().timeIntervalSince(start))
    }

    /// Adds a batch's activations of one layer to its units' states.
    static func accumulate(_ t: HostTensor, count n: Int, paths: [String], geometry: LayerGeometry, units: inout [ProbeUnitState],
                           k: Int, inputHeight: Int, inputWidth: Int) {
        let values = t.values
        for i in 0..<n {
            for j in units.indices {
                let u = units[j].unit
                var best = -Float.infinity, bestPosition = 0, sum = 0.0, positions = 0
                var position: [Int] = []
                switch geometry {
                case .spatial(let c, let f):
                    let hw = f.height * f.width, base = (i * c + u) * hw
                    for p in 0..<hw {
                        let v = values[base + p]
                        sum += Double(v)
                        if v > best { best = v; bestPosition = p }
                    }
                    positions = hw
                    position = [bestPosition / f.width, bestPosition % f.width]
                case .tokens(let tc, let d, let prefix, _, _, _):
                    for tok in prefix..<tc {
                        let v = values[(i * tc + tok) * d + u]
                        sum += Double(v)
                        if v > best { best = v; bestPosition = tok }
                    }
                    positions = tc - prefix
                    position = [bestPosition]
                case .vector(let d):
                    best = values[i * d + u]
                    sum = Double(best)
                    positions = 1
                    bestPosition = 0
                }
                let box = geometry.box(position: bestPosition, inputHeight: inputHeight, inputWidth: inputWidth)
                let example = ProbeExample(image: paths[i], value: best, position: position, box: box)
                // An image whose unit is NaN or infinite everywhere is left out of the ranking and the statistics.
                if best.isFinite, sum.isFinite {
                    units[j].add(example, mean: sum / Double(max(positions, 1)), k: k)
                }
            }
        }
    }

    /// Merges complete shard states of one run (all n shards, each once) into the result.
    public static func merge(states: [ProbeState]) throws -> ProbeResult {
        guard let first = states.first else { throw EngineError.invalidInput("no probe shards to merge") }
        for s in states {
            guard s.runKey == first.runKey else {
                throw EngineError.invalidInput("shard \(s.shardIndex)/\(s.shardCount) belongs to another probe than shard \(first.shardIndex)/\(first.shardCount) (a different model, images, layers, units or --top); merge the shards of one run")
            }
            guard s.complete else {
                throw EngineError.invalidInput("shard \(s.shardIndex)/\(s.shardCount) is not finished (\(s.consumed) of \(s.shardImages) images); rerun it (it resumes), then merge")
            }
        }
        let indices = states.map(\.shardIndex)
        if let twice = indices.first(where: { i in indices.filter { $0 == i }.count > 1 }) {
            throw EngineError.invalidInput("shard \(twice)/\(first.shardCount) is given twice")
        }
        let missing = (0..<first.shardCount).filter { !indices.contains($0) }
        guard missing.isEmpty else {
            throw EngineError.invalidInput("shards \(missing.map { "\($0)/\(first.shardCount)" }.joined(separator: ", ")) are missing; run them (--shard i/\(first.shardCount)) before merging")
        }
        var units = first.units.map { $0.map { ProbeUnitState(unit: $0.unit) } }
        for s in states.sorted(by: { $0.shardIndex < $1.shardIndex }) {
            for l in units.indices { for j in units[l].indices { units[l][j].merge(s.units[l][j], k: first.top) } }
        }
        let read = states.reduce(0) { $0 + $1.read }
        guard read > 0 else {
            let skipped = states.flatMap(\.skipped)
            throw EngineError.invalidInput("no image could be read (\(skipped.count) skipped)" + (skipped.first.map { ": '\($0.path)': \($0.reason)" } ?? ""))
        }
        var layers: [String: [String: [ProbeExample]]] = [:]
        var statistics: [String: [String: ProbeUnitStatistics]] = [:]
        var info: [String: ProbeLayer] = [:]
        for (l, layer) in first.layers.enumerated() {
            info[layer.name] = layer
            var top: [String: [ProbeExample]] = [:], stats: [String: ProbeUnitStatistics] = [:]
            for u in units[l] {
                top[String(u.unit)] = u.top
                stats[String(u.unit)] = ProbeUnitStatistics(max: u.maximum.report, mean: u.mean.report)
            }
            layers[layer.name] = top
            statistics[layer.name] = stats
        }
        let skipped = first.listingSkipped + states.sorted { $0.shardIndex < $1.shardIndex }.flatMap(\.skipped)
        return ProbeResult(model: first.model, modelSHA256: first.modelSHA256, images: read, listed: first.listed, skipped: skipped,
                           top: first.top, inputSize: [first.preprocessing.height, first.preprocessing.width],
                           preprocessing: first.preprocessing, shards: first.shardCount, layers: layers, layerInfo: info,
                           statistics: statistics)
    }

    /// Reads the shard states under each input — an OUT folder (its shards/*.json), a shards folder, or a
    /// state file — and merges them.
    public static func merge(inputs: [String]) throws -> ProbeResult {
        var files: [String] = []
        for input in inputs {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory) else {
                throw EngineError.io("cannot read '\(input)': no such file or folder; give probe output folders (OUT) or their shards/*.json")
            }
            if !isDirectory.boolValue { files.append(input); continue }
            let dir = FileManager.default.fileExists(atPath: (input as NSString).appendingPathComponent("shards")) ? (input as NSString).appendingPathComponent("shards") : input
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
                .filter { $0.hasPrefix("shard-") && $0.hasSuffix(".json") }.sorted()
            guard !names.isEmpty else {
                throw EngineError.invalidInput("'\(input)' holds no probe shard states (shards/shard-i-of-n.json); run `amgpu probe --shard i/n --out \(input)` first")
            }
            files += names.map { (dir as NSString).appendingPathComponent($0) }
        }
        var seen = Set<String>()
        let unique = files.filter { seen.insert(URL(fileURLWithPath: $0).standardizedFileURL.path).inserted }
        return try merge(states: unique.map { try ProbeState.read($0) })
    }

    /// Writes OUT/<layer dir>/<unit>.png (each unit's top patches: the box of each example cut from the fitted
    /// image, scaled to `patchSize`, captioned with rank and value, in rank order) and then OUT/probe.json, each
    /// atomically; probe.json last, so it exists only when everything else is written.
    public static func write(_ result: ProbeResult, to out: String, patchSize: Int = 64, background: BackgroundColor = .white) throws {
        try makeFolder(out)
        var cache: [String: RGBImage] = [:]
        func fitted(_ path: String) -> RGBImage? {
            if let image = cache[path] { return image }
            guard let image = try? ImageFile.read(path, background: background) else { return nil }
            let f = ImagePreprocessing.fitted(image, result.preprocessing)
            cache[path] = f
            return f
        }
        let missing = RGBImage(width: patchSize, height: patchSize, pixels: [UInt8](repeating: 160, count: patchSize * patchSize * 3))
        for (name, units) in result.layers {
            guard let info = result.layerInfo[name] else { continue }
            let dir = (out as NSString).appendingPathComponent(info.directory)
            try makeFolder(dir)
            for (unit, examples) in units where !examples.isEmpty {
                var patches: [RGBImage] = [], captions: [[String]] = []
                for (r, e) in examples.enumerated() {
                    if let image = fitted(e.image), let crop = crop(image, e.box) {
                        patches.append(ImagePreprocessing.resize(crop, width: patchSize, height: patchSize))
                    } else {
                        patches.append(missing)
                    }
                    captions.append([String(format: "%d: %.3g", r + 1, e.value)])
                }
                let columns = examples.count <= 9 ? examples.count : Int(Double(examples.count).squareRoot().rounded(.up))
                let montage = try Montage.compose(patches, captions: captions, columns: columns)
                try PNGFile.write(montage, to: (dir as NSString).appendingPathComponent("\(unit).png"))
            }
        }
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try writeAtomically(try e.encode(result) + Data("\n".utf8), to: (out as NSString).appendingPathComponent("probe.json"))
    }

    static func crop(_ image: RGBImage, _ box: PixelBox) -> RGBImage? {
        let x0 = max(0, box.x0), y0 = max(0, box.y0), x1 = min(image.width, box.x1), y1 = min(image.height, box.y1)
        guard x1 > x0, y1 > y0 else { return nil }
        var pixels = [UInt8]()
        pixels.reserveCapacity((x1 - x0) * (y1 - y0) * 3)
        for y in y0..<y1 { pixels += image.pixels[((y * image.width + x0) * 3)..<((y * image.width + x1) * 3)] }
        return RGBImage(width: x1 - x0, height: y1 - y0, pixels: pixels)
    }

    static func makeFolder(_ path: String) throws {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw EngineError.io("cannot create folder '\(path)': \(error.localizedDescription); give a writable \(SettingName.outputFolder.mention)")
        }
    }
}

/// A unit's statistics in probe.json: of the per-image maximum (the value ranked) and of the per-image mean
/// over positions (comparable to the AM channel objective).
public struct ProbeUnitStatistics: Codable, Sendable, Equatable {
    public var max: UnitStatistics
    public var mean: UnitStatistics
}

/// OUT/probe.json. The issue's schema — `model`, `images`, `layers: {LAYER: {UNIT: [{image, value, box}]}}` —
/// plus each example's `position`, the layers' `layer_info` (shape, kind, reduction, what positions mean),
/// per-unit `statistics`, the input size the boxes refer to, and the skipped files.
public struct ProbeResult: Codable, Sendable, Equatable {
    public var format = "amgpu-probe/1"
    public var model: String
    public var modelSHA256: String?
    /// Images read (probed).
    public var images: Int
    /// Images in the folder listing (JPEG/PNG by magic bytes).
    public var listed: Int
    public var skipped: [ImageFolder.Skipped]
    public var top: Int
    /// [H, W] of the model input: boxes are pixels of the image fitted to this size (as the model sees it).
    public var inputSize: [Int]
    public var preprocessing: Preprocessing
    public var shards: Int
    public var layers: [String: [String: [ProbeExample]]]
    public var layerInfo: [String: ProbeLayer]
    public var statistics: [String: [String: ProbeUnitStatistics]]
    public var boxes = "half-open [x0, y0, x1, y1] in pixels of the model input (the image resized and centre-cropped to input_size); the receptive field of the position of the maximum, clipped to the image"
    public var quantiles = "DDSketch with 1 % relative accuracy: each quantile is within 1 % of the value of rank floor(q·(n−1)) among the images (exact under merging)"
    public var patches = "<layer_info.directory>/<unit>.png: the top examples' boxes, in rank order"

    public init(model: String, modelSHA256: String?, images: Int, listed: Int, skipped: [ImageFolder.Skipped], top: Int,
                inputSize: [Int], preprocessing: Preprocessing, shards: Int, layers: [String: [String: [ProbeExample]]],
                layerInfo: [String: ProbeLayer], statistics: [String: [String: ProbeUnitStatistics]]) {
        self.model = model
        self.modelSHA256 = modelSHA256
        self.images = images
        self.listed = listed
        self.skipped = skipped
        self.top = top
        self.inputSize = inputSize
        self.preprocessing = preprocessing
        self.shards = shards
        self.layers = layers
        self.layerInfo = layerInfo
        self.statistics = statistics
    }

    enum CodingKeys: String, CodingKey {
        case format, model, images, listed, skipped, top, preprocessing, shards, layers, statistics, boxes, quantiles, patches
        case modelSHA256 = "model_sha256"
        case inputSize = "input_size"
        case layerInfo = "layer_info"
    }

    /// Reads OUT/probe.json (or the file given); anything else is a clear error.
    public static func read(_ path: String) throws -> ProbeResult {
        var file = path
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            file = (path as NSString).appendingPathComponent("probe.json")
        }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: file)) } catch {
            throw EngineError.io("cannot read probe result '\(file)': \(error.localizedDescription); give the probe.json that `amgpu probe` wrote")
        }
        do { return try JSONDecoder().decode(ProbeResult.self, from: data) } catch {
            throw EngineError.invalidInput("'\(file)' is not an amgpu probe.json (\(error))")
        }
    }
}
