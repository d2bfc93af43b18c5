/* Lowering a planned moai function to the device ABI's data: for each moai
 * op in order, one op descriptor (moai_op_desc_t + tensors + attribute
 * struct); the constant blob; the input, output and weight tables. The
 * per-op rules are in lower_ops.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/lower_internal.h"
#include "ir/diag.h"
#include "ir/dtype.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "mlir-c/Diagnostics.h"

/* ---- the function ---------------------------------------------------------- */

static MlirOperation find_func(MlirModule module) {
  MlirOperation first = {NULL};
  for (MlirOperation op = mlirBlockGetFirstOperation(mlirModuleGetBody(module));
       !mlirOperationIsNull(op); op = mlirOperationGetNextInBlock(op)) {
    if (!moai_lower_str_eq(moai_lower_op_name(op), "func.func")) continue;
    MlirAttribute sym = moai_lower_get_attr(op, "sym_name");
    if (!mlirAttributeIsNull(sym) && moai_lower_str_eq(mlirStringAttrGetValue(sym), "main"))
      return op;
    if (mlirOperationIsNull(first)) first = op;
  }
  return first;
}

static MlirAttribute dict_entry(MlirAttribute array, intptr_t i,
                                const char *name) {
  if (mlirAttributeIsNull(array) || !mlirAttributeIsAArray(array) ||
      i >= mlirArrayAttrGetNumElements(array))
    return mlirAttributeGetNull();
  MlirAttribute d = mlirArrayAttrGetElement(array, i);
  if (!mlirAttributeIsADictionary(d)) return mlirAttributeGetNull();
  return mlirDictionaryAttrGetElementByName(d,
                                            mlirStringRefCreateFromCString(name));
}

static int64_t func_i64(MlirOperation func, const char *name, int64_t dflt) {
  MlirAttribute a = moai_lower_get_attr(func, name);
  return !mlirAttributeIsNull(a) && mlirAttributeIsAInteger(a)
             ? mlirIntegerAttrGetValueInt(a)
             : dflt;
}

static bool io_name(moai_lower_t *L, MlirAttribute attrs, intptr_t i,
                    const char *kind, char **out) {
  MlirAttribute n = dict_entry(attrs, i, "moai.name");
  char fallback[32];
  MlirStringRef ref;
  if (!mlirAttributeIsNull(n) && mlirAttributeIsAString(n)) {
    ref = mlirStringAttrGetValue(n);
  } else {
    snprintf(fallback, sizeof(fallback), "%s_%ld", kind, (long)i);
    ref = mlirStringRefCreateFromCString(fallback);
  }
  *out = moai_lower_strdup(L, ref);
  return *out != NULL;
}

static bool lower_weight(moai_lower_t *L, MlirOperation op, size_t index) {
  moai_device_program_t *p = L->program;
  moai_device_weight_t *w = &p->weights[index];
  moai_lower_op_t o = {.op = op};
  moai_tensor_t t;
  uint64_t nbytes;
  MlirValue v = mlirOperationGetResult(op, 0);
  if (!moai_lower_describe(&o, v, &t, &nbytes)) return false;
  MlirAttribute name = moai_lower_get_attr(op, "name"), storage = moai_lower_get_attr(op, "storage"),
                file = moai_lower_get_attr(op, "file"), off = moai_lower_get_attr(op, "offset"),
                entry = moai_lower_get_attr(op, "entry"),
                len = moai_lower_get_attr(op, "length");
  if (mlirAttributeIsNull(name) || !mlirAttributeIsAString(name))
    return moai_lower_error(&o, "moai.weight without a name");
  w->name = moai_lower_strdup(L, mlirStringAttrGetValue(name));
  w->storage = moai_lower_strdup(L, !mlirAttributeIsNull(storage) && mlirAttributeIsAString(storage)
                              ? mlirStringAttrGetValue(storage)
                              : mlirStringRefCreateFromCString("absent"));
  if (!mlirAttributeIsNull(file) && mlirAttributeIsAString(file))
    w->file = moai_lower_strdup(L, mlirStringAttrGetValue(file));
  if (!mlirAttributeIsNull(entry) && mlirAttributeIsAString(entry))
    w->entry = moai_lower_strdup(L, mlirStringAttrGetValue(entry));
  w->file_offset = !mlirAttributeIsNull(off) && mlirAttributeIsAInteger(off)
                       ? mlirIntegerAttrGetValueInt(off) : -1;
  w->file_length = !mlirAttributeIsNull(len) && mlirAttributeIsAInteger(len)
                       ? mlirIntegerAttrGetValueInt(len) : -1;
  MlirAttribute trainable = moai_lower_get_attr(op, "trainable");
  w->trainable = !mlirAttributeIsNull(L->training) && !mlirAttributeIsNull(trainable) &&
                 mlirAttributeIsAInteger(trainable) && mlirIntegerAttrGetValueInt(trainable) != 0;
  int64_t shard[3];
  static const char *const shard_attrs[3] = {"shard_axis", "shard_index", "shard_count"};
  for (int k = 0; k < 3; ++k) {
    MlirAttribute a = moai_lower_get_attr(op, shard_attrs[k]);
    shard[k] = !mlirAttributeIsNull(a) && mlirAttributeIsAInteger(a)
                   ? mlirIntegerAttrGetValueInt(a) : 0;
  }
  if (shard[2] > 1 && (shard[0] < 0 || shard[0] >= t.rank || shard[1] < 0 ||
                       shard[1] >= shard[2] || shard[2] > INT32_MAX))
    return moai_lower_error(&o, "moai.weight: shard %lld of %lld along axis %lld does not fit "
                            "a rank-%d tensor", (long long)shard[1], (long long)shard[2],
                            (long long)shard[0], (int)t.rank);
  w->shard_axis = (int32_t)shard[0];
  w->shard_index = (int32_t)shard[1];
  w->shard_count = shard[2] > 1 ? (int32_t)shard[2] : 0;
  w->dtype = t.dtype;
  w->rank = t.rank;
  memcpy(w->dims, t.dims, sizeof(w->dims));
  w->nbytes = nbytes;
  if (!w->name || !w->storage) return false;
  return moai_ptr_map_put(L, &L->weight_index, op.ptr, index);
}

