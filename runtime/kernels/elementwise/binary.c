/* Add, Sub, Mul, Div with numpy broadcasting, every numeric dtype.
 * Integers wrap (computed in unsigned arithmetic: no signed overflow);
 * integer Div truncates toward zero as C does, INT_MIN / -1 wraps to
 * INT_MIN, and division by zero fails the step instead of trapping. f16 and
 * bf16 are computed in f32 and rounded once. */
#include "kernels/elementwise/loops.h"

MOAI_EW_DEF_BINARY_NUMERIC(add, (ew_t)((ew_u)x + (ew_u)y), (ew_t)((ew_u)x + (ew_u)y), x + y)
MOAI_EW_DEF_BINARY_NUMERIC(sub, (ew_t)((ew_u)x - (ew_u)y), (ew_t)((ew_u)x - (ew_u)y), x - y)
MOAI_EW_DEF_BINARY_NUMERIC(mul, (ew_t)((ew_u)x * (ew_u)y), (ew_t)((ew_u)x * (ew_u)y), x * y)
MOAI_EW_DEF_BINARY_NUMERIC(div,
                           y == 0    ? (err = 1, (ew_t)0)
                           : y == -1 ? (ew_t)(0u - (ew_u)x)
                                     : (ew_t)(x / y),
                           y == 0 ? (err = 1, (ew_t)0) : (ew_t)(x / y),
                           x / y)

static const moai_ew_binary_t add_def = {{MOAI_EW_NUMERIC_ENTRIES(add)}, false, NULL};
static const moai_ew_binary_t sub_def = {{MOAI_EW_NUMERIC_ENTRIES(sub)}, false, NULL};
static const moai_ew_binary_t mul_def = {{MOAI_EW_NUMERIC_ENTRIES(mul)}, false, NULL};
static const moai_ew_binary_t div_def = {{MOAI_EW_NUMERIC_ENTRIES(div)}, false,
                                         "integer division by zero"};

MOAI_EW_DEF_BINARY_KERNELS(add, add_def)
MOAI_EW_DEF_BINARY_KERNELS(sub, sub_def)
MOAI_EW_DEF_BINARY_KERNELS(mul, mul_def)
MOAI_EW_DEF_BINARY_KERNELS(div, div_def)

void moai_ew_register_binary(moai_isa_t isa, moai_kernel_fn_t *table) {
  if (isa == MOAI_ISA_REFERENCE) {
    table[MOAI_KERNEL_ADD] = add_ref;
    table[MOAI_KERNEL_SUB] = sub_ref;
    table[MOAI_KERNEL_MUL] = mul_ref;
    table[MOAI_KERNEL_DIV] = div_ref;
  } else if (isa == MOAI_ISA_GENERIC) {
    table[MOAI_KERNEL_ADD] = add_opt;
    table[MOAI_KERNEL_SUB] = sub_opt;
    table[MOAI_KERNEL_MUL] = mul_opt;
    table[MOAI_KERNEL_DIV] = div_opt;
  }
}
