/* Internal to the TorchScript frontend: a TorchScript archive (the zip
 * torch.jit.save writes), read with libzip.
 *
 * Layout: every entry is under one top directory PREFIX/ (the archive's
 * name when saved): PREFIX/data.pkl (the module object tree),
 * PREFIX/constants.pkl (a tuple of tensor constants, CONSTANTS.c<i> in the
 * code), PREFIX/data/<key> and PREFIX/constants/<key> (tensor storages,
 * raw little-endian element bytes), PREFIX/code/__torch__/... .py (the
 * TorchScript source of every class), PREFIX/version. Entry names given to
 * these functions are relative to PREFIX ("data.pkl", "data/0").
 *
 * Errors name the archive file and the entry: "m.pt: data/3: ...". Any
 * archive, however truncated or corrupted, yields a status, never a crash. */
#ifndef MOAI_FRONTENDS_TORCHSCRIPT_ARCHIVE_H
#define MOAI_FRONTENDS_TORCHSCRIPT_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "torchscript/pickle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest entry read into memory (code, pickles, constants). */
#define MOAI_TS_MAX_ENTRY_BYTES (256u << 20)

typedef struct moai_ts_archive_t moai_ts_archive_t;

/* Opens the archive at `path` (checked: a zip with PREFIX/data.pkl,
 * PREFIX/version with a known version, no entry outside PREFIX/). */
moai_status_t moai_ts_archive_open(const char *path,
                                   moai_ts_archive_t **out) MOAI_MUST_USE;
void moai_ts_archive_close(moai_ts_archive_t *archive);

const char *moai_ts_archive_path(const moai_ts_archive_t *archive);
/* The archive's top directory without the slash ("mistral_train"). */
const char *moai_ts_archive_prefix(const moai_ts_archive_t *archive);
/* The file format version (the `version` entry). */
int64_t moai_ts_archive_version(const moai_ts_archive_t *archive);

bool moai_ts_archive_has(const moai_ts_archive_t *archive, const char *name);
/* Reads entry `name` whole into a malloc'ed buffer (NUL-terminated, the
 * terminator not counted in *out_size). */
moai_status_t moai_ts_archive_read(moai_ts_archive_t *archive, const char *name,
                                   char **out_data,
                                   size_t *out_size) MOAI_MUST_USE;

/* data.pkl unpickled: the root module OBJECT. The arena owns the values. */
moai_status_t moai_ts_archive_load_data(moai_ts_archive_t *archive,
                                        moai_pk_arena_t **out_arena,
                                        moai_pk_value_t **out_root) MOAI_MUST_USE;
/* constants.pkl unpickled: a TUPLE of TENSORs (an empty tuple if the entry
 * is absent). Their storages are under constants/, not data/. */
moai_status_t moai_ts_archive_load_constants(moai_ts_archive_t *archive,
                                             moai_pk_arena_t **out_arena,
                                             moai_pk_value_t **out_tuple) MOAI_MUST_USE;

/* Checks a tensor against its storage entry (`dir` is "data" or
 * "constants"): the entry exists, its size is storage_numel elements, the
 * tensor's extent (offset + sum((size-1)*stride) + 1) fits in it. */
moai_status_t moai_ts_archive_check_tensor(moai_ts_archive_t *archive,
                                           const char *dir,
                                           const moai_pk_tensor_t *tensor,
                                           const char *what) MOAI_MUST_USE;
/* Whether the tensor is contiguous (row-major strides). */
bool moai_ts_tensor_contiguous(const moai_pk_tensor_t *tensor);
/* Reads a checked tensor's elements, gathered row-major whatever its
 * strides, into dst (exactly numel * element size bytes). */
moai_status_t moai_ts_archive_read_tensor(moai_ts_archive_t *archive,
                                          const char *dir,
                                          const moai_pk_tensor_t *tensor,
                                          void *dst, uint64_t nbytes) MOAI_MUST_USE;

/* Reads `nbytes` bytes at byte `offset` of entry `name` (relative to the
 * prefix) of an open archive: zip_fseek on a stored entry, read and skip
 * on a compressed one. */
moai_status_t moai_ts_archive_read_range(moai_ts_archive_t *archive, const char *name,
                                         uint64_t offset, void *dst,
                                         uint64_t nbytes) MOAI_MUST_USE;

/* The same on the archive at `path`, opened for the call. */
moai_status_t moai_ts_read_entry_range(const char *path, const char *entry,
                                       uint64_t offset, void *dst,
                                       uint64_t nbytes) MOAI_MUST_USE;

#ifdef __cplusplus
}
#endif

#endif /* MOAI_FRONTENDS_TORCHSCRIPT_ARCHIVE_H */
