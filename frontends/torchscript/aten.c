/* The operator table's dispatch (names, schemas, arguments), argument
 * readers, compile-time tensor helpers, type promotion and the op builder
 * shared by aten_math.c, aten_shape.c and aten_nn.c. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/dialect.h"
#include "ir/op_defs.h"
#include "mlir-c/Diagnostics.h"
#include "shape_infer/shape_infer.h"
#include "torchscript/aten_internal.h"

/* ------------------------------------------------------------------ errors */

moai_status_t ts_err(const ts_call_t *c, moai_status_code_t code,
                     const char *fmt, ...) {
  char msg[640];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return moai_ts_emit_error(c->em, c->fn, code, "%s", msg);
}

/* ------------------------------------------------------------------ values */

bool ts_is_none(const moai_ts_value_t *v) {
  return !v || v->kind == MOAI_TS_NONE;
}
bool ts_is_tensor(const moai_ts_value_t *v) {
  return v && v->kind == MOAI_TS_TENSOR;
}
bool ts_is_number(const moai_ts_value_t *v) {
  return v && (v->kind == MOAI_TS_BOOL || v->kind == MOAI_TS_INT ||
               v->kind == MOAI_TS_FLOAT);
}

moai_ts_value_t *ts_new(ts_call_t *c, moai_ts_kind_t kind) {
  moai_ts_value_t *v = moai_ts_arena_alloc(c->em->arena, sizeof(*v));
  if (v) v->kind = kind;
  return v;
}

moai_ts_value_t *ts_new_int(ts_call_t *c, int64_t i) {
  moai_ts_value_t *v = ts_new(c, MOAI_TS_INT);
  if (v) v->i = i;
  return v;
}

moai_ts_value_t *ts_new_tensor(ts_call_t *c, MlirValue t) {
  moai_ts_value_t *v = ts_new(c, MOAI_TS_TENSOR);
  if (v) v->tensor = t;
  return v;
}

moai_ts_value_t *ts_new_seq(ts_call_t *c, moai_ts_kind_t kind, size_t n) {
  moai_ts_value_t *v = ts_new(c, kind);
  if (!v) return NULL;
  v->len = n;
  v->items = moai_ts_arena_alloc(c->em->arena, (n ? n : 1) * sizeof(*v->items));
  return v->items ? v : NULL;
}

bool ts_value_int(const moai_ts_value_t *v, int64_t *out) {
  if (!v) return false;
  if (v->kind == MOAI_TS_INT) { *out = v->i; return true; }
  if (v->kind == MOAI_TS_BOOL) { *out = v->b; return true; }
  if (v->kind == MOAI_TS_TENSOR && v->konst && v->konst->numel == 1 &&
      (v->konst->dtype == MOAI_PK_I64 || v->konst->dtype == MOAI_PK_BOOL_DT)) {
    *out = ts_k_geti(v->konst, 0);
    return true;
  }
  return false;
}

bool ts_value_float(const moai_ts_value_t *v, double *out) {
  if (!v) return false;
  if (v->kind == MOAI_TS_FLOAT) { *out = v->f; return true; }
  int64_t i;
  if (ts_value_int(v, &i)) { *out = (double)i; return true; }
  if (v->kind == MOAI_TS_TENSOR && v->konst && v->konst->numel == 1) {
    *out = ts_k_getf(v->konst, 0);
    return true;
  }
  return false;
}

static const char *kind_name(const moai_ts_value_t *v) {
  if (!v) return "nothing";
  switch (v->kind) {
    case MOAI_TS_NONE: return "None";
    case MOAI_TS_BOOL: return "a bool";
    case MOAI_TS_INT: return "an int";
    case MOAI_TS_FLOAT: return "a float";
    case MOAI_TS_STR: return "a string";
    case MOAI_TS_LIST: return "a list";
    case MOAI_TS_TUPLE: return "a tuple";
    case MOAI_TS_TENSOR: return v->konst ? "a tensor" : "a tensor computed at run time";
    case MOAI_TS_MODULE: return "a module";
  }
  return "a value";
}

static const char *slot_name(const ts_call_t *c, size_t i, char *buf,
                             size_t size) {
  const char *s = c->entry ? c->entry->schema : "";
  for (size_t k = 0; k < i && s; ++k) {
    s = strchr(s, ',');
    if (s) ++s;
  }
  if (!s || !*s) {
    snprintf(buf, size, "argument %zu", i + 1);
    return buf;
  }
  size_t n = strcspn(s, ",");
  snprintf(buf, size, "argument '%.*s'", (int)n, s);
  return buf;
}

static moai_status_t bad_arg(ts_call_t *c, size_t i, const char *want) {
  char buf[64];
  return ts_err(c, MOAI_INVALID_ARGUMENT, "%s must be %s, not %s",
                slot_name(c, i, buf, sizeof(buf)), want,
                kind_name(i < c->n_slots ? c->a[i] : NULL));
}

moai_status_t ts_arg_int(ts_call_t *c, size_t i, bool has_def, int64_t def,
                         int64_t *out) {
  moai_ts_value_t *v = i < c->n_slots ? c->a[i] : NULL;
  if (ts_is_none(v)) {
    if (!has_def) return bad_arg(c, i, "an int");
    *out = def;
    return moai_ok_status();
  }
  if (!ts_value_int(v, out)) return bad_arg(c, i, "a compile-time int");
  return moai_ok_status();
}

