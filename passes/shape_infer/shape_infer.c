/* moai-shape-infer, the pass: walks each function in order, infers every
 * moai op's result types, folds ops whose operands are all constants into
 * moai.constant (so later shape rules see the values), checks that every
 * value is static when asked to, and brings each function's type in line
 * with what it returns. One forward walk suffices: a function body is in
 * topological order, so an op's operands are final when it is reached. */
#include "shape_infer/shape_infer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/dialect.h"
#include "ir/pass_util.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "mlir-c/Diagnostics.h"
#include "shape_infer/shape_infer_internal.h"

moai_shape_infer_options_t moai_shape_infer_options_default(void) {
  return (moai_shape_infer_options_t){.max_fold_elements = 1 << 16,
                                      .require_static = true};
}

static bool op_is(MlirOperation op, const char *name) {
  MlirStringRef n = mlirIdentifierStr(mlirOperationGetName(op));
  return n.length == strlen(name) && memcmp(n.data, name, n.length) == 0;
}

static void emit(MlirOperation op, const char *fmt, ...) MOAI_PRINTF(2, 3);

static void emit(MlirOperation op, const char *fmt, ...) {
  char msg[768];
  va_list args;
  va_start(args, fmt);
  vsnprintf(msg, sizeof(msg), fmt, args);
  va_end(args);
  mlirEmitError(mlirOperationGetLocation(op), msg);
}

static bool type_is_static(MlirType t) {
  si_type_t st;
  return si_type_from_mlir(t, &st) && si_shape_is_static(&st.shape);
}

/* ---- folding ------------------------------------------------------------- */

/* Replaces `op` by a moai.constant holding `value`, then erases constants
 * that only fed `op`. */
static void replace_by_constant(MlirOperation op, MlirAttribute value) {
  MlirContext ctx = mlirOperationGetContext(op);
  MlirOperationState state = mlirOperationStateGet(
      mlirStringRefCreateFromCString("moai.constant"),
      mlirOperationGetLocation(op));
  MlirType type = mlirAttributeGetType(value);
  MlirNamedAttribute attr = mlirNamedAttributeGet(
      mlirIdentifierGet(ctx, mlirStringRefCreateFromCString("value")), value);
  mlirOperationStateAddResults(&state, 1, &type);
  mlirOperationStateAddAttributes(&state, 1, &attr);
  MlirOperation constant = mlirOperationCreate(&state);
  mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(op), op, constant);
  mlirValueReplaceAllUsesOfWith(mlirOperationGetResult(op, 0),
                                mlirOperationGetResult(constant, 0));
  intptr_t n = mlirOperationGetNumOperands(op);
  MlirOperation *feeders = calloc(n ? (size_t)n : 1, sizeof(MlirOperation));
  intptr_t count = 0;
  for (intptr_t k = 0; feeders && k < n; ++k) {
    MlirValue v = mlirOperationGetOperand(op, k);
    if (!mlirAttributeIsNull(si_const_attr(v)))
      feeders[count++] = mlirOpResultGetOwner(v);
  }
  mlirOperationDestroy(op);
  for (intptr_t k = 0; k < count; ++k) {
    bool seen = false; /* the same constant may feed several operands */
    for (intptr_t j = 0; j < k; ++j)
      seen |= mlirOperationEqual(feeders[j], feeders[k]);
    if (!seen &&
        mlirOpOperandIsNull(mlirValueGetFirstUse(
            mlirOperationGetResult(feeders[k], 0))))
      mlirOperationDestroy(feeders[k]);
  }
  free(feeders);
}

/* ---- the static-shape check ------------------------------------------------ */

/* Whether a non-static value is reported elsewhere: at the moai op that
 * made it or at the function whose argument it is. */
static bool reported_elsewhere(MlirValue v) {
  if (mlirValueIsAOpResult(v)) return moai_op_is_moai(mlirOpResultGetOwner(v));
  MlirOperation parent = mlirBlockGetParentOperation(mlirBlockArgumentGetOwner(v));
  return !mlirOperationIsNull(parent) && op_is(parent, "func.func");
}

/* Reports each result of `op` that is not static, naming why; only ops
 * where the unknown shape starts are reported, not those it flows into. */
