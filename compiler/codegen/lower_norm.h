/* Attribute normalisation for the device ABI (runtime/abi/moai_ops.h): the
 * ONNX (opset 21) rules that turn a node's attributes and constant operands
 * into the explicit, positive, per-axis values kernels read. Pure functions
 * on plain integers, no MLIR, so each rule is tested against the spec on its
 * own (tests/unit/codegen/test_lower_norm.c). Each returns false, with a
 * message in `err` (capacity `err_size`), when the values are invalid. */
#ifndef MOAI_CODEGEN_LOWER_NORM_H
#define MOAI_CODEGEN_LOWER_NORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An axis in [-rank, rank) made positive into *out. */
bool moai_norm_axis(int64_t axis, int64_t rank, int64_t *out, char *err,
                    size_t err_size);

/* Slice (opset 13+): `n` entries of starts/ends, with axes (NULL: 0..n-1)
 * and steps (NULL: all 1), over an input of `rank` dims. Fills, for every
 * input axis, the first index, the step and the element count (axes not
 * named: 0, 1, dim). Negative starts/ends count from the end; starts clamp
 * to [0, dim] (step > 0) or [0, dim-1] (step < 0), ends to [0, dim] or
 * [-1, dim-1]. A zero step or a repeated axis is an error. */
bool moai_norm_slice(int64_t rank, const int64_t *dims, size_t n,
                     const int64_t *starts, const int64_t *ends,
                     const int64_t *axes, const int64_t *steps,
                     int64_t *out_start, int64_t *out_step, int64_t *out_count,
                     char *err, size_t err_size);

/* Reduce (opset 18+): `n` axes (n == 0 or axes NULL: none given) over an
 * input of `rank` dims into a bit mask. No axes reduce over all of them,
 * unless noop_with_empty_axes, where *out_noop is set (the op is a copy). */
bool moai_norm_reduce_axes(int64_t rank, size_t n, const int64_t *axes,
                           bool noop_with_empty_axes, uint64_t *out_mask,
                           bool *out_noop, char *err, size_t err_size);

/* Transpose: `n` perm entries (n == 0: reverse the axes) checked to be a
 * permutation of [0, rank) into out_perm[rank]. */
bool moai_norm_perm(int64_t rank, size_t n, const int64_t *perm,
                    int64_t *out_perm, char *err, size_t err_size);

typedef enum moai_auto_pad_e {
  MOAI_AUTO_PAD_NOTSET = 0,
  MOAI_AUTO_PAD_SAME_UPPER,
  MOAI_AUTO_PAD_SAME_LOWER,
  MOAI_AUTO_PAD_VALID,
} moai_auto_pad_t;

/* Parses "NOTSET", "SAME_UPPER", "SAME_LOWER" or "VALID". */
bool moai_norm_auto_pad(const char *text, size_t len, moai_auto_pad_t *out);

/* Conv and pooling windows over `n` spatial axes (1..3) with spatial input
 * sizes `in`: kernel sizes (required), strides and dilations (NULL: 1), pads
 * (NULL: 0; begins then ends) resolved through auto_pad into explicit pads
 * (SAME_*: total = max(0, (ceil(in/s) - 1) * s + (k - 1) * d + 1 - in),
 * the odd one at the end for SAME_UPPER and at the beginning for SAME_LOWER;
 * VALID: none). Writes the output sizes too (floor, or ceil with ceil_mode,
 * dropping a last window that starts in the end padding). */
bool moai_norm_window(int n, const int64_t *in, const int64_t *kernel,
                      const int64_t *strides, const int64_t *dilations,
                      const int64_t *pads, moai_auto_pad_t auto_pad,
                      bool ceil_mode, int64_t *out_strides,
                      int64_t *out_dilations, int64_t *out_pads,
                      int64_t *out_sizes, char *err, size_t err_size);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_CODEGEN_LOWER_NORM_H */
