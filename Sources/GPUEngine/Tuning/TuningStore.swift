import Foundation

/// Which GEMM kernel an OpenCL device runs for matmuls and pointwise convolutions: the CPU-style
/// `matmul_8x16` (packed B panels, 8×16 register block — what PoCL wants), or the GPU-style
/// `matmul_tiled` with a parameter set.
public enum GEMMChoice: Codable, Equatable, Sendable, CustomStringConvertible {
    case cpuStyle
    case tiled(GEMMParameters)

    /// The tiled kernel's parameters, or nil for the CPU-style kernel.
    public var tiledParameters: GEMMParameters? {
        if case .tiled(let p) = self { return p }
        return nil
    }

    public var description: String {
        switch self {
        case .cpuStyle: return "matmul_8x16 (CPU style)"
        case .tiled(let p): return "matmul_tiled \(p)"
        }
    }
}

/// One device's tuning file, `$AMGPU_HOME/tuning/<platform>-<device>-<driver>.json`, written by `amgpu tune`.
public struct TuningFile: Codable, Equatable, Sendable {
    public static let currentFormat = 1
    public var format: Int
    public var platform: String, device: String, driver: String
    /// When and how it was tuned (ISO 8601 time, shapes, candidates): for people, not read back.
    public var created: String
    public var note: String
    public var gemm: GEMMChoice

    public init(platform: String, device: String, driver: String, created: String, note: String, gemm: GEMMChoice) {
        format = Self.currentFormat
        self.platform = platform; self.device = device; self.driver = driver
        self.created = created; self.note = note; self.gemm = gemm
    }
}

/// Where the GEMM choice of a device comes from: its tuning file when there is a readable one for this
/// exact platform, device and driver, else the shipped default for its kind (`ShippedTuning`). Never
/// fails: a missing file gives the defaults silently, an unreadable or corrupt one gives the defaults and a
/// warning.
public enum TuningStore {
    /// `$AMGPU_HOME/tuning` (else `~/.cache/amgpu/tuning`).
    public static var directory: URL { ModelStore.home.appendingPathComponent("tuning") }

    /// `<platform>-<device>-<driver>.json`, each part reduced to letters, digits, '.', '_' (other runs → '_').
    public static func fileName(platform: String, device: String, driver: String) -> String {
        func clean(_ s: String) -> String {
            var out = ""
            for ch in s.trimmingCharacters(in: .whitespaces) {
                if ch.isASCII && (ch.isLetter || ch.isNumber || ch == "." || ch == "_") { out.append(ch) }
                else if !out.hasSuffix("_") { out.append("_") }
            }
            return out.isEmpty ? "unknown" : out
        }
        return "\(clean(platform))-\(clean(device))-\(clean(driver)).json"
    }

    public static func fileURL(for device: CLDeviceInfo, directory: URL = directory) -> URL {
        directory.appendingPathComponent(fileName(platform: device.platformName, device: device.name, driver: device.driverVersion))
    }

    /// The GEMM choice for `device`, where it came from ("tuned: PATH" or "shipped default: …"), and a
    /// warning when a tuning file exists but could not be used.
    public static func load(for device: CLDeviceInfo, directory: URL = directory)
        -> (choice: GEMMChoice, source: String, warning: String?) {
        let url = fileURL(for: device, directory: directory)
        let fallback = ShippedTuning.defaults(for: device)
        guard FileManager.default.fileExists(atPath: url.path) else {
            return (fallback.choice, "shipped default: \(fallback.row)", nil)
        }
        do {
            let file = try JSONDecoder().decode(TuningFile.self, from: Data(contentsOf: url))
            guard file.format == TuningFile.currentFormat else {
                throw EngineError.invalidInput("format \(file.format), this amgpu reads format \(TuningFile.currentFormat)")
            }
            if let p = file.gemm.tiledParameters, let why = p.invalidReason {
                throw EngineError.invalidInput("its GEMM parameters \(p) cannot build: \(why)")
            }
            return (file.gemm, "tuned: \(url.path)", nil)
        } catch {
            return (fallback.choice, "shipped default: \(fallback.row)",
                    "warning: ignoring the tuning file \(url.path) (\(error)); using the shipped default for this device (\(fallback.row)). Rerun `amgpu tune` to replace it.")
        }
    }

