import Foundation

/// The assembled atlas: `OUT/atlas.png` (every cell's image at its grid position on white) and
/// `OUT/index.html` (the same grid, zoomable with a slider (CSS transform), each cell clickable for its image,
/// count, the patches of the photos nearest its mean and, with a classifier, the top classes of its image).
public enum ActivationAtlasAssembly {
    public struct Result: Sendable {
        public var png: String
        public var html: String
        public var cells: Int
        public var patches: Int
    }

    /// Assembles once every cell is rendered (throws naming the missing ones otherwise). `model` (batch 1) is
    /// used for the top classes when it has a classifier; `patches` photo crops per cell, each `patchSide` px.
    public static func assemble(out: String, model: Model?, backend: (any Backend)?, tile: Int = 96, patches: Int = 4,
                                patchSide: Int = 64, background: BackgroundColor = .white) throws -> Result {
        var plan = try ActivationAtlas.readPlan(out)
        guard tile >= 8, tile <= 1024 else { throw EngineError.invalidInput("the atlas tile side must lie in 8…1024 px, got \(tile)") }
        let done = ActivationAtlas.doneCells(plan, out: out)
        let missing = plan.cells.filter { !done.contains($0.index) }.map(\.index)
        guard missing.isEmpty else {
            throw EngineError.invalidInput("\(missing.count) of \(plan.cells.count) cells are not rendered yet (first: \(missing.prefix(8).map(String.init).joined(separator: ", "))): run every shard to the end (rerun a killed one), then assemble")
        }
        let l = ActivationAtlas.layout(out)
        let fm = FileManager.default
        try fm.createDirectory(atPath: l.path("patches"), withIntermediateDirectories: true)
        let g = plan.settings.grid
        var canvas = RGBImage(width: g * tile, height: g * tile, pixels: [UInt8](repeating: 255, count: g * tile * g * tile * 3))
        var runner: ModelRunner? = nil
        if let model, let backend, (try? checkClassifier(model)) != nil { runner = try ModelRunner(model: model, backend: backend) }
        // The head applied to each cell's mean vector (CNN layers only; `LayerHead`).
        var head: LayerHead? = nil
        if runner != nil, let model {
            if plan.layerShape.count == 3 {
                do {
                    head = try LayerHead(model: model, layer: model.resolve(layer: plan.settings.layer))
                    plan.meanClassesNote = meanClassesNote
                } catch let error as EngineError {
                    plan.meanClassesNote = "not computed: \(error)"
                }
            } else {
                plan.meanClassesNote = "not computed for a ViT token layer: the later blocks mix the tokens, so a map of identical tokens (and no class token of the cell) is not what the head ever sees; see photoClasses"
            }
        } else {
            plan.meanClassesNote = nil
        }
        // The classes of the photos each cell's samples come from: the cells' members again from the saved samples and layout.
        if runner != nil, let model {
            do {
                let members = try cellMembers(plan, out: out)
                let record = try JSONDecoder().decode(ActivationAtlas.SamplesRecord.self, from: Data(contentsOf: URL(fileURLWithPath: l.path("samples.json"))))
                for c in plan.cells.indices {
                    plan.cells[c].photoClasses = ActivationAtlas.photoClasses(members: members[plan.cells[c].index] ?? [], positions: record.positions,
                                                                              predictedClass: record.predictedClass, className: { model.className($0) })
                }
                plan.photoClassesNote = ActivationAtlas.photoClassesNote
            } catch {
                plan.photoClassesNote = "not computed: \(error)"
            }
        }
        var photos: [String: RGBImage] = [:]
        var patchCount = 0
        for c in plan.cells.indices {
            let cell = plan.cells[c]
            let image = try PNGFile.read(l.imagePath(AtlasUnit(layer: ActivationAtlas.cellsLayer, unit: cell.index)))
            blit(ImagePreprocessing.resize(image, width: tile, height: tile), into: &canvas, x: cell.column * tile, y: cell.row * tile)
            if let runner, let model {
                let out = try runner.run(ImagePreprocessing.modelInput(image, model.preprocessing), layers: [model.output])
                if let logits = out[model.output]?.values {
                    plan.cells[c].topClasses = classification(model: model, image: "", device: "", logits: logits, top: 3).top
                }
                if let head, let backend {
                    let logits = try head.run(constantMap: cell.mean, backend: backend)
                    plan.cells[c].meanClasses = classification(model: model, image: "", device: "", logits: logits, top: 3).top
                }
            }
            for k in plan.cells[c].nearest.indices {
                guard k < patches else { plan.cells[c].nearest[k].file = nil; continue }
                let patch = plan.cells[c].nearest[k]
                if photos[patch.image] == nil {
                    guard let photo = try? ImageFile.read(patch.image, background: background) else { continue }
                    photos[patch.image] = model.map { ImagePreprocessing.fitted(photo, $0.preprocessing) } ?? photo
                }
                guard let photo = photos[patch.image] else { continue }
                let name = "\(cell.index)-\(k).png"
                try PNGFile.write(ImagePreprocessing.resize(crop(photo, box: patch.box), width: patchSide, height: patchSide),
                                  to: l.path("patches", name))
                plan.cells[c].nearest[k].file = name
                patchCount += 1
            }
        }
        if runner != nil {
            plan.classes = "the classifier's top 3 classes (softmax probability) on the cell's rendered AM image, as the model sees it (its input size, normalized)"
        }
        try PNGFile.write(canvas, to: l.path("atlas.png"))
        try writeAtomically(Data(html(plan, tile: tile).utf8), to: l.path("index.html"))
        try ActivationAtlas.writePlan(plan, out: out)
        return Result(png: l.path("atlas.png"), html: l.path("index.html"), cells: plan.cells.count, patches: patchCount)
    }

