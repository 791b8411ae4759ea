import Foundation

/// How the user picks where to run: `auto`, `cpu`, `opencl` (first device) or `opencl:N`.
/// The `AMGPU_DEVICE` environment variable supplies the default.
public enum DeviceSelection: Equatable, Sendable, CustomStringConvertible {
    case auto
    case cpu
    case opencl(Int?)

    public static let noDeviceMessage =
        "no OpenCL device found: install an OpenCL driver (on Debian/Ubuntu: apt-get install pocl-opencl-icd for the CPU, or your GPU vendor's driver), or run with --device cpu"

    /// Parses `auto`, `cpu`, `opencl`, `opencl:N`, `gpu` (alias of opencl).
    public init(parsing text: String) throws {
        let t = text.lowercased().trimmingCharacters(in: .whitespaces)
        switch t {
        case "auto", "": self = .auto
        case "cpu": self = .cpu
        case "opencl", "gpu": self = .opencl(nil)
        default:
            if t.hasPrefix("opencl:"), let n = Int(t.dropFirst(7)), n >= 0 {
                self = .opencl(n)
            } else {
                throw EngineError.invalidInput("unknown device '\(text)': use auto, cpu, opencl or opencl:N (see `amgpu devices`)")
            }
        }
    }

    /// The selection from `AMGPU_DEVICE`, or `auto` when it is unset.
    public static func fromEnvironment() throws -> DeviceSelection {
        guard let value = ProcessInfo.processInfo.environment["AMGPU_DEVICE"], !value.isEmpty else { return .auto }
        return try DeviceSelection(parsing: value)
    }

    public var description: String {
        switch self {
        case .auto: return "auto"
        case .cpu: return "cpu"
        case .opencl(nil): return "opencl"
        case .opencl(let n?): return "opencl:\(n)"
        }
    }

    /// Opens the selected backend. `auto` prefers the first OpenCL GPU, then any OpenCL device,
    /// and falls back to the CPU reference with a one-line `notice` when there is no OpenCL.
    public func makeBackend(notice: (String) -> Void = { _ in }) throws -> any Backend {
        switch self {
        case .cpu:
            return CPUBackend()
        case .opencl(let index):
            let devices = try OpenCLRuntime.devices()
            guard !devices.isEmpty else { throw EngineError.noOpenCLDevice(Self.noDeviceMessage) }
            return try OpenCLBackend(index: index ?? (devices.first { $0.type.contains("GPU") }?.index ?? 0))
        case .auto:
            let devices: [CLDeviceInfo]
            do { devices = try OpenCLRuntime.devices() } catch {
                notice("amgpu: OpenCL is not usable (\(error)); running on the CPU backend")
                return CPUBackend()
            }
            guard let device = devices.first(where: { $0.type.contains("GPU") }) ?? devices.first else {
                notice("amgpu: no OpenCL device found; running on the CPU backend (install pocl-opencl-icd or a GPU driver to use OpenCL)")
                return CPUBackend()
            }
            return try OpenCLBackend(device: device)
        }
    }
}
