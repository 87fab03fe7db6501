/* oneDNN 2.6 (Debian libdnnl-dev), op-descriptor C API. DNNL_MEMORY_ALLOCATE is a pointer cast
   Swift cannot import; Debian's build threads through libgomp. */
#include <oneapi/dnnl/dnnl.h>
#if DNNL_VERSION_MAJOR != 2
#error "ste-repro uses oneDNN 2.x (its op-descriptor C API, removed in 3.0): install oneDNN 2.x (Debian 12: libdnnl-dev 2.6) and put its include directory first (CPATH or -Xcc -I)"
#endif
static inline void *shim_DNNL_MEMORY_ALLOCATE(void) { return DNNL_MEMORY_ALLOCATE; }
void omp_set_num_threads(int);
int omp_get_max_threads(void);
