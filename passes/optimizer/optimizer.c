/* moai-optimizer: see optimizer.h. */
#include "optimizer/optimizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff/autodiff_internal.h"
#include "ir/dialect.h"
#include "ir/pass_util.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "mlir-c/Diagnostics.h"
#include "optimizer/optimizer_internal.h"

static bool name_is(MlirOperation op, const char *name) {
  MlirStringRef s = mlirIdentifierStr(mlirOperationGetName(op));
  return s.length == strlen(name) && memcmp(s.data, name, s.length) == 0;
}

static bool str_eq(MlirStringRef s, const char *lit) {
  return s.length == strlen(lit) && memcmp(s.data, lit, s.length) == 0;
}

static MlirAttribute dict_get(MlirAttribute dict, const char *key) {
  if (mlirAttributeIsNull(dict)) return dict;
  return mlirDictionaryAttrGetElementByName(dict, mlirStringRefCreateFromCString(key));
}

/* The settings, with defaults. */
typedef struct settings_t {
  char optimizer[16];
  double lr, beta1, beta2, eps, weight_decay, momentum, dampening;
  int64_t nesterov, warmup_steps, total_steps, micro_batches;
  char schedule[16];
} settings_t;

static bool read_settings(MlirAttribute dict, MlirLocation loc, settings_t *s) {
  memset(s, 0, sizeof(*s));
  strcpy(s->optimizer, "adamw");
  strcpy(s->schedule, "constant");
  s->micro_batches = 1;
  MlirAttribute a = dict_get(dict, "optimizer");
  if (!mlirAttributeIsNull(a) && mlirAttributeIsAString(a)) {
    MlirStringRef v = mlirStringAttrGetValue(a);
    if (!str_eq(v, "adamw") && !str_eq(v, "sgd")) {
      char msg[256];
      snprintf(msg, sizeof(msg), "moai-optimizer: unknown optimizer '%.*s' (adamw or sgd)",
               (int)v.length, v.data);
      mlirEmitError(loc, msg);
      return false;
    }
    snprintf(s->optimizer, sizeof(s->optimizer), "%.*s", (int)v.length, v.data);
  }
  bool adamw = strcmp(s->optimizer, "adamw") == 0;
  s->lr = 1e-3;
  s->beta1 = 0.9;
  s->beta2 = 0.999;
  s->eps = 1e-8;
  s->weight_decay = adamw ? 0.01 : 0.0;
  struct { const char *key; double *dst; } reals[] = {
      {"lr", &s->lr},           {"beta1", &s->beta1},
      {"beta2", &s->beta2},     {"eps", &s->eps},
      {"weight_decay", &s->weight_decay}, {"momentum", &s->momentum},
      {"dampening", &s->dampening}};
  for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); ++i) {
    a = dict_get(dict, reals[i].key);
    if (mlirAttributeIsNull(a)) continue;
    if (mlirAttributeIsAFloat(a))
      *reals[i].dst = mlirFloatAttrGetValueDouble(a);
    else if (mlirAttributeIsAInteger(a))
      *reals[i].dst = (double)mlirIntegerAttrGetValueInt(a);
  }
  struct { const char *key; int64_t *dst; } ints[] = {
      {"nesterov", &s->nesterov}, {"warmup_steps", &s->warmup_steps},
      {"total_steps", &s->total_steps}, {"micro_batches", &s->micro_batches}};
  for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); ++i) {
    a = dict_get(dict, ints[i].key);
    if (!mlirAttributeIsNull(a) && mlirAttributeIsAInteger(a))
      *ints[i].dst = mlirIntegerAttrGetValueInt(a);
  }
  a = dict_get(dict, "schedule");
  if (!mlirAttributeIsNull(a) && mlirAttributeIsAString(a)) {
    MlirStringRef v = mlirStringAttrGetValue(a);
    if (!str_eq(v, "constant") && !str_eq(v, "cosine")) {
      char msg[256];
      snprintf(msg, sizeof(msg), "moai-optimizer: unknown learning-rate schedule '%.*s' "
               "(constant or cosine)", (int)v.length, v.data);
      mlirEmitError(loc, msg);
      return false;
    }
    snprintf(s->schedule, sizeof(s->schedule), "%.*s", (int)v.length, v.data);
  }
  const char *bad = NULL;
  if (!(s->lr >= 0)) bad = "lr must be >= 0";
  else if (!(s->beta1 >= 0 && s->beta1 < 1)) bad = "beta1 must be in [0, 1)";
  else if (!(s->beta2 >= 0 && s->beta2 < 1)) bad = "beta2 must be in [0, 1)";
  else if (!(s->eps >= 0)) bad = "eps must be >= 0";
  else if (!(s->weight_decay >= 0)) bad = "weight_decay must be >= 0";
  else if (!(s->momentum >= 0)) bad = "momentum must be >= 0";
  else if (s->nesterov && (s->momentum <= 0 || s->dampening != 0))
    bad = "nesterov needs a momentum above 0 and zero dampening (as torch.optim.SGD)";
  else if (s->micro_batches < 1) bad = "micro_batches must be >= 1";
  else if (strcmp(s->schedule, "cosine") == 0 && s->total_steps <= s->warmup_steps)
    bad = "the cosine schedule needs total_steps above warmup_steps";
  else if (s->warmup_steps < 0) bad = "warmup_steps must be >= 0";
  if (bad) {
    char msg[256];
    snprintf(msg, sizeof(msg), "moai-optimizer: %s", bad);
    mlirEmitError(loc, msg);
    return false;
  }
  return true;
}

