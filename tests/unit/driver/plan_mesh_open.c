#include "plan_mesh_open.h"

#include <string.h>

#include "loader/plan.h"

moai_status_t pm_open_device(const char *plan, uint32_t device) {
  moai_plan_t *p = NULL;
  MOAI_RETURN_IF_ERROR(moai_plan_open_device(plan, device, NULL, moai_allocator_system(), &p));
  moai_plan_close(p);
  return moai_ok_status();
}

moai_status_t pm_open(const char *dir) {
  moai_plan_t *p = NULL;
  MOAI_RETURN_IF_ERROR(moai_plan_open(dir, NULL, moai_allocator_system(), &p));
  moai_plan_close(p);
  return moai_ok_status();
}

moai_status_t pm_device_tensor(const char *plan, uint32_t device, const char *name,
                               int32_t *out_rank, int64_t *out_dims, void *out_data,
                               size_t size, int *out_trainable) {
  moai_plan_t *p = NULL;
  MOAI_RETURN_IF_ERROR(moai_plan_open_device(plan, device, NULL, moai_allocator_system(), &p));
  moai_plan_tensor_t t;
  long i = moai_plan_find_tensor(p, name);
  moai_status_t status = moai_ok_status();
  if (i < 0 || !moai_plan_tensor(p, (size_t)i, &t)) {
    status = MOAI_STATUS(MOAI_NOT_FOUND, "%s: device %u has no tensor '%s'", plan, device, name);
  } else {
    *out_rank = t.rank;
    memcpy(out_dims, t.dims, sizeof(t.dims));
    memcpy(out_data, t.data, t.nbytes < size ? (size_t)t.nbytes : size);
    *out_trainable = t.kind == MOAI_PLAN_TENSOR_TRAINABLE;
  }
  moai_plan_close(p);
  return status;
}
