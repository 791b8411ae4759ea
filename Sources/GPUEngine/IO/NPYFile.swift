import Foundation

/// NumPy `.npy` files (format 1.0, little-endian float32, C order), for activations users analyse in Python.
public enum NPYFile {
    public static func encode(_ t: HostTensor) -> Data {
        let shape = t.shape.map(String.init).joined(separator: ", ") + (t.shape.count == 1 ? "," : "")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(shape)), }"
        // magic (6) + version (2) + length (2) + header, padded with spaces to a multiple of 64, ending in \n.
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var data = Data([0x93]) + Data("NUMPY".utf8) + Data([1, 0])
        var length = UInt16(header.utf8.count).littleEndian
        withUnsafeBytes(of: &length) { data.append(contentsOf: $0) }
        data.append(Data(header.utf8))
        t.values.withUnsafeBytes { data.append(contentsOf: $0) }
        return data
    }

    /// Writes atomically.
    public static func write(_ t: HostTensor, to path: String) throws {
        try writeAtomically(encode(t), to: path)
    }
}

extension NPYFile {
    /// Reads a little-endian float32 or float64 C-order `.npy` file (version 1.x or 2.x).
    public static func read(_ path: String) throws -> HostTensor {
        guard let data = FileManager.default.contents(atPath: path) else { throw EngineError.io("cannot read '\(path)'") }
        let bytes = [UInt8](data)
        guard bytes.count >= 10, bytes[0] == 0x93, String(decoding: bytes[1..<6], as: UTF8.self) == "NUMPY" else {
            throw EngineError.invalidInput("'\(path)' is not a .npy file")
        }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        if major == 1 {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        } else {
            guard bytes.count >= 12 else { throw EngineError.invalidInput("'\(path)': truncated .npy header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        }
        guard headerStart + headerLength <= bytes.count else { throw EngineError.invalidInput("'\(path)': truncated .npy header") }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        guard !header.contains("'fortran_order': True") else { throw EngineError.unsupported("'\(path)': Fortran-order arrays") }
        let isDouble = header.contains("'<f8'")
        guard isDouble || header.contains("'<f4'") else { throw EngineError.unsupported("'\(path)': only little-endian float32/float64 arrays") }
        guard let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw EngineError.invalidInput("'\(path)': no shape in the .npy header")
        }
        let shape = header[open.upperBound..<close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let count = shape.reduce(1, *)
        let start = headerStart + headerLength
        let size = isDouble ? 8 : 4
        guard bytes.count - start >= count * size else { throw EngineError.invalidInput("'\(path)': truncated .npy data") }
        let values: [Float] = bytes.withUnsafeBytes { raw in
            (0..<count).map { i in
                isDouble ? Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: start + i * 8, as: UInt64.self)))
                    : Float(bitPattern: raw.loadUnaligned(fromByteOffset: start + i * 4, as: UInt32.self))
            }
        }
        return HostTensor(shape: shape, values: values)
    }
}
