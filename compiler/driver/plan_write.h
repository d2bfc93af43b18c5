/* The plan writer's pieces shared by compile.c (single-device plans) and
 * plan_mesh.c (multi-device plans). Internal to compiler/driver. */
#ifndef MOAI_DRIVER_PLAN_WRITE_H
#define MOAI_DRIVER_PLAN_WRITE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"
#include "driver/compile.h"
#include "mlir-c/IR.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Fills the temporary directory `tmp` with a plan's files. */
typedef moai_status_t (*moai_plan_fill_fn_t)(void *user, const char *tmp);

/* Writes the plan directory `dir` atomically (moai_plan_write's scheme):
 * `fill` writes into a temporary sibling, which replaces an earlier plan
 * only once complete; on failure nothing is left behind. */
moai_status_t moai_plan_dir_commit(const char *dir, moai_plan_fill_fn_t fill,
                                   void *user) MOAI_MUST_USE;

/* Writes a single-device plan's files into the existing directory `dir`
 * (what moai_plan_write writes). `mesh_device`: the module is one device of
 * a multi-device plan, so its manifest is format 1 whatever its
 * moai.parallel says (the mesh is the top manifest's). */
moai_status_t moai_plan_files_write(const char *dir, MlirModule module, const char *summary,
                                    const moai_plan_options_t *options,
                                    bool mesh_device) MOAI_MUST_USE;

/* Writes `len` bytes to DIR/NAME and fsyncs it. */
moai_status_t moai_plan_file_write(const char *dir, const char *name, const char *data,
                                   size_t len) MOAI_MUST_USE;

#ifdef __cplusplus
}
#endif

#endif /* MOAI_DRIVER_PLAN_WRITE_H */
