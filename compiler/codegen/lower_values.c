/* Where the tensors of a descriptor come from: values placed by the memory
 * plan (ARENA), weights (WEIGHTS), constants copied into the const blob
 * (CONST); constant operands read for folding into attributes; and the
 * split of an op's operands and results over its table entries. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/lower_internal.h"
#include "ir/dtype.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "mlir-c/Diagnostics.h"

/* Constants are placed at multiples of this in the CONST region: natural
 * alignment for every element type, and aligned vector loads. */
#define MOAI_CONST_ALIGN 16

/* ---- constants ------------------------------------------------------------ */

/* Reads element i of an integer or bool DenseElementsAttr. */
static int64_t read_int(MlirAttribute a, MlirType elem, intptr_t i) {
  if (mlirDenseElementsAttrIsSplat(a)) i = 0;
  unsigned w = mlirIntegerTypeGetWidth(elem);
  if (w == 1) return mlirDenseElementsAttrGetBoolValue(a, i);
  const unsigned char *raw = mlirDenseElementsAttrGetRawData(a);
  bool is_unsigned = mlirIntegerTypeIsUnsigned(elem);
  switch (w) {
    case 8: {
      uint8_t v = raw[i];
      return is_unsigned ? (int64_t)v : (int64_t)(int8_t)v;
    }
    case 16: {
      uint16_t v;
      memcpy(&v, raw + 2 * i, 2);
      return is_unsigned ? (int64_t)v : (int64_t)(int16_t)v;
    }
    case 32: {
      uint32_t v;
      memcpy(&v, raw + 4 * i, 4);
      return is_unsigned ? (int64_t)v : (int64_t)(int32_t)v;
    }
    default: {
      int64_t v;
      memcpy(&v, raw + 8 * i, 8);
      return v;
    }
  }
}

/* The DenseElementsAttr of a value defined by moai.constant, or null. */
static MlirAttribute constant_value(MlirValue v) {
  if (!mlirValueIsAOpResult(v)) return mlirAttributeGetNull();
  MlirOperation def = mlirOpResultGetOwner(v);
  if (!moai_lower_str_eq(moai_lower_op_name(def), "moai.constant")) return mlirAttributeGetNull();
  MlirAttribute a = moai_lower_get_attr(def, "value");
  if (mlirAttributeIsNull(a) || !mlirAttributeIsADenseElements(a))
    return mlirAttributeGetNull();
  return a;
}

bool moai_lower_const_ints(moai_lower_op_t *o, int entry, const char *what,
                           int64_t *buf, size_t cap, size_t *out_n,
                           bool *out_present) {
  MlirValue v = moai_lower_operand(o, entry);
  *out_n = 0;
  if (out_present) *out_present = false;
  if (mlirValueIsNull(v)) return true;
  MlirAttribute a = constant_value(v);
  if (mlirAttributeIsNull(a))
    return moai_lower_error(o, "'%s' must be a constant for the backend (it is "
                               "computed at run time)",
                            what);
  MlirType elem = mlirShapedTypeGetElementType(mlirAttributeGetType(a));
  if (!mlirTypeIsAInteger(elem))
    return moai_lower_error(o, "'%s' must hold integers", what);
  intptr_t n = mlirElementsAttrGetNumElements(a);
  if ((size_t)n > cap)
    return moai_lower_error(o, "'%s' has %ld values (at most %zu)", what,
                            (long)n, cap);
  for (intptr_t i = 0; i < n; ++i) buf[i] = read_int(a, elem, i);
  *out_n = (size_t)n;
  if (out_present) *out_present = true;
  return true;
}

bool moai_lower_operand_is_const(const moai_lower_op_t *o, int entry) {
  MlirValue v = moai_lower_operand(o, entry);
  return mlirValueIsNull(v) || !mlirAttributeIsNull(constant_value(v));
}

bool moai_lower_int_operand(moai_lower_op_t *o, int entry, const char *what,
                            bool scalar, int64_t *out_n) {
  MlirValue v = moai_lower_operand(o, entry);
  int32_t rank;
  int64_t dims[MOAI_MAX_RANK], n = 1;
  if (mlirValueIsNull(v) || !moai_lower_shape(o, v, &rank, dims)) return false;
  MlirType elem = mlirShapedTypeGetElementType(mlirValueGetType(v));
  if (!mlirTypeIsAInteger(elem) || (mlirIntegerTypeGetWidth(elem) != 32 &&
                                    mlirIntegerTypeGetWidth(elem) != 64))
    return moai_lower_error(o, "'%s' must hold int32 or int64 values", what);
  for (int32_t i = 0; i < rank; ++i) n *= dims[i];
  if (scalar && n != 1)
    return moai_lower_error(o, "'%s' must hold one value (it holds %lld)", what,
                            (long long)n);
  if (!scalar && rank > 1)
    return moai_lower_error(o, "'%s' must be 1-D (it has rank %d)", what,
                            (int)rank);
  *out_n = n;
  return true;
}