static bool is_used_weight(MlirOperation op) {
  return moai_lower_str_eq(moai_lower_op_name(op), "moai.weight") &&
         moai_lower_value_used(mlirOperationGetResult(op, 0));
}

/* The index of the weight named like `op` among the first n collected. */
static bool find_weight(const moai_device_program_t *p, size_t n, MlirOperation op,
                        size_t *out) {
  MlirAttribute name = moai_lower_get_attr(op, "name");
  if (mlirAttributeIsNull(name) || !mlirAttributeIsAString(name)) return false;
  MlirStringRef s = mlirStringAttrGetValue(name);
  for (size_t i = 0; i < n; ++i)
    if (p->weights[i].name && moai_lower_str_eq(s, p->weights[i].name)) {
      *out = i;
      return true;
    }
  return false;
}

/* Collects the weights the functions use (one entry per name, in order of
 * first use) and places them in the file. */
static bool lower_weights(moai_lower_t *L, const MlirBlock *bodies, size_t nbodies,
                          const moai_lower_options_t *options,
                          moai_status_t *out_status) {
  moai_device_program_t *p = L->program;
  size_t n = 0;
  for (size_t b = 0; b < nbodies; ++b)
    for (MlirOperation op = mlirBlockGetFirstOperation(bodies[b]);
         !mlirOperationIsNull(op); op = mlirOperationGetNextInBlock(op))
      if (is_used_weight(op)) ++n;
  if (n == 0) return true;
  void *w = NULL, *io = NULL;
  moai_status_t s = moai_allocator_malloc(L->allocator, n * sizeof(moai_device_weight_t), &w);
  if (!s) s = moai_allocator_malloc(L->allocator, n * sizeof(moai_device_io_t), &io);
  if (s) {
    moai_allocator_free(L->allocator, w);
    *out_status = s;
    return false;
  }
  memset(w, 0, n * sizeof(moai_device_weight_t));
  memset(io, 0, n * sizeof(moai_device_io_t));
  p->weights = w;
  p->weight_ios = io;
  size_t i = 0;
  for (size_t b = 0; b < nbodies; ++b)
    for (MlirOperation op = mlirBlockGetFirstOperation(bodies[b]);
         !mlirOperationIsNull(op); op = mlirOperationGetNextInBlock(op)) {
      if (!is_used_weight(op)) continue;
      size_t known;
      if (find_weight(p, i, op, &known)) {
        if (!moai_ptr_map_put(L, &L->weight_index, op.ptr, known)) return false;
        continue;
      }
      p->num_weights = (uint32_t)(i + 1);
      if (!lower_weight(L, op, i++)) return false;
    }
  n = i;
  s = options->layout(options->layout_user, p->weights, n, &p->weights_size);
  if (s) {
    *out_status = s;
    return false;
  }
  for (i = 0; i < n; ++i) {
    moai_device_weight_t *wt = &p->weights[i];
    if (wt->offset + wt->nbytes > p->weights_size) {
      *out_status = MOAI_STATUS(MOAI_INTERNAL,
                                "weight '%s' placed outside the weights file",
                                wt->name);
      return false;
    }
    moai_device_io_t *d = &p->weight_ios[i];
    d->name = moai_lower_strdup(L, mlirStringRefCreateFromCString(wt->name));
    if (!d->name) return false;
    memset(&d->tensor, 0, sizeof(d->tensor));
    d->tensor.region = MOAI_REGION_WEIGHTS;
    d->tensor.dtype = wt->dtype;
    d->tensor.offset = wt->offset;
    d->tensor.rank = wt->rank;
    memcpy(d->tensor.dims, wt->dims, sizeof(wt->dims));
  }
  return true;
}

