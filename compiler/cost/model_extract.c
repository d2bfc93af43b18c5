/* Recognising a decoder from a moai-dialect module: weight names and
 * shapes (Hugging Face / torch export naming), head counts from the
 * [b, s, heads, head_dim] reshapes, batch and sequence from the token ids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cost/model.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"

typedef struct scan_t {
  moai_model_desc_t m;
  int64_t params, max_layer, hq, hkv, mlp_mats, q_seen, embed_seen;
  int64_t heads_seen, kv_seen;
  int f32;
} scan_t;

static bool contains(MlirStringRef s, const char *needle) {
  size_t n = strlen(needle);
  for (size_t i = 0; i + n <= s.length; ++i)
    if (memcmp(s.data + i, needle, n) == 0) return true;
  return false;
}

static int64_t layer_index(MlirStringRef s) {
  static const char *keys[] = {"layers.", "layer.", "h.", "blocks."};
  for (size_t k = 0; k < 4; ++k) {
    size_t n = strlen(keys[k]);
    for (size_t i = 0; i + n < s.length; ++i)
      if (memcmp(s.data + i, keys[k], n) == 0 && s.data[i + n] >= '0' && s.data[i + n] <= '9')
        return strtoll(s.data + i + n, NULL, 10);
  }
  return -1;
}

static void scan_weight(scan_t *sc, MlirOperation op) {
  MlirAttribute a = mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString("name"));
  MlirType t = mlirValueGetType(mlirOperationGetResult(op, 0));
  if (mlirAttributeIsNull(a) || !mlirAttributeIsAString(a) || !mlirTypeIsARankedTensor(t)) return;
  MlirStringRef name = mlirStringAttrGetValue(a);
  intptr_t rank = mlirShapedTypeGetRank(t);
  int64_t n = 1, d0 = rank > 0 ? mlirShapedTypeGetDimSize(t, 0) : 1;
  int64_t d1 = rank > 1 ? mlirShapedTypeGetDimSize(t, 1) : 1;
  for (intptr_t i = 0; i < rank; ++i) n *= mlirShapedTypeGetDimSize(t, i);
  sc->params += n;
  sc->f32 = mlirTypeIsAF32(mlirShapedTypeGetElementType(t));
  int64_t layer = layer_index(name);
  if (layer > sc->max_layer) sc->max_layer = layer;
  if (rank != 2) {
    if (rank == 1 && contains(name, "bias")) sc->m.biases = true;
    return;
  }
  if (contains(name, "embed_tokens") || contains(name, "wte")) {
    sc->m.vocab = d0;
    sc->m.hidden = d1;
    sc->embed_seen = 1;
  } else if (contains(name, "q_proj")) {
    sc->hq = d0;
    sc->q_seen = 1;
  } else if (contains(name, "k_proj")) {
    sc->hkv = d0;
  } else if (contains(name, "gate_proj")) {
    sc->m.swiglu = true;
    sc->m.ffn = d0;
  } else if (contains(name, "up_proj") || contains(name, "fc1")) {
    sc->m.ffn = d0;
  } else if (contains(name, "lm_head")) {
    sc->m.tied_embeddings = false;
  }
}

static void scan_op(scan_t *sc, MlirOperation op) {
  MlirStringRef opname = mlirIdentifierStr(mlirOperationGetName(op));
  if (opname.length == 11 && memcmp(opname.data, "moai.weight", 11) == 0) {
    scan_weight(sc, op);
    return;
  }
  /* [b, s, heads, head_dim] views give the head counts. */
  for (intptr_t r = 0; r < mlirOperationGetNumResults(op); ++r) {
    MlirType t = mlirValueGetType(mlirOperationGetResult(op, r));
    if (!mlirTypeIsARankedTensor(t) || mlirShapedTypeGetRank(t) != 4 ||
        !mlirShapedTypeHasStaticShape(t))
      continue;
    int64_t s1 = mlirShapedTypeGetDimSize(t, 1), d2 = mlirShapedTypeGetDimSize(t, 2);
    int64_t d3 = mlirShapedTypeGetDimSize(t, 3);
    if (s1 != sc->m.seq || sc->m.seq <= 0) continue;
    if (!sc->heads_seen && sc->hq && d2 * d3 == sc->hq) sc->m.heads = d2, sc->m.head_dim = d3, sc->heads_seen = 1;
    else if (!sc->kv_seen && sc->hkv && d2 * d3 == sc->hkv && d3 == sc->m.head_dim)
      sc->m.kv_heads = d2, sc->kv_seen = 1;
  }
  for (intptr_t i = 0; i < mlirOperationGetNumRegions(op); ++i) {
    MlirRegion region = mlirOperationGetRegion(op, i);
    for (MlirBlock b = mlirRegionGetFirstBlock(region); !mlirBlockIsNull(b);
         b = mlirBlockGetNextInRegion(b))
      for (MlirOperation o = mlirBlockGetFirstOperation(b); !mlirOperationIsNull(o);
           o = mlirOperationGetNextInBlock(o))
        scan_op(sc, o);
  }
}

