#include <stddef.h>
#include <stdint.h>

/// Runs libFuzzer's driver on `test_one_input` (SwiftPM gives every executable a Swift `main`, so
/// the fuzz targets call this from theirs instead of relying on libFuzzer's own `main`).
int amgpu_fuzz_main(int argc, char **argv, int (*test_one_input)(const uint8_t *data, size_t size));