static bool lower_inputs(moai_lower_t *L, MlirOperation func, MlirBlock body) {
  moai_device_program_t *p = L->program;
  intptr_t n = mlirBlockGetNumArguments(body);
  MlirAttribute arg_attrs = moai_lower_get_attr(func, "arg_attrs");
  void *mem = NULL, *io = NULL;
  moai_status_t s = moai_allocator_malloc(L->allocator, (size_t)(n + 1) * sizeof(int64_t), &mem);
  if (!s) s = moai_allocator_malloc(L->allocator, (size_t)(n + 1) * sizeof(moai_device_io_t), &io);
  if (s) {
    moai_status_free(s);
    moai_allocator_free(L->allocator, mem);
    L->oom = true;
    return false;
  }
  L->arg_offsets = mem;
  L->num_args = n;
  p->inputs = io;
  p->num_inputs = (uint32_t)n;
  for (intptr_t i = 0; i < n; ++i) {
    MlirAttribute off = dict_entry(arg_attrs, i, "moai.offset");
    L->arg_offsets[i] = !mlirAttributeIsNull(off) && mlirAttributeIsAInteger(off)
                            ? mlirIntegerAttrGetValueInt(off) : -1;
  }
  moai_lower_op_t o = {.op = func};
  for (intptr_t i = 0; i < n; ++i) {
    if (L->arg_offsets[i] < 0) {
      mlirEmitError(mlirOperationGetLocation(func),
                    "graph input has no memory plan offset (moai.offset); "
                    "run moai-memory-plan");
      return false;
    }
    if (!io_name(L, arg_attrs, i, "input", &p->inputs[i].name) ||
        !moai_lower_value(L, &o, mlirBlockGetArgument(body, i),
                          &p->inputs[i].tensor))
      return false;
  }
  return true;
}

static bool lower_outputs(moai_lower_t *L, MlirOperation func,
                          MlirOperation ret) {
  moai_device_program_t *p = L->program;
  intptr_t n = mlirOperationGetNumOperands(ret);
  void *io = NULL;
  moai_status_t s = moai_allocator_malloc(L->allocator, (size_t)(n + 1) * sizeof(moai_device_io_t), &io);
  if (s) {
    moai_status_free(s);
    L->oom = true;
    return false;
  }
  p->outputs = io;
  p->num_outputs = (uint32_t)n;
  MlirAttribute res_attrs = moai_lower_get_attr(func, "res_attrs");
  moai_lower_op_t o = {.op = ret};
  for (intptr_t i = 0; i < n; ++i)
    if (!io_name(L, res_attrs, i, "output", &p->outputs[i].name) ||
        !moai_lower_value(L, &o, mlirOperationGetOperand(ret, i),
                          &p->outputs[i].tensor))
      return false;
  return true;
}

static bool lower_op(moai_lower_t *L, MlirOperation op) {
  MlirStringRef name = moai_lower_op_name(op);
  moai_lower_op_t local;
  moai_lower_op_t *o = &local;
  memset(o, 0, offsetof(moai_lower_op_t, ins));
  o->op = op;
  o->attrs_size = 0;
  if (name.length < 5 || memcmp(name.data, "moai.", 5) != 0)
    return moai_lower_error(o, "op '%.*s' cannot be lowered by the backend",
                            (int)name.length, name.data);
  const char *mnemonic = name.data + 5;
  size_t mlen = name.length - 5;
  if (moai_lower_str_eq(name, "moai.weight") || moai_lower_str_eq(name, "moai.constant") ||
      moai_lower_str_eq(name, "moai.state"))
    return true;
  if (moai_lower_str_eq(name, "moai.shape"))
    return moai_lower_error(o, "moai.shape was not folded (its input's shape "
                               "is not static); the backend cannot run it");
  o->def = moai_op_def_find(mnemonic, mlen);
  const moai_lower_rule_t *rule = moai_lower_rule_find(mnemonic, mlen);
  if (!o->def || !rule || !rule->fn)
    return moai_lower_error(o, "op '%.*s' is not supported by the backend yet",
                            (int)name.length, name.data);
  if (!moai_lower_split_entries(o, false) || !moai_lower_split_entries(o, true)) return false;
  o->kernel = rule->kernel;
  L->program->lowered_ops++;
  return rule->fn(L, o);
}

