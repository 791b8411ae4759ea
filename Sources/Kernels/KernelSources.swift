/// The OpenCL C sources of amgpu, embedded at build time from `Sources/Kernels/*.cl`
/// (the `.cl` files are the source of truth; see Plugins/EmbedKernels).
public enum KernelSources {
    /// Source text of the kernel file `name` (file name without `.cl`), or nil if there is none.
    public static func source(named name: String) -> String? { embedded[name] }
    /// Names of every embedded kernel file.
    public static var names: [String] { embedded.keys.sorted() }
}