static MlirAttribute f64(MlirContext ctx, double v) {
  return mlirFloatAttrDoubleGet(ctx, mlirF64TypeGet(ctx), v);
}

/* The completed moai.training dictionary. */
static MlirAttribute settings_dict(ad_t *ad, MlirOperation module, const settings_t *s) {
  MlirContext ctx = ad->ctx;
  MlirNamedAttribute e[20];
  int n = 0;
  e[n++] = ad_named(ad, "optimizer", ad_str_attr(ad, s->optimizer));
  e[n++] = ad_named(ad, "lr", f64(ctx, s->lr));
  e[n++] = ad_named(ad, "beta1", f64(ctx, s->beta1));
  e[n++] = ad_named(ad, "beta2", f64(ctx, s->beta2));
  e[n++] = ad_named(ad, "eps", f64(ctx, s->eps));
  e[n++] = ad_named(ad, "weight_decay", f64(ctx, s->weight_decay));
  e[n++] = ad_named(ad, "momentum", f64(ctx, s->momentum));
  e[n++] = ad_named(ad, "dampening", f64(ctx, s->dampening));
  e[n++] = ad_named(ad, "nesterov", ad_i64_attr(ad, s->nesterov));
  e[n++] = ad_named(ad, "schedule", ad_str_attr(ad, s->schedule));
  e[n++] = ad_named(ad, "warmup_steps", ad_i64_attr(ad, s->warmup_steps));
  e[n++] = ad_named(ad, "total_steps", ad_i64_attr(ad, s->total_steps));
  e[n++] = ad_named(ad, "micro_batches", ad_i64_attr(ad, s->micro_batches));
  const char *moved[][2] = {{"moai.loss_weight_kind", "loss_weight_kind"},
                            {"moai.labels_input", "labels_input"},
                            {"moai.ignore_index", "ignore_index"}};
  for (int i = 0; i < 3; ++i) {
    MlirAttribute a = ad_attr(module, moved[i][0]);
    if (!mlirAttributeIsNull(a)) e[n++] = ad_named(ad, moved[i][1], a);
  }
  return mlirDictionaryAttrGet(ctx, n, e);
}