    /// Each cell's sample indices, binned again from OUT/layout.npy and OUT/samples.npy exactly as when planning
    /// (throws when they are missing or do not give the plan's cells).
    static func cellMembers(_ plan: ActivationAtlasPlan, out: String) throws -> [Int: [Int]] {
        let l = ActivationAtlas.layout(out)
        let coordinates = try NPYFile.read(l.path("layout.npy")), vectors = try NPYFile.read(l.path("samples.npy"))
        guard coordinates.shape == [plan.sampleCount, 2], vectors.shape == [plan.sampleCount, plan.dimension] else {
            throw EngineError.invalidInput("layout.npy \(coordinates.shape) and samples.npy \(vectors.shape) do not hold the plan's \(plan.sampleCount) samples")
        }
        let cells = try ActivationGrid.bin(layout: coordinates.values, vectors: vectors.values, count: plan.sampleCount, dimension: plan.dimension,
                                           grid: plan.settings.grid, minCount: plan.settings.minCount)
        guard cells.map(\.index) == plan.cells.map(\.index), cells.map(\.count) == plan.cells.map(\.count) else {
            throw EngineError.invalidInput("the saved samples and layout do not bin into the plan's cells")
        }
        return Dictionary(uniqueKeysWithValues: cells.map { ($0.index, $0.members) })
    }

    static let meanClassesNote = "the classifier's top 3 classes (softmax probability) for the cell's mean vector v: the rest of the network after the layer (LayerHead) applied to the [C,H,W] map whose every position holds v — exactly the classifier of v when only global average pooling and a linear layer follow; after an earlier layer the later convolutions see a constant map (zero padding makes its borders differ)"

    /// Pixels [x0, x1) × [y0, y1) of `image` (clamped to it; at least 1×1).
    public static func crop(_ image: RGBImage, box: [Int]) -> RGBImage {
        let x0 = min(max(box.count == 4 ? box[0] : 0, 0), image.width - 1), y0 = min(max(box.count == 4 ? box[1] : 0, 0), image.height - 1)
        let x1 = max(min(box.count == 4 ? box[2] : image.width, image.width), x0 + 1), y1 = max(min(box.count == 4 ? box[3] : image.height, image.height), y0 + 1)
        var out = RGBImage(width: x1 - x0, height: y1 - y0, pixels: [UInt8](repeating: 0, count: (x1 - x0) * (y1 - y0) * 3))
        for y in y0..<y1 {
            let src = (y * image.width + x0) * 3, dst = (y - y0) * (x1 - x0) * 3
            out.pixels.replaceSubrange(dst..<(dst + (x1 - x0) * 3), with: image.pixels[src..<(src + (x1 - x0) * 3)])
        }
        return out
    }

