import Foundation

/// Host memory for a CPU-backend tensor: `count` fp32 values, freed with the last reference.
public final class HostBuffer: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    /// Allocates `count` floats, all set to zero.
    public init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}

/// Where a tensor's values live.
public enum TensorStorage: @unchecked Sendable {
    case host(HostBuffer)
    case device(CLBuffer)
}

/// A dense, row-major fp32 tensor with a static shape, owned by one backend.
/// Tensors are values: an operation writes a new tensor, it never changes its inputs.
public final class Tensor: @unchecked Sendable, CustomStringConvertible {
    public let shape: [Int]
    public let storage: TensorStorage

    public init(shape: [Int], storage: TensorStorage) {
        self.shape = shape
        self.storage = storage
    }

    /// Number of elements (product of the shape; 1 for a scalar).
    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }

    /// The same values seen with another shape of equal element count (no copy).
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        guard newShape.reduce(1, *) == count else {
            throw EngineError.shapeMismatch("cannot reshape \(shape) (\(count) values) to \(newShape)")
        }
        return Tensor(shape: newShape, storage: storage)
    }

    public var description: String {
        switch storage {
        case .host: return "Tensor(\(shape), cpu)"
        case .device: return "Tensor(\(shape), opencl)"
        }
    }

    /// The host buffer of a CPU tensor; throws for a tensor on another backend.
    func host() throws -> HostBuffer {
        guard case .host(let buffer) = storage else {
            throw EngineError.wrongBackend("a tensor on OpenCL was passed to the CPU backend")
        }
        return buffer
    }

    /// The device buffer of an OpenCL tensor; throws for a tensor on another backend.
    func device() throws -> CLBuffer {
        guard case .device(let buffer) = storage else {
            throw EngineError.wrongBackend("a CPU tensor was passed to the OpenCL backend")
        }
        return buffer
    }
}

/// A tensor's values in host memory, independent of any backend: weights, images, results.
public struct HostTensor: Sendable, Equatable {
    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "HostTensor: \(values.count) values for shape \(shape)")
        self.shape = shape
        self.values = values
    }

    /// Checked initialiser for values coming from files.
    public static func make(shape: [Int], values: [Float]) throws -> HostTensor {
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == values.count else {
            throw EngineError.shapeMismatch("\(values.count) values do not fill shape \(shape)")
        }
        return HostTensor(shape: shape, values: values)
    }

    public var count: Int { values.count }
}

/// Row-major strides of a shape, in elements.
public func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var running = 1
    for axis in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[axis] = running
        running *= shape[axis]
    }
    return strides
}
