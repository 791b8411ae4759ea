// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "amgpu",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "amgpu", targets: ["amgpu"]),
        .library(name: "GPUEngine", targets: ["GPUEngine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
    ],
    targets: [
        .systemLibrary(name: "COpenCL", pkgConfig: "OpenCL",
                       providers: [.apt(["ocl-icd-opencl-dev", "opencl-headers"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        // libjpeg(-turbo) behind a setjmp (libjpeg reports errors by longjmp, which Swift cannot catch):
        // Debian/Ubuntu `libjpeg-dev` (pkg-config `libjpeg`), headers in the default include path.
        .target(name: "CJPEG", path: "Sources/CJPEG", linkerSettings: [.linkedLibrary("jpeg")]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        // Turns every Sources/Kernels/*.cl file into a Swift string constant at build time,
        // so the binary carries its kernels and the .cl files stay the source of truth.
        .executableTarget(name: "EmbedKernelsTool", path: "Sources/EmbedKernelsTool"),
        .plugin(name: "EmbedKernels", capability: .buildTool(), dependencies: ["EmbedKernelsTool"]),
        .target(name: "Kernels", path: "Sources/Kernels",
                exclude: [], plugins: ["EmbedKernels"]),
        .target(name: "GPUEngine",
                dependencies: ["COpenCL", "CPNG", "CJPEG", "COpenBLAS", "Kernels",
                               .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .executableTarget(name: "amgpu",
                          dependencies: ["GPUEngine",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .testTarget(name: "GPUEngineTests", dependencies: ["GPUEngine", "amgpu"],
                    exclude: ["Fixtures"]),   // test data read from disk via #filePath
    ],
    swiftLanguageModes: [.v6]
)
