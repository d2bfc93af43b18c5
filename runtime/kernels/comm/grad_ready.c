/* The grad_ready kernel (abi/moai_ops.h, "collective kernels"): tells the
 * runtime that a bucket of gradient accumulators is final for this step, so
 * it may sum them over the dp group while the backward goes on (moai-run
 * hands the bucket to a communication thread). Thread 0 makes the one call;
 * the barrier after the op holds the others. Without a hook a plan runs as
 * on one rank: the op does nothing. */
#include <stdio.h>

#include "kernels/kernels.h"

void moai_kernel_grad_ready(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth);

void moai_kernel_grad_ready(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  (void)nth;
  if (ith != 0) return;
  moai_attrs_grad_ready_t a;
  if (op->n_out != 0 || !moai_kernel_attrs_load(op, &a, sizeof(a), sizeof(a)) || a.bucket < 0) {
    moai_kernel_fail(ex, op, "grad_ready: malformed descriptor (needs no output and a bucket "
                             ">= 0)");
    return;
  }
  const moai_kernel_runtime_t *rt = ex->runtime;
  if (!rt || !rt->grad_ready) return;
  moai_status_t s = rt->grad_ready(rt->grad_ready_user, a.bucket);
  if (s) {
    char msg[256];
    snprintf(msg, sizeof(msg), "grad_ready: handing over gradient bucket %d failed: %s",
             (int)a.bucket, moai_status_message(s));
    moai_status_free(s);
    moai_kernel_fail(ex, op, msg);
  }
}