    /// Writes `file` for `device` atomically (a temporary file in the same folder, then a rename).
    @discardableResult
    public static func save(_ file: TuningFile, for device: CLDeviceInfo, directory: URL = directory) throws -> URL {
        let url = fileURL(for: device, directory: directory)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(file).write(to: url, options: .atomic)
        } catch {
            throw EngineError.io("cannot write the tuning file \(url.path): \(error.localizedDescription)")
        }
        return url
    }
}

/// The shipped defaults per kind of device (used without a tuning file). The GPU rows carry parameter
/// values from CLBlast's published Xgemm tuning database (src/database/kernels/xgemm/xgemm_32.hpp,
/// single precision) for comparable devices: only MWG, NWG, KWG, MDIMC, NDIMC, VWM, VWN carry over
/// (amgpu's kernel has no separate load shapes MDIMA/NDIMB, no KWI, SA/SB or STRM/STRN switches). They are
/// CLBlast's facts about CLBlast's kernel, not measurements of amgpu's: `amgpu tune` on the device replaces them.
public enum ShippedTuning {
    /// (row name, match, choice), first match wins.
    static var rows: [(row: String, matches: (CLDeviceInfo) -> Bool, choice: GEMMChoice)] { [
        ("CPU device (PoCL): the CPU-style kernel", { $0.type.contains("CPU") }, .cpuStyle),
        ("NVIDIA GPU: CLBlast Xgemm single, NVIDIA SM6.1 default row (KWG 32, MDIMC 16, MWG 64, NDIMC 8, NWG 64, VWM 4, VWN 4)",
         { $0.vendor.uppercased().contains("NVIDIA") },
         .tiled(GEMMParameters(mwg: 64, nwg: 64, kwg: 32, mdimc: 16, ndimc: 8, vwm: 4, vwn: 4))),
        ("AMD GPU: CLBlast Xgemm single, AMD default row (KWG 32, MDIMC 16, MWG 64, NDIMC 8, NWG 64, VWM 4, VWN 4)",
         { $0.vendor.uppercased().contains("AMD") || $0.vendor.contains("Advanced Micro") },
         .tiled(GEMMParameters(mwg: 64, nwg: 64, kwg: 32, mdimc: 16, ndimc: 8, vwm: 4, vwn: 4))),
        ("Intel GPU: CLBlast Xgemm single, Intel GPU default row (KWG 32, MDIMC 16, MWG 64, NDIMC 8, NWG 64, VWM 4, VWN 4)",
         { $0.vendor.uppercased().contains("INTEL") && $0.type.contains("GPU") },
         .tiled(GEMMParameters(mwg: 64, nwg: 64, kwg: 32, mdimc: 16, ndimc: 8, vwm: 4, vwn: 4))),
        ("other GPU: CLBlast Xgemm single, default row (KWG 32, MDIMC 8, MWG 32, NDIMC 16, NWG 32, VWM 4, VWN 2)",
         { $0.type.contains("GPU") },
         .tiled(GEMMParameters(mwg: 32, nwg: 32, kwg: 32, mdimc: 8, ndimc: 16, vwm: 4, vwn: 2))),
    ] }

    /// Every tiled parameter set a shipped row can choose, once each (the suite checks each against the CPU
    /// reference, since these run without `amgpu tune` having checked them on the device).
    public static var tiledParameterSets: [GEMMParameters] {
        var seen = Set<GEMMParameters>(), sets: [GEMMParameters] = []
        for r in rows { if case .tiled(let p) = r.choice, seen.insert(p).inserted { sets.append(p) } }
        return sets
    }

    /// The shipped choice for `device` and the row it came from (a device that matches no row — an
    /// accelerator, say — gets the CPU-style kernel, which runs anywhere).
    public static func defaults(for device: CLDeviceInfo) -> (choice: GEMMChoice, row: String) {
        for r in rows where r.matches(device) { return (r.choice, r.row) }
        return (.cpuStyle, "unknown device kind: the CPU-style kernel")
    }
}