bool moai_lower_const_bool(moai_lower_op_t *o, int entry, const char *what,
                           bool fallback, bool *out) {
  int64_t v[1];
  size_t n = 0;
  bool present = false;
  if (!moai_lower_const_ints(o, entry, what, v, 1, &n, &present)) return false;
  if (!present) {
    *out = fallback;
    return true;
  }
  if (n != 1) return moai_lower_error(o, "'%s' must be a scalar", what);
  *out = v[0] != 0;
  return true;
}

/* Adds a moai.constant's bytes to the const blob (once per op); *out_offset
 * is where they start. Bools take one byte per element. */
static bool add_constant(moai_lower_t *L, moai_lower_op_t *o, MlirOperation def,
                         uint64_t nbytes, uint64_t *out_offset) {
  uint64_t offset;
  if (moai_ptr_map_get(&L->const_offset, def.ptr, &offset)) {
    *out_offset = offset;
    return true;
  }
  MlirAttribute a = moai_lower_get_attr(def, "value");
  if (mlirAttributeIsNull(a) || !mlirAttributeIsADenseElements(a))
    return moai_lower_error(o, "a constant operand has no dense value");
  moai_device_program_t *p = L->program;
  offset = (p->const_size + MOAI_CONST_ALIGN - 1) & ~(uint64_t)(MOAI_CONST_ALIGN - 1);
  if (!moai_lower_grow(L, (void **)&p->const_data, &L->const_capacity, offset + nbytes + 1, 1))
    return false;
  unsigned char *dst = p->const_data + offset;
  memset(p->const_data + p->const_size, 0, offset - p->const_size);
  MlirType elem = mlirShapedTypeGetElementType(mlirAttributeGetType(a));
  intptr_t n = mlirElementsAttrGetNumElements(a);
  if (mlirTypeIsAInteger(elem) && mlirIntegerTypeGetWidth(elem) == 1) {
    for (intptr_t i = 0; i < n; ++i)
      dst[i] = (unsigned char)read_int(a, elem, i);
  } else if (n > 0) {
    const unsigned char *raw = mlirDenseElementsAttrGetRawData(a);
    uint64_t es = nbytes / (uint64_t)n;
    if (mlirDenseElementsAttrIsSplat(a)) {
      for (intptr_t i = 0; i < n; ++i) memcpy(dst + (uint64_t)i * es, raw, es);
    } else {
      memcpy(dst, raw, nbytes);
    }
  }
  p->const_size = offset + nbytes;
  if (!moai_ptr_map_put(L, &L->const_offset, def.ptr, offset)) return false;
  *out_offset = offset;
  return true;
}

/* ---- values --------------------------------------------------------------- */

bool moai_lower_value(moai_lower_t *L, moai_lower_op_t *o, MlirValue v,
                      moai_tensor_t *out) {
  uint64_t nbytes = 0;
  if (!moai_lower_describe(o, v, out, &nbytes)) return false;
  moai_device_program_t *p = L->program;
  if (mlirValueIsABlockArgument(v)) {
    intptr_t i = mlirBlockArgumentGetArgNumber(v);
    if (i >= L->num_args || L->arg_offsets[i] < 0)
      return moai_lower_error(o, "graph input %ld has no memory plan offset",
                              (long)i);
    out->region = MOAI_REGION_ARENA;
    out->offset = (uint64_t)L->arg_offsets[i];
  } else {
    MlirOperation def = mlirOpResultGetOwner(v);
    MlirStringRef name = moai_lower_op_name(def);
    uint64_t index;
    if (moai_lower_str_eq(name, "moai.weight")) {
      if (!moai_ptr_map_get(&L->weight_index, def.ptr, &index))
        return moai_lower_error(o, "internal error: unplaced weight");
      /* WEIGHTS, or PERSIST for a trained weight of a training module */
      out->region = p->weight_ios[index].tensor.region;
      out->offset = p->weight_ios[index].tensor.offset;
      return true;
    }
    if (moai_lower_str_eq(name, "moai.state")) {
      if (!moai_ptr_map_get(&L->state_index, def.ptr, &index))
        return moai_lower_error(o, "internal error: unplaced moai.state");
      *out = p->state[index].tensor;
      return true;
    }
    if (moai_lower_str_eq(name, "moai.constant")) {
      out->region = MOAI_REGION_CONST;
      return add_constant(L, o, def, nbytes, &out->offset);
    }
    MlirAttribute offsets = moai_lower_get_attr(def, "moai.offsets");
    intptr_t r = mlirOpResultGetResultNumber(v);
    if (mlirAttributeIsNull(offsets) || !mlirAttributeIsADenseI64Array(offsets) ||
        r >= mlirDenseArrayGetNumElements(offsets))
      return moai_lower_error(o, "an operand's producer has no memory plan "
                                 "offset (moai.offsets); run moai-memory-plan");
    int64_t off = mlirDenseI64ArrayGetElement(offsets, r);
    if (off < 0) {
      memset(out, 0, sizeof(*out));
      out->region = MOAI_REGION_NONE;
      return true;
    }
    out->region = MOAI_REGION_ARENA;
    out->offset = (uint64_t)off;
  }
  if (out->offset + nbytes > p->arena_size)
    return moai_lower_error(o, "the memory plan places a value of %llu bytes "
                               "at %llu, outside the arena of %llu bytes",
                            (unsigned long long)nbytes,
                            (unsigned long long)out->offset,
                            (unsigned long long)p->arena_size);
  return true;
}

