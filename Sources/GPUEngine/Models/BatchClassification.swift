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
/// Each image is read (`ImageFile.read`, JPEG or PNG, alpha over `background`), centre-cropped and
/// normalized as `classify` does, and B of them are stacked into one [B, 3, S, S] input; the last
/// batch is filled up with copies of its first image, whose results are dropped. Rows are independent
/// (inference only), so the logits equal those of `classify` one image at a time.
public final class BatchClassifier {
    public let model: Model
    public let runner: ModelRunner

    /// `model` must be a classifier ([B, K] output, K > 1); load it at the batch size wanted.
    public init(model: Model, backend: any Backend) throws {
        try checkClassifier(model)
        self.model = model
        runner = try ModelRunner(model: model, backend: backend)
    }

    /// Classifies `paths` in order. A file that cannot be read as an image is skipped with the reason
    /// (without its path; the run goes on); `skipped` is passed through to the result first (e.g. a
    /// folder's non-image files), so the result's `skipped` lists those, then the undecodable files in order.
    /// Throws only for errors that are not about one file (the device, the model), or when no image could be read.
    public func classify(_ paths: [String], top: Int, background: BackgroundColor = .white,
                         skipped alreadySkipped: [ImageFolder.Skipped] = [],
                         progress: ((Int, Int) -> Void)? = nil) throws -> BatchClassification {
        let batch = model.batchSize
        var results: [Classification] = []
        var skipped = alreadySkipped
        var pending: [(path: String, input: HostTensor)] = []
        func flush() throws {
            guard let first = pending.first else { return }
            let plane = first.input.values.count
            var values = [Float]()
            values.reserveCapacity(batch * plane)
            for i in 0..<batch { values += (i < pending.count ? pending[i] : first).input.values }
            let shape = [batch] + Array(first.input.shape.dropFirst())
            let out = try runner.run(HostTensor(shape: shape, values: values), layers: [model.output])
            guard let logits = out[model.output], logits.shape.count == 2, logits.shape[0] == batch else {
                throw EngineError.invalidGraph("\(model.name) gave no [\(batch), K] logits")
            }
            let k = logits.shape[1]
            for (i, item) in pending.enumerated() {
                results.append(classification(model: model, image: item.path, device: runner.backend.name,
                                              logits: Array(logits.values[(i * k)..<((i + 1) * k)]), top: top))
            }
            pending.removeAll()
        }
        for (n, path) in paths.enumerated() {
            do {
                let image = try ImageFile.read(path, background: background)
                pending.append((path, ImagePreprocessing.modelInput(image, model.preprocessing)))
            } catch let error as EngineError {
                // The reason without the path, which `Skipped` already holds ("cannot decode image: …").
                skipped.append(ImageFolder.Skipped(path: path, reason: "\(error)".replacingOccurrences(of: " '\(path)'", with: "")))
            }
            if pending.count == batch { try flush() }
            progress?(n + 1, paths.count)
        }
        try flush()
        guard !results.isEmpty else {
            let first = skipped.first.map { ": \($0.reason)" } ?? ""
            throw EngineError.invalidInput("no image could be classified (\(skipped.count) skipped)\(first)")
        }
        return BatchClassification(model: model.name, device: runner.backend.name, results: results, skipped: skipped)
    }
}
