/* HDF5 (Debian serial flavour). Swift cannot import the H5T_ and H5P_ class macros (they expand to
   (H5open(), X_g)) nor the H5F_ACC_* flags, so they are wrapped as inline functions here. */
#include <hdf5/serial/hdf5.h>
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
