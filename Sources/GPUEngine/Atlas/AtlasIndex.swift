import Foundation

/// One natural photo that activates a unit strongly, and where.
public struct AtlasProbeHit: Codable, Sendable, Equatable {
    /// File name under `DIR/probe/` (the photo as the model saw it: centre crop at the input size).
    public var photo: String
    /// The unit's objective on the photo: spatial mean (CNN channel), patch-token mean (ViT), or the logit.
    public var score: Float
    /// The patch around the unit's strongest position, as fractions of the photo: x, y (top-left) and side.
    /// Its side is 2× the layer's stride, at least 1/8 of the photo (an approximation of the receptive field).
    public var box: [Double]
}

/// For every unit of some layers, the natural photos that activate it most (`--probe-images`).
public enum AtlasProbe {
    /// Runs the model (batch 1) on each photo once and keeps, per unit, the `top` photos by score.
    /// Returns layer name → per-unit hits (index = unit). Photo names must be unique.
    public static func compute(model: Model, backend: any Backend, layers: [AtlasLayer],
                               photos: [(name: String, image: RGBImage)], top: Int = 3) throws -> [String: [[AtlasProbeHit]]] {
        let runner = try ModelRunner(model: model, backend: backend)
        let ids = try layers.map { try model.resolve(layer: $0.name) }
        var all: [String: [[AtlasProbeHit]]] = Dictionary(uniqueKeysWithValues: layers.map { ($0.name, Array(repeating: [], count: $0.unitCount)) })
        for photo in photos {
            let acts = try runner.run(ImagePreprocessing.modelInput(photo.image, model.preprocessing), layers: ids)
            for (layer, id) in zip(layers, ids) {
                guard let a = acts[id] else { continue }
                for unit in 0..<layer.unitCount {
                    let (score, box) = unitResponse(a, unit: unit)
                    all[layer.name]?[unit].append(AtlasProbeHit(photo: photo.name, score: score, box: box))
                }
            }
        }
        for (name, perUnit) in all {
            all[name] = perUnit.map { Array($0.sorted { $0.score > $1.score }.prefix(top)) }
        }
        return all
    }

    /// The unit's score on one activation (batch 1) and the box around its strongest position.
    ///   [1, C, H, W]: mean over H·W of channel `unit`; box at argmax (y, x).
    ///   [1, T, D]: mean over the patch tokens 1..<T of dimension `unit`; box at the argmax token on the √(T−1) grid.
    ///   [1, K]: the value itself; box = whole photo.
    static func unitResponse(_ a: HostTensor, unit: Int) -> (Float, [Double]) {
        func box(_ y: Int, _ x: Int, _ h: Int, _ w: Int) -> [Double] {
            let side = min(1, max(1.0 / 8, 2.0 / Double(max(h, w))))
            let cx = (Double(x) + 0.5) / Double(w), cy = (Double(y) + 0.5) / Double(h)
            return [min(max(cx - side / 2, 0), 1 - side), min(max(cy - side / 2, 0), 1 - side), side]
        }
        if a.shape.count == 4 {
            let h = a.shape[2], w = a.shape[3], plane = h * w
            let values = a.values[(unit * plane)..<((unit + 1) * plane)]
            var best = values.startIndex
            for i in values.indices where values[i] > values[best] { best = i }
            let at = best - unit * plane
            return (Float(values.reduce(0.0) { $0 + Double($1) } / Double(plane)), box(at / w, at % w, h, w))
        }
        if a.shape.count == 3 {
            let t = a.shape[1], d = a.shape[2]
            guard t > 1 else { return (a.values[unit], [0, 0, 1]) }
            var sum = 0.0, best = 1
            for tok in 1..<t {
                sum += Double(a.values[tok * d + unit])
                if a.values[tok * d + unit] > a.values[best * d + unit] { best = tok }
            }
            let grid = Int(Double(t - 1).squareRoot())
            guard grid * grid == t - 1 else { return (Float(sum / Double(t - 1)), [0, 0, 1]) }
            return (Float(sum / Double(t - 1)), box((best - 1) / grid, (best - 1) % grid, grid, grid))
        }
        return (a.values[unit], [0, 0, 1])
    }
}

/// The static HTML atlas: `DIR/index.html` (the layers) and `DIR/<layer>/index.html` (a grid of thumbnails,
/// each linking to the unit's full image and JSON, and to its top natural photos when probed). Relative links
/// only: it works from the file system, with no server.
public enum AtlasIndex {
    /// Side of the thumbnails written to `DIR/<layer>/thumbs/<unit>.png`.
    public static let thumbnailSide = 96