/* Token ids: the first rank-2 integer argument of the entry function. */
static void scan_inputs(scan_t *sc, MlirModule module) {
  MlirBlock body = mlirModuleGetBody(module);
  for (MlirOperation op = mlirBlockGetFirstOperation(body); !mlirOperationIsNull(op);
       op = mlirOperationGetNextInBlock(op)) {
    MlirStringRef name = mlirIdentifierStr(mlirOperationGetName(op));
    if (name.length != 9 || memcmp(name.data, "func.func", 9) != 0) continue;
    MlirBlock entry = mlirRegionGetFirstBlock(mlirOperationGetRegion(op, 0));
    if (mlirBlockIsNull(entry)) continue;
    for (intptr_t i = 0; i < mlirBlockGetNumArguments(entry); ++i) {
      MlirType t = mlirValueGetType(mlirBlockGetArgument(entry, i));
      if (!mlirTypeIsARankedTensor(t) || !mlirShapedTypeHasStaticShape(t)) continue;
      if (sc->m.batch == 0 && mlirShapedTypeGetRank(t) >= 1)
        sc->m.batch = mlirShapedTypeGetDimSize(t, 0);
      if (mlirShapedTypeGetRank(t) == 2 && mlirTypeIsAInteger(mlirShapedTypeGetElementType(t))) {
        sc->m.batch = mlirShapedTypeGetDimSize(t, 0);
        sc->m.seq = mlirShapedTypeGetDimSize(t, 1);
        return;
      }
    }
    return;
  }
}

moai_status_t moai_model_extract(MlirModule module, moai_model_desc_t *out,
                                 moai_model_desc_t *out_generic) {
  scan_t sc;
  memset(&sc, 0, sizeof(sc));
  sc.max_layer = -1;
  sc.m.tied_embeddings = true;
  scan_inputs(&sc, module);
  /* Two passes: the first finds q/k widths, the second the head counts. */
  scan_op(&sc, mlirModuleGetOperation(module));
  int64_t hq = sc.hq, hkv = sc.hkv;
  scan_t second = sc;
  second.params = 0;
  scan_op(&second, mlirModuleGetOperation(module));
  sc.m.heads = second.m.heads, sc.m.head_dim = second.m.head_dim, sc.m.kv_heads = second.m.kv_heads;
  if (out_generic) {
    moai_model_desc_t g = {0};
    g.params = sc.params;
    g.batch = sc.m.batch > 0 ? sc.m.batch : 1;
    g.seq = sc.m.seq > 0 ? sc.m.seq : 1;
    g.dtype_bytes = sc.f32 ? 4 : 2;
    *out_generic = g;
  }
  const char *why = NULL;
  if (!sc.embed_seen) why = "no token embedding weight ([vocab, hidden], *embed_tokens* or *wte*)";
  else if (!sc.q_seen || !hkv) why = "no attention projections (*q_proj*, *k_proj*)";
  else if (sc.max_layer < 0) why = "no numbered layers (*layers.N.*)";
  else if (!sc.m.ffn) why = "no MLP weights (*gate_proj*/*up_proj* or *fc1*)";
  else if (sc.m.seq <= 0) why = "no [batch, sequence] integer token input";
  if (why)
    return MOAI_STATUS(MOAI_UNIMPLEMENTED, "not a recognisable decoder: %s", why);
  if (!sc.m.heads) {
    /* No reshape found: assume the common head width 128 (64 if it does not divide). */
    sc.m.head_dim = hq % 128 == 0 && hkv % 128 == 0 ? 128 : 64;
    sc.m.heads = hq / sc.m.head_dim;
  }
  if (!sc.m.kv_heads) sc.m.kv_heads = hkv / sc.m.head_dim;
  sc.m.is_decoder = true;
  sc.m.layers = sc.max_layer + 1;
  sc.m.dtype_bytes = sc.f32 ? 4 : 2;
  sc.m.params = sc.params;
  *out = sc.m;
  return moai_ok_status();
}
