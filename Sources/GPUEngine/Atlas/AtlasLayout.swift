import Foundation

/// What an atlas folder holds and how a unit is found in it:
///
///     DIR/atlas.json              the manifest: model, layers, preset, seed (shared by every shard)
///     DIR/<layer>/<unit>.png      the unit's image
///     DIR/<layer>/<unit>.json     its record (`VisualizationSidecar`), written after the PNG
///     DIR/logs/<run>.log          append-only progress log per shard (informative; the files are the truth)
///     DIR/index.html, DIR/<layer>/index.html, DIR/<layer>/thumbs/   the HTML atlas (`AtlasIndex`)
///
/// A unit is done iff its PNG and its JSON both exist. Both are written atomically (temporary file, then
/// rename) and the JSON last, so a process killed at any moment leaves either a finished unit, or at most
/// a PNG without its JSON (re-rendered by the next run), plus a hidden temporary that `removeStaleTemporaries`
/// deletes — never a truncated PNG or JSON under its final name.
public struct AtlasLayout: Sendable {
    public let root: String

    public init(root: String) {
        self.root = root
    }

    public var manifestPath: String { path("atlas.json") }
    public var logDirectory: String { path("logs") }

    public func path(_ components: String...) -> String {
        components.reduce(root) { ($0 as NSString).appendingPathComponent($1) }
    }

    public func layerDirectory(_ layer: String) -> String { path(safeFileName(layer)) }
    public func imageName(_ unit: Int) -> String { "\(unit).png" }
    public func recordName(_ unit: Int) -> String { "\(unit).json" }
    public func imagePath(_ u: AtlasUnit) -> String { path(safeFileName(u.layer), imageName(u.unit)) }
    public func recordPath(_ u: AtlasUnit) -> String { path(safeFileName(u.layer), recordName(u.unit)) }

    /// Done iff the PNG and the (non-empty) JSON both exist.
    public func isDone(_ u: AtlasUnit) -> Bool {
        let fm = FileManager.default
        guard fm.fileExists(atPath: imagePath(u)),
              let attributes = try? fm.attributesOfItem(atPath: recordPath(u)),
              let size = attributes[.size] as? NSNumber else { return false }
        return size.intValue > 0
    }

    /// The units of `units` that are done, as a set (one directory listing per layer).
    public func doneUnits(_ units: [AtlasUnit]) -> Set<AtlasUnit> {
        var byLayer: [String: Set<String>] = [:]
        var done = Set<AtlasUnit>()
        for u in units {
            if byLayer[u.layer] == nil {
                byLayer[u.layer] = Set((try? FileManager.default.contentsOfDirectory(atPath: layerDirectory(u.layer))) ?? [])
            }
            guard let names = byLayer[u.layer], names.contains(imageName(u.unit)), names.contains(recordName(u.unit)) else { continue }
            if isDone(u) { done.insert(u) }
        }
        return done
    }

    /// Creates the root and the layer folders. Throws a clear error when the root cannot be created or written.
    public func prepare(layers: [AtlasLayer]) throws {
        let fm = FileManager.default
        for dir in [root, logDirectory] + layers.map({ path($0.directory) }) {
            do { try fm.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                throw EngineError.io("cannot create the atlas folder '\(dir)': \(error.localizedDescription) (check the \(SettingName.outputFolder.mention) path and its permissions)")
            }
        }
        guard fm.isWritableFile(atPath: root) else { throw EngineError.io("the atlas folder '\(root)' is not writable") }
    }

    /// Deletes hidden temporaries (`.NAME.tmp-PID-RANDOM-HOST`) left in the layer folders by a process that
    /// was killed: those of this host whose process is gone, and any older than `maxAge` seconds (from other
    /// hosts sharing the folder). Returns how many it removed.
    @discardableResult
    public func removeStaleTemporaries(layers: [AtlasLayer], maxAge: TimeInterval = 6 * 3600) -> Int {
        let fm = FileManager.default
        let host = currentHostName()
        var removed = 0
        let folders = [root, logDirectory, path("probe")] + layers.flatMap { [path($0.directory), path($0.directory, "thumbs")] }
        for dir in folders {
            guard let names = try? fm.contentsOfDirectory(atPath: dir) else { continue }
            for name in names where name.hasPrefix(".") {
                guard let marker = name.range(of: ".tmp-", options: .backwards) else { continue }
                let fields = name[marker.upperBound...].split(separator: "-", maxSplits: 2).map(String.init)
                guard fields.count == 3, let pid = Int32(fields[0]) else { continue }
                let file = (dir as NSString).appendingPathComponent(name)
                let age = ((try? fm.attributesOfItem(atPath: file))?[.modificationDate] as? Date).map { -$0.timeIntervalSinceNow } ?? 0
                let deadHere = fields[2] == host && pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH
                if deadHere || age > maxAge {
                    if (try? fm.removeItem(atPath: file)) != nil { removed += 1 }
                }
            }
        }
        return removed
    }
}

