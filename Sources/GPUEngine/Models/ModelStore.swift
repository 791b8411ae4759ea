import Foundation

/// Where fetched models, class names and photos live: `$AMGPU_HOME`, else `~/.cache/amgpu`
/// (filled by `scripts/fetch-models`).
public enum ModelStore {
    public static var home: URL {
        if let h = ProcessInfo.processInfo.environment["AMGPU_HOME"], !h.isEmpty { return URL(fileURLWithPath: h) }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/amgpu")
    }

    public static func path(_ relative: String) -> String { home.appendingPathComponent(relative).path }

    /// Real trained models known by short name: name → (file under AMGPU_HOME, description).
    public static let fetched: [String: (file: String, about: String)] = [
        "efficientnet_lite0": ("models/efficientnet_lite0.safetensors", "EfficientNet-Lite0, ImageNet-1k (timm names)"),
        "efficientnet_lite0.onnx": ("models/efficientnet_lite0.onnx", "EfficientNet-Lite0, ImageNet-1k, as ONNX"),
        "dinov2_vits14": ("models/dinov2_vits14.onnx", "DINOv2 ViT-S/14 backbone (+ saliency decoder), ONNX"),
    ]

    /// The builder of a fetched safetensors whose timm architecture is not its short name:
    /// the fetched EfficientNet-Lite0 holds TensorFlow's weights, timm's `tf_efficientnet_lite0`.
    public static let fetchedArchitectures: [String: String] = ["efficientnet_lite0": "tf_efficientnet_lite0"]

    /// The fetch script's hint for a missing file.
    public static func missingMessage(_ name: String, _ file: String) -> String {
        "model '\(name)' is not fetched yet (expected \(path(file))): run scripts/fetch-models (set AMGPU_HOME to use another folder)"
    }
}

/// ImageNet-1k class names in the standard order, from `data/imagenet_classes.txt`
/// (line i: short name, a tab, the full lemma list).
public enum ImageNetClasses {
    public static func load() -> [String]? {
        guard let text = try? String(contentsOfFile: ModelStore.path("data/imagenet_classes.txt"), encoding: .utf8) else {
            return nil
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
        guard lines.count == 1000 else { return nil }
        return lines.map { line in
            let parts = line.split(separator: "\t").map(String.init)
            return parts.count > 1 ? parts[1] : parts[0]
        }
    }
}