static bool check_static(MlirOperation op, int dependency) {
  si_op_t si;
  intptr_t n = mlirOperationGetNumResults(op);
  for (intptr_t i = 0; i < n; ++i) {
    MlirType t = mlirValueGetType(mlirOperationGetResult(op, i));
    if (type_is_static(t)) continue;
    char type_text[256];
    si_type_str(t, type_text, sizeof(type_text));
    if (!si_op_init(&si, op)) return false;
    /* An unknown operand shape reported elsewhere explains this one. */
    int slots = (int)moai_op_def_operand_count(si.def);
    for (int s = 0; s < slots; ++s)
      for (int k = 0; k < si.in_len[s]; ++k) {
        MlirValue v = si_operand_at(&si, s, k);
        if (!type_is_static(mlirValueGetType(v)) && reported_elsewhere(v))
          return true;
      }
    if (dependency >= 0) {
      emit(op, "%s: result %d has no static shape: its shape depends on the "
           "runtime value of operand '%s'", si.type_name, (int)i,
           si.def->operands[dependency].name);
      return false;
    }
    for (int s = 0; s < slots; ++s)
      for (int k = 0; k < si.in_len[s]; ++k) {
        if (type_is_static(mlirValueGetType(si_operand_at(&si, s, k))))
          continue;
        emit(op, "%s: result %d has no static shape: operand '%s' has none",
             si.type_name, (int)i, si.def->operands[s].name);
        return false;
      }
    emit(op, "%s: result %d has no static shape (%s)", si.type_name, (int)i,
         type_text);
    return false;
  }
  return true;
}

/* ---- functions ------------------------------------------------------------- */

typedef struct run_t {
  const moai_shape_infer_options_t *options;
  bool ok;
} run_t;

static bool walk_block(MlirBlock block, run_t *run);

static bool walk_regions(MlirOperation op, run_t *run) {
  for (intptr_t r = 0; r < mlirOperationGetNumRegions(op); ++r)
    for (MlirBlock b = mlirRegionGetFirstBlock(mlirOperationGetRegion(op, r));
         !mlirBlockIsNull(b); b = mlirBlockGetNextInRegion(b))
      if (!walk_block(b, run)) return false;
  return true;
}

/* Infers, folds and checks one moai op; false stops the function. */
static bool visit_moai_op(MlirOperation op, run_t *run) {
  int dependency;
  if (!si_infer(op, &dependency)) return false;
  int64_t max = run->options->max_fold_elements;
  MlirStringRef name = mlirIdentifierStr(mlirOperationGetName(op));
  if (max > 0 && si_fold_supported(name.data + 5, name.length - 5)) {
    MlirAttribute value;
    si_fold_t r = si_fold(op, max, &value);
    if (r == SI_FOLD_ERROR) return false;
    if (r == SI_FOLD_DONE) {
      replace_by_constant(op, value);
      return true;
    }
  }
  if (run->options->require_static && !check_static(op, dependency))
    run->ok = false; /* keep going: report every origin */
  return true;
}

static bool walk_block(MlirBlock block, run_t *run) {
  MlirOperation op = mlirBlockGetFirstOperation(block);
  while (!mlirOperationIsNull(op)) {
    MlirOperation next = mlirOperationGetNextInBlock(op);
    if (moai_op_is_moai(op)) {
      if (!visit_moai_op(op, run)) return false;
    } else if (!walk_regions(op, run)) {
      return false;
    }
    op = next;
  }
  return true;
}

static bool types_compatible(MlirType declared, MlirType actual) {
  si_type_t d, a;
  if (!si_type_from_mlir(declared, &d) || !si_type_from_mlir(actual, &a))
    return true; /* not tensors: the verifier's business */
  /* An unranked declaration is a placeholder (an importer's, for an
   * output without type information), its element type included. */
  if (d.shape.rank == SI_UNRANKED) return true;
  if (!mlirTypeEqual(d.elem, a.elem)) return false;
  if (a.shape.rank == SI_UNRANKED) return true;
  if (d.shape.rank != a.shape.rank) return false;
  for (int i = 0; i < d.shape.rank; ++i)
    if (d.shape.dims[i] != SI_DYN && a.shape.dims[i] != SI_DYN &&
        d.shape.dims[i] != a.shape.dims[i])
      return false;
  return true;
}

static MlirOperation find_return(MlirOperation func) {
  MlirRegion body = mlirOperationGetRegion(func, 0);
  for (MlirBlock b = mlirRegionGetFirstBlock(body); !mlirBlockIsNull(b);
       b = mlirBlockGetNextInRegion(b)) {
    MlirOperation t = mlirBlockGetTerminator(b);
    if (!mlirOperationIsNull(t) && op_is(t, "func.return")) return t;
  }
  return (MlirOperation){NULL};
}

/* Sets function_type's results to the returned values' types after checking
 * them against the declared ones. */
