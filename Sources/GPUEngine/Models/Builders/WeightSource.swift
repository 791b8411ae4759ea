import Foundation

/// Where a builder's weights come from.
public enum ModelWeights {
    /// Seeded random weights (deterministic for a given seed and architecture; see `WeightSource`).
    case random(seed: UInt64)
    /// A timm / Hugging Face `model.safetensors` whose tensor names are timm's module paths.
    case file(SafetensorsFile)
}

/// How a random tensor is initialised. Random values are uniform, U(−√3·σ, √3·σ), which has
/// standard deviation σ (PyTorch's Kaiming-uniform style; cheap to draw: two values per 64 random bits).
enum WeightInit {
    /// Standard deviation σ.
    case std(Float)
    /// He/LeCun scaling: σ² = gain / fanIn. gain 2 in front of ReLU-like activations keeps the
    /// second moment of activations constant from layer to layer, gain 1 where no rectifier follows.
    case scaled(fanIn: Int, gain: Float)
    case zeros
    case ones
    case constant(Float)
}

/// Hands a builder its weights by timm tensor name and expected shape, from a seeded random
/// generator or from a safetensors file, and checks the file strictly.
///
/// - Random: each tensor gets its own SplitMix64 stream (uniform values, see `WeightInit`) seeded
///   from (seed, FNV-1a of its name), so a tensor's values depend only on the seed and its name —
///   not on the order the builder asks for tensors — and writing them to a file with the same
///   names reproduces the model exactly.
/// - File (or, for tests, an in-memory name → tensor table): a tensor that is missing or has another
///   shape is recorded (and replaced by zeros so the build can go on and find every other problem);
///   `finish` throws one error listing all missing, wrong-shaped and unexpected tensors. Tolerated
///   extras: names ending in `num_batches_tracked` and the names a builder passes to `finish`.
final class WeightSource {
    enum Origin {
        case random(seed: UInt64)
        case file(SafetensorsFile)
        /// Tensors in memory, checked like a file; `label` names them in messages.
        case tensors([String: HostTensor], label: String)
    }

    let origin: Origin
    let architecture: String
    private(set) var used: Set<String> = []
    private var missing: [String] = []
    private var wrongShape: [String] = []
    /// When non-nil, every random tensor handed out is also stored here by name (see
    /// `ModelBuilders.randomWeights`).
    var record: [String: HostTensor]?

    init(_ weights: ModelWeights, architecture: String) {
        switch weights {
        case .random(let seed): origin = .random(seed: seed)
        case .file(let file): origin = .file(file)
        }
        self.architecture = architecture
    }

    init(tensors: [String: HostTensor], label: String, architecture: String) {
        origin = .tensors(tensors, label: label)
        self.architecture = architecture
    }

    var isRandom: Bool { if case .random = origin { return true } else { return false } }

    /// The shape of the stored tensor `name` (nil for random weights or when it is absent).
    func fileShape(_ name: String) -> [Int]? {
        switch origin {
        case .random: return nil
        case .file(let file): return file.entries[name]?.shape
        case .tensors(let t, _): return t[name]?.shape
        }
    }

    /// True when the file holds `name` (always false for random weights).
    func fileHas(_ name: String) -> Bool { fileShape(name) != nil }

    /// The tensor `name` of shape `shape`.
    func tensor(_ name: String, _ shape: [Int], _ initializer: WeightInit) throws -> HostTensor {
        used.insert(name)
        if case .random(let seed) = origin {
            let t = WeightSource.random(shape, initializer, seed: seed, name: name)
            record?[name] = t
            return t
        }
        let zeros = { HostTensor(shape: shape, values: [Float](repeating: 0, count: shape.reduce(1, *))) }
        guard let stored = fileShape(name) else {
            missing.append("\(name) \(shape)")
            return zeros()
        }
        guard stored == shape else {
            wrongShape.append("\(name): \(stored) in the file, \(architecture) needs \(shape)")
            return zeros()
        }
        // Once the file is known not to fit, skip reading: the build fails in `finish` anyway.
        guard missing.isEmpty && wrongShape.isEmpty else { return zeros() }
        switch origin {
        case .file(let file): return try file.tensor(name)
        case .tensors(let t, _): return t[name] ?? zeros()
        case .random: return zeros()
        }
    }

