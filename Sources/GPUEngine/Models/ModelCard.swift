import Foundation

/// How a photo is fitted to the model's H×W input before normalization.
public enum ImageFit: String, Codable, Sendable, CaseIterable {
    /// Resize + centre crop (below), except that an image already H×W is used unchanged (an
    /// adversarial example or an AM image written by amgpu is the model's input as it is).
    case auto
    /// Always: resize so the image covers (H, W) / crop_pct (the shorter side for square inputs),
    /// then take the centre H×W — the ImageNet evaluation transform.
    case resizeCrop = "resize-crop"
    /// Resize the whole image to H×W, no crop (identity when the image is already H×W).
    case noCrop = "no-crop"
    /// timm's crop_mode 'squash': resize to (⌊H / crop_pct⌋, ⌊W / crop_pct⌋) ignoring the aspect
    /// ratio, then take the centre H×W (the same as `noCrop` only when crop_pct = 1); an image
    /// already H×W is used unchanged, as with `auto`.
    case squash
}

/// The resampling filter used when a photo is resized (PIL/torchvision names).
public enum Interpolation: String, Codable, Sendable, CaseIterable {
    /// Triangle filter, support widened when shrinking (PIL BILINEAR).
    case bilinear
    /// Keys cubic a = −0.5, support 2 widened when shrinking (PIL BICUBIC).
    case bicubic
}

/// How the model's own input is laid out; amgpu always feeds the graph an NCHW RGB image and
/// the importer adds the conversion (a Transpose, a grey conversion) in front of the model.
public enum InputLayout: String, Codable, Sendable, CaseIterable {
    case nchw = "NCHW"
    case nhwc = "NHWC"

    /// Parses "nchw"/"NHWC"/"channels_last"/"channels_first".
    public init?(text: String) {
        switch text.lowercased() {
        case "nchw", "channels_first", "channel_first": self = .nchw
        case "nhwc", "channels_last", "channel_last": self = .nhwc
        default: return nil
        }
    }
}

/// The activation the graph applies after its logits, which amgpu looks through (`ModelCard.outputActivation`).
public enum OutputActivation: String, Codable, Sendable {
    case softmax = "Softmax"
    case logSoftmax = "LogSoftmax"
}

/// What amgpu knows about a model besides its graph: how photos become its input, its class
/// labels, its input layout and whether its graph ends in a softmax — each field with where it
/// came from (`sources`), so `amgpu layers` can print it and the output sidecars record it.
///
/// Resolution order (first that gives a field wins): command-line flags, a `config.json` beside
/// a `.safetensors` file (timm `pretrained_cfg`, Hugging Face `id2label`), ONNX `metadata_props`
/// (`ModelCardValues.metadataKeys`), then the model's own defaults (the builder's or the
/// importer's: ImageNet mean/std, the input shape or 224, ImageNet class names for 1000 outputs).
public struct ModelCard: Codable, Sendable, Equatable {
    public var preprocessing: Preprocessing
    /// Class names, index = output unit (nil: "class N").
    public var labels: [String]?
    /// The model's own input layout and channel count (1 = grey, 3 = RGB).
    public var layout: InputLayout
    public var channels: Int
    /// Set when the graph's output is Softmax/LogSoftmax(logits) (possibly reshaped): the model's
    /// `output` is then those logits, so probabilities are taken once and a logit objective
    /// maximizes the pre-softmax value.
    public var outputActivation: OutputActivation?
    /// The name of the graph's own (post-softmax) output when `outputActivation` is set.
    public var graphOutputName: String?
    /// Remarks worth printing (a background class, a size the input shape overrode, …).
    public var notes: [String]
    /// Field → where its value came from ("flag --mean", "config.json (…): pretrained_cfg.mean", …).
    /// Fields: mean, std, input_size, crop_pct, interpolation, fit, labels, layout, output.
    public var sources: [String: String]

    public init(preprocessing: Preprocessing, labels: [String]?, layout: InputLayout = .nchw, channels: Int = 3,
                outputActivation: OutputActivation? = nil, graphOutputName: String? = nil,
                notes: [String] = [], sources: [String: String] = [:]) {
        self.preprocessing = preprocessing
        self.labels = labels
        self.layout = layout
        self.channels = channels
        self.outputActivation = outputActivation
        self.graphOutputName = graphOutputName
        self.notes = notes
        self.sources = sources
    }

    /// The fields in print order.
    public static let fieldNames = ["mean", "std", "input_size", "crop_pct", "interpolation", "fit", "labels", "layout", "output"]