static bool update_function_type(MlirOperation func, bool require_static) {
  MlirAttribute attr = mlirOperationGetAttributeByName(
      func, mlirStringRefCreateFromCString("function_type"));
  MlirOperation ret = find_return(func);
  if (mlirAttributeIsNull(attr) || !mlirAttributeIsAType(attr) ||
      mlirOperationIsNull(ret))
    return true;
  MlirType fn = mlirTypeAttrGetValue(attr);
  intptr_t n = mlirOperationGetNumOperands(ret);
  if (!mlirTypeIsAFunction(fn) || mlirFunctionTypeGetNumResults(fn) != n)
    return true;
  intptr_t n_in = mlirFunctionTypeGetNumInputs(fn);
  MlirType *inputs = calloc(n_in ? (size_t)n_in : 1, sizeof(MlirType));
  MlirType *results = calloc(n ? (size_t)n : 1, sizeof(MlirType));
  bool ok = inputs && results;
  for (intptr_t i = 0; ok && i < n_in; ++i)
    inputs[i] = mlirFunctionTypeGetInput(fn, i);
  for (intptr_t i = 0; ok && i < n; ++i) {
    MlirValue v = mlirOperationGetOperand(ret, i);
    MlirType declared = mlirFunctionTypeGetResult(fn, i);
    results[i] = mlirValueGetType(v);
    char d[256], a[256];
    if (!types_compatible(declared, results[i])) {
      si_type_str(declared, d, sizeof(d));
      si_type_str(results[i], a, sizeof(a));
      emit(ret, "result %d of the function is declared %s but the returned "
           "value is %s", (int)i, d, a);
      ok = false;
    } else if (require_static && !type_is_static(results[i]) &&
               !reported_elsewhere(v)) {
      emit(ret, "returned value %d has no static shape (%s)", (int)i,
           si_type_str(results[i], a, sizeof(a)));
      ok = false;
    }
  }
  if (ok) {
    MlirType updated = mlirFunctionTypeGet(mlirOperationGetContext(func), n_in,
                                           inputs, n, results);
    mlirOperationSetAttributeByName(
        func, mlirStringRefCreateFromCString("function_type"),
        mlirTypeAttrGet(updated));
  }
  free(inputs);
  free(results);
  return ok;
}

static bool check_arguments(MlirOperation func) {
  MlirBlock entry = mlirRegionGetFirstBlock(mlirOperationGetRegion(func, 0));
  bool ok = true;
  for (intptr_t i = 0; !mlirBlockIsNull(entry) && i < mlirBlockGetNumArguments(entry); ++i) {
    MlirType t = mlirValueGetType(mlirBlockGetArgument(entry, i));
    si_type_t st;
    if (!si_type_from_mlir(t, &st) || si_shape_is_static(&st.shape)) continue;
    char text[256];
    emit(func, "argument %d has no static shape (%s)", (int)i,
         si_type_str(t, text, sizeof(text)));
    ok = false;
  }
  return ok;
}

static void run_function(MlirOperation func, run_t *run) {
  if (mlirOperationGetNumRegions(func) != 1 ||
      mlirBlockIsNull(mlirRegionGetFirstBlock(mlirOperationGetRegion(func, 0))))
    return; /* a declaration */
  if (run->options->require_static && !check_arguments(func)) run->ok = false;
  if (!walk_regions(func, run)) {
    run->ok = false;
    return;
  }
  if (!update_function_type(func, run->options->require_static))
    run->ok = false;
}

static void run_module(MlirOperation op, run_t *run) {
  if (op_is(op, "func.func")) {
    run_function(op, run);
    return;
  }
  for (intptr_t r = 0; r < mlirOperationGetNumRegions(op); ++r)
    for (MlirBlock b = mlirRegionGetFirstBlock(mlirOperationGetRegion(op, r));
         !mlirBlockIsNull(b); b = mlirBlockGetNextInRegion(b))
      for (MlirOperation child = mlirBlockGetFirstOperation(b);
           !mlirOperationIsNull(child);
           child = mlirOperationGetNextInBlock(child))
        run_module(child, run);
}

bool moai_shape_infer_run(MlirOperation root,
                          const moai_shape_infer_options_t *options) {
  moai_shape_infer_options_t defaults = moai_shape_infer_options_default();
  run_t run = {.options = options ? options : &defaults, .ok = true};
  if (mlirOperationIsNull(root)) return false;
  run_module(root, &run);
  return run.ok;
}

static void run_pass(MlirOperation op, MlirExternalPass pass,
                     const void *options) {
  if (!moai_shape_infer_run(op, options)) mlirExternalPassSignalFailure(pass);
}

static _Alignas(8) const char kTypeId = 0;

MlirPass moai_shape_infer_pass_create(const moai_shape_infer_options_t *options) {
  static const moai_external_pass_t def = {
      .type_id_storage = &kTypeId,
      .name = "MoaiShapeInfer",
      .argument = "moai-shape-infer",
      .description = "static shapes and dtypes",
      .op_name = "builtin.module",
      .run = run_pass,
  };
  return moai_external_pass_create(&def, options, sizeof(*options));
}
