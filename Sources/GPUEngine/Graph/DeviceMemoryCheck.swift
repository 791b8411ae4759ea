import Foundation

extension Graph {
    /// Checks before any work that this graph's tensors fit `backend`'s OpenCL device (the CPU
    /// backend is not checked): every value is one fp32 buffer, so
    ///   largest value: 4 · Π shape  ≤  CL_DEVICE_MAX_MEM_ALLOC_SIZE, and
    ///   weights + the two largest activations (a node's input and output; backward holds as much
    ///   again in gradients): 4 · (Σ constants + g · (a₁ + a₂))  ≤  CL_DEVICE_GLOBAL_MEM_SIZE,
    ///   with g = 2 when `backward` (visualize, adversarial) and g = 1 for a forward-only run
    ///   (classify, activations, atlas probes).
    /// The second bound is a floor, not the peak, so passing it does not promise the run fits;
    /// failing it means the run cannot. Throws `EngineError.deviceMemory` naming the sizes and the fix.
    public func checkFits(on backend: any Backend, what: String, backward: Bool = true) throws {
        guard let cl = backend as? OpenCLBackend else { return }
        let device = cl.context.device
        var largest = (bytes: 0, index: -1)
        var constantBytes = 0
        var activations: [Int] = []
        for (i, value) in values.enumerated() {
            let bytes = value.shape.reduce(4) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max / 4 : $0 * $1 }
            if bytes > largest.bytes { largest = (bytes, i) }
            if constants[ValueID(index: i)] != nil { constantBytes += bytes } else { activations.append(bytes) }
        }
        let fix = "use a smaller --batch or --size, or --device cpu"
        if largest.index >= 0, UInt64(largest.bytes) > device.maxAllocationBytes {
            let v = values[largest.index]
            throw EngineError.deviceMemory("\(what) needs a \(formatBytes(largest.bytes)) buffer for '\(v.name)' \(v.shape), but \(backend.name) allocates at most \(formatBytes(Int(clamping: device.maxAllocationBytes))) in one buffer (CL_DEVICE_MAX_MEM_ALLOC_SIZE): \(fix)")
        }
        let top = activations.sorted(by: >).prefix(2).reduce(0, +)
        let floor = constantBytes + (backward ? 2 : 1) * top
        if UInt64(floor) > device.globalMemoryBytes {
            throw EngineError.deviceMemory("\(what) needs at least \(formatBytes(floor)) of device memory (weights \(formatBytes(constantBytes)) + activations\(backward ? " and gradients" : "")), but \(backend.name) has \(formatBytes(Int(clamping: device.globalMemoryBytes))) (CL_DEVICE_GLOBAL_MEM_SIZE): \(fix)")
        }
    }
}

/// "1.50 GiB (1610612736 bytes)".
func formatBytes(_ bytes: Int) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"]
    var value = Double(bytes), unit = 0
    while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
    return unit == 0 ? "\(bytes) bytes" : String(format: "%.2f %@ (%lld bytes)", value, units[unit], Int64(bytes))
}
