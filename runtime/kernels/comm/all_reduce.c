/* The all-reduce kernel (abi/moai_ops.h, "collective kernels"). The
 * reduction itself belongs to the runtime: the plan's hook (a moai_comm_t
 * bound by moai-run, or a test's) reduces one buffer over the ranks of the
 * group. Thread 0 does the whole op, since the hook is one call per rank;
 * the barrier the step puts after every op holds the other threads until it
 * returns. */
#include <stdio.h>
#include <string.h>

#include "kernels/kernels.h"

static void all_reduce(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  (void)nth;
  if (ith != 0) return;
  moai_attrs_all_reduce_t a;
  if (op->n_in != 1 || op->n_out != 1 || !moai_kernel_attrs_load(op, &a, sizeof(a), sizeof(a))) {
    moai_kernel_fail(ex, op, "all_reduce: malformed descriptor (needs one input, one output "
                             "and the op and group attributes)");
    return;
  }
  const moai_tensor_t *in = moai_op_in(op, 0), *out = moai_op_out(op, 0);
  int64_t count = moai_tensor_numel(out);
  if ((out->dtype != MOAI_ABI_F32 && out->dtype != MOAI_ABI_F64) || in->dtype != out->dtype ||
      moai_tensor_numel(in) != count) {
    moai_kernel_fail(ex, op, "all_reduce: needs a float32 or float64 input and output of "
                             "one shape");
    return;
  }
  if ((a.op != MOAI_REDUCE_SUM && a.op != MOAI_REDUCE_MAX) || a.group != MOAI_GROUP_TP) {
    moai_kernel_fail(ex, op, "all_reduce: unknown reduction or group (this runtime knows sum "
                             "and max over the tp group)");
    return;
  }
  const moai_kernel_runtime_t *rt = ex->runtime;
  if (!rt || !rt->allreduce) {
    moai_kernel_fail(ex, op, "all_reduce over the tp group, but no group is bound: run "
                             "multi-device plans with moai-run");
    return;
  }
  const void *src = moai_tensor_ptr(ex, in);
  void *dst = moai_tensor_ptr(ex, out);
  size_t elem = out->dtype == MOAI_ABI_F32 ? sizeof(float) : sizeof(double);
  if (src != dst) memmove(dst, src, (size_t)count * elem);
  moai_status_t s = rt->allreduce(rt->allreduce_user, a.group, out->dtype, a.op, dst,
                                  (size_t)count);
  if (s) {
    char msg[256];
    snprintf(msg, sizeof(msg), "all_reduce over the tp group failed: %s",
             moai_status_message(s));
    moai_status_free(s);
    moai_kernel_fail(ex, op, msg);
  }
}

/* grad_ready (comm/grad_ready.c). */
void moai_kernel_grad_ready(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth);

void moai_kernels_register_comm(moai_isa_t isa, moai_kernel_fn_t *table) {
  (void)isa; /* one version: the work is the hook's */
  table[MOAI_KERNEL_ALL_REDUCE] = all_reduce;
  table[MOAI_KERNEL_GRAD_READY] = moai_kernel_grad_ready;
}