moai_status_t ts_arg_float(ts_call_t *c, size_t i, bool has_def, double def,
                           double *out) {
  moai_ts_value_t *v = i < c->n_slots ? c->a[i] : NULL;
  if (ts_is_none(v)) {
    if (!has_def) return bad_arg(c, i, "a number");
    *out = def;
    return moai_ok_status();
  }
  if (!ts_value_float(v, out)) return bad_arg(c, i, "a compile-time number");
  return moai_ok_status();
}

moai_status_t ts_arg_bool(ts_call_t *c, size_t i, bool def, bool *out) {
  moai_ts_value_t *v = i < c->n_slots ? c->a[i] : NULL;
  int64_t x;
  if (ts_is_none(v)) {
    *out = def;
    return moai_ok_status();
  }
  if (!ts_value_int(v, &x)) return bad_arg(c, i, "a compile-time bool");
  *out = x != 0;
  return moai_ok_status();
}

moai_status_t ts_arg_ints(ts_call_t *c, size_t i, int64_t *out, size_t cap,
                          size_t single_repeat, size_t *out_n) {
  moai_ts_value_t *v = i < c->n_slots ? c->a[i] : NULL;
  int64_t x;
  if (single_repeat && ts_value_int(v, &x)) {
    if (single_repeat > cap) return bad_arg(c, i, "a shorter list");
    for (size_t k = 0; k < single_repeat; ++k) out[k] = x;
    *out_n = single_repeat;
    return moai_ok_status();
  }
  if (!v || (v->kind != MOAI_TS_LIST && v->kind != MOAI_TS_TUPLE)) {
    /* A known 1-D integer tensor serves as a list (a size computed from
     * NumToTensor values). */
    if (v && v->kind == MOAI_TS_TENSOR && v->konst && v->konst->rank == 1 &&
        v->konst->dtype == MOAI_PK_I64 && (size_t)v->konst->numel <= cap) {
      for (int64_t k = 0; k < v->konst->numel; ++k) out[k] = ts_k_geti(v->konst, k);
      *out_n = (size_t)v->konst->numel;
      return moai_ok_status();
    }
    return bad_arg(c, i, "a list of ints");
  }
  if (v->len > cap) {
    char buf[64];
    return ts_err(c, MOAI_UNIMPLEMENTED, "%s has %zu items, at most %zu are supported",
                  slot_name(c, i, buf, sizeof(buf)), v->len, cap);
  }
  for (size_t k = 0; k < v->len; ++k)
    if (!ts_value_int(v->items[k], &out[k]))
      return bad_arg(c, i, "a list of compile-time ints");
  *out_n = v->len;
  return moai_ok_status();
}

moai_status_t ts_arg_tensor(ts_call_t *c, size_t i, moai_ts_value_t **out) {
  moai_ts_value_t *v = i < c->n_slots ? c->a[i] : NULL;
  if (!ts_is_tensor(v)) return bad_arg(c, i, "a tensor");
  *out = v;
  return moai_ok_status();
}

/* ----------------------------------------------------------------- tensors */

int ts_dtype(const moai_ts_value_t *v) {
  if (!v) return -1;
  if (v->kind == MOAI_TS_INT) return MOAI_PK_I64;
  if (v->kind == MOAI_TS_FLOAT) return MOAI_PK_F64;
  if (v->kind == MOAI_TS_BOOL) return MOAI_PK_BOOL_DT;
  if (v->kind != MOAI_TS_TENSOR) return -1;
  if (mlirValueIsNull(v->tensor)) return v->konst ? (int)v->konst->dtype : -1;
  MlirType t = mlirValueGetType(v->tensor);
  if (!mlirTypeIsAShaped(t)) return -1;
  MlirType e = mlirShapedTypeGetElementType(t);
  if (mlirTypeIsAF32(e)) return MOAI_PK_F32;
  if (mlirTypeIsAF64(e)) return MOAI_PK_F64;
  if (mlirTypeIsAF16(e)) return MOAI_PK_F16;
  if (mlirTypeIsABF16(e)) return MOAI_PK_BF16;
  if (mlirTypeIsAInteger(e)) {
    unsigned w = mlirIntegerTypeGetWidth(e);
    bool u = mlirIntegerTypeIsUnsigned(e);
    if (w == 1) return MOAI_PK_BOOL_DT;
    if (w == 8) return u ? MOAI_PK_U8 : MOAI_PK_I8;
    if (w == 16 && !u) return MOAI_PK_I16;
    if (w == 32 && !u) return MOAI_PK_I32;
    if (w == 64 && !u) return MOAI_PK_I64;
  }
  return -1;
}

MlirType ts_elem_type(MlirContext ctx, int dtype) {
  switch (dtype) {
    case MOAI_PK_F32: return mlirF32TypeGet(ctx);
    case MOAI_PK_F64: return mlirF64TypeGet(ctx);
    case MOAI_PK_F16: return mlirF16TypeGet(ctx);
    case MOAI_PK_BF16: return mlirBF16TypeGet(ctx);
    case MOAI_PK_I64: return mlirIntegerTypeGet(ctx, 64);
    case MOAI_PK_I32: return mlirIntegerTypeGet(ctx, 32);
    case MOAI_PK_I16: return mlirIntegerTypeGet(ctx, 16);
    case MOAI_PK_I8: return mlirIntegerTypeGet(ctx, 8);
    case MOAI_PK_U8: return mlirIntegerTypeUnsignedGet(ctx, 8);
    case MOAI_PK_BOOL_DT: return mlirIntegerTypeGet(ctx, 1);
    default: return (MlirType){NULL};
  }
}

