// The serial HDF5 C library (1.10 or later), plus getters for the macros Swift cannot import.
//
// HDF5 spells its property-list, type and flag constants as macros that expand to casts or to
// globals that exist only after H5open(); Swift imports neither, so each one Factorlab uses is
// wrapped here in a `fl_` getter. Functions whose name is a version-dependent macro (H5Treclaim
// vs H5Dvlen_reclaim) are wrapped the same way so the Swift side compiles against 1.10 and 1.12+.
#pragma once
#include <hdf5.h>

// MARK: Default and "all" identifiers
static inline hid_t fl_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t fl_H5S_ALL(void) { return H5S_ALL; }
static inline hid_t fl_H5E_DEFAULT(void) { return H5E_DEFAULT; }

// MARK: Property-list classes (globals initialised by H5open)
static inline hid_t fl_H5P_FILE_ACCESS(void) { H5open(); return H5P_FILE_ACCESS; }
static inline hid_t fl_H5P_FILE_CREATE(void) { H5open(); return H5P_FILE_CREATE; }
static inline hid_t fl_H5P_DATASET_CREATE(void) { H5open(); return H5P_DATASET_CREATE; }
static inline hid_t fl_H5P_LINK_CREATE(void) { H5open(); return H5P_LINK_CREATE; }
static inline hid_t fl_H5P_GROUP_CREATE(void) { H5open(); return H5P_GROUP_CREATE; }

// MARK: File access flags
static inline unsigned fl_H5F_ACC_TRUNC(void) { H5open(); return H5F_ACC_TRUNC; }
static inline unsigned fl_H5F_ACC_EXCL(void) { H5open(); return H5F_ACC_EXCL; }
static inline unsigned fl_H5F_ACC_RDONLY(void) { H5open(); return H5F_ACC_RDONLY; }
static inline unsigned fl_H5F_ACC_RDWR(void) { H5open(); return H5F_ACC_RDWR; }

// MARK: Native and string datatypes (globals initialised by H5open)
static inline hid_t fl_H5T_NATIVE_FLOAT(void) { H5open(); return H5T_NATIVE_FLOAT; }
static inline hid_t fl_H5T_NATIVE_DOUBLE(void) { H5open(); return H5T_NATIVE_DOUBLE; }
static inline hid_t fl_H5T_NATIVE_INT32(void) { H5open(); return H5T_NATIVE_INT32; }
static inline hid_t fl_H5T_NATIVE_INT64(void) { H5open(); return H5T_NATIVE_INT64; }
static inline hid_t fl_H5T_NATIVE_UINT64(void) { H5open(); return H5T_NATIVE_UINT64; }
static inline hid_t fl_H5T_NATIVE_INT8(void) { H5open(); return H5T_NATIVE_INT8; }
static inline hid_t fl_H5T_NATIVE_UINT16(void) { H5open(); return H5T_NATIVE_UINT16; }
static inline hid_t fl_H5T_C_S1(void) { H5open(); return H5T_C_S1; }

// MARK: File format bounds (H5F_LIBVER_LATEST is a macro naming an enum constant)
static inline H5F_libver_t fl_H5F_LIBVER_V18(void) { return H5F_LIBVER_V18; }
static inline H5F_libver_t fl_H5F_LIBVER_V110(void) { return H5F_LIBVER_V110; }
static inline H5F_libver_t fl_H5F_LIBVER_LATEST(void) { return H5F_LIBVER_LATEST; }

// MARK: Sizes and addresses
static inline size_t fl_H5T_VARIABLE(void) { return H5T_VARIABLE; }
static inline haddr_t fl_HADDR_UNDEF(void) { return HADDR_UNDEF; }

// MARK: Version-dependent functions
/// Frees the strings HDF5 allocated when reading variable-length data.
static inline herr_t fl_reclaim_vlen(hid_t type_id, hid_t space_id, void *buf) {
#if H5_VERSION_GE(1, 12, 0)
    return H5Treclaim(type_id, space_id, H5P_DEFAULT, buf);
#else
    return H5Dvlen_reclaim(type_id, space_id, H5P_DEFAULT, buf);
#endif
}

/// The library version as major, minor, release.
static inline void fl_H5_version(unsigned *major, unsigned *minor, unsigned *release) {
    H5get_libversion(major, minor, release);
}
