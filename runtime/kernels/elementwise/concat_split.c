/* Concat (inputs may differ along the axis) and Split (the output dims give
 * the sizes) of any dtype. Both see a "whole" tensor (concat's output,
 * split's input) as outer rows, part k holding dims_k[axis] * inner
 * elements of each row; threads split the whole's elements, and the
 * optimised versions memcpy the longest runs that stay inside one part. */
#include "kernels/elementwise/ew.h"

typedef struct parts_t {
  int64_t row;   /* elements of one outer row of the whole */
  int64_t inner; /* elements after the axis */
  int64_t axis;
  size_t es;
  bool split;    /* parts are outputs (split) or inputs (concat) */
} parts_t;

static const moai_tensor_t *part(const moai_op_desc_t *op, bool split, uint32_t k) {
  return split ? moai_op_out(op, k) : moai_op_in(op, k);
}

static bool parts_setup(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, bool split,
                        parts_t *p) {
  if (split ? !moai_ew_check_arity(ex, op, ith, 1, 1, op->n_out > 0 ? op->n_out : 1)
            : !moai_ew_check_arity(ex, op, ith, 1, UINT32_MAX, 1))
    return false;
  const char *name = split ? "split" : "concat";
  const moai_tensor_t *whole = split ? moai_op_in(op, 0) : moai_op_out(op, 0);
  uint32_t n = split ? op->n_out : op->n_in;
  moai_attrs_axis_t a;
  if (op->attrs_size < sizeof a) {
    moai_ew_fail(ex, op, ith, "%s: missing attributes", name);
    return false;
  }
  memcpy(&a, moai_op_attrs(op), sizeof a);
  if (a.axis < 0 || a.axis >= whole->rank) {
    moai_ew_fail(ex, op, ith, "%s: axis %lld out of range for rank %d", name,
                 (long long)a.axis, (int)whole->rank);
    return false;
  }
  if (!moai_ew_dtype_ok(whole->dtype)) {
    moai_ew_fail_dtype(ex, op, ith, whole->dtype);
    return false;
  }
  int64_t sum = 0;
  for (uint32_t k = 0; k < n; ++k) {
    const moai_tensor_t *t = part(op, split, k);
    bool ok = t->dtype == whole->dtype && t->rank == whole->rank;
    for (int32_t j = 0; ok && j < t->rank; ++j) ok = j == a.axis || t->dims[j] == whole->dims[j];
    if (!ok) {
      moai_ew_fail(ex, op, ith, "%s: part %u does not match the %s's dtype and dims", name, k,
                   split ? "input" : "output");
      return false;
    }
    sum += t->dims[a.axis];
  }
  if (sum != whole->dims[a.axis]) {
    moai_ew_fail(ex, op, ith, "%s: parts add up to %lld along axis %lld, not %lld", name,
                 (long long)sum, (long long)a.axis, (long long)whole->dims[a.axis]);
    return false;
  }
  p->inner = 1;
  for (int32_t j = (int32_t)a.axis + 1; j < whole->rank; ++j) p->inner *= whole->dims[j];
  p->row = whole->dims[a.axis] * p->inner;
  p->axis = a.axis;
  p->es = moai_ew_dtype_size(whole->dtype);
  p->split = split;
  return true;
}

/* Elements of part k in one outer row. */
static int64_t part_row(const moai_op_desc_t *op, const parts_t *p, uint32_t k) {
  return part(op, p->split, k)->dims[p->axis] * p->inner;
}

/* Reference: each element of the whole locates its part by scanning. */
static void parts_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                      bool split) {
  parts_t p;
  if (!parts_setup(ex, op, ith, split, &p)) return;
  const moai_tensor_t *whole_t = split ? moai_op_in(op, 0) : moai_op_out(op, 0);
  unsigned char *whole = moai_ew_ptr(ex, whole_t);
  long long begin, end;
  moai_split_range(moai_tensor_numel(whole_t), ith, nth, &begin, &end);
  for (int64_t i = begin; i < end; ++i) {
    int64_t o = i / p.row, r = i % p.row;
    uint32_t k = 0;
    while (r >= part_row(op, &p, k)) r -= part_row(op, &p, k++);
    unsigned char *pp =
        moai_ew_ptr(ex, part(op, split, k)) + (size_t)(o * part_row(op, &p, k) + r) * p.es;
    if (split) memcpy(pp, whole + (size_t)i * p.es, p.es);
    else memcpy(whole + (size_t)i * p.es, pp, p.es);
  }
}

/* Optimised: one memcpy per run inside a part. */
static void parts_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                      bool split) {
  parts_t p;
  if (!parts_setup(ex, op, ith, split, &p)) return;
  const moai_tensor_t *whole_t = split ? moai_op_in(op, 0) : moai_op_out(op, 0);
  unsigned char *whole = moai_ew_ptr(ex, whole_t);
  const uint32_t n = split ? op->n_out : op->n_in;
  long long begin, end;
  moai_split_range(moai_tensor_numel(whole_t), ith, nth, &begin, &end);
  if (begin >= end) return;
  /* Position: outer row o, part k, element r of part k's chunk of the row. */
  int64_t o = begin / p.row, r = begin % p.row;
  uint32_t k = 0;
  int64_t chunk = part_row(op, &p, 0);
  while (r >= chunk) {
    r -= chunk;
    chunk = part_row(op, &p, ++k);
  }
  for (int64_t pos = begin; pos < end;) {
    int64_t cnt = chunk - r;
    if (cnt > end - pos) cnt = end - pos;
    unsigned char *pp = moai_ew_ptr(ex, part(op, split, k)) + (size_t)(o * chunk + r) * p.es;
    unsigned char *wp = whole + (size_t)pos * p.es;
    if (split) memcpy(pp, wp, (size_t)cnt * p.es);
    else memcpy(wp, pp, (size_t)cnt * p.es);
    pos += cnt;
    r += cnt;
    while (r >= chunk && pos < end) { /* the next non-empty part, or row */
      r = 0;
      if (++k == n) {
        k = 0;
        o++;
      }
      chunk = part_row(op, &p, k);
    }
  }
}

static void concat_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  parts_ref(ex, op, ith, nth, false);
}
static void concat_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  parts_opt(ex, op, ith, nth, false);
}
static void split_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  parts_ref(ex, op, ith, nth, true);
}
static void split_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  parts_opt(ex, op, ith, nth, true);
}

void moai_ew_register_concat_split(moai_isa_t isa, moai_kernel_fn_t *table) {
  if (isa == MOAI_ISA_REFERENCE) {
    table[MOAI_KERNEL_CONCAT] = concat_ref;
    table[MOAI_KERNEL_SPLIT] = split_ref;
  } else if (isa == MOAI_ISA_GENERIC) {
    table[MOAI_KERNEL_CONCAT] = concat_opt;
    table[MOAI_KERNEL_SPLIT] = split_opt;
  }
}