const char *ts_dtype_name(int dtype) {
  switch (dtype) {
    case MOAI_PK_F32: return "float32";
    case MOAI_PK_F64: return "float64";
    case MOAI_PK_F16: return "float16";
    case MOAI_PK_BF16: return "bfloat16";
    case MOAI_PK_I64: return "int64";
    case MOAI_PK_I32: return "int32";
    case MOAI_PK_I16: return "int16";
    case MOAI_PK_I8: return "int8";
    case MOAI_PK_U8: return "uint8";
    case MOAI_PK_BOOL_DT: return "bool";
    default: return "an unsupported dtype";
  }
}

bool ts_dtype_is_float(int dtype) {
  return dtype == MOAI_PK_F32 || dtype == MOAI_PK_F64 ||
         dtype == MOAI_PK_F16 || dtype == MOAI_PK_BF16;
}

bool ts_shape(const moai_ts_value_t *v, int *out_rank, int64_t *dims) {
  if (!v) return false;
  if (ts_is_number(v)) {
    *out_rank = 0;
    return true;
  }
  if (v->kind != MOAI_TS_TENSOR) return false;
  if (mlirValueIsNull(v->tensor)) {
    if (!v->konst) return false;
    *out_rank = v->konst->rank;
    memcpy(dims, v->konst->dims, (size_t)v->konst->rank * sizeof(int64_t));
    return true;
  }
  MlirType t = mlirValueGetType(v->tensor);
  if (!mlirTypeIsAShaped(t) || !mlirShapedTypeHasRank(t)) return false;
  int64_t rank = mlirShapedTypeGetRank(t);
  if (rank > MOAI_PK_MAX_RANK) return false;
  for (int64_t i = 0; i < rank; ++i) {
    dims[i] = mlirShapedTypeGetDimSize(t, (intptr_t)i);
    if (mlirShapedTypeIsDynamicSize(dims[i])) return false;
  }
  *out_rank = (int)rank;
  return true;
}

moai_status_t ts_need_shape(ts_call_t *c, const moai_ts_value_t *v,
                            int *out_rank, int64_t *dims) {
  if (!ts_shape(v, out_rank, dims))
    return ts_err(c, MOAI_UNIMPLEMENTED,
                  "needs the static shape of %s (give every input a shape)",
                  ts_is_tensor(v) ? "its tensor operand" : kind_name(v));
  return moai_ok_status();
}

moai_status_t ts_norm_dim(ts_call_t *c, int64_t dim, int rank, int64_t *out) {
  int64_t r = rank > 0 ? rank : 1;
  if (dim < -r || dim >= r)
    return ts_err(c, MOAI_INVALID_ARGUMENT, "dim %lld out of range for rank %d",
                  (long long)dim, rank);
  *out = dim < 0 ? dim + r : dim;
  return moai_ok_status();
}

int64_t ts_numel(int rank, const int64_t *dims) {
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) {
    if (dims[i] < 0) return -1;
    if (dims[i] && n > INT64_MAX / dims[i]) return -1;
    n *= dims[i];
  }
  return n;
}

/* -------------------------------------------------- compile-time tensors */

static size_t k_elem_size(int dtype) {
  return dtype == MOAI_PK_BOOL_DT ? 1 : dtype == MOAI_PK_F32 ? 4 : 8;
}

moai_ts_const_t *ts_konst_new(ts_call_t *c, int dtype, int rank,
                              const int64_t *dims) {
  if (dtype != MOAI_PK_I64 && dtype != MOAI_PK_F64 && dtype != MOAI_PK_F32 &&
      dtype != MOAI_PK_BOOL_DT)
    return NULL;
  if (rank < 0 || rank > MOAI_PK_MAX_RANK) return NULL;
  int64_t n = ts_numel(rank, dims);
  if (n < 0 || n > MOAI_TS_MAX_CONST_ELEMENTS) return NULL;
  moai_ts_const_t *k = moai_ts_arena_alloc(c->em->arena, sizeof(*k));
  if (!k) return NULL;
  k->dtype = (moai_pk_dtype_t)dtype;
  k->rank = rank;
  if (rank) memcpy(k->dims, dims, (size_t)rank * sizeof(int64_t));
  k->numel = n;
  k->data = moai_ts_arena_alloc(c->em->arena, (size_t)(n ? n : 1) * k_elem_size(dtype));
  return k->data ? k : NULL;
}

moai_ts_value_t *ts_konst_value(ts_call_t *c, moai_ts_const_t *k) {
  moai_ts_value_t *v = ts_new(c, MOAI_TS_TENSOR);
  if (v) v->konst = k;
  return v;
}

double ts_k_getf(const moai_ts_const_t *k, int64_t i) {
  switch (k->dtype) {
    case MOAI_PK_F32: return ((const float *)k->data)[i];
    case MOAI_PK_F64: return ((const double *)k->data)[i];
    case MOAI_PK_I64: return (double)((const int64_t *)k->data)[i];
    default: return ((const uint8_t *)k->data)[i] ? 1.0 : 0.0;
  }
}

int64_t ts_k_geti(const moai_ts_const_t *k, int64_t i) {
  switch (k->dtype) {
    case MOAI_PK_F32: return (int64_t)((const float *)k->data)[i];
    case MOAI_PK_F64: return (int64_t)((const double *)k->data)[i];
    case MOAI_PK_I64: return ((const int64_t *)k->data)[i];
    default: return ((const uint8_t *)k->data)[i] != 0;
  }
}

