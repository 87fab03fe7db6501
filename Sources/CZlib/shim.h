/* zlib: inflateInit2/deflateInit2 are macros Swift cannot import. */
#include <zlib.h>
static inline int shim_inflateInit2(z_streamp s, int windowBits) { return inflateInit2(s, windowBits); }
static inline int shim_deflateInit2(z_streamp s, int level, int windowBits) {
    return deflateInit2(s, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY);
}
