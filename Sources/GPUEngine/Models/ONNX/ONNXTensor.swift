import Foundation

/// A constant tensor during import: numbers as Double (exact for every fp32 value and for
/// integers up to 2^53; larger int64 such as INT64_MAX in Slice ends only serve as "to the end"),
/// with a flag saying whether ONNX typed it as an integer or bool.
struct ConstTensor: Equatable {
    var shape: [Int]
    var values: [Double]
    var isInteger: Bool

    var count: Int { values.count }
    var scalar: Double? { values.count == 1 ? values[0] : nil }
    /// The values as Int, clamped to ±2³¹ (beyond any dimension amgpu accepts, so INT64_MAX still
    /// means "to the end" and shape arithmetic cannot overflow); NaN becomes -2³¹, an invalid size.
    var ints: [Int] { values.map { $0.isNaN ? -(1 << 31) : Int(max(min($0, Double(1 << 31)), -Double(1 << 31))) } }

    var host: HostTensor { HostTensor(shape: shape, values: values.map { Float($0) }) }

    init(shape: [Int], values: [Double], isInteger: Bool) {
        self.shape = shape
        self.values = values
        self.isInteger = isInteger
    }

    init(ints: [Int], shape: [Int]? = nil) {
        self.init(shape: shape ?? [ints.count], values: ints.map(Double.init), isInteger: true)
    }
}

/// ONNX TensorProto data types amgpu reads.
enum ONNXDataType: Int32 {
    case float = 1, uint8 = 2, int8 = 3, uint16 = 4, int16 = 5, int32 = 6, int64 = 7, string = 8, bool = 9
    case float16 = 10, double = 11, uint32 = 12, uint64 = 13, bfloat16 = 16

    var byteSize: Int {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16, .float16, .bfloat16: return 2
        case .float, .int32, .uint32: return 4
        case .int64, .double, .uint64: return 8
        case .string: return 0
        }
    }

    var isInteger: Bool { ![.float, .float16, .double, .bfloat16].contains(self) }
}

/// The largest tensor amgpu accepts from a model file (elements), so a corrupt header cannot make it allocate terabytes.
let maxImportedElements = 1 << 31

/// The largest tensor constant folding may produce (elements): folded values are shapes, index
/// tables and small constants, and a hostile ConstantOfShape/Expand/Tile/Range must not allocate gigabytes.
let maxFoldedElements = 1 << 24

/// Converts IEEE half bits to Float.
func halfToFloat(_ bits: UInt16) -> Float {
    let sign = UInt32(bits & 0x8000) << 16
    let exponent = UInt32(bits >> 10) & 0x1F
    let mantissa = UInt32(bits & 0x3FF)
    if exponent == 0 {
        // Zero or subnormal: mantissa · 2⁻²⁴, exact in Float. (The old normalising loop ran the
        // unsigned exponent below zero for mantissas under 0x200 and trapped; found by fuzzing.)
        let magnitude = Float(mantissa) * 0x1p-24
        return sign != 0 ? -magnitude : magnitude
    }
    if exponent == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
    return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
}

