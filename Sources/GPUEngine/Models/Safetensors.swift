import Foundation

/// Reads `model.safetensors` files (Hugging Face / timm): an 8-byte little-endian header length,
/// a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the
/// raw tensor bytes. The file is memory-mapped; F32, F16 and BF16 tensors are converted to fp32.
/// The header is checked strictly: sizes must match dtype × shape, offsets must lie inside the
/// file, and tensors must not overlap.
public struct SafetensorsFile {
    public struct Entry: Sendable {
        public var dtype: String
        public var shape: [Int]
        public var begin: Int
        public var end: Int
    }

    public let path: String
    public let entries: [String: Entry]
    public let metadata: [String: String]
    private let data: Data
    private let dataStart: Int

    /// The largest header amgpu accepts (100 MB), as the reference implementation does.
    static let maxHeader = 100_000_000

    public init(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw EngineError.io("cannot read '\(path)': no such file; check the path") }
        // Empty files skip Data(contentsOf:), which leaks a buffer mapping them (see PNGFile.read).
        if (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)??.intValue == 0 {
            try self.init(data: Data(), path: path)
            return
        }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw EngineError.io("cannot read '\(path)': \(error.localizedDescription)")
        }
        try self.init(data: data, path: path)
    }

    /// Parses the safetensors bytes `data`; `path` only names the file in messages.
    /// (`init(path:)` maps the file and calls this; the fuzz target calls it directly.)
    public init(data: Data, path: String) throws {
        self.path = path
        self.data = data.startIndex == 0 ? data : Data(data)   // indices below count from 0
        func corrupt(_ why: String) -> EngineError {
            EngineError.invalidInput("'\(path)' is not a valid safetensors file: \(why); re-download or re-export it")
        }
        let data = self.data
        guard data.count >= 8 else { throw corrupt("it is shorter than its 8-byte header length") }
        let headerLength = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)) }
        guard headerLength <= UInt64(Self.maxHeader), Int(headerLength) <= data.count - 8 else {
            throw corrupt("the header claims \(headerLength) bytes but the file has \(data.count)")
        }
        dataStart = 8 + Int(headerLength)
        let header = data.subdata(in: 8..<dataStart)
        guard let json = try? JSONSerialization.jsonObject(with: header) as? [String: Any] else {
            throw corrupt("the header is not a JSON object")
        }
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        let payload = data.count - dataStart
        for (name, value) in json {
            if name == "__metadata__" {
                if let m = value as? [String: Any] { for (k, v) in m { metadata[k] = "\(v)" } }
                continue
            }
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shapeAny = info["shape"] as? [Any], let offsetsAny = info["data_offsets"] as? [Any], offsetsAny.count == 2 else {
                throw corrupt("tensor '\(name)' lacks dtype, shape or data_offsets")
            }
            let shape = shapeAny.compactMap { ($0 as? NSNumber)?.intValue }
            let offsets = offsetsAny.compactMap { ($0 as? NSNumber)?.intValue }
            guard shape.count == shapeAny.count, offsets.count == 2 else { throw corrupt("tensor '\(name)' has a non-integer shape or offset") }
            let count = try checkedElementCount(shape, what: "tensor '\(name)'")
            let size: Int
            switch dtype {
            case "F32", "I32", "U32": size = 4
            case "F16", "BF16", "I16", "U16": size = 2
            case "F64", "I64", "U64": size = 8
            case "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2": size = 1
            default: throw corrupt("tensor '\(name)' has unknown dtype '\(dtype)'")
            }
            guard offsets[0] >= 0, offsets[1] >= offsets[0], offsets[1] <= payload else {
                throw corrupt("tensor '\(name)' has offsets \(offsets) outside the \(payload) data bytes")
            }
            guard offsets[1] - offsets[0] == count * size else {
                throw corrupt("tensor '\(name)' spans \(offsets[1] - offsets[0]) bytes but \(dtype) \(shape) needs \(count * size)")
            }
            entries[name] = Entry(dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1])
        }
        let sorted = entries.values.sorted { $0.begin < $1.begin }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.begin < a.end {
            throw corrupt("tensors overlap in the data section (bytes \(b.begin)..<\(a.end))")
        }
        self.entries = entries
        self.metadata = metadata
    }

    public var names: [String] { entries.keys.sorted() }

    /// The tensor `name` as fp32 (F32, F16, BF16; integer types converted).
    public func tensor(_ name: String) throws -> HostTensor {
        guard let e = entries[name] else {
            let close = closestNames(to: name, among: names, limit: 3)
            throw EngineError.invalidInput("'\(path)' has no tensor '\(name)'" + (close.isEmpty ? "" : " (closest: \(close.joined(separator: ", ")))"))
        }
        let count = e.shape.reduce(1, *)
        let start = dataStart + e.begin
        if e.dtype == "F32" {
            // Bulk copy (the file is little-endian, as are the machines amgpu runs on).
            var values = [Float](repeating: 0, count: count)
            values.withUnsafeMutableBytes { dst in
                data.withUnsafeBytes { src in
                    if let d = dst.baseAddress, let s = src.baseAddress { memcpy(d, s + start, count * 4) }
                }
            }
            return HostTensor(shape: e.shape, values: values)
        }
        let values: [Float] = data.withUnsafeBytes { raw in
            (0..<count).map { i -> Float in
                switch e.dtype {
                case "F32": return Float(bitPattern: raw.loadUnaligned(fromByteOffset: start + i * 4, as: UInt32.self))
                case "F16": return halfToFloat(raw.loadUnaligned(fromByteOffset: start + i * 2, as: UInt16.self))
                case "BF16": return bfloat16ToFloat(raw.loadUnaligned(fromByteOffset: start + i * 2, as: UInt16.self))
                case "F64": return Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: start + i * 8, as: UInt64.self)))
                case "I64": return Float(raw.loadUnaligned(fromByteOffset: start + i * 8, as: Int64.self))
                case "I32": return Float(raw.loadUnaligned(fromByteOffset: start + i * 4, as: Int32.self))
                case "U8", "BOOL": return Float(raw.load(fromByteOffset: start + i, as: UInt8.self))
                case "I8": return Float(raw.load(fromByteOffset: start + i, as: Int8.self))
                default: return .nan
                }
            }
        }
        if values.contains(where: { $0.isNaN }) && !["F32", "F16", "BF16", "F64"].contains(e.dtype) {
            throw EngineError.unsupported("tensor '\(name)' has dtype \(e.dtype), which amgpu cannot convert")
        }
        return HostTensor(shape: e.shape, values: values)
    }

    /// Writes `tensors` as an F32 safetensors file (atomically).
    public static func write(_ tensors: [String: HostTensor], metadata: [String: String] = [:], to path: String) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let t = tensors[name]!
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + t.count * 4]]
            offset += t.count * 4
        }
        var headerData = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while headerData.count % 8 != 0 { headerData.append(0x20) }
        var out = Data()
        var length = UInt64(headerData.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(headerData)
        for name in names { tensors[name]!.values.withUnsafeBytes { out.append(contentsOf: $0) } }
        try writeAtomically(out, to: path)
    }
}