static MlirBlock func_body(MlirOperation func) {
  return mlirRegionGetFirstBlock(mlirOperationGetRegion(func, 0));
}

/* Whether `op` writes training state in place (moai.accumulate, the
 * optimizer ops). */
static bool writes_state(MlirOperation op) {
  MlirStringRef name = moai_lower_op_name(op);
  const moai_op_def_t *def = moai_op_def_find(name.data, name.length);
  return def && (def->flags & MOAI_OP_FLAG_SIDE_EFFECT);
}

/* Pipeline stages: the forward entry reruns the step's first descriptors,
 * so none of them may write training state; it ends with the descriptors of
 * the op defining the sent output. */
static bool track_forward(moai_lower_t *L, MlirOperation op, bool before) {
  if (!L->has_send || L->forward_closed) return true;
  if (before) {
    if (!writes_state(op)) return true;
    moai_lower_op_t o = {.op = op};
    return moai_lower_error(&o, "moai.pipeline: this op writes training state but comes "
                                "before the op computing the sent output '%.*s'; the forward "
                                "entry would run it twice: compute '%.*s' first",
                            (int)L->send_name.length, L->send_name.data,
                            (int)L->send_name.length, L->send_name.data);
  }
  if (op.ptr == L->send_def.ptr) {
    L->program->num_forward_ops = L->program->num_ops;
    L->forward_closed = true;
  }
  return true;
}

/* Lowers the ops of `body` into the program's current descriptor list;
 * func.return gives the outputs when `outputs` (@main, whose first ops may
 * form a pipeline stage's forward). */
static bool lower_body(moai_lower_t *L, MlirOperation func, MlirBlock body, bool outputs) {
  bool ok = true;
  for (MlirOperation op = mlirBlockGetFirstOperation(body);
       ok && !mlirOperationIsNull(op); op = mlirOperationGetNextInBlock(op)) {
    if (moai_lower_str_eq(moai_lower_op_name(op), "func.return"))
      ok = !outputs || lower_outputs(L, func, op);
    else
      ok = (!outputs || track_forward(L, op, true)) && lower_op(L, op) &&
           (!outputs || track_forward(L, op, false));
  }
  return ok;
}

/* The module's moai.pipeline = {send = "h"}: which output of @main a
 * pipeline stage sends (docs/abi.md, ABI 3). Absent, or without `send`: no
 * forward entry. */
static moai_status_t lower_pipeline_attr(moai_lower_t *L, MlirModule module, MlirOperation func) {
  MlirAttribute pipe = mlirOperationGetAttributeByName(
      mlirModuleGetOperation(module), mlirStringRefCreateFromCString("moai.pipeline"));
  if (mlirAttributeIsNull(pipe)) return moai_ok_status();
  if (!mlirAttributeIsADictionary(pipe))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "the module attribute moai.pipeline must be a "
                                              "dictionary, e.g. {send = \"h\"}");
  MlirAttribute send = mlirDictionaryAttrGetElementByName(pipe,
                                                          mlirStringRefCreateFromCString("send"));
  if (mlirAttributeIsNull(send)) return moai_ok_status();
  if (!mlirAttributeIsAString(send))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "moai.pipeline: 'send' must be a string naming "
                                              "an output of @main (its moai.name)");
  MlirStringRef name = mlirStringAttrGetValue(send);
  if (!L->program->training)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "moai.pipeline: send = '%.*s', but the module "
                       "is not a training module (moai.training): only training plans have "
                       "a forward entry", (int)name.length, name.data);
  MlirOperation ret = mlirBlockGetTerminator(func_body(func));
  MlirAttribute res_attrs = moai_lower_get_attr(func, "res_attrs");
  intptr_t n = mlirOperationIsNull(ret) ? 0 : mlirOperationGetNumOperands(ret);
  for (intptr_t i = 0; i < n; ++i) {
    MlirAttribute a = dict_entry(res_attrs, i, "moai.name");
    if (mlirAttributeIsNull(a) || !mlirAttributeIsAString(a)) continue;
    MlirStringRef s = mlirStringAttrGetValue(a);
    if (s.length != name.length || memcmp(s.data, name.data, s.length) != 0) continue;
    MlirValue v = mlirOperationGetOperand(ret, i);
    L->has_send = true;
    L->send_name = name;
    L->send_def = mlirValueIsAOpResult(v) ? mlirOpResultGetOwner(v) : (MlirOperation){NULL};
    L->forward_closed = mlirOperationIsNull(L->send_def); /* a graph input: no ops */
    L->program->pipeline = true;
    L->program->forward_output = (uint32_t)i;
    return moai_ok_status();
  }
  return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "moai.pipeline: send = '%.*s' names no output "
                     "of @main (outputs are named by their moai.name result attribute)",
                     (int)name.length, name.data);
}

