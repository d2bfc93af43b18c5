/* Lowering of training modules (docs/training.md, "The backend"): the
 * persistent region (trainable weights, then moai.state tensors) and the
 * rules of moai.accumulate and the optimizer ops. */
#include <string.h>

#include "codegen/lower_internal.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"

#define PERSIST_ALIGN 64

bool moai_module_is_training(MlirModule module) {
  MlirAttribute a = mlirOperationGetAttributeByName(
      mlirModuleGetOperation(module), mlirStringRefCreateFromCString("moai.training"));
  return !mlirAttributeIsNull(a) && mlirAttributeIsADictionary(a);
}

static uint32_t role_of(MlirStringRef role) {
  static const struct {
    const char *name;
    uint32_t role;
  } kRoles[] = {{"grad", MOAI_STATE_GRAD},
                {"exp_avg", MOAI_STATE_EXP_AVG},
                {"exp_avg_sq", MOAI_STATE_EXP_AVG_SQ},
                {"momentum_buffer", MOAI_STATE_MOMENTUM},
                {"step", MOAI_STATE_STEP},
                {"loss_weight", MOAI_STATE_LOSS_WEIGHT}};
  for (size_t i = 0; i < sizeof(kRoles) / sizeof(kRoles[0]); ++i)
    if (moai_lower_str_eq(role, kRoles[i].name)) return kRoles[i].role;
  return 0;
}

static bool same_type(const moai_tensor_t *a, const moai_tensor_t *b) {
  if (a->dtype != b->dtype || a->rank != b->rank) return false;
  for (int32_t i = 0; i < a->rank; ++i)
    if (a->dims[i] != b->dims[i]) return false;
  return true;
}

/* One moai.state op: a new state tensor, or another handle of a known one. */
static bool collect_one(moai_lower_t *L, MlirOperation op) {
  moai_device_program_t *p = L->program;
  moai_lower_op_t o = {.op = op};
  MlirAttribute name = moai_lower_get_attr(op, "name"), role = moai_lower_get_attr(op, "role"),
                param = moai_lower_get_attr(op, "param");
  if (mlirAttributeIsNull(name) || !mlirAttributeIsAString(name) ||
      mlirAttributeIsNull(role) || !mlirAttributeIsAString(role))
    return moai_lower_error(&o, "moai.state needs string attributes 'name' and 'role'");
  MlirStringRef n = mlirStringAttrGetValue(name);
  uint32_t r = role_of(mlirStringAttrGetValue(role));
  if (!r)
    return moai_lower_error(&o, "moai.state '%.*s': unknown role '%.*s' (grad, exp_avg, "
                               "exp_avg_sq, momentum_buffer, step or loss_weight)",
                            (int)n.length, n.data, (int)mlirStringAttrGetValue(role).length,
                            mlirStringAttrGetValue(role).data);
  moai_tensor_t t;
  uint64_t nbytes;
  if (!moai_lower_describe(&o, mlirOperationGetResult(op, 0), &t, &nbytes)) return false;
  for (uint32_t i = 0; i < p->num_state; ++i) {
    if (!moai_lower_str_eq(n, p->state[i].name)) continue;
    if (!same_type(&t, &p->state[i].tensor))
      return moai_lower_error(&o, "moai.state '%.*s' has another type here than where it "
                                 "first appears", (int)n.length, n.data);
    return moai_ptr_map_put(L, &L->state_index, op.ptr, i);
  }
  size_t cap = p->num_state; /* grown one at a time: state tensors are few */
  void *mem = p->state;
  moai_status_t s = moai_allocator_realloc(L->allocator, (cap + 1) * sizeof(*p->state), &mem);
  if (s) {
    moai_status_free(s);
    L->oom = true;
    return false;
  }
  p->state = mem;
  moai_device_state_t *st = &p->state[p->num_state];
  memset(st, 0, sizeof(*st));
  p->num_state++;
  st->name = moai_lower_strdup(L, n);
  if (!mlirAttributeIsNull(param) && mlirAttributeIsAString(param))
    st->param = moai_lower_strdup(L, mlirStringAttrGetValue(param));
  st->role = r;
  st->tensor = t;
  st->tensor.region = MOAI_REGION_PERSIST;
  if (!st->name) return false;
  return moai_ptr_map_put(L, &L->state_index, op.ptr, p->num_state - 1);
}

