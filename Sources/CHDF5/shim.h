/* HDF5, found through pkg-config (hdf5.pc: Debian's serial flavour, RHEL's hdf5-devel, a module's own .pc via
   PKG_CONFIG_PATH), which supplies the include path and the library. Swift cannot import the H5T_ and H5P_ class
   macros (they expand to (H5open(), X_g)) nor the H5F_ACC_* flags, so they are wrapped as inline functions here. */
#include <hdf5.h>
#if H5_VERS_MAJOR != 1 || H5_VERS_MINOR < 10
#error "ste-repro needs HDF5 1.10 or later (1.x); the hdf5.pc pkg-config found points at an older one"
#endif
static inline hid_t shim_H5T_NATIVE_FLOAT(void)  { return H5T_NATIVE_FLOAT; }
static inline hid_t shim_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t shim_H5T_NATIVE_UINT8(void)  { return H5T_NATIVE_UINT8; }
static inline hid_t shim_H5T_NATIVE_INT32(void)  { return H5T_NATIVE_INT32; }
static inline hid_t shim_H5T_NATIVE_INT64(void)  { return H5T_NATIVE_INT64; }
static inline hid_t shim_H5T_IEEE_F32LE(void)    { return H5T_IEEE_F32LE; }
static inline hid_t shim_H5T_IEEE_F64LE(void)    { return H5T_IEEE_F64LE; }
static inline hid_t shim_H5T_STD_U8LE(void)      { return H5T_STD_U8LE; }
static inline hid_t shim_H5T_STD_I32LE(void)     { return H5T_STD_I32LE; }
static inline hid_t shim_H5T_STD_I64LE(void)     { return H5T_STD_I64LE; }
static inline hid_t shim_H5T_C_S1(void)          { return H5T_C_S1; }
static inline hid_t shim_H5P_DATASET_CREATE(void){ return H5P_DATASET_CREATE; }
static inline hid_t shim_H5P_GROUP_CREATE(void)  { return H5P_GROUP_CREATE; }
static inline hid_t shim_H5P_FILE_CREATE(void)   { return H5P_FILE_CREATE; }
static inline hid_t shim_H5P_LINK_CREATE(void)   { return H5P_LINK_CREATE; }
static inline hid_t shim_H5P_OBJECT_CREATE(void) { return H5P_OBJECT_CREATE; }
static inline hid_t shim_H5P_FILE_ACCESS(void)   { return H5P_FILE_ACCESS; }
static inline unsigned shim_H5F_ACC_TRUNC(void)  { return H5F_ACC_TRUNC; }
static inline unsigned shim_H5F_ACC_EXCL(void)   { return H5F_ACC_EXCL; }
static inline unsigned shim_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline size_t shim_H5T_VARIABLE(void)     { return H5T_VARIABLE; }
static inline hid_t shim_H5P_DATASET_XFER(void)  { return H5P_DATASET_XFER; }
static inline int shim_H5Z_FILTER_FLETCHER32(void) { return H5Z_FILTER_FLETCHER32; }
/* Every HDF5 object still open in the process (files, groups, datasets, types, spaces, attributes). */
static inline ssize_t shim_open_object_count(void) { return H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL); }