void ts_k_setf(moai_ts_const_t *k, int64_t i, double x) {
  switch (k->dtype) {
    case MOAI_PK_F32: ((float *)k->data)[i] = (float)x; break;
    case MOAI_PK_F64: ((double *)k->data)[i] = x; break;
    case MOAI_PK_I64:
      ((int64_t *)k->data)[i] = isfinite(x) && fabs(x) < 9.2e18 ? (int64_t)x : 0;
      break;
    default: ((uint8_t *)k->data)[i] = x != 0.0; break;
  }
}

void ts_k_seti(moai_ts_const_t *k, int64_t i, int64_t x) {
  switch (k->dtype) {
    case MOAI_PK_F32: ((float *)k->data)[i] = (float)x; break;
    case MOAI_PK_F64: ((double *)k->data)[i] = (double)x; break;
    case MOAI_PK_I64: ((int64_t *)k->data)[i] = x; break;
    default: ((uint8_t *)k->data)[i] = x != 0; break;
  }
}

moai_ts_const_t *ts_k_convert(ts_call_t *c, moai_ts_const_t *k, int dtype) {
  if ((int)k->dtype == dtype) return k;
  moai_ts_const_t *r = ts_konst_new(c, dtype, k->rank, k->dims);
  if (!r) return NULL;
  for (int64_t i = 0; i < k->numel; ++i) {
    if (ts_dtype_is_float(dtype) || ts_dtype_is_float((int)k->dtype))
      ts_k_setf(r, i, ts_k_getf(k, i));
    else
      ts_k_seti(r, i, ts_k_geti(k, i));
  }
  r->wrapped_number = k->wrapped_number;
  return r;
}

moai_ts_const_t *ts_known(ts_call_t *c, moai_ts_value_t *v) {
  if (!v) return NULL;
  if (v->kind == MOAI_TS_TENSOR) return v->konst;
  if (!ts_is_number(v)) return NULL;
  int dtype = ts_dtype(v);
  moai_ts_const_t *k = ts_konst_new(c, dtype, 0, NULL);
  if (!k) return NULL;
  if (v->kind == MOAI_TS_FLOAT) ts_k_setf(k, 0, v->f);
  else ts_k_seti(k, 0, v->kind == MOAI_TS_INT ? v->i : v->b);
  k->wrapped_number = true;
  return k;
}

/* -------------------------------------------------------- type promotion */

static int category(int dtype) {
  if (dtype == MOAI_PK_BOOL_DT) return 0;
  return ts_dtype_is_float(dtype) ? 2 : 1;
}

/* The promotion of two dtypes of one priority group (torch.promote_types
 * for the dtypes moai handles). */
static int promote2(int a, int b) {
  if (a < 0) return b;
  if (a == b) return a;
  int ca = category(a), cb = category(b);
  if (ca != cb) return ca > cb ? a : b;
  if (ca == 2) {
    if (a == MOAI_PK_F64 || b == MOAI_PK_F64) return MOAI_PK_F64;
    if (a == MOAI_PK_F32 || b == MOAI_PK_F32) return MOAI_PK_F32;
    return MOAI_PK_F32; /* f16 with bf16 */
  }
  /* integers: the wider (u8 with i8 gives i16 in torch) */
  static const int order[] = {MOAI_PK_I8, MOAI_PK_U8, MOAI_PK_I16, MOAI_PK_I32,
                              MOAI_PK_I64};
  int ra = 0, rb = 0;
  for (int i = 0; i < 5; ++i) {
    if (order[i] == a) ra = i;
    if (order[i] == b) rb = i;
  }
  if ((a == MOAI_PK_U8 && b == MOAI_PK_I8) || (a == MOAI_PK_I8 && b == MOAI_PK_U8))
    return MOAI_PK_I16;
  return ra > rb ? a : b;
}

moai_status_t ts_result_type(ts_call_t *c, moai_ts_value_t **vs, size_t n,
                             int *out) {
  int group[3] = {-1, -1, -1}; /* 0: dimensioned, 1: 0-dim, 2: numbers */
  for (size_t i = 0; i < n; ++i) {
    moai_ts_value_t *v = vs[i];
    if (ts_is_none(v)) continue;
    int dtype = ts_dtype(v);
    if (dtype < 0)
      return ts_err(c, MOAI_UNIMPLEMENTED, "operand %zu is %s", i + 1,
                    ts_is_tensor(v) ? "a tensor of an unsupported dtype"
                                    : kind_name(v));
    int g = 0, rank = 0;
    int64_t dims[MOAI_PK_MAX_RANK];
    if (ts_is_number(v) || (v->konst && v->konst->wrapped_number &&
                            mlirValueIsNull(v->tensor)))
      g = 2;
    else if (ts_shape(v, &rank, dims) && rank == 0)
      g = 1;
    group[g] = promote2(group[g], dtype);
  }
  int result = -1;
  for (int g = 0; g < 3; ++g) {
    if (group[g] < 0) continue;
    if (result < 0) {
      result = group[g];
    } else if (category(group[g]) > category(result)) {
      /* A higher category from a lower priority group: a 0-dim tensor
       * keeps its dtype; a number gives the default of its category. */
      result = g == 1 ? group[g]
                      : (category(group[g]) == 2 ? MOAI_PK_F32 : MOAI_PK_I64);
    }
  }
  if (result < 0)
    return ts_err(c, MOAI_INVALID_ARGUMENT, "has no tensor or number operand");
  *out = result;
  return moai_ok_status();
}