bool moai_lower_collect_state(moai_lower_t *L, MlirBlock block) {
  for (MlirOperation op = mlirBlockGetFirstOperation(block); !mlirOperationIsNull(op);
       op = mlirOperationGetNextInBlock(op))
    if (moai_lower_str_eq(moai_lower_op_name(op), "moai.state") && !collect_one(L, op))
      return false;
  return true;
}

static uint64_t tensor_bytes(const moai_tensor_t *t) {
  uint64_t n = (uint64_t)moai_tensor_numel(t);
  switch (t->dtype) {
    case MOAI_ABI_F64: case MOAI_ABI_I64: case MOAI_ABI_U64: return n * 8;
    case MOAI_ABI_F32: case MOAI_ABI_I32: case MOAI_ABI_U32: return n * 4;
    case MOAI_ABI_F16: case MOAI_ABI_BF16: case MOAI_ABI_I16: case MOAI_ABI_U16: return n * 2;
    default: return n;
  }
}

static uint64_t place(uint64_t *at, uint64_t nbytes) {
  uint64_t offset = (*at + PERSIST_ALIGN - 1) & ~(uint64_t)(PERSIST_ALIGN - 1);
  *at = offset + nbytes;
  return offset;
}

void moai_lower_place_persist(moai_lower_t *L) {
  moai_device_program_t *p = L->program;
  uint64_t at = 0;
  for (uint32_t i = 0; i < p->num_weights; ++i) {
    if (!p->weights[i].trainable) continue;
    p->weight_ios[i].tensor.region = MOAI_REGION_PERSIST;
    p->weight_ios[i].tensor.offset = place(&at, p->weights[i].nbytes);
  }
  for (uint32_t i = 0; i < p->num_state; ++i)
    p->state[i].tensor.offset = place(&at, tensor_bytes(&p->state[i].tensor));
  p->persist_size = (at + PERSIST_ALIGN - 1) & ~(uint64_t)(PERSIST_ALIGN - 1);
}

/* ---- rules ------------------------------------------------------------------ */

/* target += value: an add whose first input and output are the target
 * (elementwise in place: element k is read before it is written). */
bool moai_lower_rule_accumulate(moai_lower_t *L, moai_lower_op_t *o) {
  o->kernel = MOAI_KERNEL_ADD;
  if (!moai_lower_add_in(L, o, 0) || !moai_lower_add_in(L, o, 1)) return false;
  const moai_tensor_t *target = &o->ins[0], *value = &o->ins[1];
  if (target->region != MOAI_REGION_PERSIST)
    return moai_lower_error(o, "moai.accumulate: the target must be a moai.state");
  bool fits = target->dtype == value->dtype && value->rank <= target->rank;
  for (int32_t i = 0; fits && i < value->rank; ++i) {
    int64_t d = value->dims[value->rank - 1 - i];
    fits = d == 1 || d == target->dims[target->rank - 1 - i];
  }
  if (!fits)
    return moai_lower_error(o, "moai.accumulate: the value does not broadcast to the "
                               "target's type");
  o->outs[0] = *target;
  o->n_out = 1;
  return moai_lower_emit(L, o);
}

/* A hyper-parameter. The op's attribute wins; where it is a float32
 * rendering of the module's moai.training value (f64), that value is used,
 * so lr = 1e-3 stays the double PyTorch uses. */
static bool hyper(moai_lower_t *L, moai_lower_op_t *o, const char *name, double *out) {
  if (!moai_lower_attr_float(o, name, out)) return false;
  if (mlirAttributeIsNull(L->training)) return true;
  MlirAttribute a = moai_lower_get_attr(o->op, name);
  if (!mlirAttributeIsNull(a) && mlirAttributeIsAFloat(a) &&
      mlirTypeIsAF64(mlirAttributeGetType(a)))
    return true; /* already exact */
  MlirAttribute t = mlirDictionaryAttrGetElementByName(L->training,
                                                       mlirStringRefCreateFromCString(name));
  if (!mlirAttributeIsNull(t) && mlirAttributeIsAFloat(t)) {
    double v = mlirFloatAttrGetValueDouble(t);
    if ((float)v == (float)*out) *out = v;
  }
  return true;
}