static MlirAttribute res_dict(MlirOperation func, intptr_t i) {
  MlirAttribute arr = ad_attr(func, "res_attrs");
  if (mlirAttributeIsNull(arr) || i >= mlirArrayAttrGetNumElements(arr)) return mlirAttributeGetNull();
  return mlirArrayAttrGetElement(arr, i);
}

static MlirValue state(ad_t *ad, const char *name, const char *role, MlirStringRef param,
                       MlirType type) {
  MlirNamedAttribute a[3];
  int n = 0;
  a[n++] = ad_named(ad, "name", ad_str_attr(ad, name));
  a[n++] = ad_named(ad, "role", ad_str_attr(ad, role));
  if (param.length) a[n++] = ad_named(ad, "param", mlirStringAttrGet(ad->ctx, param));
  return ad_build(ad, "state", NULL, 0, 0, &type, 1, a, n, NULL);
}

static void side_effect(ad_t *ad, const char *op, const MlirValue *in, int n_in,
                        const MlirNamedAttribute *attrs, int n_attrs) {
  ad_build(ad, op, in, n_in, 0, NULL, 0, attrs, n_attrs, NULL);
}

/* ZeRO-1 ownership of the n weight gradients (results gidx[i] of @main's
 * return `ret`): longest-processing-time order (largest first, ties in
 * result order) to the least-loaded data-parallel rank (ties: the lowest),
 * the same on every rank. Fills owned[i] for this rank; returns whether the
 * state is sharded at all (all owned otherwise). */