/* ---------------------------------------------------------------- builder */

MlirAttribute ts_attr_i64(ts_call_t *c, int64_t v) {
  return mlirIntegerAttrGet(mlirIntegerTypeGet(c->em->ctx, 64), v);
}
MlirAttribute ts_attr_f32(ts_call_t *c, double v) {
  return mlirFloatAttrDoubleGet(c->em->ctx, mlirF32TypeGet(c->em->ctx), v);
}
MlirAttribute ts_attr_str(ts_call_t *c, const char *s) {
  return mlirStringAttrGet(c->em->ctx, mlirStringRefCreateFromCString(s));
}
MlirAttribute ts_attr_ints(ts_call_t *c, const int64_t *v, size_t n) {
  return mlirDenseI64ArrayGet(c->em->ctx, (intptr_t)n, v);
}

static MlirNamedAttribute named(MlirContext ctx, const char *name,
                                MlirAttribute a) {
  return mlirNamedAttributeGet(
      mlirIdentifierGet(ctx, mlirStringRefCreateFromCString(name)), a);
}

/* Keeps the first error diagnostic of shape inference (its text only: the
 * location is the call's, which the status names). */
typedef struct diag_capture_t {
  char msg[512];
  bool have;
} diag_capture_t;

static void capture_text(MlirStringRef s, void *user) {
  diag_capture_t *d = user;
  size_t used = strlen(d->msg);
  size_t room = sizeof(d->msg) - 1 - used;
  size_t n = s.length < room ? s.length : room;
  memcpy(d->msg + used, s.data, n);
  d->msg[used + n] = 0;
}

static MlirLogicalResult capture(MlirDiagnostic diag, void *user) {
  diag_capture_t *d = user;
  if (mlirDiagnosticGetSeverity(diag) == MlirDiagnosticError && !d->have) {
    d->have = true;
    mlirDiagnosticPrint(diag, capture_text, d);
  }
  return mlirLogicalResultSuccess();
}

