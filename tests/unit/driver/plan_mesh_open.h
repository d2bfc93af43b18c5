/* The loader's side of test_plan_mesh.c, in its own file: runtime/loader's
 * plan.h and compiler/driver's compile.h both define moai_plan_options_t. */
#ifndef MOAI_TESTS_PLAN_MESH_OPEN_H
#define MOAI_TESTS_PLAN_MESH_OPEN_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

/* moai_plan_open_device(plan, device) with default options, then close. */
moai_status_t pm_open_device(const char *plan, uint32_t device);
/* moai_plan_open(dir) with default options, then close. */
moai_status_t pm_open(const char *dir);
/* Opens device `device` and copies its tensor `name` (rank, dims, up to
 * `size` bytes of data, and whether it is a trained weight). */
moai_status_t pm_device_tensor(const char *plan, uint32_t device, const char *name,
                               int32_t *out_rank, int64_t *out_dims, void *out_data,
                               size_t size, int *out_trainable);

#endif