    static func blit(_ image: RGBImage, into canvas: inout RGBImage, x: Int, y: Int) {
        for row in 0..<image.height where y + row < canvas.height {
            let w = min(image.width, canvas.width - x)
            guard w > 0 else { return }
            let src = row * image.width * 3, dst = ((y + row) * canvas.width + x) * 3
            canvas.pixels.replaceSubrange(dst..<(dst + w * 3), with: image.pixels[src..<(src + w * 3)])
        }
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// The page: a zoom slider scaling the grid (CSS transform, a few lines of inline script), cells placed
    /// absolutely at their grid position, and one detail panel per cell shown on click (`:target`).
    static func html(_ plan: ActivationAtlasPlan, tile: Int) -> String {
        let s = plan.settings
        let g = s.grid
        var layoutText = plan.layout.method == "pca"
            ? "PCA (LAPACK ssyevd via OpenBLAS, built in)"
            : "coordinates from \(plan.layout.source ?? "a file")"
        if let p = plan.layout.parameters, !p.isEmpty {
            layoutText += " — " + p.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
        }
        if let ev = plan.layout.explainedVariance, let total = plan.layout.totalVariance, total > 0 {
            layoutText += String(format: "; the two components explain %.1f %% of the variance", Double(ev.reduce(0, +) / total) * 100)
        }
        var h = """
        <!DOCTYPE html>
        <html><head><meta charset="utf-8"><title>Activation atlas: \(escape(s.modelName)) \(escape(s.layer))</title>
        <style>
        body { font-family: sans-serif; margin: 1em; }
        #viewport { overflow: auto; border: 1px solid #ccc; width: 100%; height: 75vh; }
        #grid { position: relative; width: \(g * tile)px; height: \(g * tile)px; transform-origin: 0 0; }
        #grid a { position: absolute; width: \(tile)px; height: \(tile)px; }
        #grid img { width: 100%; height: 100%; image-rendering: auto; }
        .panel { display: none; position: fixed; top: 5%; left: 10%; right: 10%; max-height: 85%; overflow: auto; background: #fff;
                 border: 2px solid #333; padding: 1em; box-shadow: 0 0 20px #0006; }
        .panel:target { display: block; }
        .panel .patches img { width: 96px; height: 96px; margin: 2px; }
        </style></head><body>
        <h1>Activation atlas of \(escape(s.modelName)), layer \(escape(s.layer))\(s.className.map { ", class " + escape($0) } ?? "")</h1>
        <p>\(plan.sampleCount) activation vectors (dimension \(plan.dimension)) sampled from \(plan.positionsSeen) positions of \(plan.imagesUsed) photos
        (\(plan.imagesRead) read, \(plan.skipped.count) skipped) in \(escape(s.images)); seed \(s.seed).
        Layout: \(escape(layoutText)). Grid \(g)×\(g) (cells with at least \(s.minCount) samples); \(plan.cells.count) cells rendered with \(s.preset.steps) steps each.
        Each cell: \(escape(plan.objective)). Patches: the samples nearest the cell's mean vector; box = \(escape(plan.boxes)).
        \(plan.meanClassesNote.map { "Mean-vector classes: " + escape($0) + "." } ?? "")
        \(plan.classes.map { "Classes: " + escape($0) + "." } ?? "")
        \(plan.photoClassesNote.map { "Photo classes: " + escape($0) + "." } ?? "")</p>
        <p>Zoom <input type="range" min="0.25" max="4" step="0.05" value="1" oninput="document.getElementById('grid').style.transform='scale('+this.value+')'">
        — click a cell for its details. <a href="atlas.png">atlas.png</a> · <a href="atlas.json">atlas.json</a></p>
        <div id="viewport"><div id="grid">

        """
        for c in plan.cells {
            h += "<a href=\"#cell-\(c.index)\" style=\"left:\(c.column * tile)px;top:\(c.row * tile)px\" title=\"cell (\(c.row), \(c.column)): \(c.count) samples\"><img src=\"cells/\(c.index).png\" alt=\"cell \(c.index)\" loading=\"lazy\"></a>\n"
        }
        h += "</div></div>\n"
        for c in plan.cells {
            h += "<div class=\"panel\" id=\"cell-\(c.index)\"><p><a href=\"#\">close</a></p>\n"
            h += "<h2>Cell (row \(c.row), column \(c.column)): \(c.count) samples</h2>\n"
            h += "<p><a href=\"cells/\(c.index).png\"><img src=\"cells/\(c.index).png\" alt=\"cell \(c.index)\" width=\"224\"></a> <a href=\"cells/\(c.index).json\">record</a></p>\n"
            if let top = c.meanClasses {
                h += "<p>Top classes of the mean vector (the head after the layer): " + top.map { escape($0.name) + String(format: " %.1f %%", Double($0.probability) * 100) }.joined(separator: ", ") + "</p>\n"
            }
            if let top = c.topClasses {
                h += "<p>Top classes of the rendered image: " + top.map { escape($0.name) + String(format: " %.1f %%", Double($0.probability) * 100) }.joined(separator: ", ") + "</p>\n"
            }
            if let shares = c.photoClasses, !shares.isEmpty {
                h += "<p>Classes of the photos its samples come from (model's top-1): " + shares.map { escape($0.name) + " \($0.samples) (" + String(format: "%.0f %%", Double($0.fraction) * 100) + ")" }.joined(separator: ", ") + "</p>\n"
            }
            let shown = c.nearest.filter { $0.file != nil }
            if !shown.isEmpty {
                h += "<p class=\"patches\">Nearest samples:<br>"
                for p in shown {
                    h += "<img src=\"patches/\(p.file ?? "")\" title=\"\(escape(p.image)) at (\(p.y), \(p.x)), box \(p.box.map(String.init).joined(separator: ","))\" alt=\"patch\">"
                }
                h += "</p>\n"
            }
            h += "</div>\n"
        }
        h += "</body></html>\n"
        return h
    }
}