moai_status_t ts_build(ts_call_t *c, const char *mnemonic,
                       const MlirValue *values, size_t n_values,
                       const ts_attr_t *attrs, size_t n_attrs,
                       size_t n_results, MlirValue *results) {
  MlirContext ctx = c->em->ctx;
  const moai_op_def_t *def = moai_op_def_find(mnemonic, strlen(mnemonic));
  if (!def) return ts_err(c, MOAI_INTERNAL, "no moai.%s op", mnemonic);
  size_t n_defs = moai_op_def_operand_count(def);
  MlirValue operands[MOAI_OP_MAX_OPERANDS * MOAI_VARIADIC_SLOTS];
  int32_t counts[MOAI_OP_MAX_OPERANDS] = {0};
  size_t n_operands = 0, next = 0;
  for (size_t i = 0; i < n_defs; ++i) {
    size_t take = 1;
    if (def->operands[i].arity == MOAI_ARITY_VARIADIC)
      take = n_values - next - (n_defs - i - 1);
    for (size_t k = 0; k < take; ++k, ++next) {
      if (next >= n_values || mlirValueIsNull(values[next])) {
        if (def->operands[i].arity == MOAI_ARITY_OPTIONAL) continue;
        if (next >= n_values && def->operands[i].arity == MOAI_ARITY_VARIADIC)
          break;
        return ts_err(c, MOAI_INTERNAL, "moai.%s: operand '%s' missing",
                      mnemonic, def->operands[i].name);
      }
      if (n_operands >= sizeof(operands) / sizeof(operands[0]))
        return ts_err(c, MOAI_UNIMPLEMENTED, "moai.%s: too many operands",
                      mnemonic);
      operands[n_operands++] = values[next];
      ++counts[i];
    }
  }
  MlirNamedAttribute named_attrs[MOAI_OP_MAX_ATTRS + 2];
  size_t n_named = 0;
  for (size_t i = 0; i < n_attrs; ++i) {
    if (!moai_op_def_find_attr(def, attrs[i].name) ||
        mlirAttributeIsNull(attrs[i].value) || n_named >= MOAI_OP_MAX_ATTRS)
      return ts_err(c, MOAI_INTERNAL, "moai.%s: bad attribute '%s'", mnemonic,
                    attrs[i].name);
    named_attrs[n_named++] = named(ctx, attrs[i].name, attrs[i].value);
  }
  for (const moai_attr_def_t *a = def->attrs; a->name && a < def->attrs + MOAI_OP_MAX_ATTRS; ++a) {
    bool given = false;
    for (size_t i = 0; i < n_attrs; ++i) given |= strcmp(attrs[i].name, a->name) == 0;
    if (given || !a->default_text || strcmp(a->default_text, MOAI_ATTR_REQUIRED) == 0)
      continue;
    MlirAttribute d;
    if (!moai_attr_default(ctx, a, &d))
      return ts_err(c, MOAI_INTERNAL, "moai.%s: default of '%s' does not parse",
                    mnemonic, a->name);
    named_attrs[n_named++] = named(ctx, a->name, d);
  }
  /* Result entries: the first n_results (all of a variadic one). */
  size_t n_rdefs = moai_op_def_result_count(def);
  int32_t rcounts[MOAI_OP_MAX_RESULTS] = {0};
  bool rvariadic = n_rdefs == 1 && def->results[0].arity == MOAI_ARITY_VARIADIC;
  if (rvariadic) rcounts[0] = (int32_t)n_results;
  else
    for (size_t i = 0; i < n_rdefs && i < n_results; ++i) rcounts[i] = 1;
  int32_t sizes[MOAI_OP_MAX_OPERANDS * MOAI_VARIADIC_SLOTS];
  size_t n_sizes = 0;
  if (moai_op_def_needs_operand_segments(def)) {
    if (!moai_op_def_encode_segments(def, false, counts, sizes,
                                     sizeof(sizes) / sizeof(sizes[0]), &n_sizes))
      return ts_err(c, MOAI_UNIMPLEMENTED,
                    "moai.%s takes at most %d values per operand", mnemonic,
                    MOAI_VARIADIC_SLOTS);
    named_attrs[n_named++] = named(ctx, "operandSegmentSizes",
                                   mlirDenseI32ArrayGet(ctx, (intptr_t)n_sizes, sizes));
  }
  if (moai_op_def_needs_result_segments(def)) {
    if (!moai_op_def_encode_segments(def, true, rcounts, sizes,
                                     sizeof(sizes) / sizeof(sizes[0]), &n_sizes))
      return ts_err(c, MOAI_UNIMPLEMENTED,
                    "moai.%s has at most %d results", mnemonic,
                    MOAI_VARIADIC_SLOTS);
    named_attrs[n_named++] = named(ctx, "resultSegmentSizes",
                                   mlirDenseI32ArrayGet(ctx, (intptr_t)n_sizes, sizes));
  }
  MlirType types[MOAI_VARIADIC_SLOTS * MOAI_OP_MAX_RESULTS];
  if (n_results == 0 || n_results > sizeof(types) / sizeof(types[0]))
    return ts_err(c, MOAI_INTERNAL, "moai.%s: %zu results", mnemonic, n_results);
  MlirType elem = n_operands
                      ? mlirShapedTypeGetElementType(mlirValueGetType(operands[0]))
                      : mlirF32TypeGet(ctx);
  for (size_t i = 0; i < n_results; ++i) types[i] = mlirUnrankedTensorTypeGet(elem);
  char name[64];
  snprintf(name, sizeof(name), "moai.%s", mnemonic);
  MlirOperationState state =
      mlirOperationStateGet(mlirStringRefCreateFromCString(name), c->em->loc);
  mlirOperationStateAddOperands(&state, (intptr_t)n_operands, operands);
  mlirOperationStateAddResults(&state, (intptr_t)n_results, types);
  mlirOperationStateAddAttributes(&state, (intptr_t)n_named, named_attrs);
  MlirOperation op = mlirOperationCreate(&state);
  if (mlirOperationIsNull(op))
    return ts_err(c, MOAI_INTERNAL, "could not create moai.%s", mnemonic);
  mlirBlockAppendOwnedOperation(c->em->block, op);
  diag_capture_t cap = {{0}, false};
  MlirDiagnosticHandlerID id =
      mlirContextAttachDiagnosticHandler(ctx, capture, &cap, NULL);
  bool ok = moai_shape_infer_op(op);
  mlirContextDetachDiagnosticHandler(ctx, id);
  if (!ok || cap.have)
    return ts_err(c, MOAI_INVALID_ARGUMENT, "%s",
                  cap.have ? cap.msg : "shape inference failed");
  for (size_t i = 0; i < n_results; ++i)
    results[i] = mlirOperationGetResult(op, (intptr_t)i);
  return moai_ok_status();
}

moai_status_t ts_op(ts_call_t *c, const char *mnemonic, const MlirValue *ops,
                    size_t n_ops, const ts_attr_t *attrs, size_t n_attrs,
                    MlirValue *out) {
  return ts_build(c, mnemonic, ops, n_ops, attrs, n_attrs, 1, out);
}

moai_status_t ts_const_i64s(ts_call_t *c, const int64_t *v, size_t n,
                            MlirValue *out) {
  int64_t dims[1] = {(int64_t)n};
  moai_ts_const_t *k = ts_konst_new(c, MOAI_PK_I64, 1, dims);
  if (!k) return TS_OOM(c);
  memcpy(k->data, v, n * sizeof(int64_t));
  moai_ts_value_t *kv = ts_konst_value(c, k);
  if (!kv) return TS_OOM(c);
  return moai_ts_tensor_value(c->em, kv, out);
}

moai_status_t ts_op_ints(ts_call_t *c, const char *mnemonic, MlirValue x, const int64_t *v,
                         size_t n, MlirValue *out) {
  MlirValue ops[2] = {x, {NULL}};
  MOAI_RETURN_IF_ERROR(ts_const_i64s(c, v, n, &ops[1]));
  return ts_op(c, mnemonic, ops, 2, NULL, 0, out);
}

/* A 0-dim constant of any dtype moai computes in (via a DenseElementsAttr
 * of that element type). */
