/// Errors of the engine. Each message says what is wrong and, where it can, how to fix it.
public enum EngineError: Error, CustomStringConvertible, Sendable, Equatable {
    case shapeMismatch(String)
    case invalidAttribute(String)
    case wrongBackend(String)
    case unsupported(String)
    case unknownValue(String)
    case noOpenCLDevice(String)
    case invalidGraph(String)
    case numerical(String)
    case io(String)
    case invalidInput(String)
    /// A tensor or the whole run does not fit the device's memory (found before any work starts).
    case deviceMemory(String)

    public var description: String {
        switch self {
        case .shapeMismatch(let m): return "shape mismatch: \(m)"
        case .invalidAttribute(let m): return "invalid attribute: \(m)"
        case .wrongBackend(let m): return "wrong backend: \(m)"
        case .unsupported(let m): return "unsupported: \(m)"
        case .unknownValue(let m): return m
        case .noOpenCLDevice(let m): return m
        case .invalidGraph(let m): return "invalid graph: \(m)"
        case .numerical(let m): return m
        case .io(let m): return m
        case .invalidInput(let m): return m
        case .deviceMemory(let m): return "out of device memory: \(m)"
        }
    }
}

extension EngineError {
    /// The same error with "; `hint`" appended to its message (nil: unchanged).
    public func appendingHint(_ hint: String?) -> EngineError {
        guard let hint else { return self }
        func add(_ m: String) -> String { m + "; " + hint }
        switch self {
        case .shapeMismatch(let m): return .shapeMismatch(add(m))
        case .invalidAttribute(let m): return .invalidAttribute(add(m))
        case .wrongBackend(let m): return .wrongBackend(add(m))
        case .unsupported(let m): return .unsupported(add(m))
        case .unknownValue(let m): return .unknownValue(add(m))
        case .noOpenCLDevice(let m): return .noOpenCLDevice(add(m))
        case .invalidGraph(let m): return .invalidGraph(add(m))
        case .numerical(let m): return .numerical(add(m))
        case .io(let m): return .io(add(m))
        case .invalidInput(let m): return .invalidInput(add(m))
        case .deviceMemory(let m): return .deviceMemory(add(m))
        }
    }
}