    /// One line per field: value and source (as `amgpu layers` prints them).
    public func describe() -> [(field: String, value: String, source: String)] {
        let p = preprocessing
        func list(_ v: [Float]) -> String { v.map { String(format: "%g", $0) }.joined(separator: ", ") }
        var rows: [(String, String, String)] = []
        for field in Self.fieldNames {
            let value: String
            switch field {
            case "mean": value = list(p.mean)
            case "std": value = list(p.std)
            case "input_size": value = "\(channels)×\(p.height)×\(p.width)"
            case "crop_pct": value = String(format: "%g", p.cropFraction)
            case "interpolation": value = p.interpolation.rawValue
            case "fit": value = p.fit.rawValue
            case "labels":
                if let labels { value = "\(labels.count) names (\(labels.prefix(3).map { $0.split(separator: ",").first.map(String.init) ?? $0 }.joined(separator: ", "))\(labels.count > 3 ? ", …" : ""))" } else { value = "none (\"class N\")" }
            case "layout": value = layout.rawValue + (channels == 1 ? ", 1 channel (grey)" : ", 3 channels (RGB)")
            default:
                value = outputActivation.map { "logits before the final \($0.rawValue) (graph output '\(graphOutputName ?? "?")')" } ?? "the graph's output, taken as logits"
            }
            rows.append((field, value, sources[field] ?? "default"))
        }
        return rows
    }
}

/// Card fields given by one source (flags, a config.json, ONNX metadata); nil = not given.
public struct ModelCardValues: Sendable, Equatable {
    public var mean: [Float]?
    public var std: [Float]?
    public var height: Int?
    public var width: Int?
    public var cropFraction: Double?
    public var interpolation: Interpolation?
    public var fit: ImageFit?
    public var labels: [String]?
    public var layout: InputLayout?
    /// Where these values come from, e.g. "flag" or "config.json (/path/config.json)".
    public var origin: String
    /// Field → the key or flag that gave it (for provenance), e.g. "mean" → "pretrained_cfg.mean".
    public var keys: [String: String] = [:]

    public init(origin: String) { self.origin = origin }

    public var isEmpty: Bool {
        mean == nil && std == nil && height == nil && cropFraction == nil && interpolation == nil && fit == nil && labels == nil && layout == nil
    }

    /// The provenance text of `field`.
    func source(_ field: String) -> String {
        if origin == "flag" { return keys[field] ?? "a flag" }
        return keys[field].map { "\(origin): \($0)" } ?? origin
    }

    // MARK: flags

    /// A recorded card (an atlas manifest's, a sidecar's) as values to load the model again with:
    /// its preprocessing (size, also non-square), input layout; the labels are not recorded.
    public init(record: ModelCardRecord, origin: String) {
        self.origin = origin
        let p = record.preprocessing
        mean = p.mean; std = p.std; height = p.height; width = p.width
        cropFraction = p.cropFraction; interpolation = p.interpolation; fit = p.fit; layout = record.layout
        for field in ["mean", "std", "input_size", "crop_pct", "interpolation", "fit", "layout"] { keys[field] = "card" }
    }

    /// Values from command-line flags (each already parsed); `labelsPath` is read here.
    public static func flags(mean: [Float]? = nil, std: [Float]? = nil, size: (height: Int, width: Int)? = nil,
                             labelsPath: String? = nil, fit: ImageFit? = nil, layout: InputLayout? = nil) throws -> ModelCardValues {
        var v = ModelCardValues(origin: "flag")
        v.mean = mean; if mean != nil { v.keys["mean"] = "--mean" }
        v.std = std; if std != nil { v.keys["std"] = "--std" }
        if let size { v.height = size.height; v.width = size.width; v.keys["input_size"] = "--size" }
        if let fit { v.fit = fit; v.keys["fit"] = fit == .noCrop ? "--no-crop" : "--resize-crop" }
        if let layout { v.layout = layout; v.keys["layout"] = "--layout" }
        if let labelsPath {
            v.labels = try readLabelFile(labelsPath)
            v.keys["labels"] = "--labels \(labelsPath)"
        }
        try v.validate()
        return v
    }

