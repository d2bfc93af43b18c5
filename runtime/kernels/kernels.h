/* The kernel table: maps every kernel id of the device ABI (abi/moai_ops.h)
 * to a function, chosen once at load for the CPU's features. Each kernel
 * dispatches on dtype through its own small table; a kernel that does not
 * support an operand's dtype reports it through moai_kernel_fail. */
#ifndef MOAI_KERNELS_H
#define MOAI_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "abi/moai_ops.h"
#include "base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum moai_isa_e {
  MOAI_ISA_REFERENCE = 0, /* scalar reference kernels: the tests' oracle */
  MOAI_ISA_GENERIC = 1,   /* optimised portable C (auto-vectorised) */
  MOAI_ISA_AVX2 = 2,      /* AVX2 + FMA */
  MOAI_ISA_AVX512 = 3,    /* AVX-512F/BW/VL/DQ */
} moai_isa_t;

/* The best ISA this CPU supports (cpuid). */
moai_isa_t moai_isa_detect(void);
const char *moai_isa_name(moai_isa_t isa);

/* Fills table[MOAI_KERNEL_COUNT] with the kernels for `isa` (falling back to
 * the best lower one per kernel). Entries never left NULL: an unimplemented
 * kernel id gets moai_kernel_missing. */
void moai_kernels_fill(moai_isa_t isa, moai_kernel_fn_t *table);

/* Per-family registration, called by moai_kernels_fill (one per family
 * file set). Each sets the entries it implements for `isa`. */
void moai_kernels_register_elementwise(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_kernels_register_nn(moai_isa_t isa, moai_kernel_fn_t *table);
/* Gradients of the indexing and softmax ops (kernels/grad): gather_grad,
 * slice_grad, softmax_grad, log_softmax_grad, softmax_cross_entropy_loss_grad. */
void moai_kernels_register_grad_index(moai_isa_t isa, moai_kernel_fn_t *table);
/* Gradients of conv, pools and normalisations (runtime/kernels/grad). */
void moai_kernels_register_grad_nn(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_kernels_register_train(moai_isa_t isa, moai_kernel_fn_t *table);
/* Collectives (kernels/comm): all_reduce and grad_ready, through the
 * runtime's hooks. */
void moai_kernels_register_comm(moai_isa_t isa, moai_kernel_fn_t *table);

/* Where kernels report failures: ex->runtime points to one of these (the
 * loader embeds it in its own state as the first member). */
typedef struct moai_kernel_status_t {
  int failed;        /* set atomically by the first failure */
  uint32_t op_index; /* op->index of that failure */
  char op_name[MOAI_OP_NAME_MAX];
  char message[256];
} moai_kernel_status_t;

/* Reduces data[0..count-1] (dtype moai_abi_dtype_t) over the group `group`
 * (MOAI_GROUP_*) of the calling rank with op MOAI_REDUCE_*. The same
 * signature as loader/plan.h's moai_plan_allreduce_fn. */
typedef moai_status_t (*moai_kernel_allreduce_fn_t)(void *user, int group, int32_t dtype,
                                                    int op, void *data, size_t count);

/* Bucket `bucket` of the step's gradient accumulators is final (data
 * parallelism). The same signature as loader/plan.h's
 * moai_plan_grad_ready_fn. */
typedef moai_status_t (*moai_kernel_grad_ready_fn_t)(void *user, int bucket);

/* The part of the runtime's state kernels read (ex->runtime points to it;
 * the loader's moai_plan_t starts with these members, in this order). */
typedef struct moai_kernel_runtime_t {
  moai_kernel_status_t kernel_status;
  moai_kernel_allreduce_fn_t allreduce; /* NULL: no group bound */
  void *allreduce_user;
  moai_kernel_grad_ready_fn_t grad_ready; /* NULL: nobody listens */
  void *grad_ready_user;
} moai_kernel_runtime_t;

/* Reports a kernel failure (an unsupported dtype, say) for op `op` into the
 * moai_kernel_status_t at ex->runtime (ignored when NULL); the first failure
 * wins and becomes the step's error. Thread-safe. */
void moai_kernel_fail(const moai_exec_t *ex, const moai_op_desc_t *op,
                      const char *message);

/* The kernel installed for ids nobody implements: fails the step. */
void moai_kernel_missing(const moai_exec_t *ex, const moai_op_desc_t *op,
                         int ith, int nth);

/* Copies op's attribute struct into dst (size bytes). Fields past the
 * descriptor's attrs_size, appended to the struct after its compiler was
 * built, read as zero (moai_ops.h: their old meaning). False when the
 * descriptor holds fewer than min_size bytes (the fields every version
 * wrote). */
static inline bool moai_kernel_attrs_load(const moai_op_desc_t *op, void *dst,
                                          size_t size, size_t min_size) {
  size_t n = op->attrs_size < size ? op->attrs_size : size;
  memset(dst, 0, size);
  if (n) memcpy(dst, moai_op_attrs(op), n);
  return op->attrs_size >= min_size;
}

/* Splits n items over nth threads: thread ith gets [*begin, *end). */
static inline void moai_split_range(long long n, int ith, int nth,
                                    long long *begin, long long *end) {
  long long chunk = (n + nth - 1) / nth;
  long long b = (long long)ith * chunk;
  long long e = b + chunk;
  *begin = b < n ? b : n;
  *end = e < n ? e : n;
}

#ifdef __cplusplus
}
#endif

#endif /* MOAI_KERNELS_H */
