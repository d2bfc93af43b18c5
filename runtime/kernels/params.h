/* Runtime-valued op parameters (moai_ops.h: Slice's runtime_params, a
 * Reduce's runtime_axes, Trilu's runtime_k, CumSum's runtime_axis): reading
 * the integer operand tensors that carry them, and ONNX's normalisation of
 * their values, shared by the kernel families. Kernels cannot wait for each
 * other, so every thread calls these itself (they are cheap and
 * deterministic: all threads reach the same verdict). Nothing here reports:
 * a false return leaves the reason in err, and the kernel reports it once
 * (thread 0) through moai_kernel_fail. Internal to runtime/kernels. */
#ifndef MOAI_KERNELS_PARAMS_H
#define MOAI_KERNELS_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads operand t, an int32 or int64 tensor of rank 0 or 1 with at most cap
 * elements, into buf (widened to int64); *out_n is its element count. `what`
 * names the operand in err ("starts"). */
bool moai_params_read_ints(const moai_exec_t *ex, const moai_tensor_t *t,
                           const char *what, int64_t *buf, size_t cap,
                           size_t *out_n, char *err, size_t err_size);

/* Reads operand t, an int32 or int64 tensor of exactly one element (any
 * rank), into *out. */
bool moai_params_read_scalar(const moai_exec_t *ex, const moai_tensor_t *t,
                             const char *what, int64_t *out, char *err,
                             size_t err_size);

/* An axis in [-rank, rank) made non-negative. */
bool moai_params_axis(int64_t axis, int64_t rank, const char *what,
                      int64_t *out, char *err, size_t err_size);

/* ONNX Slice (opset 13) for an input of `rank` dims: n entries of starts and
 * ends, with axes (NULL: 0..n-1) and steps (NULL: all 1). Per input axis,
 * the first index read, the step and the element count (unsliced axes:
 * 0, 1, dim). Negative starts/ends count from the end; starts clamp to
 * [0, dim] for positive steps and [0, dim-1] for negative ones, ends to
 * [0, dim] and [-1, dim-1]. Fails on a step of 0, an axis out of range or
 * named twice, or n > rank. No arithmetic overflows for any int64 input. */
bool moai_params_slice(int32_t rank, const int64_t *dims, size_t n,
                       const int64_t *starts, const int64_t *ends,
                       const int64_t *axes, const int64_t *steps,
                       int64_t *out_start, int64_t *out_step,
                       int64_t *out_count, char *err, size_t err_size);

/* ONNX Reduce* axes (opset 18) as a mask over `rank` axes: none reduce all,
 * unless noop_with_empty_axes (mask 0); negative axes count from the end;
 * an axis named twice counts once. Fails on an axis out of range. */
bool moai_params_reduce_mask(int32_t rank, size_t n, const int64_t *axes,
                             bool noop_with_empty_axes, uint64_t *out_mask,
                             char *err, size_t err_size);

/* Formats dims as "[a,b,c]" into buf (for messages); returns buf. */
const char *moai_params_dims_str(int32_t rank, const int64_t *dims, char *buf,
                                 size_t size);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_KERNELS_PARAMS_H */