    /// One class name per line; blank lines at the end are ignored, blank lines inside are an error.
    public static func readLabelFile(_ path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EngineError.io("cannot read the label file '\(path)': no such file or not readable; check the path")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw EngineError.invalidInput("label file '\(path)' is not UTF-8 text: give one class name per line")
        }
        var lines = text.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        while lines.last == "" { lines.removeLast() }
        guard !lines.isEmpty else { throw EngineError.invalidInput("label file '\(path)' is empty: give one class name per line") }
        if let blank = lines.firstIndex(of: "") {
            throw EngineError.invalidInput("label file '\(path)' has an empty line \(blank + 1): give one class name per line, no blank lines")
        }
        return lines
    }

    /// Parses "R,G,B" (or one value for a grey model).
    public static func parseTriple(_ text: String, flag: String) throws -> [Float] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        let values = parts.compactMap { Float($0) }
        guard values.count == parts.count, values.allSatisfy(\.isFinite) else {
            throw EngineError.invalidInput("\(flag) '\(text)' is not a list of numbers: give R,G,B, e.g. \(flag) 0.485,0.456,0.406")
        }
        guard values.count == 3 || values.count == 1 else {
            throw EngineError.invalidInput("\(flag) needs 3 values (R,G,B) or 1 (grey or the same for all channels); got \(values.count): '\(text)'")
        }
        return values
    }

    /// Parses "N" (square) or "H,W" (also "HxW").
    public static func parseSize(_ text: String) throws -> (height: Int, width: Int) {
        let parts = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "," || $0 == "x" || $0 == "×" })
            .map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard (parts.count == 1 || parts.count == 2), parts.allSatisfy({ $0 != nil }) else {
            throw EngineError.invalidInput("--size '\(text)' is not N or H,W: e.g. --size 224 or --size 192,256")
        }
        let h = parts[0] ?? 0, w = parts.count == 2 ? (parts[1] ?? 0) : h
        guard (8...8192).contains(h), (8...8192).contains(w) else {
            throw EngineError.invalidInput("--size \(text): each side must be 8…8192 pixels")
        }
        return (h, w)
    }

    /// Refuses values no model can use (each source is checked where it is read, so the message names it).
    public func validate() throws {
        for (name, v) in [("mean", mean), ("std", std)] {
            guard let v else { continue }
            guard v.count == 3 || v.count == 1 else {
                throw EngineError.invalidInput("\(source(name)) gives \(v.count) \(name) values; amgpu needs 3 (R,G,B) or 1")
            }
            guard v.allSatisfy(\.isFinite) else { throw EngineError.invalidInput("\(source(name)) has a value that is not a finite number: \(v)") }
        }
        if let std, std.contains(where: { $0 <= 0 }) {
            throw EngineError.invalidInput("\(source("std")) has a std of \(std.first { $0 <= 0 } ?? 0): every std must be positive (inputs are divided by it)")
        }
        if let height, let width, !((8...8192).contains(height) && (8...8192).contains(width)) {
            throw EngineError.invalidInput("\(source("input_size")) gives an input of \(height)×\(width); each side must be 8…8192 pixels")
        }
        // Below 0.25 the resize before the crop would be over 16× the input per side (0.001 asks
        // for ~224k × 224k pixels).
        if let cropFraction, !(cropFraction >= 0.25 && cropFraction <= 2) {
            throw EngineError.invalidInput("\(source("crop_pct")) is \(cropFraction); crop_pct must be 0.25…2 (timm uses 0.875–1.0)")
        }
    }

    // MARK: config.json (timm pretrained_cfg, Hugging Face id2label)

    /// The config.json beside a model file (same folder), if there is one.
    public static func configJSONPath(besideModel path: String) -> String? {
        let candidate = (((path as NSString).deletingLastPathComponent) as NSString).appendingPathComponent("config.json")
        return FileManager.default.fileExists(atPath: candidate) ? candidate : nil
    }

    /// Reads a config.json: timm `pretrained_cfg` keys (mean, std, input_size [C,H,W], crop_pct,
    /// interpolation) at the top level or under `pretrained_cfg`; labels from Hugging Face
    /// `id2label` ({"0": "tench", …}) or timm `label_names` ([…]).
    public static func configJSON(path: String) throws -> ModelCardValues {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EngineError.io("cannot read '\(path)'")
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw EngineError.invalidInput("'\(path)' (the card beside the model) is not valid JSON (\(error.localizedDescription)): fix it, or move it away to use the defaults and flags")
        }
        guard let dict = object as? [String: Any] else {
            throw EngineError.invalidInput("'\(path)' (the card beside the model) is not a JSON object: expected {\"pretrained_cfg\": {…}, \"id2label\": {…}}")
        }
        return try fromJSONObject(dict, origin: "config.json (\(path))")
    }

    /// The `architecture` a timm config.json names (used when neither --arch nor the checkpoint says).
    public static func configArchitecture(path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path),
              let dict = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return nil }
        return (dict["architecture"] as? String) ?? ((dict["pretrained_cfg"] as? [String: Any])?["architecture"] as? String)
    }

    /// The timm/Hugging Face keys of a JSON object (config.json, or a JSON value in ONNX metadata).
    public static func fromJSONObject(_ dict: [String: Any], origin: String) throws -> ModelCardValues {
        var v = ModelCardValues(origin: origin)
        let nested = dict["pretrained_cfg"] as? [String: Any]
        func lookup(_ key: String) -> (Any, String)? {
            if let nested, let x = nested[key] { return (x, "pretrained_cfg.\(key)") }
            if let x = dict[key] { return (x, key) }
            return nil
        }
        func floats(_ x: Any, _ key: String) throws -> [Float] {
            guard let a = x as? [Any], let f = Optional(a.compactMap { ($0 as? NSNumber)?.floatValue }), f.count == a.count else {
                throw EngineError.invalidInput("\(origin): \(key) must be a list of numbers")
            }
            return f
        }
        if let (x, key) = lookup("mean") { v.mean = try floats(x, key); v.keys["mean"] = key }
        if let (x, key) = lookup("std") { v.std = try floats(x, key); v.keys["std"] = key }
        if let (x, key) = lookup("input_size") {
            let f = try floats(x, key).map { try sizeValue($0, "\(origin): \(key)") }
            switch f.count {
            case 3: v.height = f[1]; v.width = f[2]
            case 2: v.height = f[0]; v.width = f[1]
            case 1: v.height = f[0]; v.width = f[0]
            default: throw EngineError.invalidInput("\(origin): \(key) must be [C, H, W]; got \(f)")
            }
            if f.count == 3, f[0] != 3 && f[0] != 1 {
                throw EngineError.invalidInput("\(origin): \(key) says \(f[0]) channels; amgpu feeds RGB (3) or grey (1) images")
            }
            v.keys["input_size"] = key
        }
        if let (x, key) = lookup("crop_pct") {
            guard let n = x as? NSNumber else { throw EngineError.invalidInput("\(origin): \(key) must be a number") }
            v.cropFraction = n.doubleValue; v.keys["crop_pct"] = key
        }
        if let (x, key) = lookup("interpolation") {
            guard let s = x as? String, let i = Interpolation(rawValue: s.lowercased()) else {
                throw EngineError.invalidInput("\(origin): \(key) '\(x)' is not one amgpu implements: bilinear or bicubic")
            }
            v.interpolation = i; v.keys["interpolation"] = key
        }
        if let (x, key) = lookup("crop_mode") {
            // timm: "center" (aspect-keeping resize + centre crop), "squash" (resize to
            // (⌊H/crop_pct⌋, ⌊W/crop_pct⌋) ignoring aspect, then centre crop), "border".
            if let s = x as? String, s == "squash" { v.fit = .squash; v.keys["fit"] = key }
            else if let s = x as? String, s == "center" { v.fit = .auto; v.keys["fit"] = key }
        }
        if let (x, key) = lookup("input_layout") {
            guard let s = x as? String, let l = InputLayout(text: s) else { throw EngineError.invalidInput("\(origin): \(key) must be NCHW or NHWC") }
            v.layout = l; v.keys["layout"] = key
        }
        if let id2label = dict["id2label"] ?? nested?["id2label"] {
            guard let map = id2label as? [String: Any] else { throw EngineError.invalidInput("\(origin): id2label must be an object {\"0\": \"name\", …}") }
            var names = [String?](repeating: nil, count: map.count)
            for (k, name) in map {
                guard let i = Int(k), i >= 0, i < map.count, let s = name as? String else {
                    throw EngineError.invalidInput("\(origin): id2label must map 0…\(map.count - 1) to names; found key '\(k)'")
                }
                names[i] = s
            }
            v.labels = names.compactMap { $0 }
            guard v.labels?.count == map.count else { throw EngineError.invalidInput("\(origin): id2label has repeated indices") }
            v.keys["labels"] = "id2label"
        } else if let (x, key) = lookup("label_names") ?? lookup("labels") {
            guard let a = x as? [Any], let names = Optional(a.compactMap { $0 as? String }), names.count == a.count, !names.isEmpty else {
                throw EngineError.invalidInput("\(origin): \(key) must be a list of class names")
            }
            v.labels = names; v.keys["labels"] = key
        }
        try v.validate()
        return v
    }

    // MARK: ONNX metadata_props

    /// The ONNX `metadata_props` keys amgpu reads. Values are plain text ("0.5,0.5,0.5", "224" or
    /// "192,256") or JSON ("[0.5, 0.5, 0.5]"); `amgpu.card` holds a whole JSON object with the
    /// config.json keys (timm pretrained_cfg names, id2label/label_names).
    public static let metadataKeys = ["amgpu.card", "amgpu.mean", "amgpu.std", "amgpu.input_size", "amgpu.crop_pct",
                                      "amgpu.interpolation", "amgpu.fit", "amgpu.labels", "amgpu.input_layout", "amgpu.normalization"]

    /// Card values from an ONNX model's metadata_props (key → value).
    public static func onnxMetadata(_ props: [(key: String, value: String)]) throws -> ModelCardValues {
        let origin = "ONNX metadata_props"
        var v = ModelCardValues(origin: origin)
        let map = Dictionary(props.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        if let text = map["amgpu.card"] {
            guard let data = text.data(using: .utf8), let obj = try? JSONSerialization.jsonObject(with: data), let dict = obj as? [String: Any] else {
                throw EngineError.invalidInput("the model's metadata amgpu.card is not a JSON object: re-export with a valid JSON value")
            }
            v = try fromJSONObject(dict, origin: origin)
            for (field, key) in v.keys { v.keys[field] = "amgpu.card." + key }
        }
        func jsonList(_ text: String) -> [Any]? {
            guard text.hasPrefix("["), let data = text.data(using: .utf8) else { return nil }
            return (try? JSONSerialization.jsonObject(with: data)) as? [Any]
        }
        func numbers(_ key: String) throws -> [Float]? {
            guard let text = map[key]?.trimmingCharacters(in: .whitespaces) else { return nil }
            if let a = jsonList(text) {
                let f = a.compactMap { ($0 as? NSNumber)?.floatValue }
                guard f.count == a.count else { throw EngineError.invalidInput("\(origin): \(key) must be a list of numbers; got \(text)") }
                return f
            }
            let parts = text.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
            guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else {
                throw EngineError.invalidInput("\(origin): \(key) must be numbers separated by commas or a JSON list; got '\(text)'")
            }
            return parts.compactMap { $0 }
        }
        if let preset = map["amgpu.normalization"] {
            switch preset {
            case "inception": v.mean = [0.5, 0.5, 0.5]; v.std = [0.5, 0.5, 0.5]
            case "imagenet": v.mean = Preprocessing.imagenet().mean; v.std = Preprocessing.imagenet().std
            default: throw EngineError.invalidInput("\(origin): amgpu.normalization '\(preset)' is not inception or imagenet")
            }
            v.keys["mean"] = "amgpu.normalization"; v.keys["std"] = "amgpu.normalization"
        }
        if let m = try numbers("amgpu.mean") { v.mean = m; v.keys["mean"] = "amgpu.mean" }
        if let s = try numbers("amgpu.std") { v.std = s; v.keys["std"] = "amgpu.std" }
        if let s = try numbers("amgpu.input_size") {
            let i = try s.map { try sizeValue($0, "\(origin): amgpu.input_size") }
            switch i.count {
            case 1: v.height = i[0]; v.width = i[0]
            case 2: v.height = i[0]; v.width = i[1]
            case 3: v.height = i[1]; v.width = i[2]
            default: throw EngineError.invalidInput("\(origin): amgpu.input_size must be N, H,W or [C,H,W]")
            }
            v.keys["input_size"] = "amgpu.input_size"
        }
        if let c = try numbers("amgpu.crop_pct") {
            guard c.count == 1 else { throw EngineError.invalidInput("\(origin): amgpu.crop_pct must be one number") }
            v.cropFraction = Double(c[0]); v.keys["crop_pct"] = "amgpu.crop_pct"
        }
        if let text = map["amgpu.interpolation"] {
            guard let i = Interpolation(rawValue: text.lowercased()) else { throw EngineError.invalidInput("\(origin): amgpu.interpolation '\(text)' is not bilinear or bicubic") }
            v.interpolation = i; v.keys["interpolation"] = "amgpu.interpolation"
        }
        if let text = map["amgpu.fit"] {
            guard let f = ImageFit(rawValue: text) else { throw EngineError.invalidInput("\(origin): amgpu.fit '\(text)' is not auto, resize-crop, no-crop or squash") }
            v.fit = f; v.keys["fit"] = "amgpu.fit"
        }
        if let text = map["amgpu.input_layout"] {
            guard let l = InputLayout(text: text) else { throw EngineError.invalidInput("\(origin): amgpu.input_layout '\(text)' is not NCHW or NHWC") }
            v.layout = l; v.keys["layout"] = "amgpu.input_layout"
        }
        if let text = map["amgpu.labels"] {
            if let a = jsonList(text) {
                let names = a.compactMap { $0 as? String }
                guard names.count == a.count, !names.isEmpty else { throw EngineError.invalidInput("\(origin): amgpu.labels must be a JSON list of names") }
                v.labels = names
            } else {
                // One name a line; "\r\n" is one Character in Swift, so split on any newline.
                v.labels = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            }
            v.keys["labels"] = "amgpu.labels"
        }
        try v.validate()
        return v
    }
}

