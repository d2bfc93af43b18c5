/* moai-autodiff: see autodiff.h. */
#include "autodiff/autodiff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff/autodiff_internal.h"
#include "ir/dialect.h"
#include "ir/op_defs.h"
#include "ir/pass_util.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "mlir-c/Diagnostics.h"

static bool name_is(MlirOperation op, const char *name) {
  MlirStringRef s = mlirIdentifierStr(mlirOperationGetName(op));
  return s.length == strlen(name) && memcmp(s.data, name, s.length) == 0;
}

static MlirOperation find_main(MlirOperation module) {
  MlirBlock body = mlirRegionGetFirstBlock(mlirOperationGetRegion(module, 0));
  MlirOperation only = {NULL};
  int funcs = 0;
  for (MlirOperation op = mlirBlockGetFirstOperation(body); !mlirOperationIsNull(op);
       op = mlirOperationGetNextInBlock(op)) {
    if (!name_is(op, "func.func")) continue;
    ++funcs;
    only = op;
    MlirAttribute sym = ad_attr(op, "sym_name");
    if (!mlirAttributeIsNull(sym)) {
      MlirStringRef s = mlirStringAttrGetValue(sym);
      if (s.length == 4 && memcmp(s.data, "main", 4) == 0) return op;
    }
  }
  return funcs == 1 ? only : (MlirOperation){NULL};
}

/* The moai.name entry of a function's arg_attrs/res_attrs entry i. */
static MlirStringRef io_name(MlirOperation func, const char *which, intptr_t i) {
  MlirAttribute arr = ad_attr(func, which);
  if (mlirAttributeIsNull(arr) || !mlirAttributeIsAArray(arr) ||
      i >= mlirArrayAttrGetNumElements(arr))
    return mlirStringRefCreate(NULL, 0);
  MlirAttribute dict = mlirArrayAttrGetElement(arr, i);
  if (!mlirAttributeIsADictionary(dict)) return mlirStringRefCreate(NULL, 0);
  MlirAttribute n = mlirDictionaryAttrGetElementByName(dict, mlirStringRefCreateFromCString("moai.name"));
  return !mlirAttributeIsNull(n) && mlirAttributeIsAString(n) ? mlirStringAttrGetValue(n)
                                                             : mlirStringRefCreate(NULL, 0);
}

/* Whether graph input i is differentiated: moai.autodiff_inputs is a unit
 * attribute (every float input) or an array of input names (those only). */
static bool input_selected(MlirOperation module, MlirOperation func, MlirBlock block, intptr_t i) {
  MlirAttribute a = ad_attr(module, "moai.autodiff_inputs");
  if (mlirAttributeIsNull(a) || !ad_is_float(mlirBlockGetArgument(block, i))) return false;
  if (!mlirAttributeIsAArray(a)) return true;
  MlirStringRef n = io_name(func, "arg_attrs", i);
  for (intptr_t k = 0; k < mlirArrayAttrGetNumElements(a); ++k) {
    MlirAttribute e = mlirArrayAttrGetElement(a, k);
    if (!mlirAttributeIsAString(e)) continue;
    MlirStringRef v = mlirStringAttrGetValue(e);
    if (v.length == n.length && memcmp(v.data, n.data, n.length) == 0) return true;
  }
  return false;
}

/* The output moai.pipeline's `send` names (a pipeline stage's activation for
 * the next stage), kept as the last result; -1 when there is none. */
static intptr_t pipeline_send_index(MlirOperation module, MlirOperation func, intptr_t n_out) {
  MlirAttribute p = ad_attr(module, "moai.pipeline");
  if (mlirAttributeIsNull(p) || !mlirAttributeIsADictionary(p)) return -1;
  MlirAttribute send = mlirDictionaryAttrGetElementByName(p, mlirStringRefCreateFromCString("send"));
  if (mlirAttributeIsNull(send) || !mlirAttributeIsAString(send)) return -1;
  MlirStringRef want = mlirStringAttrGetValue(send);
  for (intptr_t i = 0; i < n_out; ++i) {
    MlirStringRef n = io_name(func, "res_attrs", i);
    if (n.length == want.length && memcmp(n.data, want.data, n.length) == 0) return i;
  }
  return -1;
}