/* @update into program->update: the descriptor list is swapped out while
 * moai_lower_emit appends to it. */
static bool lower_update(moai_lower_t *L, MlirOperation update) {
  moai_device_program_t *p = L->program;
  moai_device_ops_t main_ops = {p->descs, p->descs_size, p->desc_offsets, p->num_ops};
  size_t caps[2] = {L->descs_capacity, L->offsets_capacity};
  p->descs = NULL;
  p->descs_size = 0;
  p->desc_offsets = NULL;
  p->num_ops = 0;
  L->descs_capacity = L->offsets_capacity = 0;
  bool ok = lower_body(L, update, func_body(update), false);
  p->update = (moai_device_ops_t){p->descs, p->descs_size, p->desc_offsets, p->num_ops};
  p->descs = main_ops.descs;
  p->descs_size = main_ops.descs_size;
  p->desc_offsets = main_ops.offsets;
  p->num_ops = main_ops.count;
  L->descs_capacity = caps[0];
  L->offsets_capacity = caps[1];
  return ok;
}

static moai_status_t lower_func(moai_lower_t *L, MlirOperation func, MlirOperation update,
                                const moai_lower_options_t *options) {
  moai_device_program_t *p = L->program;
  MlirBlock body = func_body(func);
  if (mlirBlockIsNull(body))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "@main has no body");
  MlirAttribute arena = moai_lower_get_attr(func, "moai.arena_size");
  if (mlirAttributeIsNull(arena))
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION,
                       "the module has no memory plan (no moai.arena_size on "
                       "@main); run the moai-memory-plan pass before code "
                       "generation");
  p->arena_size = (uint64_t)func_i64(func, "moai.arena_size", 0);
  p->live_lower_bound = (uint64_t)func_i64(func, "moai.live_lower_bound", 0);
  p->arena_alignment = (uint64_t)func_i64(func, "moai.arena_alignment", 64);
  MlirBlock bodies[2] = {body, {NULL}};
  size_t nbodies = 1;
  if (!mlirOperationIsNull(update)) {
    bodies[nbodies++] = func_body(update);
    if (mlirBlockIsNull(bodies[1]))
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "@update has no body");
    if (mlirAttributeIsNull(moai_lower_get_attr(update, "moai.arena_size")))
      return MOAI_STATUS(MOAI_FAILED_PRECONDITION,
                         "@update has no memory plan (no moai.arena_size); run the "
                         "moai-memory-plan pass before code generation");
    /* The step and the update run one after the other: one arena serves both. */
    uint64_t update_arena = (uint64_t)func_i64(update, "moai.arena_size", 0);
    if (update_arena > p->arena_size) p->arena_size = update_arena;
  }
  moai_status_t status = moai_ok_status();
  bool ok = lower_weights(L, bodies, nbodies, options, &status);
  if (ok && p->training) {
    for (size_t b = 0; ok && b < nbodies; ++b) ok = moai_lower_collect_state(L, bodies[b]);
    if (ok) moai_lower_place_persist(L);
  }
  ok = ok && lower_inputs(L, func, body) && lower_body(L, func, body, true);
  if (ok && !mlirOperationIsNull(update)) ok = lower_update(L, update);
  if (!ok && !status)
    status = MOAI_STATUS(MOAI_INTERNAL, "lowering to the device ABI failed");
  return status;
}