bool moai_lower_rule_optimizer(moai_lower_t *L, moai_lower_op_t *o) {
  bool adamw = o->kernel == MOAI_KERNEL_ADAMW;
  moai_attrs_optimizer_t a;
  memset(&a, 0, sizeof(a));
  MlirStringRef schedule;
  int64_t nesterov = 0;
  bool ok = hyper(L, o, "lr", &a.lr) && hyper(L, o, "weight_decay", &a.weight_decay) &&
            moai_lower_attr_string(o, "schedule", &schedule) &&
            moai_lower_attr_int(o, "warmup_steps", &a.warmup_steps, NULL) &&
            moai_lower_attr_int(o, "total_steps", &a.total_steps, NULL);
  if (ok && adamw)
    ok = hyper(L, o, "beta1", &a.beta1) && hyper(L, o, "beta2", &a.beta2) &&
         hyper(L, o, "eps", &a.eps);
  if (ok && !adamw)
    ok = hyper(L, o, "momentum", &a.momentum) && hyper(L, o, "dampening", &a.dampening) &&
         moai_lower_attr_int(o, "nesterov", &nesterov, NULL);
  if (!ok) return false;
  a.nesterov = nesterov != 0;
  if (moai_lower_str_eq(schedule, "constant")) a.schedule = MOAI_LR_CONSTANT;
  else if (moai_lower_str_eq(schedule, "cosine")) a.schedule = MOAI_LR_COSINE;
  else
    return moai_lower_error(o, "unknown learning-rate schedule '%.*s' (constant or cosine)",
                            (int)schedule.length, schedule.data);
  if (!moai_lower_add_all_ins(L, o)) return false;
  for (uint32_t i = 0; i < o->n_in; ++i)
    if (o->ins[i].region != MOAI_REGION_PERSIST && o->ins[i].region != MOAI_REGION_NONE)
      return moai_lower_error(o, "operand %u of the optimizer is not in the persistent "
                                 "region (a trainable moai.weight or a moai.state)", i);
  moai_lower_set_attrs(o, &a, sizeof(a));
  o->n_out = 0;
  return moai_lower_emit(L, o);
}

bool moai_lower_rule_optimizer_finish(moai_lower_t *L, moai_lower_op_t *o) {
  if (!moai_lower_add_all_ins(L, o)) return false;
  o->n_out = 0;
  return moai_lower_emit(L, o);
}

/* The bucket's accumulators as inputs (they must be gradient states, each in
 * one bucket only); the state descriptors remember the bucket, so the
 * runtime knows which tensors the hook's bucket number stands for. */
bool moai_lower_rule_grad_ready(moai_lower_t *L, moai_lower_op_t *o) {
  int64_t bucket = 0;
  if (!moai_lower_attr_int(o, "bucket", &bucket, NULL)) return false;
  if (bucket < 0 || bucket >= INT32_MAX)
    return moai_lower_error(o, "moai.grad_ready: bucket %lld out of range", (long long)bucket);
  if (!moai_lower_add_all_ins(L, o)) return false;
  if (o->n_in == 0) return moai_lower_error(o, "moai.grad_ready: no gradient accumulators");
  for (intptr_t i = 0; i < mlirOperationGetNumOperands(o->op); ++i) {
    MlirValue v = mlirOperationGetOperand(o->op, i);
    uint64_t index = 0;
    if (!mlirValueIsAOpResult(v) ||
        !moai_ptr_map_get(&L->state_index, mlirOpResultGetOwner(v).ptr, &index) ||
        L->program->state[index].role != MOAI_STATE_GRAD)
      return moai_lower_error(o, "moai.grad_ready: operand %lld is not a gradient accumulator "
                                 "(a moai.state with role \"grad\")", (long long)i);
    moai_device_state_t *st = &L->program->state[index];
    if (st->grad_bucket && st->grad_bucket != (uint32_t)bucket + 1)
      return moai_lower_error(o, "moai.grad_ready: '%s' is in bucket %u and in bucket %lld",
                              st->name, st->grad_bucket - 1, (long long)bucket);
    st->grad_bucket = (uint32_t)bucket + 1;
  }
  moai_attrs_grad_ready_t a = {.bucket = (int32_t)bucket};
  moai_lower_set_attrs(o, &a, sizeof(a));
  o->n_out = 0;
  return moai_lower_emit(L, o);
}