moai_status_t ts_const_scalar(ts_call_t *c, int dtype, double x,
                              MlirValue *out) {
  MlirContext ctx = c->em->ctx;
  MlirType elem = ts_elem_type(ctx, dtype);
  if (mlirTypeIsNull(elem))
    return ts_err(c, MOAI_UNIMPLEMENTED, "a constant of dtype %s",
                  ts_dtype_name(dtype));
  MlirType type = mlirRankedTensorTypeGet(0, NULL, elem, mlirAttributeGetNull());
  MlirAttribute a;
  if (ts_dtype_is_float(dtype))
    a = mlirDenseElementsAttrSplatGet(type, mlirFloatAttrDoubleGet(ctx, elem, x));
  else if (dtype == MOAI_PK_BOOL_DT)
    a = mlirDenseElementsAttrBoolSplatGet(type, x != 0.0);
  else
    a = mlirDenseElementsAttrSplatGet(type, mlirIntegerAttrGet(elem, (int64_t)x));
  MlirNamedAttribute attr = named(ctx, "value", a);
  MlirOperationState state = mlirOperationStateGet(
      mlirStringRefCreateFromCString("moai.constant"), c->em->loc);
  mlirOperationStateAddResults(&state, 1, &type);
  mlirOperationStateAddAttributes(&state, 1, &attr);
  MlirOperation op = mlirOperationCreate(&state);
  if (mlirOperationIsNull(op)) return ts_err(c, MOAI_INTERNAL, "constant");
  mlirBlockAppendOwnedOperation(c->em->block, op);
  *out = mlirOperationGetResult(op, 0);
  return moai_ok_status();
}

moai_status_t ts_cast(ts_call_t *c, MlirValue v, int dtype, MlirValue *out) {
  MlirType elem = ts_elem_type(c->em->ctx, dtype);
  if (mlirTypeIsNull(elem))
    return ts_err(c, MOAI_UNIMPLEMENTED, "cannot convert to %s",
                  ts_dtype_name(dtype));
  if (mlirTypeEqual(mlirShapedTypeGetElementType(mlirValueGetType(v)), elem)) {
    *out = v;
    return moai_ok_status();
  }
  ts_attr_t to = {"to", mlirTypeAttrGet(elem)};
  return ts_op(c, "cast", &v, 1, &to, 1, out);
}

moai_status_t ts_value(ts_call_t *c, moai_ts_value_t *v, MlirValue *out) {
  if (!ts_is_tensor(v))
    return ts_err(c, MOAI_INVALID_ARGUMENT, "expects a tensor, not %s",
                  kind_name(v));
  return moai_ts_tensor_value(c->em, v, out);
}

moai_status_t ts_value_as(ts_call_t *c, moai_ts_value_t *v, int dtype,
                          MlirValue *out) {
  if (ts_is_number(v)) {
    double x;
    ts_value_float(v, &x);
    if (v->kind == MOAI_TS_INT && !ts_dtype_is_float(dtype))
      return ts_const_scalar(c, dtype, (double)v->i, out);
    return ts_const_scalar(c, dtype, x, out);
  }
  if (!ts_is_tensor(v))
    return ts_err(c, MOAI_INVALID_ARGUMENT, "expects a tensor or number, not %s",
                  kind_name(v));
  if (mlirValueIsNull(v->tensor) && v->konst && ts_dtype(v) != dtype &&
      (dtype == MOAI_PK_F32 || dtype == MOAI_PK_F64 || dtype == MOAI_PK_I64 ||
       dtype == MOAI_PK_BOOL_DT)) {
    moai_ts_const_t *k = ts_k_convert(c, v->konst, dtype);
    moai_ts_value_t *kv = k ? ts_konst_value(c, k) : NULL;
    if (!kv) return TS_OOM(c);
    return moai_ts_tensor_value(c->em, kv, out);
  }
  MlirValue t;
  MOAI_RETURN_IF_ERROR(moai_ts_tensor_value(c->em, v, &t));
  return ts_cast(c, t, dtype, out);
}

bool ts_defined_by(MlirValue v, const char *name, MlirOperation *out_op) {
  if (!mlirValueIsAOpResult(v)) return false;
  MlirOperation op = mlirOpResultGetOwner(v);
  MlirIdentifier id = mlirOperationGetName(op);
  MlirStringRef s = mlirIdentifierStr(id);
  if (s.length != strlen(name) || memcmp(s.data, name, s.length) != 0)
    return false;
  if (out_op) *out_op = op;
  return true;
}

/* --------------------------------------------------------------- dispatch */

static const ts_op_entry_t *const kTables[] = {ts_ops_math, ts_ops_shape,
                                               ts_ops_nn};

static const ts_op_entry_t *find_entry(const char *fn) {
  char buf[128];
  if (strncmp(fn, "ops.aten.", 9) == 0) {
    snprintf(buf, sizeof(buf), "torch.%s", fn + 9);
    fn = buf;
  }
  for (size_t t = 0; t < sizeof(kTables) / sizeof(kTables[0]); ++t)
    for (const ts_op_entry_t *e = kTables[t]; e->name; ++e)
      if (strcmp(e->name, fn) == 0) return e;
  return NULL;
}

bool moai_ts_op_known(const char *fn) { return fn && find_entry(fn) != NULL; }

/* Slot index of `name` in a schema, or -1. */
static int schema_slot(const char *schema, const char *name, size_t *out_n) {
  int found = -1;
  size_t n = 0, len = strlen(name);
  for (const char *s = schema; *s;) {
    size_t k = strcspn(s, ",");
    if (k == len && strncmp(s, name, len) == 0) found = (int)n;
    ++n;
    s += k;
    if (*s == ',') ++s;
  }
  if (out_n) *out_n = n;
  return found;
}