static MlirOperation find_named_func(MlirModule module, const char *name) {
  for (MlirOperation op = mlirBlockGetFirstOperation(mlirModuleGetBody(module));
       !mlirOperationIsNull(op); op = mlirOperationGetNextInBlock(op)) {
    if (!moai_lower_str_eq(moai_lower_op_name(op), "func.func")) continue;
    MlirAttribute sym = moai_lower_get_attr(op, "sym_name");
    if (!mlirAttributeIsNull(sym) && moai_lower_str_eq(mlirStringAttrGetValue(sym), name))
      return op;
  }
  return (MlirOperation){NULL};
}

moai_status_t moai_device_lower(MlirModule module,
                                const moai_lower_options_t *options,
                                moai_allocator_t allocator,
                                moai_device_program_t **out_program) {
  if (!options || !options->layout)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "moai_device_lower needs a "
                                              "weights layout function");
  MlirOperation func = find_func(module);
  if (mlirOperationIsNull(func))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "the module has no function");
  void *mem = NULL;
  MOAI_RETURN_IF_ERROR(
      moai_allocator_malloc(allocator, sizeof(moai_device_program_t), &mem));
  moai_device_program_t *p = mem;
  p->allocator = allocator;
  p->device = options->device;
  MlirContext ctx = mlirOperationGetContext(func);
  moai_lower_t L = {.allocator = allocator, .ctx = ctx, .func = func,
                    .program = p};
  MlirOperation update = {NULL};
  moai_status_t status = moai_ok_status();
  if (moai_module_is_training(module)) {
    p->training = true;
    L.training = mlirOperationGetAttributeByName(
        mlirModuleGetOperation(module), mlirStringRefCreateFromCString("moai.training"));
    update = find_named_func(module, "update");
    if (mlirOperationIsNull(update) || update.ptr == func.ptr)
      status = MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                           "a training module (moai.training) needs @main and @update; "
                           "run the moai-optimizer pass");
  }
  if (!status && !mlirBlockIsNull(func_body(func)))
    status = lower_pipeline_attr(&L, module, func);
  moai_diag_sink_t diag;
  moai_diag_attach(ctx, &diag, NULL);
  if (!status) status = lower_func(&L, func, update, options);
  /* A failing rule leaves a diagnostic (or ran out of memory): report that
   * rather than the generic failure. */
  if (status && (L.oom || diag.error_count) &&
      moai_status_code(status) == MOAI_INTERNAL) {
    moai_status_free(status);
    status = L.oom ? MOAI_STATUS(MOAI_OUT_OF_MEMORY,
                                 "out of memory lowering the model")
                   : moai_diag_take_status(&diag, MOAI_UNIMPLEMENTED,
                                           "lowering to the device ABI failed");
  }
  moai_diag_detach(&diag);
  moai_ptr_map_free(&L, &L.weight_index);
  moai_ptr_map_free(&L, &L.const_offset);
  moai_ptr_map_free(&L, &L.state_index);
  moai_allocator_free(allocator, L.arg_offsets);
  if (status) {
    moai_device_program_destroy(p);
    return status;
  }
  *out_program = p;
  return moai_ok_status();
}

static void free_ios(moai_allocator_t a, moai_device_io_t *io, uint32_t n) {
  if (!io) return;
  for (uint32_t i = 0; i < n; ++i) moai_allocator_free(a, io[i].name);
  moai_allocator_free(a, io);
}

void moai_device_program_destroy(moai_device_program_t *p) {
  if (!p) return;
  moai_allocator_t a = p->allocator;
  moai_allocator_free(a, p->descs);
  moai_allocator_free(a, p->desc_offsets);
  moai_allocator_free(a, p->const_data);
  free_ios(a, p->inputs, p->num_inputs);
  free_ios(a, p->outputs, p->num_outputs);
  free_ios(a, p->weight_ios, p->num_weights);
  if (p->weights) {
    for (uint32_t i = 0; i < p->num_weights; ++i) {
      moai_allocator_free(a, p->weights[i].name);
      moai_allocator_free(a, p->weights[i].storage);
      moai_allocator_free(a, p->weights[i].file);
      moai_allocator_free(a, p->weights[i].entry);
    }
    moai_allocator_free(a, p->weights);
  }
  moai_allocator_free(a, p->update.descs);
  moai_allocator_free(a, p->update.offsets);
  for (uint32_t i = 0; p->state && i < p->num_state; ++i) {
    moai_allocator_free(a, p->state[i].name);
    moai_allocator_free(a, p->state[i].param);
  }
  moai_allocator_free(a, p->state);
  moai_allocator_free(a, p);
}