static bool zero_ownership(MlirOperation module, ad_t *ad, MlirOperation ret,
                           const intptr_t *gidx, intptr_t n, bool stateful, bool *owned) {
  MlirAttribute par = ad_attr(module, "moai.parallel"), dev = ad_attr(module, "moai.device");
  for (intptr_t i = 0; i < n; ++i) owned[i] = true;
  if (mlirAttributeIsNull(par) || mlirAttributeIsNull(dev) || !stateful) return false;
  MlirAttribute z = dict_get(par, "zero"), dp = dict_get(par, "dp"), d = dict_get(dev, "dp");
  if (mlirAttributeIsNull(z) || mlirAttributeIsNull(dp) || mlirAttributeIsNull(d) ||
      mlirIntegerAttrGetValueInt(z) < 1 || mlirIntegerAttrGetValueInt(dp) < 2)
    return false;
  int64_t ranks = mlirIntegerAttrGetValueInt(dp), me = mlirIntegerAttrGetValueInt(d);
  int64_t *load = calloc((size_t)ranks, sizeof(*load));
  intptr_t *order = calloc(n ? (size_t)n : 1, sizeof(*order));
  int64_t *size = calloc(n ? (size_t)n : 1, sizeof(*size));
  if (!load || !order || !size) {
    free(load);
    free(order);
    free(size);
    ad->oom = true;
    return false;
  }
  for (intptr_t i = 0; i < n; ++i) {
    order[i] = i;
    size[i] = ad_numel(mlirOperationGetOperand(ret, gidx[i]));
  }
  for (intptr_t i = 1; i < n; ++i) /* insertion sort: stable, n is the weight count */
    for (intptr_t j = i; j > 0 && size[order[j]] > size[order[j - 1]]; --j) {
      intptr_t t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
  for (intptr_t k = 0; k < n; ++k) {
    int64_t best = 0;
    for (int64_t r = 1; r < ranks; ++r)
      if (load[r] < load[best]) best = r;
    load[best] += size[order[k]];
    owned[order[k]] = best == me;
  }
  free(load);
  free(order);
  free(size);
  return true;
}

bool moai_optimizer_run(MlirOperation module) {
  MlirContext ctx = mlirOperationGetContext(module);
  MlirLocation mloc = mlirOperationGetLocation(module);
  MlirOperation main = moai_module_func(module, "main");
  if (mlirOperationIsNull(main)) {
    mlirEmitError(mloc, "moai-optimizer: the module has no func.func @main");
    return false;
  }
  if (!mlirOperationIsNull(moai_module_func(module, "update"))) {
    mlirEmitError(mloc, "moai-optimizer: the module already has an @update function");
    return false;
  }
  MlirLocation floc = mlirOperationGetLocation(main);
  MlirAttribute dict = ad_attr(module, "moai.training");
  settings_t s;
  if (!read_settings(dict, floc, &s)) return false;

  MlirBlock block = mlirRegionGetFirstBlock(mlirOperationGetRegion(main, 0));
  MlirOperation ret = mlirBlockGetTerminator(block);
  intptr_t n_res = mlirOperationGetNumOperands(ret);
  /* Check the autodiff form. */
  bool form = n_res >= 2;
  for (intptr_t i = 2; form && i < n_res; ++i) {
    MlirAttribute d = res_dict(main, i);
    form = !mlirAttributeIsNull(d) && mlirAttributeIsADictionary(d) &&
           (!mlirAttributeIsNull(dict_get(d, "moai.grad_of")) || i == n_res - 1);
  }
  if (!form) {
    mlirEmitError(floc, "moai-optimizer: @main is not the output of moai-autodiff (loss, "
                        "loss_weight, gradients); run moai-autodiff first");
    return false;
  }

  ad_t ad = {.ctx = ctx, .block = block, .anchor = ret, .loc = floc};
  MlirValue loss = mlirOperationGetOperand(ret, 0);
  MlirValue w = mlirOperationGetOperand(ret, 1);
  MlirType f32 = mlirF32TypeGet(ctx);
  MlirType scalar_f32 = ad_tensor_type(&ad, 0, NULL, f32);
  MlirType scalar_i64 = ad_tensor_type(&ad, 0, NULL, mlirIntegerTypeGet(ctx, 64));
  MlirStringRef none = mlirStringRefCreate(NULL, 0);

  /* @main: accumulate. */
  /* Results after (loss, loss_weight): weight gradients (accumulated and
   * applied), and kept results: gradients of graph inputs and a pipeline
   * stage's activation output (moai-partition), which stay outputs. */
  intptr_t n_grads = 0, n_kept = 0;
  MlirStringRef *names = calloc((size_t)n_res, sizeof(*names));
  intptr_t *gidx = calloc((size_t)n_res, sizeof(*gidx)), *kidx = calloc((size_t)n_res, sizeof(*kidx));
  if (!names || !gidx || !kidx) {
    free(names);
    free(gidx);
    free(kidx);
    mlirEmitError(floc, "moai-optimizer: out of memory");
    return false;
  }
  for (intptr_t i = 2; i < n_res; ++i) {
    MlirAttribute of = dict_get(res_dict(main, i), "moai.grad_of");
    bool kept = mlirAttributeIsNull(of);
    MlirAttribute args = ad_attr(main, "arg_attrs");
    for (intptr_t a = 0; !kept && !mlirAttributeIsNull(args) && a < mlirArrayAttrGetNumElements(args); ++a) {
      MlirAttribute n = dict_get(mlirArrayAttrGetElement(args, a), "moai.name");
      kept = !mlirAttributeIsNull(n) && mlirAttributeEqual(n, of);
    }
    if (kept) kidx[n_kept++] = i;
    else gidx[n_grads++] = i;
  }
  MlirOperation floor = opt_pipeline_floor(module, main, ret);
  for (intptr_t i = 0; i < n_grads; ++i) {
    MlirValue g = mlirOperationGetOperand(ret, gidx[i]);
    ad.anchor = opt_accumulate_anchor(g, floor, ret); /* right after g's op */
    names[i] = mlirStringAttrGetValue(dict_get(res_dict(main, gidx[i]), "moai.grad_of"));
    if (!mlirTypeEqual(ad_elem(g), f32)) {
      char msg[512];
      snprintf(msg, sizeof(msg), "moai-optimizer: weight '%.*s' is not float32; training "
               "supports float32 weights", (int)names[i].length, names[i].data);
      mlirEmitError(floc, msg);
      free(names);
      free(gidx);
      free(kidx);
      return false;
    }
    char buf[600];
    snprintf(buf, sizeof(buf), "grad.%.*s", (int)names[i].length, names[i].data);
    MlirValue acc = state(&ad, buf, "grad", names[i], mlirValueGetType(g));
    MlirValue in[2] = {acc, g};
    side_effect(&ad, "accumulate", in, 2, NULL, 0);
  }
  ad.anchor = ret;
  if (!ad.failed) opt_insert_grad_ready(&ad, module, block);
  MlirValue wf = w;
  if (!mlirTypeEqual(ad_elem(w), f32)) wf = ad_cast(&ad, w, f32);
  wf = ad_reshape(&ad, wf, 0, NULL);
  MlirValue lw = state(&ad, "optimizer.loss_weight", "loss_weight", none, scalar_f32);
  MlirValue acc_in[2] = {lw, wf};
  side_effect(&ad, "accumulate", acc_in, 2, NULL, 0);
  if (ad.failed) {
    free(names);
    free(gidx);
    free(kidx);
    return false;
  }
  /* The new return: (loss, loss_weight, kept results). */
  {
    MlirValue res[2 + 64];
    MlirType out_types[2 + 64];
    MlirAttribute rd[2 + 64];
    if (n_kept > 64) n_kept = 64; /* a pipeline stage keeps two */
    res[0] = loss;
    res[1] = w;
    rd[0] = res_dict(main, 0);
    rd[1] = res_dict(main, 1);
    for (intptr_t i = 0; i < n_kept; ++i) {
      res[2 + i] = mlirOperationGetOperand(ret, kidx[i]);
      rd[2 + i] = res_dict(main, kidx[i]);
    }
    for (intptr_t i = 0; i < 2 + n_kept; ++i) out_types[i] = mlirValueGetType(res[i]);
    MlirOperationState st = mlirOperationStateGet(mlirStringRefCreateFromCString("func.return"),
                                                  mlirOperationGetLocation(ret));
    mlirOperationStateAddOperands(&st, 2 + n_kept, res);
    MlirOperation nret = mlirOperationCreate(&st);
    mlirBlockInsertOwnedOperationBefore(block, ret, nret);
    mlirOperationDestroy(ret);
    MlirType ft = mlirTypeAttrGetValue(ad_attr(main, "function_type"));
    intptr_t n_in = mlirFunctionTypeGetNumInputs(ft);
    MlirType *in_types = calloc(n_in ? (size_t)n_in : 1, sizeof(*in_types));
    for (intptr_t i = 0; in_types && i < n_in; ++i) in_types[i] = mlirFunctionTypeGetInput(ft, i);
    MlirType nft = mlirFunctionTypeGet(ctx, n_in, in_types, 2 + n_kept, out_types);
    free(in_types);
    mlirOperationSetAttributeByName(main, mlirStringRefCreateFromCString("function_type"),
                                    mlirTypeAttrGet(nft));
    mlirOperationSetAttributeByName(main, mlirStringRefCreateFromCString("res_attrs"),
                                    mlirArrayAttrGet(ctx, 2 + n_kept, rd));
  }

  /* @update. */
  MlirRegion region = mlirRegionCreate();
  MlirBlock ublock = mlirBlockCreate(0, NULL, NULL);
  mlirRegionAppendOwnedBlock(region, ublock);
  MlirType uft = mlirFunctionTypeGet(ctx, 0, NULL, 0, NULL);
  MlirNamedAttribute fattrs[2] = {
      ad_named(&ad, "sym_name", ad_str_attr(&ad, "update")),
      ad_named(&ad, "function_type", mlirTypeAttrGet(uft)),
  };
  MlirOperationState fst = mlirOperationStateGet(mlirStringRefCreateFromCString("func.func"), floc);
  mlirOperationStateAddAttributes(&fst, 2, fattrs);
  mlirOperationStateAddOwnedRegions(&fst, 1, &region);
  MlirOperation update = mlirOperationCreate(&fst);
  MlirBlock mbody = mlirRegionGetFirstBlock(mlirOperationGetRegion(module, 0));
  mlirBlockInsertOwnedOperationAfter(mbody, main, update);
  MlirOperationState rst = mlirOperationStateGet(mlirStringRefCreateFromCString("func.return"), floc);
  MlirOperation uret = mlirOperationCreate(&rst);
  mlirBlockAppendOwnedOperation(ublock, uret);

  ad_t u = {.ctx = ctx, .block = ublock, .anchor = uret, .loc = floc};
  MlirValue step = state(&u, "optimizer.step", "step", none, scalar_i64);
  MlirValue lws = state(&u, "optimizer.loss_weight", "loss_weight", none, scalar_f32);
  bool adamw = strcmp(s.optimizer, "adamw") == 0;
  MlirNamedAttribute hyper[12];
  int nh = 0;
  hyper[nh++] = ad_named(&u, "lr", f64(ctx, s.lr));
  hyper[nh++] = ad_named(&u, "weight_decay", f64(ctx, s.weight_decay));
  hyper[nh++] = ad_named(&u, "schedule", ad_str_attr(&u, s.schedule));
  hyper[nh++] = ad_named(&u, "warmup_steps", ad_i64_attr(&u, s.warmup_steps));
  hyper[nh++] = ad_named(&u, "total_steps", ad_i64_attr(&u, s.total_steps));
  if (adamw) {
    hyper[nh++] = ad_named(&u, "beta1", f64(ctx, s.beta1));
    hyper[nh++] = ad_named(&u, "beta2", f64(ctx, s.beta2));
    hyper[nh++] = ad_named(&u, "eps", f64(ctx, s.eps));
  } else {
    hyper[nh++] = ad_named(&u, "momentum", f64(ctx, s.momentum));
    hyper[nh++] = ad_named(&u, "dampening", f64(ctx, s.dampening));
    hyper[nh++] = ad_named(&u, "nesterov", ad_i64_attr(&u, s.nesterov));
  }
  /* ZeRO-1 (Rajbhandari et al. 2020, "ZeRO", stage 1): with moai.parallel
   * zero >= 1 over dp > 1 ranks, this data-parallel rank (moai.device dp)
   * keeps the optimizer state of, and updates, only the weights it owns;
   * moai-run then broadcasts each weight from its owner. A stateless
   * optimizer (SGD without momentum) has nothing to shard: every rank owns
   * every weight. */
  bool *owned = calloc(n_grads ? (size_t)n_grads : 1, sizeof(*owned));
  if (!owned) {
    free(names);
    free(gidx);
    free(kidx);
    mlirEmitError(floc, "moai-optimizer: out of memory");
    return false;
  }
  bool sharded = zero_ownership(module, &ad, ret, gidx, n_grads, adamw || s.momentum != 0, owned);
  MlirAttribute *owned_names = calloc(n_grads ? (size_t)n_grads : 1, sizeof(*owned_names));
  intptr_t n_owned = 0;
  for (intptr_t i = 0; i < n_grads && !u.failed; ++i) {
    if (owned_names && owned[i]) owned_names[n_owned++] = mlirStringAttrGet(ctx, names[i]);
    if (!owned[i]) continue;
    /* The weight op of this gradient, cloned into @update. */
    MlirOperation wop = {NULL};
    for (MlirOperation op = mlirBlockGetFirstOperation(block); !mlirOperationIsNull(op);
         op = mlirOperationGetNextInBlock(op)) {
      if (!name_is(op, "moai.weight")) continue;
      MlirAttribute n = ad_attr(op, "name");
      MlirStringRef v = mlirStringAttrGetValue(n);
      if (v.length == names[i].length && memcmp(v.data, names[i].data, v.length) == 0) {
        wop = op;
        break;
      }
    }
    if (mlirOperationIsNull(wop)) {
      char msg[512];
      snprintf(msg, sizeof(msg), "moai-optimizer: gradient of '%.*s', which is not a moai.weight "
               "of @main (gradients of graph inputs cannot be applied)",
               (int)names[i].length, names[i].data);
      mlirEmitError(floc, msg);
      u.failed = true;
      break;
    }
    u.loc = mlirOperationGetLocation(wop);
    MlirOperation clone = mlirOperationClone(wop);
    mlirBlockInsertOwnedOperationBefore(ublock, uret, clone);
    MlirValue p = mlirOperationGetResult(clone, 0);
    MlirType t = mlirValueGetType(p);
    char buf[640];
    snprintf(buf, sizeof(buf), "grad.%.*s", (int)names[i].length, names[i].data);
    MlirValue g = state(&u, buf, "grad", names[i], t);
    if (adamw) {
      snprintf(buf, sizeof(buf), "optimizer.exp_avg.%.*s", (int)names[i].length, names[i].data);
      MlirValue m = state(&u, buf, "exp_avg", names[i], t);
      snprintf(buf, sizeof(buf), "optimizer.exp_avg_sq.%.*s", (int)names[i].length, names[i].data);
      MlirValue v = state(&u, buf, "exp_avg_sq", names[i], t);
      MlirValue in[6] = {p, g, m, v, step, lws};
      side_effect(&u, "adamw", in, 6, hyper, nh);
    } else {
      MlirValue buf_v = {NULL};
      if (s.momentum != 0) {
        snprintf(buf, sizeof(buf), "optimizer.momentum_buffer.%.*s", (int)names[i].length,
                 names[i].data);
        buf_v = state(&u, buf, "momentum_buffer", names[i], t);
      }
      MlirValue in[5] = {p, g, buf_v, step, lws};
      side_effect(&u, "sgd", in, 5, hyper, nh);
    }
  }
  if (sharded && owned_names) {
    MlirAttribute dev = ad_attr(module, "moai.device");
    MlirNamedAttribute z[3] = {
        ad_named(&u, "rank", mlirDictionaryAttrGetElementByName(dev, mlirStringRefCreateFromCString("dp"))),
        ad_named(&u, "size", mlirDictionaryAttrGetElementByName(ad_attr(module, "moai.parallel"),
                                                                 mlirStringRefCreateFromCString("dp"))),
        ad_named(&u, "owned", mlirArrayAttrGet(ctx, n_owned, owned_names))};
    mlirOperationSetAttributeByName(module, mlirStringRefCreateFromCString("moai.zero"),
                                    mlirDictionaryAttrGet(ctx, 3, z));
  }
  free(owned);
  free(owned_names);
  u.loc = floc;
  MlirValue fin[2] = {step, lws};
  side_effect(&u, "optimizer_finish", fin, 2, NULL, 0);
  free(names);
  free(gidx);
  free(kidx);
  if (u.failed) return false;
  mlirOperationSetAttributeByName(module, mlirStringRefCreateFromCString("moai.training"),
                                  settings_dict(&u, module, &s));
  const char *moved[] = {"moai.loss_weight_kind", "moai.labels_input", "moai.ignore_index"};
  for (int i = 0; i < 3; ++i)
    mlirOperationRemoveAttributeByName(module, mlirStringRefCreateFromCString(moved[i]));
  return true;
}

static void run_pass(MlirOperation op, MlirExternalPass pass, const void *options) {
  (void)options;
  if (!moai_optimizer_run(op)) mlirExternalPassSignalFailure(pass);
}

static _Alignas(8) const char kTypeId = 0;

MlirPass moai_optimizer_pass_create(void) {
  static const moai_external_pass_t def = {
      .type_id_storage = &kTypeId,
      .name = "MoaiOptimizer",
      .argument = "moai-optimizer",
      .description = "gradient accumulation into persistent state and the @update optimizer step",
      .op_name = "builtin.module",
      .run = run_pass,
  };
  char unused = 0;
  return moai_external_pass_create(&def, &unused, sizeof(unused));
}