static bool is_view(MlirOperation op) {
  return name_is(op, "moai.identity") || name_is(op, "moai.reshape") ||
         name_is(op, "moai.squeeze") || name_is(op, "moai.unsqueeze") ||
         name_is(op, "moai.flatten");
}

/* Describes the loss weight: for a mean SoftmaxCrossEntropyLoss, the
 * counted targets; else 1. Sets the module's moai.loss_weight_* attributes. */
static MlirValue build_loss_weight(ad_t *ad, MlirOperation module, MlirOperation func,
                                   MlirValue loss) {
  MlirValue v = loss;
  while (mlirValueIsAOpResult(v) && is_view(mlirOpResultGetOwner(v)))
    v = mlirOperationGetOperand(mlirOpResultGetOwner(v), 0);
  MlirOperation sce = mlirValueIsAOpResult(v) ? mlirOpResultGetOwner(v) : (MlirOperation){NULL};
  bool tokens = !mlirOperationIsNull(sce) && name_is(sce, "moai.softmax_cross_entropy_loss") &&
                mlirOpResultGetResultNumber(v) == 0 && ad_attr_str_is(sce, "reduction", "mean", true);
  MlirType f = ad_elem(loss);
  /* moai-partition's vocabulary-parallel cross-entropy: sum / count with
   * the counted targets as the division's second operand. */
  if (!mlirOperationIsNull(sce) && name_is(sce, "moai.div") &&
      !mlirAttributeIsNull(ad_attr(sce, "moai.token_mean"))) {
    mlirOperationSetAttributeByName(module, mlirStringRefCreateFromCString("moai.loss_weight_kind"),
                                    ad_str_attr(ad, "tokens"));
    return ad_reshape(ad, mlirOperationGetOperand(sce, 1), 0, NULL);
  }
  if (!tokens) {
    mlirOperationSetAttributeByName(module, mlirStringRefCreateFromCString("moai.loss_weight_kind"),
                                    ad_str_attr(ad, "one"));
    return ad_scalar(ad, f, 1.0);
  }
  ad->loc = mlirOperationGetLocation(sce);
  MlirValue labels = mlirOperationGetOperand(sce, 1);
  MlirValue weights = mlirOperationGetNumOperands(sce) > 2 ? mlirOperationGetOperand(sce, 2)
                                                           : (MlirValue){NULL};
  MlirAttribute ii = ad_attr(sce, "ignore_index");
  mlirOperationSetAttributeByName(module, mlirStringRefCreateFromCString("moai.loss_weight_kind"),
                                  ad_str_attr(ad, "tokens"));
  /* The graph input the labels come from, through views, slices and casts
   * (a causal LM shifts them: labels[:, 1:]). A row of that input that is
   * all ignore_index carries no loss weight. */
  MlirValue src = labels;
  while (mlirValueIsAOpResult(src)) {
    MlirOperation def = mlirOpResultGetOwner(src);
    if (!is_view(def) && !name_is(def, "moai.slice") && !name_is(def, "moai.cast") &&
        !name_is(def, "moai.transpose"))
      break;
    src = mlirOperationGetOperand(def, 0);
  }
  if (mlirValueIsABlockArgument(src)) {
    MlirStringRef n = io_name(func, "arg_attrs", mlirBlockArgumentGetArgNumber(src));
    if (n.length)
      mlirOperationSetAttributeByName(module, mlirStringRefCreateFromCString("moai.labels_input"),
                                      mlirStringAttrGet(ad->ctx, n));
  }
  MlirType i64 = mlirIntegerTypeGet(ad->ctx, 64);
  MlirValue lab = labels;
  if (!mlirTypeEqual(ad_elem(labels), i64)) lab = ad_cast(ad, labels, i64);
  int64_t d[AD_MAX_RANK], axes[AD_MAX_RANK];
  int r = ad_dims(labels, d);
  for (int i = 0; i < r; ++i) axes[i] = i;
  MlirValue mask = (MlirValue){NULL};
  if (!mlirAttributeIsNull(ii)) {
    mlirOperationSetAttributeByName(module, mlirStringRefCreateFromCString("moai.ignore_index"), ii);
    MlirValue eq = ad_compare(ad, "equal", lab, ad_scalar(ad, i64, (double)mlirIntegerAttrGetValueInt(ii)));
    mask = ad_unary(ad, "not", eq);
  }
  if (mlirValueIsNull(weights)) {
    if (mlirValueIsNull(mask)) return ad_scalar(ad, f, (double)ad_numel(labels));
    return ad_reduce_sum(ad, ad_cast(ad, mask, f), r, axes, false);
  }
  MlirValue safe = mlirValueIsNull(mask) ? lab : ad_where(ad, mask, lab, ad_scalar(ad, i64, 0.0));
  MlirType gt = ad_tensor_type(ad, r, d, ad_elem(weights));
  MlirValue in[2] = {weights, safe};
  MlirNamedAttribute axis = ad_named(ad, "axis", ad_i64_attr(ad, 0));
  MlirValue per = ad_build(ad, "gather", in, 2, 0, &gt, 1, &axis, 1, NULL);
  if (!mlirValueIsNull(mask)) per = ad_where(ad, mask, per, ad_scalar(ad, ad_elem(weights), 0.0));
  MlirValue w = ad_reduce_sum(ad, per, r, axes, false);
  if (!mlirTypeEqual(ad_elem(w), f)) w = ad_cast(ad, w, f);
  return w;
}