    public struct Result: Sendable {
        public var pages: [String]
        public var units: Int
        public var thumbnails: Int
    }

    /// Builds the atlas pages from what is on disk (finished units only). `probes` (layer → per-unit hits)
    /// adds each unit's top photos; probe photos must already be under `DIR/probe/`. `dataset` (an `amgpu probe`
    /// result of the same model and its folder) adds each probed unit's dataset examples — its montage of top
    /// patches, copied to `DIR/dataset/<layer>/<unit>.png` — beside the AM image.
    public static func build(layout: AtlasLayout, probes: [String: [[AtlasProbeHit]]]? = nil,
                             dataset: (result: ProbeResult, folder: String)? = nil) throws -> Result {
        let manifest = try AtlasManifest.read(layout.manifestPath)
        if let (d, folder) = dataset {
            let sameFile = d.modelSHA256 == nil || manifest.modelSHA256 == nil || d.modelSHA256 == manifest.modelSHA256
            guard d.model == manifest.modelName, sameFile else {
                throw EngineError.invalidInput("the probe in '\(folder)' is of \(d.model), but the atlas is of \(manifest.modelName)\(sameFile ? "" : " (or the model file differs: SHA-256)"): give the probe.json of the atlas's model")
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var pages: [String] = [], total = 0, thumbs = 0
        var rows: [(AtlasLayer, Int, Float?, Float?)] = []
        for layer in manifest.layers {
            let dir = layout.path(layer.directory)
            let names = Set((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
            var cells: [String] = []
            var scores: [Float] = []
            let thumbDir = (dir as NSString).appendingPathComponent("thumbs")
            try? FileManager.default.createDirectory(atPath: thumbDir, withIntermediateDirectories: true)
            for unit in 0..<layer.unitCount where names.contains("\(unit).png") && names.contains("\(unit).json") {
                let record = try? JSONDecoder().decode(VisualizationSidecar.self,
                                                       from: Data(contentsOf: URL(fileURLWithPath: (dir as NSString).appendingPathComponent("\(unit).json"))))
                let thumb = (thumbDir as NSString).appendingPathComponent("\(unit).png")
                if !FileManager.default.fileExists(atPath: thumb), let image = try? PNGFile.read((dir as NSString).appendingPathComponent("\(unit).png")) {
                    let side = min(thumbnailSide, image.width)
                    try PNGFile.write(ImagePreprocessing.resize(image, width: side, height: max(1, image.height * side / image.width)), to: thumb)
                    thumbs += 1
                }
                var title = "\(layer.name) unit \(unit)"
                if let name = record?.unitName { title += " (\(name))" }
                if let r = record { title += String(format: ", objective %.3f", r.finalObjective); scores.append(r.finalObjective) }
                var cell = "<figure><a href=\"\(unit).png\"><img src=\"thumbs/\(unit).png\" loading=\"lazy\" alt=\"\(html(title))\" title=\"\(html(title))\"></a>"
                cell += "<figcaption>\(unit)\(record?.unitName.map { " " + html($0) } ?? "") · <a href=\"\(unit).json\">json</a></figcaption>"
                if let hits = probes?[layer.name], unit < hits.count, !hits[unit].isEmpty {
                    cell += "<div class=\"probe\">"
                    for hit in hits[unit] {
                        let s = hit.box[2], zoom = 100 / s
                        let px = s >= 1 ? 0 : hit.box[0] / (1 - s) * 100, py = s >= 1 ? 0 : hit.box[1] / (1 - s) * 100
                        cell += "<a href=\"../probe/\(hit.photo)\" title=\"\(html(hit.photo)): \(String(format: "%.3f", hit.score))\">"
                        cell += "<span style=\"background-image:url('../probe/\(hit.photo)');background-size:\(fmt(zoom))% \(fmt(zoom))%;background-position:\(fmt(px))% \(fmt(py))%\"></span></a>"
                    }
                    cell += "</div>"
                }
                if let d = dataset, let info = d.result.layerInfo[layer.name], let examples = d.result.layers[layer.name]?[String(unit)],
                   let best = examples.first,
                   let montage = try? Data(contentsOf: URL(fileURLWithPath: (d.folder as NSString).appendingPathComponent("\(info.directory)/\(unit).png"))) {
                    let copyDir = layout.path("dataset", layer.directory)
                    try FileManager.default.createDirectory(atPath: copyDir, withIntermediateDirectories: true)
                    try writeAtomically(montage, to: (copyDir as NSString).appendingPathComponent("\(unit).png"))
                    var tip = "top \(examples.count) of \(d.result.images) images by \(info.reduction); best \(String(format: "%.3f", best.value)) (\((best.image as NSString).lastPathComponent))"
                    if let s = d.result.statistics[layer.name]?[String(unit)] {
                        tip += String(format: "; dataset mean %.3f ± %.3f, p99 %.3f", s.mean.mean, s.mean.std, s.mean.quantiles["0.99"] ?? .nan)
                    }
                    cell += "<div class=\"dataset\"><a href=\"../dataset/\(layer.directory)/\(unit).png\"><img src=\"../dataset/\(layer.directory)/\(unit).png\" loading=\"lazy\" alt=\"dataset examples\" title=\"\(html(tip))\"></a></div>"
                    cell = cell.replacingOccurrences(of: "<figure>", with: "<figure class=\"with-dataset\">")
                }
                cells.append(cell + "</figure>")
            }
            if let hits = probes?[layer.name] {
                try writeAtomically(encoder.encode(hits), to: (dir as NSString).appendingPathComponent("probe.json"))
            }
            var note = probes?[layer.name] == nil ? "" : " Under each image: the natural photos that activate the unit most (patch around its strongest position; click for the photo)."
            if let d = dataset, d.result.layers[layer.name] != nil {
                note += " Beside each probed unit: its dataset examples (`amgpu probe`, \(d.result.images) images): the receptive-field patches of its top images, best first."
            }
            let body = "<p><a href=\"../index.html\">← all layers</a> · \(html(manifest.modelName)) · shape \(layer.shape) · \(cells.count) of \(layer.unitCount) units rendered · objective: \(layer.objective.rawValue).\(note)</p>\n<div class=\"grid\">\n" + cells.joined(separator: "\n") + "\n</div>"
            let page = (dir as NSString).appendingPathComponent("index.html")
            try writeAtomically(Data(document(title: "\(manifest.modelName) · \(layer.name)", body: body).utf8), to: page)
            pages.append(page)
            total += cells.count
            rows.append((layer, cells.count, scores.min(), scores.max()))
        }
        var table = "<table><tr><th>layer</th><th>shape</th><th>units rendered</th><th>objective range</th></tr>\n"
        for (layer, count, lo, hi) in rows {
            let range = lo.map { String(format: "%.3f – %.3f", $0, hi ?? $0) } ?? "–"
            table += "<tr><td><a href=\"\(layer.directory)/index.html\">\(html(layer.name))</a></td><td>\(layer.shape)</td><td>\(count) / \(layer.unitCount)</td><td>\(range)</td></tr>\n"
        }
        table += "</table>"
        let intro = "<p>\(html(manifest.modelName)) (\(html(manifest.modelReference))), \(manifest.preset.steps) steps, image \(manifest.preset.imageSize) px, seed \(manifest.seed). Rendered by amgpu \(html(manifest.amgpuVersion)).</p>"
        let index = layout.path("index.html")
        try writeAtomically(Data(document(title: "\(manifest.modelName) atlas", body: intro + table).utf8), to: index)
        return Result(pages: [index] + pages, units: total, thumbnails: thumbs)
    }

    static func fmt(_ v: Double) -> String { String(format: "%.2f", v) }

    static func html(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func document(title: String, body: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>\(html(title))</title>
        <style>
        body { font: 14px system-ui, sans-serif; margin: 16px; background: #fafafa; color: #222; }
        h1 { font-size: 18px; } table { border-collapse: collapse; } td, th { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; }
        .grid { display: flex; flex-wrap: wrap; gap: 8px; }
        figure { margin: 0; width: \(thumbnailSide)px; font-size: 11px; }
        figure img { width: \(thumbnailSide)px; height: \(thumbnailSide)px; image-rendering: auto; display: block; border: 1px solid #ccc; }
        figcaption { text-align: center; }
        .probe { display: flex; gap: 2px; justify-content: center; }
        .probe span { display: block; width: 28px; height: 28px; border: 1px solid #ccc; background-repeat: no-repeat; }
        figure.with-dataset { width: auto; display: flex; gap: 6px; align-items: flex-start; flex-wrap: wrap; }
        .dataset img { height: \(thumbnailSide)px; border: 1px solid #ccc; }
        </style></head>
        <body><h1>\(html(title))</h1>
        \(body)
        </body></html>

        """
    }
}
