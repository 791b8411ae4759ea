import ArgumentParser
import GPUEngine

struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the OpenCL devices amgpu can use (and the CPU backend).")

    func run() throws {
        try runReportingErrors {
            let devices = try OpenCLRuntime.devices()
            if devices.isEmpty {
                print("No OpenCL device found (install pocl-opencl-icd for the CPU, or your GPU vendor's OpenCL driver).")
            }
            for device in devices { print(device) }
            print("cpu       CPU reference backend (Swift + OpenBLAS), always available")
        }
    }
}
