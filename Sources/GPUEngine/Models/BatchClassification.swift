import Foundation

/// The result of classifying many images with one model load (`amgpu classify --images DIR`).
public struct BatchClassification: Codable, Sendable {
    public var model: String
    public var device: String
    /// One entry per image that was read and classified, in input order.
    public var results: [Classification]
    /// Files that were not classified (not JPEG/PNG, unreadable, corrupt), with the reason: first the ones
    /// passed to `BatchClassifier.classify` as already skipped (a folder listing's non-image files, in its
    /// order), then those that could not be decoded, in input order.
    public var skipped: [ImageFolder.Skipped]

    /// How the results are written.
    public enum Format: String, Sendable, CaseIterable {
        case text, csv, json
    }

    /// The results as text, CSV or JSON.
    /// - text: one line per image, `IMAGE<TAB>NAME p% (class i)` for each of the top classes, joined by `; `.
    /// - csv: a header and one row per image: `image`, then `class_k,name_k,probability_k,logit_k` for k = 1…top
    ///   (RFC 4180 quoting). Skipped files are not rows (they are in `skipped`, printed on stderr by the CLI).
    /// - json: this whole value (model, device, results with the full logits, skipped).
    public func formatted(_ format: Format) throws -> String {
        switch format {
        case .text:
            return results.map { r in
                r.image + "\t" + r.top.map { "\($0.name) " + String(format: "%.2f%% (class %d)", Double($0.probability) * 100, $0.index) }.joined(separator: "; ")
            }.joined(separator: "\n") + (results.isEmpty ? "" : "\n")
        case .csv:
            let k = results.map(\.top.count).max() ?? 0
            var lines = [(["image"] + (0..<k).flatMap { i in ["class_\(i + 1)", "name_\(i + 1)", "probability_\(i + 1)", "logit_\(i + 1)"] }).joined(separator: ",")]
            for r in results {
                var fields = [csvField(r.image)]
                for s in r.top { fields += [String(s.index), csvField(s.name), String(format: "%.6f", s.probability), String(format: "%.6f", s.logit)] }
                lines.append(fields.joined(separator: ","))
            }
            return lines.joined(separator: "\n") + "\n"
        case .json:
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            return String(decoding: try e.encode(self), as: UTF8.self) + "\n"
        }
    }

    func csvField(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// Classifies images in batches of the model's batch size with one model (loaded once, at batch B).
///
/// Images are read, fitted and normalized as `classify` does and stacked B at a time by
/// `LayerActivationStream` (the last batch is padded with copies of its first image, whose results are
/// dropped). Rows are independent (inference only), so the logits equal those of `classify` one image at a time.
public final class BatchClassifier {
    public let model: Model
    public let stream: LayerActivationStream
    public var runner: ModelRunner { stream.runner }

    /// `model` must be a classifier ([B, K] output, K > 1); load it at the batch size wanted.
    public init(model: Model, backend: any Backend) throws {
        try checkClassifier(model)
        self.model = model
        stream = try LayerActivationStream(model: model, backend: backend, layers: [model.output])
    }

    /// Classifies `paths` in order. A file that cannot be read as an image is skipped with the reason
    /// (without its path; the run goes on); `skipped` is passed through to the result first (e.g. a
    /// folder's non-image files), so the result's `skipped` lists those, then the undecodable files in order.
    /// Throws only for errors that are not about one file (the device, the model), or when no image could be read.
    public func classify(_ paths: [String], top: Int, background: BackgroundColor = .white,
                         skipped alreadySkipped: [ImageFolder.Skipped] = [],
                         progress: ((Int, Int) -> Void)? = nil) throws -> BatchClassification {
        var results: [Classification] = []
        var skipped = alreadySkipped
        do {
            try stream.run(paths, background: background) { batch in
                skipped += batch.skipped
                if let logits = batch.activations[model.output] {
                    guard logits.shape.count == 2 else {
                        throw EngineError.invalidGraph("\(model.name) gave no [B, K] logits")
                    }
                    let k = logits.shape[1]
                    for (i, path) in batch.paths.enumerated() {
                        results.append(classification(model: model, image: path, device: runner.backend.name,
                                                      logits: Array(logits.values[(i * k)..<((i + 1) * k)]), top: top))
                    }
                }
                progress?(batch.consumed, paths.count)
            }
        } catch EngineError.invalidInput(let m) where m.hasPrefix("no image could be read") {
            let first = skipped.first.map { ": \($0.reason)" } ?? ""
            throw EngineError.invalidInput("no image could be classified (\(skipped.count) skipped)\(first)")
        }
        return BatchClassification(model: model.name, device: runner.backend.name, results: results, skipped: skipped)
    }
}
