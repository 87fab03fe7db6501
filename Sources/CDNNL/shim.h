/* oneDNN 2.6 (Debian libdnnl-dev), op-descriptor C API. DNNL_MEMORY_ALLOCATE is a pointer cast
   Swift cannot import; Debian's build threads through libgomp. */
#include <oneapi/dnnl/dnnl.h>
static inline void *shim_DNNL_MEMORY_ALLOCATE(void) { return DNNL_MEMORY_ALLOCATE; }
void omp_set_num_threads(int);
int omp_get_max_threads(void);
