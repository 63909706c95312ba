// Run-time binding to Open MPI; see include/cmpi.h.
#include "cmpi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef void *handle_t; // MPI_Comm, MPI_Datatype, MPI_Op, MPI_Request are pointers in Open MPI

static struct {
    int (*init_thread)(int *, char ***, int, int *);
    int (*finalize)(void);
    int (*comm_rank)(handle_t, int *);
    int (*comm_size)(handle_t, int *);
    int (*barrier)(handle_t);
    int (*abort)(handle_t, int);
    int (*allreduce)(const void *, void *, int, handle_t, handle_t, handle_t);
    int (*iallreduce)(const void *, void *, int, handle_t, handle_t, handle_t, handle_t *);
    int (*test)(handle_t *, int *, void *);
    int (*wait)(handle_t *, void *);
    int (*get_library_version)(char *, int *);
    handle_t comm_world, type_float, type_double, op_sum;
} mpi;

#define FL_MPI_IN_PLACE ((void *)1)
#define FL_MPI_THREAD_FUNNELED 1
#define FL_MPI_ERR_OTHER 16

static void *find(void *lib, const char *name, char *error, size_t size, int *failed) {
    void *p = dlsym(lib, name);
    if (!p && !*failed) {
        snprintf(error, size, "libmpi has no symbol %s (is it Open MPI?)", name);
        *failed = 1;
    }
    return p;
}

int fl_mpi_load(char *error, size_t error_size) {
    if (mpi.comm_world) return 0;
    // RTLD_GLOBAL: Open MPI's plug-ins resolve their symbols against libmpi.
    void *lib = dlopen("libmpi.so.40", RTLD_NOW | RTLD_GLOBAL);
    if (!lib) lib = dlopen("libmpi.so", RTLD_NOW | RTLD_GLOBAL);
    if (!lib) {
        snprintf(error, error_size, "cannot load Open MPI (libmpi.so.40): %s; install openmpi-bin and libopenmpi-dev", dlerror());
        return -1;
    }
    int failed = 0;
    mpi.init_thread = find(lib, "MPI_Init_thread", error, error_size, &failed);
    mpi.finalize = find(lib, "MPI_Finalize", error, error_size, &failed);
    mpi.comm_rank = find(lib, "MPI_Comm_rank", error, error_size, &failed);
    mpi.comm_size = find(lib, "MPI_Comm_size", error, error_size, &failed);
    mpi.barrier = find(lib, "MPI_Barrier", error, error_size, &failed);
    mpi.abort = find(lib, "MPI_Abort", error, error_size, &failed);
    mpi.allreduce = find(lib, "MPI_Allreduce", error, error_size, &failed);
    mpi.iallreduce = find(lib, "MPI_Iallreduce", error, error_size, &failed);
    mpi.test = find(lib, "MPI_Test", error, error_size, &failed);
    mpi.wait = find(lib, "MPI_Wait", error, error_size, &failed);
    mpi.get_library_version = dlsym(lib, "MPI_Get_library_version"); // optional
    mpi.type_float = find(lib, "ompi_mpi_float", error, error_size, &failed);
    mpi.type_double = find(lib, "ompi_mpi_double", error, error_size, &failed);
    mpi.op_sum = find(lib, "ompi_mpi_op_sum", error, error_size, &failed);
    handle_t world = find(lib, "ompi_mpi_comm_world", error, error_size, &failed);
    if (failed) return -1;
    mpi.comm_world = world;
    return 0;
}

int fl_mpi_init(void) {
    int provided = 0;
    return mpi.init_thread ? mpi.init_thread(NULL, NULL, FL_MPI_THREAD_FUNNELED, &provided) : FL_MPI_ERR_OTHER;
}

int fl_mpi_finalize(void) { return mpi.finalize ? mpi.finalize() : FL_MPI_ERR_OTHER; }
int fl_mpi_rank(int *rank) { return mpi.comm_rank ? mpi.comm_rank(mpi.comm_world, rank) : FL_MPI_ERR_OTHER; }
int fl_mpi_size(int *size) { return mpi.comm_size ? mpi.comm_size(mpi.comm_world, size) : FL_MPI_ERR_OTHER; }
int fl_mpi_barrier(void) { return mpi.barrier ? mpi.barrier(mpi.comm_world) : FL_MPI_ERR_OTHER; }
int fl_mpi_abort(int code) { return mpi.abort ? mpi.abort(mpi.comm_world, code) : FL_MPI_ERR_OTHER; }

int fl_mpi_allreduce_sum_float(float *buffer, int count) {
    if (!mpi.allreduce) return FL_MPI_ERR_OTHER;
    return mpi.allreduce(FL_MPI_IN_PLACE, buffer, count, mpi.type_float, mpi.op_sum, mpi.comm_world);
}

int fl_mpi_allreduce_sum_double(double *buffer, int count) {
    if (!mpi.allreduce) return FL_MPI_ERR_OTHER;
    return mpi.allreduce(FL_MPI_IN_PLACE, buffer, count, mpi.type_double, mpi.op_sum, mpi.comm_world);
}

int fl_mpi_iallreduce_sum_float(float *buffer, int count, void **request) {
    if (!mpi.iallreduce) return FL_MPI_ERR_OTHER;
    return mpi.iallreduce(FL_MPI_IN_PLACE, buffer, count, mpi.type_float, mpi.op_sum, mpi.comm_world, request);
}

int fl_mpi_test(void **request, int *done) { return mpi.test ? mpi.test(request, done, NULL) : FL_MPI_ERR_OTHER; }
int fl_mpi_wait(void **request) { return mpi.wait ? mpi.wait(request, NULL) : FL_MPI_ERR_OTHER; }

const char *fl_mpi_library_version(void) {
    static char version[512];
    int length = 0;
    if (!mpi.get_library_version || mpi.get_library_version(version, &length) != 0) return "";
    return version;
}
