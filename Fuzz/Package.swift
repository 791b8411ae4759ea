// swift-tools-version:6.0
// libFuzzer targets for amgpu's file readers. Built only by `scripts/fuzz`, which compiles every
// module with `-sanitize=address -sanitize-coverage=edge,trace-cmp,inline-8bit-counters`; only
// these executables link libFuzzer (`-sanitize=fuzzer` on every module would also hand libFuzzer's
// `main` to the EmbedKernels build tool). The main package's `swift build`/`swift test` never see it.
// `amgpu` is a symbolic link to the repository root, so the dependency's identity is `amgpu`
// whatever the checkout's folder is called.
import PackageDescription

let package = Package(
    name: "amgpu-fuzz",
    platforms: [.macOS(.v13)],
    dependencies: [.package(path: "amgpu")],
    targets: ["FuzzONNX", "FuzzSafetensors", "FuzzPNG"].map { name in
        .executableTarget(name: name, dependencies: [.product(name: "GPUEngine", package: "amgpu")],
                          path: "Sources/\(name)",
                          linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])])
    },
    swiftLanguageModes: [.v6]
)
