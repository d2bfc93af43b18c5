/* Comparisons (Equal, Less, LessOrEqual, Greater, GreaterOrEqual) of every
 * numeric dtype (Equal also bool) to a bool output, and the logical And, Or,
 * Not of bools. NaN compares false (IEEE). Bools are bytes; any nonzero byte
 * reads as true and results are 0 or 1. */
#include "kernels/elementwise/loops.h"

MOAI_EW_DEF_COMPARE_NUMERIC(equal, x == y)
MOAI_EW_DEF_COMPARE_NUMERIC(less, x < y)
MOAI_EW_DEF_COMPARE_NUMERIC(less_equal, x <= y)
MOAI_EW_DEF_COMPARE_NUMERIC(greater, x > y)
MOAI_EW_DEF_COMPARE_NUMERIC(greater_equal, x >= y)
MOAI_EW_DEF_BINARY(equal_bool, uint8_t, uint8_t, (x != 0) == (y != 0))
MOAI_EW_DEF_BINARY(and_bool, uint8_t, uint8_t, (x != 0) & (y != 0))
MOAI_EW_DEF_BINARY(or_bool, uint8_t, uint8_t, (x != 0) | (y != 0))

static const moai_ew_binary_t equal_def = {
    {MOAI_EW_NUMERIC_ENTRIES(equal), [MOAI_ABI_BOOL] = equal_bool}, true, NULL};
static const moai_ew_binary_t less_def = {{MOAI_EW_NUMERIC_ENTRIES(less)}, true, NULL};
static const moai_ew_binary_t less_equal_def = {{MOAI_EW_NUMERIC_ENTRIES(less_equal)}, true, NULL};
static const moai_ew_binary_t greater_def = {{MOAI_EW_NUMERIC_ENTRIES(greater)}, true, NULL};
static const moai_ew_binary_t greater_equal_def = {{MOAI_EW_NUMERIC_ENTRIES(greater_equal)},
                                                   true, NULL};
static const moai_ew_binary_t and_def = {{[MOAI_ABI_BOOL] = and_bool}, true, NULL};
static const moai_ew_binary_t or_def = {{[MOAI_ABI_BOOL] = or_bool}, true, NULL};

MOAI_EW_DEF_BINARY_KERNELS(equal, equal_def)
MOAI_EW_DEF_BINARY_KERNELS(less, less_def)
MOAI_EW_DEF_BINARY_KERNELS(less_equal, less_equal_def)
MOAI_EW_DEF_BINARY_KERNELS(greater, greater_def)
MOAI_EW_DEF_BINARY_KERNELS(greater_equal, greater_equal_def)
MOAI_EW_DEF_BINARY_KERNELS(and, and_def)
MOAI_EW_DEF_BINARY_KERNELS(or, or_def)

static void not_loop(void *o_, const void *x_, int64_t n, const void *params) {
  (void)params;
  uint8_t *o = o_;
  const uint8_t *x = x_;
  for (int64_t i = 0; i < n; ++i) o[i] = x[i] == 0;
}

static const moai_ew_unary_loop_t not_loops[MOAI_EW_DTYPE_TABLE] = {[MOAI_ABI_BOOL] = not_loop};

static void not_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  moai_ew_unary(ex, op, ith, nth, not_loops, NULL, true);
}
static void not_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  moai_ew_unary(ex, op, ith, nth, not_loops, NULL, false);
}

void moai_ew_register_compare_logic(moai_isa_t isa, moai_kernel_fn_t *table) {
  if (isa == MOAI_ISA_REFERENCE) {
    table[MOAI_KERNEL_EQUAL] = equal_ref;
    table[MOAI_KERNEL_LESS] = less_ref;
    table[MOAI_KERNEL_LESS_OR_EQUAL] = less_equal_ref;
    table[MOAI_KERNEL_GREATER] = greater_ref;
    table[MOAI_KERNEL_GREATER_OR_EQUAL] = greater_equal_ref;
    table[MOAI_KERNEL_AND] = and_ref;
    table[MOAI_KERNEL_OR] = or_ref;
    table[MOAI_KERNEL_NOT] = not_ref;
  } else if (isa == MOAI_ISA_GENERIC) {
    table[MOAI_KERNEL_EQUAL] = equal_opt;
    table[MOAI_KERNEL_LESS] = less_opt;
    table[MOAI_KERNEL_LESS_OR_EQUAL] = less_equal_opt;
    table[MOAI_KERNEL_GREATER] = greater_opt;
    table[MOAI_KERNEL_GREATER_OR_EQUAL] = greater_equal_opt;
    table[MOAI_KERNEL_AND] = and_opt;
    table[MOAI_KERNEL_OR] = or_opt;
    table[MOAI_KERNEL_NOT] = not_opt;
  }
}
