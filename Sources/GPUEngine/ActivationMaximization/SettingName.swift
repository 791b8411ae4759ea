/// The run settings that engine error messages name. A message names a setting by its `mention`
/// ("narrow ⟨units⟩"); a front end replaces each mention with its own name for it (the CLI: its flag,
/// "narrow --units"), so the engine speaks of its own concepts and never of a front end's flags.
public enum SettingName: String, CaseIterable, Sendable {
    case learningRate = "learning rate"
    case parameterization
    case outputFolder = "output folder"
    case layers
    case units
    case shard
    case shardCount = "shard count"
    case top
    case referencePhoto = "reference photo"
    case warmStart = "warm start"

    /// How a message names the setting: ⟨name⟩.
    public var mention: String { "⟨\(rawValue)⟩" }

    /// `message` with every mention replaced by `name(setting)`.
    public static func replacingMentions(in message: String, with name: (SettingName) -> String) -> String {
        allCases.reduce(message) { text, setting in text.replacingOccurrences(of: setting.mention, with: name(setting)) }
    }
}