func bfloat16ToFloat(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

/// Checked product of dimensions; throws on negative dims or overflow past the import limit.
func checkedElementCount(_ shape: [Int], what: String, limit: Int = maxImportedElements) throws -> Int {
    var n = 1
    for d in shape {
        guard d >= 0 else { throw EngineError.invalidInput("\(what) has a negative dimension in shape \(shape): the file is corrupt; re-export or re-download it") }
        let (p, overflow) = n.multipliedReportingOverflow(by: d)
        guard !overflow, p <= limit else {
            throw EngineError.invalidInput("\(what) declares shape \(shape), more than \(limit) elements: the file is corrupt (re-export or re-download it) or the model is too large")
        }
        n = p
    }
    return n
}

extension ConstTensor {
    /// Decodes an ONNX TensorProto (raw_data, typed fields, or external data next to `modelDirectory`).
    init(proto t: Onnx_TensorProto, modelDirectory: URL?) throws {
        let name = t.name.isEmpty ? "a tensor" : "tensor '\(t.name)'"
        guard let type = ONNXDataType(rawValue: t.dataType), type != .string else {
            throw EngineError.unsupported("\(name) has ONNX data type \(t.dataType), which amgpu does not read (supported: float, float16, bfloat16, double, int8/16/32/64, uint8/16/32/64, bool)")
        }
        let shape = t.dims.map { Int(clamping: $0) }
        let count = try checkedElementCount(shape, what: name)
        var raw: Data? = nil
        if t.dataLocation == .external {
            guard let dir = modelDirectory else { throw EngineError.invalidInput("\(name) uses external data but the model has no folder") }
            var location = "", offset = 0, length = -1
            for entry in t.externalData {
                switch entry.key {
                case "location": location = entry.value
                case "offset": offset = Int(entry.value) ?? -1
                case "length": length = Int(entry.value) ?? -1
                default: break
                }
            }
            guard !location.isEmpty, !location.contains(".."), !location.hasPrefix("/"), offset >= 0 else {
                throw EngineError.invalidInput("\(name): bad external data location '\(location)' (it must be a file beside the model)")
            }
            let url = dir.appendingPathComponent(location)
            guard let handle = try? FileHandle(forReadingFrom: url) else {
                throw EngineError.io("\(name): external data file '\(url.path)' cannot be opened; keep it next to the model")
            }
            defer { try? handle.close() }
            let needed = length >= 0 ? length : count * type.byteSize
            try handle.seek(toOffset: UInt64(offset))
            let data = try handle.read(upToCount: needed) ?? Data()
            guard data.count == needed else {
                throw EngineError.invalidInput("\(name): external data file '\(location)' is shorter than offset \(offset) + \(needed) bytes")
            }
            raw = data
        } else if !t.rawData.isEmpty {
            raw = t.rawData
        }
        var values: [Double]
        if let raw {
            guard raw.count == count * type.byteSize else {
                throw EngineError.invalidInput("\(name): raw data has \(raw.count) bytes, shape \(shape) of \(type) needs \(count * type.byteSize)")
            }
            values = raw.withUnsafeBytes { (p: UnsafeRawBufferPointer) -> [Double] in
                (0..<count).map { i in
                    let o = i * type.byteSize
                    switch type {
                    case .float: return Double(Float(bitPattern: p.loadUnaligned(fromByteOffset: o, as: UInt32.self)))
                    case .double: return Double(bitPattern: p.loadUnaligned(fromByteOffset: o, as: UInt64.self))
                    case .float16: return Double(halfToFloat(p.loadUnaligned(fromByteOffset: o, as: UInt16.self)))
                    case .bfloat16: return Double(bfloat16ToFloat(p.loadUnaligned(fromByteOffset: o, as: UInt16.self)))
                    case .int8: return Double(p.loadUnaligned(fromByteOffset: o, as: Int8.self))
                    case .uint8, .bool: return Double(p.loadUnaligned(fromByteOffset: o, as: UInt8.self))
                    case .int16: return Double(p.loadUnaligned(fromByteOffset: o, as: Int16.self))
                    case .uint16: return Double(p.loadUnaligned(fromByteOffset: o, as: UInt16.self))
                    case .int32: return Double(p.loadUnaligned(fromByteOffset: o, as: Int32.self))
                    case .uint32: return Double(p.loadUnaligned(fromByteOffset: o, as: UInt32.self))
                    case .int64: return Double(p.loadUnaligned(fromByteOffset: o, as: Int64.self))
                    case .uint64: return Double(p.loadUnaligned(fromByteOffset: o, as: UInt64.self))
                    case .string: return 0
                    }
                }
            }
        } else {
            switch type {
            case .float: values = t.floatData.map(Double.init)
            case .double: values = t.doubleData
            case .int64: values = t.int64Data.map(Double.init)
            case .uint32, .uint64: values = t.uint64Data.map(Double.init)
            case .float16: values = t.int32Data.map { Double(halfToFloat(UInt16(truncatingIfNeeded: $0))) }
            case .bfloat16: values = t.int32Data.map { Double(bfloat16ToFloat(UInt16(truncatingIfNeeded: $0))) }
            default: values = t.int32Data.map(Double.init)
            }
            guard values.count == count else {
                throw EngineError.invalidInput("\(name): has \(values.count) values for shape \(shape) (\(count)); the file is corrupt or uses data amgpu cannot find")
            }
        }
        self.init(shape: shape, values: values, isInteger: type.isInteger)
    }
}
