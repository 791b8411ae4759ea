import ArgumentParser
import GPUEngine

// The typed choices of the CLI: each is `ExpressibleByArgument` and `CaseIterable`, so `--help` lists the
// values, shell completion offers them, and a bad value is refused while the flags are parsed (exit 64,
// EX_USAGE), before any model is loaded.

extension ObjectiveTerm.Kind: ExpressibleByArgument {}
extension LearningRateSchedule: ExpressibleByArgument {}
extension ImageParameterization.Kind: ExpressibleByArgument {}
extension ImageParameterization.Squash: ExpressibleByArgument {}
extension BatchClassification.Format: ExpressibleByArgument {}
extension BenchObjective: ExpressibleByArgument {}

extension InputLayout: ExpressibleByArgument {
    /// `nchw` or `nhwc` (also `channels_first`, `channels_last`).
    public init?(argument: String) { self.init(text: argument) }
}

/// `--preset`: the AM presets by name (the short forms cnn, lucid, vit, ghiasi are accepted too).
enum PresetChoice: String, CaseIterable, ExpressibleByArgument {
    case cnnLucid = "cnn-lucid"
    case vitGhiasi = "vit-ghiasi"
    case cnnMaco = "cnn-maco"

    init?(argument: String) {
        guard let preset = try? AMPreset.named(argument), let choice = PresetChoice(rawValue: preset.name) else { return nil }
        self = choice
    }

    /// The preset for a model family when none is chosen.
    static func `default`(for family: ModelFamily) -> PresetChoice { family == .vit ? .vitGhiasi : .cnnLucid }
}

/// `bench --only`: which rows to run.
enum BenchSection: String, CaseIterable, ExpressibleByArgument {
    case all, kernels, steps
}

/// Parses a unit list: "0-15", "3,7,9", "0-3,8" → [0, …, 15], [3, 7, 9], [0, 1, 2, 3, 8] (no negative units).
func parseUnitList(_ text: String) throws -> [Int] {
    var out: [Int] = []
    for part in text.split(separator: ",") {
        let bounds = part.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        if bounds.count == 1, let a = bounds[0] { out.append(a) }
        else if bounds.count == 2, let a = bounds[0], let b = bounds[1], a <= b { out.append(contentsOf: a...b) }
        else { throw ValidationError("bad unit list '\(text)': use e.g. 0-15 or 3,7,9") }
    }
    guard !out.isEmpty, out.allSatisfy({ $0 >= 0 }) else { throw ValidationError("bad unit list '\(text)': use e.g. 0-15 or 3,7,9 (no negative units)") }
    return out
}

/// Parses a device (`auto`, `cpu`, `opencl`, `opencl:N`) with the engine's message on failure.
func parseDevice(_ text: String) throws -> DeviceSelection { try DeviceSelection(parsing: text) }

/// Parses a background (`white`, `black`, `gray`, `R,G,B`) with the engine's message on failure.
func parseBackground(_ text: String) throws -> BackgroundColor { try BackgroundColor(parsing: text) }

/// Parses a comma-separated list with `element`, refusing empty entries.
func parseList<T>(_ text: String, flag: String, _ element: (String) -> T?) throws -> [T] {
    try text.split(separator: ",", omittingEmptySubsequences: false).map {
        let item = $0.trimmingCharacters(in: .whitespaces)
        guard let value = element(item) else { throw ValidationError("\(flag): cannot read '\(item)' in '\(text)'") }
        return value
    }
}