/* ---- operands and results of an op ---------------------------------------- */

MlirValue moai_lower_operand(const moai_lower_op_t *o, int entry) {
  if (entry >= o->n_in_entries || o->in_count[entry] == 0)
    return (MlirValue){NULL};
  return mlirOperationGetOperand(o->op, o->in_start[entry]);
}

MlirValue moai_lower_result(const moai_lower_op_t *o, int entry) {
  if (entry >= o->n_out_entries || o->out_count[entry] == 0)
    return (MlirValue){NULL};
  return mlirOperationGetResult(o->op, o->out_start[entry]);
}

static bool push(moai_lower_op_t *o, moai_tensor_t *list, uint32_t *n,
                 const moai_tensor_t *t) {
  if (*n >= MOAI_LOWER_MAX_TENSORS)
    return moai_lower_error(o, "too many operands for one kernel");
  list[(*n)++] = *t;
  return true;
}

static bool add_entry(moai_lower_t *L, moai_lower_op_t *o, int entry,
                      bool results) {
  int start = results ? o->out_start[entry] : o->in_start[entry];
  int count = results ? o->out_count[entry] : o->in_count[entry];
  moai_tensor_t *list = results ? o->outs : o->ins;
  uint32_t *n = results ? &o->n_out : &o->n_in;
  moai_tensor_t t;
  if (count == 0) {
    memset(&t, 0, sizeof(t));
    t.region = MOAI_REGION_NONE;
    return push(o, list, n, &t);
  }
  for (int k = 0; k < count; ++k) {
    MlirValue v = results ? mlirOperationGetResult(o->op, start + k)
                          : mlirOperationGetOperand(o->op, start + k);
    if (!moai_lower_value(L, o, v, &t) || !push(o, list, n, &t)) return false;
  }
  return true;
}

bool moai_lower_add_in(moai_lower_t *L, moai_lower_op_t *o, int entry) {
  return add_entry(L, o, entry, false);
}

bool moai_lower_add_out(moai_lower_t *L, moai_lower_op_t *o, int entry) {
  return add_entry(L, o, entry, true);
}

bool moai_lower_add_all_ins(moai_lower_t *L, moai_lower_op_t *o) {
  for (int e = 0; e < o->n_in_entries; ++e)
    if (!moai_lower_add_in(L, o, e)) return false;
  return true;
}

bool moai_lower_add_all_outs(moai_lower_t *L, moai_lower_op_t *o) {
  for (int e = 0; e < o->n_out_entries; ++e)
    if (!moai_lower_add_out(L, o, e)) return false;
  return true;
}

/* Splits the op's operands and results over the table's entries, through
 * the segment attributes where the op has them (ir/op_defs.h). */
bool moai_lower_split_entries(moai_lower_op_t *o, bool results) {
  const moai_op_def_t *def = o->def;
  size_t n = results ? moai_op_def_result_count(def)
                     : moai_op_def_operand_count(def);
  const moai_value_def_t *vals = results ? def->results : def->operands;
  intptr_t total = results ? mlirOperationGetNumResults(o->op)
                           : mlirOperationGetNumOperands(o->op);
  int *starts = results ? o->out_start : o->in_start;
  int *counts = results ? o->out_count : o->in_count;
  bool segmented = results ? moai_op_def_needs_result_segments(def)
                           : moai_op_def_needs_operand_segments(def);
  if (segmented) {
    MlirAttribute seg = moai_lower_get_attr(
        o->op, results ? "resultSegmentSizes" : "operandSegmentSizes");
    int32_t sizes[64];
    size_t slots = moai_op_def_irdl_slots(def, results);
    if (mlirAttributeIsNull(seg) || !mlirAttributeIsADenseI32Array(seg) ||
        (size_t)mlirDenseArrayGetNumElements(seg) != slots || slots > 64)
      return moai_lower_error(o, "malformed %s segment sizes",
                              results ? "result" : "operand");
    for (size_t i = 0; i < slots; ++i)
      sizes[i] = mlirDenseI32ArrayGetElement(seg, (intptr_t)i);
    if (!moai_op_def_decode_segments(def, results, sizes, slots, counts))
      return moai_lower_error(o, "malformed %s segment sizes",
                              results ? "result" : "operand");
  } else {
    intptr_t singles = 0;
    for (size_t i = 0; i < n; ++i)
      if (vals[i].arity == MOAI_ARITY_SINGLE) ++singles;
    for (size_t i = 0; i < n; ++i)
      counts[i] = vals[i].arity == MOAI_ARITY_SINGLE ? 1 : (int)(total - singles);
  }
  int at = 0;
  for (size_t i = 0; i < n; ++i) {
    starts[i] = at;
    at += counts[i];
  }
  if (at != total)
    return moai_lower_error(o, "%s count does not match the op's definition",
                            results ? "result" : "operand");
  if (results) o->n_out_entries = (int)n;
  else o->n_in_entries = (int)n;
  return true;
}