    /// Throws one error naming every missing, wrong-shaped and unexpected tensor of the file.
    /// `tolerated` names (and `*num_batches_tracked`) may be in the file without being used.
    func finish(tolerating tolerated: Set<String> = []) throws {
        let (names, label): ([String], String)
        switch origin {
        case .random: return
        case .file(let file): (names, label) = (file.names, file.path)
        case .tensors(let t, let l): (names, label) = (t.keys.sorted(), l)
        }
        let unexpected = names.filter {
            !used.contains($0) && !tolerated.contains($0) && !$0.hasSuffix("num_batches_tracked")
        }
        guard !missing.isEmpty || !wrongShape.isEmpty || !unexpected.isEmpty else { return }
        func list(_ items: [String]) -> String {
            let shown = items.prefix(12).joined(separator: "; ")
            return items.count > 12 ? shown + "; … (\(items.count - 12) more)" : shown
        }
        var parts: [String] = []
        if !missing.isEmpty { parts.append("\(missing.count) missing: \(list(missing))") }
        if !wrongShape.isEmpty { parts.append("\(wrongShape.count) with the wrong shape: \(list(wrongShape))") }
        if !unexpected.isEmpty {
            let shapes = unexpected.map { "\($0) \(fileShape($0) ?? [])" }
            parts.append("\(unexpected.count) unexpected: \(list(shapes))")
        }
        var hint = ""
        if used.intersection(Set(names)).isEmpty {
            hint = " None of the file's \(names.count) tensor names is one \(architecture) uses: is it a timm \(architecture) checkpoint? Pass the architecture it was trained as with --arch"
            if let prefix = commonPrefix(names) { hint += " (all its names start with '\(prefix)'; strip that prefix)" }
        }
        throw EngineError.invalidInput("'\(label)' does not match timm's \(architecture): "
            + parts.joined(separator: "; ") + "." + hint)
    }

    private func commonPrefix(_ names: [String]) -> String? {
        guard let first = names.first, let dot = first.firstIndex(of: ".") else { return nil }
        let prefix = String(first[...dot])
        return names.allSatisfy({ $0.hasPrefix(prefix) }) && names.count > 1 ? prefix : nil
    }

    // MARK: random values

    /// Random values for `name` (see the type's comment for the seeding).
    static func random(_ shape: [Int], _ initializer: WeightInit, seed: UInt64, name: String) -> HostTensor {
        let count = shape.reduce(1, *)
        let std: Float
        switch initializer {
        case .zeros: return HostTensor(shape: shape, values: [Float](repeating: 0, count: count))
        case .ones: return HostTensor(shape: shape, values: [Float](repeating: 1, count: count))
        case .constant(let v): return HostTensor(shape: shape, values: [Float](repeating: v, count: count))
        case .std(let s): std = s
        case .scaled(let fanIn, let gain): std = (gain / Float(max(fanIn, 1))).squareRoot()
        }
        // Two 24-bit uniforms per SplitMix64 output, mapped to [−√3σ, √3σ).
        let scale = 2 * Float(3).squareRoot() * std / Float(1 << 24)
        let offset = Float(3).squareRoot() * std
        var state = seed ^ fnv1a(name)
        let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            guard let out = buffer.baseAddress else { initialized = 0; return }
            var i = 0
            while i < count {
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                z ^= z >> 31
                out[i] = Float(z >> 40) * scale - offset
                if i + 1 < count { out[i + 1] = Float((z >> 8) & 0xFF_FFFF) * scale - offset }
                i += 2
            }
            initialized = count
        }
        return HostTensor(shape: shape, values: values)
    }

    /// 64-bit FNV-1a of a string's UTF-8 bytes (stable across runs, unlike `Hasher`).
    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in s.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return h
    }
}