/// A size read from a file as a number: a whole number 0…65536 (anything else is an error, not a trap).
private func sizeValue(_ f: Float, _ what: String) throws -> Int {
    guard f.isFinite, f >= 0, f <= 65536, f == f.rounded() else {
        throw EngineError.invalidInput("\(what) has \(f), which is not a size in pixels (a whole number)")
    }
    return Int(f)
}

extension ModelCard {
    /// Applies `layers` (highest precedence first) over this card (the model's defaults) for the
    /// preprocessing and the labels; `classes` is the model's number of outputs (nil: no classifier).
    /// Input size and layout are fixed when the graph is built (the loader picks them from the same
    /// layers); here they are only recorded. A label list of the wrong length is an error.
    public func resolved(with layers: [ModelCardValues], classes: Int?) throws -> ModelCard {
        var card = self
        func first<T>(_ field: String, _ get: (ModelCardValues) -> T?) -> (T, String)? {
            for l in layers { if let v = get(l) { return (v, l.source(field)) } }
            return nil
        }
        func channelsOf(_ v: [Float]) -> [Float] { v.count == 1 ? [v[0], v[0], v[0]] : v }
        if let (m, src) = first("mean", \.mean) { card.preprocessing.mean = channelsOf(m); card.sources["mean"] = src }
        if let (s, src) = first("std", \.std) { card.preprocessing.std = channelsOf(s); card.sources["std"] = src }
        if let (c, src) = first("crop_pct", \.cropFraction) { card.preprocessing.cropFraction = c; card.sources["crop_pct"] = src }
        if let (i, src) = first("interpolation", \.interpolation) { card.preprocessing.interpolation = i; card.sources["interpolation"] = src }
        if let (f, src) = first("fit", \.fit) { card.preprocessing.fit = f; card.sources["fit"] = src }
        if channels == 1, Set(card.preprocessing.mean).count > 1 || Set(card.preprocessing.std).count > 1 {
            card.notes.append("grey model: its input is the luma 0.299 R + 0.587 G + 0.114 B of the channels normalized with these per-channel mean/std; give one --mean/--std value for a grey normalization")
        }
        if let (names, src) = first("labels", \.labels) {
            if let classes, names.count != classes {
                var hint = "give one name per output, \(classes) lines"
                if classes == names.count + 1 { hint += " (a model with \(classes) outputs usually has a background class at index 0: add it as the first line)" }
                throw EngineError.invalidInput("\(src) has \(names.count) class names, but the model has \(classes) outputs: \(hint)")
            }
            card.labels = names
            card.sources["labels"] = src
            card.notes.removeAll { $0.hasPrefix("1001 outputs:") }   // the default's note no longer applies
            if names.count == 1001 { card.notes.append("1001 classes: index 0 is '\(names[0])' (a background class, as in TF-slim/TFLite ImageNet models)") }
        }
        return card
    }
}

/// The card as recorded in output files (visualization sidecars, adversarial reports, the atlas
/// manifest): everything but the label list itself, which is summarized by its count and source.
public struct ModelCardRecord: Codable, Sendable, Equatable {
    public var preprocessing: Preprocessing
    public var layout: InputLayout
    public var channels: Int
    public var labelCount: Int?
    public var outputActivation: OutputActivation?
    public var graphOutputName: String?
    public var notes: [String]
    public var sources: [String: String]

    public init(_ card: ModelCard) {
        preprocessing = card.preprocessing
        layout = card.layout
        channels = card.channels
        labelCount = card.labels?.count
        outputActivation = card.outputActivation
        graphOutputName = card.graphOutputName
        notes = card.notes
        sources = card.sources
    }
}

extension Model {
    /// The card for output files.
    public var cardRecord: ModelCardRecord { ModelCardRecord(card) }
}
