/* The loader's private state, shared by plan.c (open, close, checks) and
 * exec.c (inputs, steps, outputs). */
#ifndef MOAI_LOADER_PLAN_INTERNAL_H
#define MOAI_LOADER_PLAN_INTERNAL_H

#include "io/safetensors.h"
#include "kernels/kernels.h"
#include "loader/plan.h"

struct moai_plan_t {
  /* First member: ex->runtime points here and kernels write failures to it
   * (kernels/kernels.h). */
  moai_kernel_status_t kernel_status;
  /* Then the all-reduce and grad-ready hooks, as moai_kernel_runtime_t lays
   * them out. */
  moai_plan_allreduce_fn allreduce;
  void *allreduce_user;
  moai_plan_grad_ready_fn grad_ready;
  void *grad_ready_user;
  moai_allocator_t allocator;
  moai_plan_options_t options;
  char *dir; /* as the caller gave it, for messages */
  moai_manifest_t *manifest;
  void *library; /* dlopen handle of device-0.so */
  /* The memory file the verified binary was loaded from, kept open while it
   * is loaded: dlopen knows a library by its path, /proc/self/fd/N, and a
   * reused N would hand another plan this one's binary. */
  int library_fd;
  bool library_fd_open;
  const moai_device_table_t *table;
  moai_safetensors_t *weights;
  unsigned char *arena_block; /* what the allocator returned */
  unsigned char *arena;       /* 64-byte aligned inside it */
  unsigned char *persist_block; /* training plans: MOAI_REGION_PERSIST */
  unsigned char *persist;       /* 64-byte aligned inside it */
  moai_kernel_fn_t kernels[MOAI_KERNEL_COUNT];
  moai_exec_t exec;
  bool *input_set; /* per input, since the last run */
  bool has_run;    /* outputs hold the last successful run's results */
  bool forward_only; /* ...of moai_plan_run_forward: only forward_output */
  int last_threads;
};

#endif /* MOAI_LOADER_PLAN_INTERNAL_H */