typedef struct param_t {
  MlirValue value;
  MlirStringRef name;
} param_t;

static void emit_at(MlirLocation loc, const char *msg) { mlirEmitError(loc, msg); }

bool moai_autodiff_run(MlirOperation module, moai_autodiff_stats_t *out_stats) {
  moai_autodiff_stats_t stats = {0};
  MlirContext ctx = mlirOperationGetContext(module);
  MlirLocation mloc = mlirOperationGetLocation(module);
  MlirOperation func = find_main(module);
  if (mlirOperationIsNull(func)) {
    emit_at(mloc, "moai-autodiff: the module has no func.func @main to differentiate");
    return false;
  }
  MlirBlock block = mlirRegionGetFirstBlock(mlirOperationGetRegion(func, 0));
  MlirOperation ret = mlirBlockGetTerminator(block);
  MlirLocation floc = mlirOperationGetLocation(func);
  char msg[768];

  /* The loss. */
  intptr_t n_out = mlirOperationGetNumOperands(ret);
  intptr_t loss_index = -1;
  if (n_out == 1) {
    loss_index = 0;
  } else {
    for (intptr_t i = 0; i < n_out; ++i) {
      MlirStringRef n = io_name(func, "res_attrs", i);
      if (n.length == 4 && memcmp(n.data, "loss", 4) == 0) loss_index = i;
    }
    if (loss_index < 0) {
      snprintf(msg, sizeof(msg),
               "moai-autodiff: the model has %ld outputs and none is named 'loss'; a training "
               "export returns the scalar loss (name it 'loss' when there are other outputs)",
               (long)n_out);
      emit_at(floc, msg);
      return false;
    }
  }
  MlirValue loss = mlirOperationGetOperand(ret, loss_index);
  MlirStringRef loss_name = io_name(func, "res_attrs", loss_index);
  if (!ad_is_float(loss) || ad_numel(loss) != 1) {
    int64_t d[AD_MAX_RANK];
    int r = ad_is_float(loss) ? ad_dims(loss, d) : 0;
    char shape[128] = "";
    size_t k = 0;
    for (int i = 0; i < r && k + 24 < sizeof(shape); ++i)
      k += (size_t)snprintf(shape + k, sizeof(shape) - k, "%s%lld", i ? "x" : "", (long long)d[i]);
    snprintf(msg, sizeof(msg),
             "moai-autodiff: the loss output '%.*s' is %s%s, not a float scalar; training needs "
             "the scalar loss (reduce it with a mean or a sum in the exported model)",
             (int)loss_name.length, loss_name.data ? loss_name.data : "",
             ad_is_float(loss) ? "of shape " : "not a float tensor", shape);
    emit_at(mlirValueIsAOpResult(loss) ? mlirOperationGetLocation(mlirOpResultGetOwner(loss)) : floc, msg);
    return false;
  }

  ad_t ad = {.ctx = ctx, .block = block, .anchor = ret, .loc = floc};
  bool inputs = !mlirAttributeIsNull(ad_attr(module, "moai.autodiff_inputs"));

  /* Forward sweep: which values depend on a differentiated one. */
  size_t n_ops = 0, cap = 256;
  MlirOperation *ops = malloc(cap * sizeof(*ops));
  param_t *params = NULL;
  size_t n_params = 0, params_cap = 0;
  bool ok = ops != NULL;
  for (intptr_t i = 0; ok && i < mlirBlockGetNumArguments(block); ++i) {
    MlirValue arg = mlirBlockGetArgument(block, i);
    if (input_selected(module, func, block, i)) ad_map_put(&ad, &ad.needs, arg, arg);
  }
  for (MlirOperation op = mlirBlockGetFirstOperation(block); ok && !mlirOperationEqual(op, ret);
       op = mlirOperationGetNextInBlock(op)) {
    if (n_ops == cap) {
      cap *= 2;
      MlirOperation *grown = realloc(ops, cap * sizeof(*ops));
      if (!grown) {
        ok = false;
        break;
      }
      ops = grown;
    }
    ops[n_ops++] = op;
    intptr_t nres = mlirOperationGetNumResults(op);
    if (name_is(op, "moai.weight")) {
      MlirValue v = mlirOperationGetResult(op, 0);
      if (ad_attr_int(op, "trainable", 0) && ad_is_float(v)) {
        ad_map_put(&ad, &ad.needs, v, v);
        if (n_params == params_cap) {
          params_cap = params_cap ? params_cap * 2 : 64;
          param_t *grown = realloc(params, params_cap * sizeof(*params));
          if (!grown) {
            ok = false;
            break;
          }
          params = grown;
        }
        params[n_params].value = v;
        params[n_params].name = mlirStringAttrGetValue(ad_attr(op, "name"));
        ++n_params;
      }
      continue;
    }
    if (!moai_op_is_moai(op)) continue;
    MlirStringRef nm = mlirIdentifierStr(mlirOperationGetName(op));
    const moai_op_def_t *def = moai_op_def_find(nm.data, nm.length);
    if (!def || (def->flags & MOAI_OP_FLAG_NO_GRAD)) continue;
    bool any = false;
    for (intptr_t k = 0; k < mlirOperationGetNumOperands(op); ++k)
      any |= ad_needs(&ad, mlirOperationGetOperand(op, k));
    if (!any) continue;
    for (intptr_t k = 0; k < nres; ++k) {
      MlirValue r = mlirOperationGetResult(op, k);
      if (ad_is_float(r)) ad_map_put(&ad, &ad.needs, r, r);
    }
  }
  if (!ok || ad.oom) {
    emit_at(floc, "moai-autodiff: out of memory");
    goto done;
  }
  stats.ops_before = n_ops;
  stats.parameters = n_params;
  if (n_params == 0 && !inputs) {
    emit_at(floc, "moai-autodiff: the model has no trainable weights (see --trainable and --freeze)");
    ok = false;
    goto done;
  }
  if (!ad_needs(&ad, loss)) {
    emit_at(floc, "moai-autodiff: the loss does not depend on any trainable weight");
    ok = false;
    goto done;
  }

  /* The loss weight and the seed. */
  MlirValue w = build_loss_weight(&ad, module, func, loss);
  ad.loc = floc;
  MlirValue seed = ad_reshape_like(&ad, w, loss);
  if (ad.failed) {
    ok = false;
    goto done;
  }
  ad_map_put(&ad, &ad.grads, loss, seed);

  /* Reverse sweep. */
  for (size_t i = n_ops; i-- > 0 && !ad.failed && !ad.oom;) {
    MlirOperation op = ops[i];
    intptr_t nres = mlirOperationGetNumResults(op);
    MlirValue grads[MOAI_OP_MAX_RESULTS * MOAI_VARIADIC_SLOTS];
    bool any = false;
    for (intptr_t k = 0; k < nres && k < (intptr_t)(sizeof(grads) / sizeof(grads[0])); ++k) {
      grads[k] = ad_map_get(&ad.grads, mlirOperationGetResult(op, k));
      any |= !mlirValueIsNull(grads[k]);
    }
    if (!any || name_is(op, "moai.weight") || !moai_op_is_moai(op)) continue;
    bool needed = false;
    for (intptr_t k = 0; k < mlirOperationGetNumOperands(op); ++k)
      needed |= ad_needs(&ad, mlirOperationGetOperand(op, k));
    if (!needed) continue;
    MlirStringRef nm = mlirIdentifierStr(mlirOperationGetName(op));
    ad.loc = mlirOperationGetLocation(op);
    ad_rule_fn_t rule = ad_rule_find(nm.data + 5, nm.length - 5);
    if (!rule) {
      snprintf(msg, sizeof(msg),
               "moai-autodiff: no gradient rule for %.*s, which lies between a trainable weight "
               "and the loss (freeze the weights before it, or open an issue for the rule)",
               (int)nm.length, nm.data);
      mlirEmitError(ad.loc, msg);
      ad.failed = true;
      break;
    }
    rule(&ad, op, grads);
  }
  if (ad.failed || ad.oom) {
    if (ad.oom) emit_at(floc, "moai-autodiff: out of memory");
    ok = false;
    goto done;
  }

  /* The new results. */
  {
    ad.loc = floc;
    size_t n_inputs = 0;
    for (intptr_t i = 0; i < mlirBlockGetNumArguments(block); ++i)
      n_inputs += input_selected(module, func, block, i);
    intptr_t send = pipeline_send_index(module, func, n_out);
    size_t n_res = 2 + n_params + n_inputs + (send >= 0);
    MlirValue *res = calloc(n_res, sizeof(*res));
    MlirType *types = calloc(n_res, sizeof(*types));
    MlirAttribute *attrs = calloc(n_res, sizeof(*attrs));
    if (!res || !types || !attrs) {
      free(res);
      free(types);
      free(attrs);
      emit_at(floc, "moai-autodiff: out of memory");
      ok = false;
      goto done;
    }
    MlirIdentifier id_name = mlirIdentifierGet(ctx, mlirStringRefCreateFromCString("moai.name"));
    MlirIdentifier id_of = mlirIdentifierGet(ctx, mlirStringRefCreateFromCString("moai.grad_of"));
    size_t k = 0;
    res[k] = loss;
    {
      MlirNamedAttribute na = mlirNamedAttributeGet(
          id_name, mlirStringAttrGet(ctx, loss_name.length ? loss_name
                                                           : mlirStringRefCreateFromCString("loss")));
      attrs[k++] = mlirDictionaryAttrGet(ctx, 1, &na);
    }
    res[k] = w;
    {
      MlirNamedAttribute na = mlirNamedAttributeGet(id_name, ad_str_attr(&ad, "loss_weight"));
      attrs[k++] = mlirDictionaryAttrGet(ctx, 1, &na);
    }
    for (size_t p = 0; p < n_params + n_inputs && !ad.failed; ++p) {
      MlirValue v;
      MlirStringRef name;
      if (p < n_params) {
        v = params[p].value;
        name = params[p].name;
      } else {
        size_t want = p - n_params, seen = 0;
        v = (MlirValue){NULL};
        for (intptr_t i = 0; i < mlirBlockGetNumArguments(block); ++i) {
          MlirValue a = mlirBlockGetArgument(block, i);
          if (!input_selected(module, func, block, i)) continue;
          if (seen++ == want) {
            v = a;
            name = io_name(func, "arg_attrs", i);
            break;
          }
        }
      }
      MlirValue g = ad_map_get(&ad.grads, v);
      if (mlirValueIsNull(g)) {
        int64_t d[AD_MAX_RANK];
        int r = ad_dims(v, d);
        g = ad_zeros(&ad, r, d, ad_elem(v));
        ++stats.zero_gradients;
      }
      res[k] = g;
      char buf[600];
      snprintf(buf, sizeof(buf), "grad.%.*s", (int)name.length, name.data ? name.data : "");
      MlirNamedAttribute na[2] = {
          mlirNamedAttributeGet(id_name, ad_str_attr(&ad, buf)),
          mlirNamedAttributeGet(id_of, mlirStringAttrGet(ctx, name)),
      };
      attrs[k++] = mlirDictionaryAttrGet(ctx, 2, na);
    }
    if (send >= 0) {
      /* Read before the return is replaced below. */
      res[k] = mlirOperationGetOperand(ret, send);
      MlirAttribute ra = ad_attr(func, "res_attrs");
      attrs[k++] = mlirArrayAttrGetElement(ra, send);
    }
    if (!ad.failed) {
      for (size_t i = 0; i < n_res; ++i) types[i] = mlirValueGetType(res[i]);
      MlirOperationState st = mlirOperationStateGet(mlirStringRefCreateFromCString("func.return"),
                                                    mlirOperationGetLocation(ret));
      mlirOperationStateAddOperands(&st, (intptr_t)n_res, res);
      MlirOperation nret = mlirOperationCreate(&st);
      mlirBlockInsertOwnedOperationBefore(block, ret, nret);
      mlirOperationDestroy(ret);
      MlirAttribute ft_attr = ad_attr(func, "function_type");
      MlirType ft = mlirTypeAttrGetValue(ft_attr);
      intptr_t n_in = mlirFunctionTypeGetNumInputs(ft);
      MlirType *in_types = calloc(n_in ? (size_t)n_in : 1, sizeof(*in_types));
      for (intptr_t i = 0; in_types && i < n_in; ++i) in_types[i] = mlirFunctionTypeGetInput(ft, i);
      MlirType nft = mlirFunctionTypeGet(ctx, n_in, in_types, (intptr_t)n_res, types);
      free(in_types);
      mlirOperationSetAttributeByName(func, mlirStringRefCreateFromCString("function_type"),
                                      mlirTypeAttrGet(nft));
      mlirOperationSetAttributeByName(func, mlirStringRefCreateFromCString("res_attrs"),
                                      mlirArrayAttrGet(ctx, (intptr_t)n_res, attrs));
    }
    free(res);
    free(types);
    free(attrs);
    ok = !ad.failed;
  }
  if (ok) {
    size_t count = 0;
    for (MlirOperation op = mlirBlockGetFirstOperation(block); !mlirOperationIsNull(op);
         op = mlirOperationGetNextInBlock(op))
      ++count;
    stats.ops_after = count;
  }

done:
  free(ops);
  free(params);
  ad_map_free(&ad.grads);
  ad_map_free(&ad.needs);
  if (out_stats) *out_stats = stats;
  return ok;
}

static void run_pass(MlirOperation op, MlirExternalPass pass, const void *options) {
  (void)options;
  if (!moai_autodiff_run(op, NULL)) mlirExternalPassSignalFailure(pass);
}

static _Alignas(8) const char kTypeId = 0;

MlirPass moai_autodiff_pass_create(void) {
  static const moai_external_pass_t def = {
      .type_id_storage = &kTypeId,
      .name = "MoaiAutodiff",
      .argument = "moai-autodiff",
      .description = "reverse-mode gradients of the scalar loss w.r.t. the trainable weights",
      .op_name = "builtin.module",
      .run = run_pass,
  };
  char unused = 0;
  return moai_external_pass_create(&def, &unused, sizeof(unused));
}