moai_status_t moai_ts_call_op(moai_ts_emit_t *em, const char *fn,
                              moai_ts_value_t **args, size_t nargs,
                              const moai_ts_kwarg_t *kwargs, size_t nkwargs,
                              moai_ts_value_t **out) {
  ts_call_t c = {.em = em, .fn = fn ? fn : "?"};
  c.entry = fn ? find_entry(fn) : NULL;
  if (!c.entry)
    return moai_ts_emit_error(
        em, NULL, MOAI_UNIMPLEMENTED,
        "unsupported operator %s (see docs/torchscript.md for the list)", c.fn);
  size_t n_slots = 0;
  schema_slot(c.entry->schema, "", &n_slots);
  if (n_slots > TS_MAX_SLOTS) n_slots = TS_MAX_SLOTS;
  c.n_slots = n_slots;
  if (nargs > n_slots)
    return ts_err(&c, MOAI_INVALID_ARGUMENT,
                  "takes at most %zu arguments, %zu given", n_slots, nargs);
  for (size_t i = 0; i < nargs; ++i) c.a[i] = args[i];
  c.n_positional = nargs;
  for (size_t i = 0; i < nkwargs; ++i) {
    int slot = kwargs[i].name ? schema_slot(c.entry->schema, kwargs[i].name, NULL) : -1;
    if (slot < 0 || slot >= (int)n_slots)
      return ts_err(&c, MOAI_INVALID_ARGUMENT, "has no argument '%s'",
                    kwargs[i].name ? kwargs[i].name : "?");
    if ((size_t)slot < nargs)
      return ts_err(&c, MOAI_INVALID_ARGUMENT, "argument '%s' given twice",
                    kwargs[i].name);
    c.a[slot] = kwargs[i].value;
  }
  MOAI_RETURN_IF_ERROR(c.entry->fn(&c));
  if (!c.out) return ts_err(&c, MOAI_INTERNAL, "produced no value");
  *out = c.out;
  return moai_ok_status();
}

/* Every name moai_ts_call_op knows (ops.aten.X is torch.X), sorted; a unit
 * test checks it against the tables. */
static const char *const kOpNames[] = {
    "bool",
    "float",
    "int",
    "len",
    "ops.prim.NumToTensor",
    "torch.__and__",
    "torch.__or__",
    "torch._convolution",
    "torch.abs",
    "torch.adaptive_avg_pool2d",
    "torch.add",
    "torch.add_",
    "torch.addmm",
    "torch.alias",
    "torch.alpha_dropout",
    "torch.amax",
    "torch.arange",
    "torch.avg_pool2d",
    "torch.batch_norm",
    "torch.bitwise_and",
    "torch.bitwise_not",
    "torch.bitwise_or",
    "torch.bmm",
    "torch.cat",
    "torch.chunk",
    "torch.clamp",
    "torch.clamp_max",
    "torch.clamp_min",
    "torch.clip",
    "torch.clone",
    "torch.concat",
    "torch.contiguous",
    "torch.conv1d",
    "torch.conv2d",
    "torch.cos",
    "torch.cross_entropy_loss",
    "torch.cumsum",
    "torch.detach",
    "torch.device",
    "torch.dim",
    "torch.div",
    "torch.div_",
    "torch.dropout",
    "torch.embedding",
    "torch.eq",
    "torch.erf",
    "torch.exp",
    "torch.expand",
    "torch.expand_as",
    "torch.feature_dropout",
    "torch.flatten",
    "torch.floor_divide",
    "torch.full",
    "torch.full_like",
    "torch.ge",
    "torch.gelu",
    "torch.gt",
    "torch.index_select",
    "torch.layer_norm",
    "torch.le",
    "torch.leaky_relu",
    "torch.linear",
    "torch.log",
    "torch.log_softmax",
    "torch.logical_and",
    "torch.logical_not",
    "torch.logical_or",
    "torch.lt",
    "torch.masked_fill",
    "torch.masked_fill_",
    "torch.matmul",
    "torch.max",
    "torch.max_pool2d",
    "torch.maximum",
    "torch.mean",
    "torch.min",
    "torch.minimum",
    "torch.mm",
    "torch.mul",
    "torch.mul_",
    "torch.ne",
    "torch.neg",
    "torch.nll_loss",
    "torch.nll_loss2d",
    "torch.nll_loss_nd",
    "torch.numel",
    "torch.ones",
    "torch.ones_like",
    "torch.permute",
    "torch.pow",
    "torch.reciprocal",
    "torch.relu",
    "torch.remainder",
    "torch.reshape",
    "torch.reshape_as",
    "torch.rsqrt",
    "torch.rsub",
    "torch.scalar_tensor",
    "torch.select",
    "torch.sigmoid",
    "torch.silu",
    "torch.sin",
    "torch.size",
    "torch.slice",
    "torch.softmax",
    "torch.split",
    "torch.split_with_sizes",
    "torch.sqrt",
    "torch.square",
    "torch.squeeze",
    "torch.stack",
    "torch.sub",
    "torch.sub_",
    "torch.sum",
    "torch.t",
    "torch.tanh",
    "torch.tensor",
    "torch.to",
    "torch.transpose",
    "torch.tril",
    "torch.triu",
    "torch.true_divide",
    "torch.type_as",
    "torch.unsqueeze",
    "torch.view",
    "torch.view_as",
    "torch.where",
    "torch.zeros",
    "torch.zeros_like",
    NULL,
};

const char *const *moai_ts_op_names(void) { return kOpNames; }