/// `DIR/atlas.json`: what every unit of the atlas was rendered with. Shards of one run write the same
/// manifest; a run whose settings differ from an existing manifest is refused (its images would not match).
public struct AtlasManifest: Codable, Sendable, Equatable {
    /// The model as given to `--model`, and how it was loaded (enough to load it again for `atlas-index`).
    public var modelReference: String
    public var architecture: String?
    public var weightSeed: UInt64
    public var inputSize: Int?
    public var modelName: String
    public var modelSHA256: String?
    public var family: ModelFamily
    public var layers: [AtlasLayer]
    public var preset: AMPreset
    public var seed: UInt64
    public var amgpuVersion: String
    /// The model card used (preprocessing and label source; `atlas-index` probes with it).
    public var card: ModelCardRecord?

    public init(modelReference: String, architecture: String?, weightSeed: UInt64, inputSize: Int?, modelName: String,
                modelSHA256: String?, family: ModelFamily, layers: [AtlasLayer], preset: AMPreset, seed: UInt64, amgpuVersion: String,
                card: ModelCardRecord? = nil) {
        self.modelReference = modelReference
        self.architecture = architecture
        self.weightSeed = weightSeed
        self.inputSize = inputSize
        self.modelName = modelName
        self.modelSHA256 = modelSHA256
        self.family = family
        self.layers = layers
        self.preset = preset
        self.seed = seed
        self.amgpuVersion = amgpuVersion
        self.card = card
    }

    /// The model as the atlas rendered it (`atlas-index --probe-images`): loaded again with the
    /// recorded square size or, from the card, its size (also H ≠ W) and input layout (NHWC
    /// models, symbolic sizes), and the card's preprocessing.
    public func loadModel(batch: Int = 1) throws -> Model {
        let values = card.map { ModelCardValues(record: $0, origin: "atlas.json") }
        let model = try ModelLoader.load(modelReference, batch: batch, architecture: architecture,
                                         seed: weightSeed, imageSize: inputSize, card: values)
        if let card { model.preprocessing = card.preprocessing }
        return model
    }

    /// What must agree between runs writing into one atlas folder (layers may be added).
    func conflicts(with other: AtlasManifest) -> [String] {
        var out: [String] = []
        if modelReference != other.modelReference || architecture != other.architecture || weightSeed != other.weightSeed
            || inputSize != other.inputSize { out.append("model (\(other.modelReference) vs \(modelReference))") }
        if modelSHA256 != other.modelSHA256 { out.append("model file contents (SHA-256)") }
        if let a = card?.preprocessing, let b = other.card?.preprocessing, a != b { out.append("model card (preprocessing)") }
        if preset != other.preset { out.append("preset / image options") }
        if seed != other.seed { out.append("seed (\(other.seed) vs \(seed))") }
        for layer in layers {
            if let o = other.layers.first(where: { $0.name == layer.name }), o != layer { out.append("layer \(layer.name)") }
        }
        return out
    }

    public static func read(_ path: String) throws -> AtlasManifest {
        do {
            return try JSONDecoder().decode(AtlasManifest.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw EngineError.io("cannot read the atlas manifest '\(path)': \(error.localizedDescription) (is this an atlas folder written by `amgpu atlas`?)")
        }
    }

    /// Checks this run against the folder's manifest (if any) and writes the union of their layers, atomically.
    public func merge(into layout: AtlasLayout) throws {
        var merged = self
        if FileManager.default.fileExists(atPath: layout.manifestPath) {
            let existing = try AtlasManifest.read(layout.manifestPath)
            let conflicts = conflicts(with: existing)
            guard conflicts.isEmpty else {
                throw EngineError.invalidInput("'\(layout.root)' holds an atlas rendered with other settings (\(conflicts.joined(separator: ", ")) differ): rerun with the same options, or use another \(SettingName.outputFolder.mention)")
            }
            merged.layers = existing.layers + layers.filter { l in !existing.layers.contains { $0.name == l.name } }
            if merged == existing { return }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(encoder.encode(merged), to: layout.manifestPath)
    }
}

/// An append-only text log (one line per finished or failed unit). Each line is one `write(2)` on a file
/// opened with O_APPEND, so concurrent writers on one host never interleave inside a line.
public final class AtlasLog: @unchecked Sendable {
    let fd: Int32
    let lock = NSLock()

    public init(path: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { throw EngineError.io("cannot open the progress log '\(path)': \(String(cString: strerror(errno)))") }
    }

    deinit { close(fd) }

    public func append(_ line: String) {
        let stamp = ISO8601DateFormatter().string(from: Date())
        let bytes = Array("\(stamp) \(line)\n".utf8)
        lock.lock()
        defer { lock.unlock() }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }
}
