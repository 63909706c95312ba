// A minimal MPI binding that loads Open MPI at run time (dlopen), so the factorlab executable
// runs without MPI installed and links no MPI library. Only what data-parallel training needs:
// world rank and size, in-place sum allreduce (blocking and non-blocking), barrier, abort.
//
// The handles are Open MPI's ABI: MPI_COMM_WORLD, MPI_FLOAT, MPI_DOUBLE and MPI_SUM are the
// addresses of the exported objects ompi_mpi_comm_world, ompi_mpi_float, ompi_mpi_double and
// ompi_mpi_op_sum, MPI_IN_PLACE is (void *)1 and MPI_STATUS_IGNORE is NULL (mpi.h, Open MPI 4 and 5).
#ifndef FACTORLAB_CMPI_H
#define FACTORLAB_CMPI_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Loads libmpi (libmpi.so.40, then libmpi.so) and resolves the symbols below. Returns 0 on
/// success; otherwise writes a message into `error` (at most `error_size` bytes) and returns -1.
int fl_mpi_load(char *error, size_t error_size);

/// MPI_Init_thread with MPI_THREAD_FUNNELED (only the main thread calls MPI). Returns the MPI error code.
int fl_mpi_init(void);
int fl_mpi_finalize(void);
int fl_mpi_rank(int *rank);
int fl_mpi_size(int *size);
int fl_mpi_barrier(void);
int fl_mpi_abort(int code);

/// In-place sum over MPI_COMM_WORLD of `count` floats (doubles).
int fl_mpi_allreduce_sum_float(float *buffer, int count);
int fl_mpi_allreduce_sum_double(double *buffer, int count);

/// Non-blocking in-place float sum; `request` is an opaque MPI_Request.
int fl_mpi_iallreduce_sum_float(float *buffer, int count, void **request);
/// MPI_Test: sets *done to 1 when the request has completed.
int fl_mpi_test(void **request, int *done);
int fl_mpi_wait(void **request);

/// The library's version string (MPI_Get_library_version), or "" if unavailable.
const char *fl_mpi_library_version(void);

#ifdef __cplusplus
}
#endif

#endif
