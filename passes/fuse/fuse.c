#include "fuse/fuse.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ir/dialect.h"
#include "ir/pass_util.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"

/* ---- matching helpers ---------------------------------------------------- */

static bool op_named(MlirOperation op, const char *name) {
  if (mlirOperationIsNull(op)) return false;
  MlirStringRef s = mlirIdentifierStr(mlirOperationGetName(op));
  size_t n = strlen(name);
  return s.length == n + 5 && memcmp(s.data, "moai.", 5) == 0 && memcmp(s.data + 5, name, n) == 0;
}

/* The op defining v when it is moai.<name>, else a null op. */
static MlirOperation def_of(MlirValue v, const char *name) {
  if (mlirValueIsNull(v) || !mlirValueIsAOpResult(v)) return (MlirOperation){NULL};
  MlirOperation op = mlirOpResultGetOwner(v);
  return op_named(op, name) ? op : (MlirOperation){NULL};
}

static bool single_use(MlirValue v) {
  MlirOpOperand u = mlirValueGetFirstUse(v);
  return !mlirOpOperandIsNull(u) && mlirOpOperandIsNull(mlirOpOperandGetNextUse(u));
}

static MlirValue operand(MlirOperation op, intptr_t i) { return mlirOperationGetOperand(op, i); }
static MlirValue result(MlirOperation op) { return mlirOperationGetResult(op, 0); }

/* Static dims of a ranked tensor value; its rank, or -1. */
static int static_dims(MlirValue v, int64_t *dims, int cap) {
  MlirType t = mlirValueGetType(v);
  if (!mlirTypeIsARankedTensor(t) || !mlirShapedTypeHasStaticShape(t)) return -1;
  intptr_t r = mlirShapedTypeGetRank(t);
  if (r > cap) return -1;
  for (intptr_t i = 0; i < r; ++i) dims[i] = mlirShapedTypeGetDimSize(t, i);
  return (int)r;
}

static MlirType elem_of(MlirValue v) { return mlirShapedTypeGetElementType(mlirValueGetType(v)); }

static bool is_float_elem(MlirType t) { return mlirTypeIsAF32(t) || mlirTypeIsAF64(t); }

static bool attr_int(MlirOperation op, const char *name, int64_t fallback, int64_t *out) {
  MlirAttribute a = mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString(name));
  if (mlirAttributeIsNull(a)) {
    *out = fallback;
    return true;
  }
  if (!mlirAttributeIsAInteger(a)) return false;
  *out = mlirIntegerAttrGetValueInt(a);
  return true;
}

/* Erases op when none of its results is used any more. */
static void erase_if_dead(MlirOperation op) {
  if (mlirOperationIsNull(op)) return;
  for (intptr_t i = 0; i < mlirOperationGetNumResults(op); ++i)
    if (!mlirOpOperandIsNull(mlirValueGetFirstUse(mlirOperationGetResult(op, i)))) return;
  mlirOperationDestroy(op);
}

/* ---- attention ------------------------------------------------------------ */

/* The grouped-query repeat of a [B,KVH,S,D] tensor to [B,H,S,D]:
 * reshape(expand(unsqueeze(kv, [2]), [B,KVH,H/KVH,S,D]), [B,H,S,D]).
 * Returns kv and the three ops (for erasing), or `v` itself when it is not
 * one. */
typedef struct repeat_t {
  MlirValue base;
  MlirOperation ops[3]; /* reshape, expand, unsqueeze (null when not a repeat) */
} repeat_t;

static repeat_t match_repeat(MlirValue v) {
  repeat_t r = {.base = v};
  MlirOperation rs = def_of(v, "reshape");
  if (mlirOperationIsNull(rs)) return r;
  MlirOperation ex = def_of(operand(rs, 0), "expand");
  MlirOperation un = mlirOperationIsNull(ex) ? ex : def_of(operand(ex, 0), "unsqueeze");
  if (mlirOperationIsNull(un)) return r;
  int64_t out[8], e[8], u[8], kv[8];
  if (static_dims(v, out, 8) != 4 || static_dims(result(ex), e, 8) != 5 ||
      static_dims(result(un), u, 8) != 5 || static_dims(operand(un, 0), kv, 8) != 4)
    return r;
  bool ok = u[0] == kv[0] && u[1] == kv[1] && u[2] == 1 && u[3] == kv[2] && u[4] == kv[3] &&
            e[0] == kv[0] && e[1] == kv[1] && e[3] == kv[2] && e[4] == kv[3] &&
            out[0] == kv[0] && out[1] == kv[1] * e[2] && out[2] == kv[2] && out[3] == kv[3];
  if (!ok) return r;
  r.base = operand(un, 0);
  r.ops[0] = rs, r.ops[1] = ex, r.ops[2] = un;
  return r;
}

/* A rank-4 additive mask of q's float type broadcasting to [B,H,S,S]. */
static bool mask_fits(MlirValue m, MlirType elem, const int64_t *scores) {
  int64_t d[8];
  if (static_dims(m, d, 8) != 4 || !mlirTypeEqual(elem_of(m), elem)) return false;
  for (int i = 0; i < 4; ++i)
    if (d[i] != 1 && d[i] != scores[i]) return false;
  return true;
}

/* ---- masks computed from indices ---------------------------------------- */

/* What an exported mask chain
 *   where(and(C, not(equal(unsqueeze(unsqueeze(key_padding [B,S], 1), 2), 0))), 0, neg)
 * (or C alone, or the padding alone) encodes: C a constant i1 [S,S] or
 * [1,1,S,S] equal to the causal, causal + sliding-window, window or
 * all-true pattern; neg the value hidden scores get (exporters: float-min). */
typedef struct index_mask_t {
  MlirValue key_padding; /* [B,S] integer or i1; null when none */
  int64_t causal, window;
  double masked_value;
} index_mask_t;

/* v's base when v is reshapes/unsqueezes of a [B,S] value to [B,1,1,S]
 * (element order kept, so key_padding[b, j] is v[b, 0, 0, j]); else null. */
static MlirValue padding_base(MlirValue v, int64_t B, int64_t S) {
  int64_t d[8];
  if (static_dims(v, d, 8) != 4 || d[0] != B || d[1] != 1 || d[2] != 1 || d[3] != S)
    return (MlirValue){NULL};
  for (int hops = 0; hops < 4; ++hops) {
    MlirOperation op = def_of(v, "unsqueeze");
    if (mlirOperationIsNull(op)) op = def_of(v, "reshape");
    if (mlirOperationIsNull(op)) break;
    v = operand(op, 0);
    int r = static_dims(v, d, 8);
    if (r == 2 && d[0] == B && d[1] == S) return v;
    if (r < 2) break;
  }
  return (MlirValue){NULL};
}

/* The [B,S] key padding a mask condition factor [B,1,1,S] tests: not(equal(x, 0))
 * or not(equal(0, x)) with x integer, or x itself when i1. */
static MlirValue padding_of(MlirValue c, int64_t B, int64_t S) {
  MlirOperation nt = def_of(c, "not"), eq = mlirOperationIsNull(nt) ? nt : def_of(operand(nt, 0), "equal");
  if (mlirOperationIsNull(eq)) {
    MlirValue base = padding_base(c, B, S);
    return !mlirValueIsNull(base) && mlirTypeIsAInteger(elem_of(base)) &&
                   mlirIntegerTypeGetWidth(elem_of(base)) == 1
               ? base
               : (MlirValue){NULL};
  }
  double z;
  for (int i = 0; i < 2; ++i) {
    if (!moai_const_scalar(operand(eq, 1 - i), &z) || z != 0.0) continue;
    MlirValue base = padding_base(operand(eq, i), B, S);
    if (!mlirValueIsNull(base) && mlirTypeIsAInteger(elem_of(base))) return base;
  }
  return (MlirValue){NULL};
}

/* Whether constant i1 c (trailing dims [S,S], leading dims 1) is the
 * pattern of some causal / window pair, checked element by element: key j
 * visible from query i iff !(causal && j > i) && !(window && i - j >= window). */
static bool pattern_of(MlirValue c, int64_t S, int64_t *causal, int64_t *window) {
  MlirOperation k = def_of(c, "constant");
  int64_t d[8];
  int r = static_dims(c, d, 8);
  if (mlirOperationIsNull(k) || r < 2 || d[r - 2] != S || d[r - 1] != S) return false;
  for (int i = 0; i < r - 2; ++i)
    if (d[i] != 1) return false;
  MlirType e = elem_of(c);
  if (!mlirTypeIsAInteger(e) || mlirIntegerTypeGetWidth(e) != 1) return false;
  MlirAttribute a = mlirOperationGetAttributeByName(k, mlirStringRefCreateFromCString("value"));
  if (mlirAttributeIsNull(a) || !mlirAttributeIsADenseElements(a)) return false;
  /* the window is the number of keys the last query sees (S: none) */
  int64_t last = 0;
  for (int64_t j = 0; j < S; ++j) last += mlirDenseElementsAttrGetBoolValue(a, (S - 1) * S + j);
  int64_t w = last == S ? 0 : last;
  for (int64_t cz = 1; cz >= 0; --cz) {
    bool ok = true;
    for (int64_t i = 0; i < S && ok; ++i)
      for (int64_t j = 0; j < S && ok; ++j) {
        bool vis = !(cz && j > i) && !(w && i - j >= w);
        ok = mlirDenseElementsAttrGetBoolValue(a, i * S + j) == vis;
      }
    if (ok) {
      *causal = cz, *window = w;
      return true;
    }
  }
  return false;
}

/* Whether `mask` (of float type elem, broadcasting to the scores sd) is an
 * exported mask chain the index masks express exactly; *out says how. */
static bool match_index_mask(MlirValue mask, MlirType elem, const int64_t *sd, index_mask_t *out) {
  MlirOperation wh = def_of(mask, "where");
  if (mlirOperationIsNull(wh)) { /* an [S,S] mask made [1,1,S,S] */
    MlirOperation r = def_of(mask, "reshape");
    if (mlirOperationIsNull(r)) r = def_of(mask, "unsqueeze");
    int64_t d[8];
    if (!mlirOperationIsNull(r) && static_dims(operand(r, 0), d, 8) == 2 && d[0] == sd[2] &&
        d[1] == sd[3] && static_dims(mask, d, 8) == 4 && d[0] == 1 && d[1] == 1)
      wh = def_of(operand(r, 0), "where");
  }
  double zero, neg;
  if (mlirOperationIsNull(wh) || !moai_const_scalar(operand(wh, 1), &zero) || zero != 0.0 ||
      !moai_const_scalar(operand(wh, 2), &neg) || isnan(neg) || (double)(float)neg != neg ||
      !mlirTypeEqual(elem_of(mask), elem))
    return false;
  index_mask_t m = {.masked_value = neg};
  MlirValue cond = operand(wh, 0);
  MlirOperation both = def_of(cond, "and");
  if (!mlirOperationIsNull(both)) {
    int i = 0;
    for (; i < 2; ++i)
      if (pattern_of(operand(both, i), sd[2], &m.causal, &m.window) &&
          !mlirValueIsNull(m.key_padding = padding_of(operand(both, 1 - i), sd[0], sd[3])))
        break;
    if (i == 2) return false;
  } else if (!pattern_of(cond, sd[2], &m.causal, &m.window) &&
             mlirValueIsNull(m.key_padding = padding_of(cond, sd[0], sd[3]))) {
    return false;
  }
  *out = m;
  return true;
}

/* Erases v's defining op when it is a dead op of a mask chain, then the
 * chain ops feeding it that die with it. */
static void erase_dead_chain(MlirValue v, int depth) {
  static const char *const kChain[] = {"where", "and", "not", "equal", "unsqueeze", "reshape",
                                       "constant"};
  if (depth > 16 || mlirValueIsNull(v) || !mlirValueIsAOpResult(v)) return;
  MlirOperation op = mlirOpResultGetOwner(v);
  bool chain = false;
  for (size_t i = 0; i < sizeof(kChain) / sizeof(kChain[0]); ++i) chain |= op_named(op, kChain[i]);
  if (!chain || !mlirOpOperandIsNull(mlirValueGetFirstUse(v))) return;
  MlirValue ins[4];
  intptr_t n = mlirOperationGetNumOperands(op);
  if (n > 4) return;
  for (intptr_t i = 0; i < n; ++i) ins[i] = operand(op, i);
  mlirOperationDestroy(op);
  for (intptr_t i = 0; i < n; ++i) erase_dead_chain(ins[i], depth + 1);
}

/* Builds moai.attention(q, k, v, mask?, key_padding?) before `before`;
 * the index masks of im, or none (the op table's defaults) when im is null. */
static MlirOperation build_attention(MlirOperation before, MlirValue q, MlirValue k, MlirValue v,
                                     MlirValue mask, const index_mask_t *im, double scale,
                                     MlirType out_t, MlirType lse_t) {
  MlirContext ctx = mlirOperationGetContext(before);
  MlirType f32 = mlirF32TypeGet(ctx), i64 = mlirIntegerTypeGet(ctx, 64);
  MlirValue in[5] = {q, k, v, mask, im ? im->key_padding : (MlirValue){NULL}};
  MlirType res[2] = {out_t, lse_t};
#define NAMED(n, a) mlirNamedAttributeGet(mlirIdentifierGet(ctx, mlirStringRefCreateFromCString(n)), a)
  MlirNamedAttribute attrs[4] = {
      NAMED("scale", mlirFloatAttrDoubleGet(ctx, f32, scale)),
      NAMED("causal", mlirIntegerAttrGet(i64, im ? im->causal : 0)),
      NAMED("window", mlirIntegerAttrGet(i64, im ? im->window : 0)),
      NAMED("masked_value", mlirFloatAttrDoubleGet(ctx, f32, im ? im->masked_value : -FLT_MAX)),
  };
#undef NAMED
  char err[160];
  MlirOperation at = moai_op_build(ctx, mlirOperationGetLocation(before), "attention", in, 5, 0,
                                   res, 2, attrs, 4, err, sizeof(err));
  if (mlirOperationIsNull(at)) return at;
  mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(before), before, at);
  return at;
}

/* Tries to fuse the attention whose softmax is `sm`; true when it did. */
static bool fuse_attention(MlirOperation sm) {
  MlirValue p = result(sm);
  int64_t sd[8];
  int64_t axis;
  if (static_dims(p, sd, 8) != 4 || !attr_int(sm, "axis", -1, &axis) || (axis != -1 && axis != 3))
    return false;
  if (!single_use(p)) return false;
  MlirOperation pv = mlirOpOperandGetOwner(mlirValueGetFirstUse(p));
  if (!op_named(pv, "matmul") || mlirOpOperandGetOperandNumber(mlirValueGetFirstUse(p)) != 0)
    return false;
  /* softmax input: [add(scaled, mask) | add(mask, scaled) | scaled] */
  MlirValue x = operand(sm, 0), scaled = x, mask = {NULL};
  MlirOperation add = def_of(x, "add");
  MlirType elem = elem_of(x);
  if (!mlirOperationIsNull(add)) {
    if (!single_use(x)) return false;
    for (int i = 0; i < 2; ++i) {
      MlirValue s = operand(add, i), m = operand(add, 1 - i);
      int64_t d[8];
      if (static_dims(s, d, 8) == 4 && memcmp(d, sd, sizeof(int64_t) * 4) == 0 &&
          (!mlirOperationIsNull(def_of(s, "div")) || !mlirOperationIsNull(def_of(s, "mul")) ||
           !mlirOperationIsNull(def_of(s, "matmul"))) &&
          mask_fits(m, elem, sd)) {
        scaled = s, mask = m;
        break;
      }
    }
    if (mlirValueIsNull(mask)) return false;
  } else {
    add = (MlirOperation){NULL};
  }
  /* scaled: div(mm, c) | mul(mm, c) | mul(c, mm) | mm */
  double scale = 1.0, c;
  MlirValue mm = scaled;
  MlirOperation sc = def_of(scaled, "div");
  if (!mlirOperationIsNull(sc)) {
    if (!moai_const_scalar(operand(sc, 1), &c) || c == 0.0) return false;
    scale = 1.0 / c, mm = operand(sc, 0);
  } else if (!mlirOperationIsNull(sc = def_of(scaled, "mul"))) {
    int k = moai_const_scalar(operand(sc, 1), &c) ? 0 : moai_const_scalar(operand(sc, 0), &c) ? 1 : -1;
    if (k < 0) return false;
    scale = c, mm = operand(sc, k);
  }
  if (!mlirOperationIsNull(sc) && !single_use(scaled)) return false;
  MlirOperation qk = def_of(mm, "matmul");
  if (mlirOperationIsNull(qk) || !single_use(mm)) return false;
  int64_t md[8];
  if (static_dims(mm, md, 8) != 4 || memcmp(md, sd, sizeof(int64_t) * 4) != 0) return false;
  MlirOperation tr = def_of(operand(qk, 1), "transpose");
  if (mlirOperationIsNull(tr)) return false;
  MlirAttribute perm = mlirOperationGetAttributeByName(tr, mlirStringRefCreateFromCString("perm"));
  if (mlirAttributeIsNull(perm) || !mlirAttributeIsADenseI64Array(perm) ||
      mlirDenseArrayGetNumElements(perm) != 4)
    return false;
  static const int64_t swap_last2[4] = {0, 1, 3, 2};
  for (int i = 0; i < 4; ++i)
    if (mlirDenseI64ArrayGetElement(perm, i) != swap_last2[i]) return false;
  repeat_t kr = match_repeat(operand(tr, 0)), vr = match_repeat(operand(pv, 1));
  MlirValue q = operand(qk, 0), k = kr.base, v = vr.base;
  int64_t qd[8], kd[8], vd[8], od[8];
  if (static_dims(q, qd, 8) != 4 || static_dims(k, kd, 8) != 4 || static_dims(v, vd, 8) != 4 ||
      static_dims(result(pv), od, 8) != 4)
    return false;
  /* q [B,H,S,D], k = v [B,KVH,S,D] (one sequence length), out [B,H,S,D] */
  if (memcmp(kd, vd, sizeof(kd[0]) * 4) != 0 || memcmp(qd, od, sizeof(qd[0]) * 4) != 0 ||
      qd[0] != kd[0] || qd[2] != kd[2] || qd[3] != kd[3] || kd[1] <= 0 || qd[1] % kd[1] != 0 ||
      sd[2] != qd[2] || sd[3] != qd[2] || !is_float_elem(elem) ||
      !mlirTypeEqual(elem_of(q), elem) || !mlirTypeEqual(elem_of(k), elem) ||
      !mlirTypeEqual(elem_of(v), elem))
    return false;

  /* a materialised causal / window / padding mask becomes index masks */
  index_mask_t im;
  bool indexed = !mlirValueIsNull(mask) && match_index_mask(mask, elem, sd, &im);
  MlirType lse = mlirRankedTensorTypeGet(3, qd, elem, mlirAttributeGetNull());
  MlirOperation at = build_attention(pv, q, k, v, indexed ? (MlirValue){NULL} : mask,
                                     indexed ? &im : NULL, scale, mlirValueGetType(result(pv)), lse);
  if (mlirOperationIsNull(at)) return false;
  mlirValueReplaceAllUsesOfWith(result(pv), result(at));
  MlirOperation chain[] = {pv, sm, add, sc, qk, tr, kr.ops[0], kr.ops[1], kr.ops[2],
                           vr.ops[0], vr.ops[1], vr.ops[2]};
  for (size_t i = 0; i < sizeof(chain) / sizeof(chain[0]); ++i) erase_if_dead(chain[i]);
  if (indexed) erase_dead_chain(mask, 0); /* dead once the last attention reading it is fused */
  return true;
}

/* ---- RMSNorm ------------------------------------------------------------- */

/* pow(x, 2) or mul(x, x): x, else null. */
static MlirValue square_of(MlirValue v) {
  MlirOperation op = def_of(v, "pow");
  double e;
  if (!mlirOperationIsNull(op))
    return moai_const_scalar(operand(op, 1), &e) && e == 2.0 ? operand(op, 0) : (MlirValue){NULL};
  op = def_of(v, "mul");
  if (!mlirOperationIsNull(op) && mlirValueEqual(operand(op, 0), operand(op, 1))) return operand(op, 0);
  return (MlirValue){NULL};
}

/* sqrt(reduce_mean(x^2, [-1], keepdims) + eps): x and eps; the ops in *ops
 * (sqrt, add, reduce_mean, square). */
static MlirValue rms_of(MlirValue den, double *eps, MlirOperation *ops) {
  MlirValue none = {NULL};
  MlirOperation sq = def_of(den, "sqrt");
  MlirOperation add = mlirOperationIsNull(sq) ? sq : def_of(operand(sq, 0), "add");
  if (mlirOperationIsNull(add) || !single_use(den) || !single_use(result(add))) return none;
  int k = moai_const_scalar(operand(add, 1), eps) ? 0 : moai_const_scalar(operand(add, 0), eps) ? 1 : -1;
  if (k < 0) return none;
  MlirOperation mean = def_of(operand(add, k), "reduce_mean");
  if (mlirOperationIsNull(mean) || !single_use(result(mean)) || mlirOperationGetNumOperands(mean) != 2)
    return none;
  int64_t keep, d[8], axes;
  double ax;
  int r = static_dims(result(mean), d, 8);
  if (!attr_int(mean, "keepdims", 1, &keep) || !keep || r < 1 || d[r - 1] != 1 ||
      !moai_const_scalar(operand(mean, 1), &ax))
    return none;
  axes = (int64_t)ax;
  if (axes != -1 && axes != r - 1) return none;
  MlirValue sqv = operand(mean, 0), x = square_of(sqv);
  if (mlirValueIsNull(x) || !single_use(sqv)) return none;
  ops[0] = sq, ops[1] = add, ops[2] = mean, ops[3] = mlirOpResultGetOwner(sqv);
  return x;
}

/* Tries to fuse the RMSNorm ending in the multiplication `mul`. */
static bool fuse_rms_norm(MlirOperation mul) {
  for (int wi = 0; wi < 2; ++wi) {
    MlirValue w = operand(mul, wi), n = operand(mul, 1 - wi);
    MlirOperation ops[6] = {{NULL}};
    MlirValue x = {NULL};
    double eps;
    MlirOperation dv = def_of(n, "div");
    if (!mlirOperationIsNull(dv)) {
      /* x / sqrt(...) */
      if (!single_use(n)) continue;
      x = rms_of(operand(dv, 1), &eps, ops);
      if (mlirValueIsNull(x) || !mlirValueEqual(x, operand(dv, 0))) continue;
      ops[4] = dv;
    } else {
      /* x * (1 / sqrt(...)) or x * reciprocal */
      MlirOperation xm = def_of(n, "mul");
      if (mlirOperationIsNull(xm) || !single_use(n)) continue;
      for (int xi = 0; xi < 2 && mlirValueIsNull(x); ++xi) {
        MlirOperation inv = def_of(operand(xm, 1 - xi), "div");
        double one;
        if (mlirOperationIsNull(inv) || !moai_const_scalar(operand(inv, 0), &one) || one != 1.0 ||
            !single_use(result(inv)))
          continue;
        MlirValue cand = rms_of(operand(inv, 1), &eps, ops);
        if (!mlirValueIsNull(cand) && mlirValueEqual(cand, operand(xm, xi))) {
          x = cand;
          ops[4] = xm, ops[5] = inv;
        }
      }
      if (mlirValueIsNull(x)) continue;
    }
    int64_t xd[8], wd[8], yd[8];
    int r = static_dims(x, xd, 8);
    if (r < 1 || static_dims(w, wd, 8) != 1 || wd[0] != xd[r - 1] || static_dims(result(mul), yd, 8) != r ||
        memcmp(xd, yd, sizeof(int64_t) * (size_t)r) != 0 || !is_float_elem(elem_of(x)) ||
        !mlirTypeEqual(elem_of(w), elem_of(x)))
      continue;
    MlirContext ctx = mlirOperationGetContext(mul);
    MlirValue in[2] = {x, w};
    MlirType t = mlirValueGetType(result(mul));
    MlirNamedAttribute attr = mlirNamedAttributeGet(
        mlirIdentifierGet(ctx, mlirStringRefCreateFromCString("epsilon")),
        mlirFloatAttrDoubleGet(ctx, mlirF32TypeGet(ctx), eps));
    MlirOperationState st = mlirOperationStateGet(mlirStringRefCreateFromCString("moai.rms_norm"),
                                                  mlirOperationGetLocation(mul));
    mlirOperationStateAddOperands(&st, 2, in);
    mlirOperationStateAddResults(&st, 1, &t);
    mlirOperationStateAddAttributes(&st, 1, &attr);
    MlirOperation rn = mlirOperationCreate(&st);
    if (mlirOperationIsNull(rn)) return false;
    mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(mul), mul, rn);
    mlirValueReplaceAllUsesOfWith(result(mul), result(rn));
    erase_if_dead(mul);
    /* users first: div/mul, inverse, sqrt, add, mean, square */
    MlirOperation order[6] = {ops[4], ops[5], ops[0], ops[1], ops[2], ops[3]};
    for (int i = 0; i < 6; ++i) erase_if_dead(order[i]);
    return true;
  }
  return false;
}

/* ---- SwiGLU ---------------------------------------------------------------- */

/* A moai.<name>(in...) with one result of type t inserted before `before`,
 * which then stands in for `old`'s result; the new op's result, or null. */
static MlirOperation replace_with(MlirOperation before, MlirValue old, const char *name,
                                  const MlirValue *in, int n_in, MlirType t) {
  char err[160];
  MlirOperation op = moai_op_build(mlirOperationGetContext(before), mlirOperationGetLocation(before),
                                   name, in, n_in, 0, &t, 1, NULL, 0, err, sizeof(err));
  if (mlirOperationIsNull(op)) return op;
  mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(before), before, op);
  mlirValueReplaceAllUsesOfWith(old, result(op));
  return op;
}

static bool same_static_type(MlirValue a, MlirValue b) {
  int64_t da[8];
  return static_dims(a, da, 8) >= 0 && mlirTypeEqual(mlirValueGetType(a), mlirValueGetType(b));
}

/* silu(g) = mul(g, sigmoid(g)) in either order, used once: g and the two
 * ops (mul, sigmoid), else null. */
static MlirValue silu_of(MlirValue v, MlirOperation *ops) {
  MlirOperation m = def_of(v, "mul");
  if (mlirOperationIsNull(m) || !single_use(v)) return (MlirValue){NULL};
  for (int i = 0; i < 2; ++i) {
    MlirOperation sg = def_of(operand(m, 1 - i), "sigmoid");
    if (!mlirOperationIsNull(sg) && mlirValueEqual(operand(sg, 0), operand(m, i)) &&
        single_use(result(sg))) {
      ops[0] = m, ops[1] = sg;
      return operand(m, i);
    }
  }
  return (MlirValue){NULL};
}

/* mul(silu(g), u) or mul(u, silu(g)), every value of one static shape (the
 * MLP of Llama and Mistral: down(silu(gate(x)) * up(x))) -> moai.swiglu. */
static bool fuse_swiglu(MlirOperation mul) {
  for (int i = 0; i < 2; ++i) {
    MlirOperation ops[2];
    MlirValue g = silu_of(operand(mul, i), ops), u = operand(mul, 1 - i);
    if (mlirValueIsNull(g) || !same_static_type(g, u) || !same_static_type(g, result(mul)) ||
        !is_float_elem(elem_of(g)))
      continue;
    MlirValue in[2] = {g, u};
    if (mlirOperationIsNull(replace_with(mul, result(mul), "swiglu", in, 2, mlirValueGetType(g))))
      return false;
    erase_if_dead(mul);
    erase_if_dead(ops[0]);
    erase_if_dead(ops[1]);
    return true;
  }
  return false;
}

/* ---- rotary embedding ------------------------------------------------------- */

/* slice(x, start, end, axes, steps) over the last axis of x with step 1,
 * starting at `start` and `count` long (rotate_half's halves): x, else
 * null. */
static MlirValue half_slice_of(MlirValue v, int64_t start, int64_t count, MlirOperation *out_op) {
  MlirValue none = {NULL};
  MlirOperation sl = def_of(v, "slice");
  if (mlirOperationIsNull(sl) || !single_use(v)) return none;
  /* operandSegmentSizes: data, starts, ends, axes?, steps? */
  int32_t seg[5] = {1, 1, 1, 0, 0};
  MlirAttribute a = mlirOperationGetAttributeByName(sl, mlirStringRefCreateFromCString("operandSegmentSizes"));
  if (!mlirAttributeIsNull(a)) {
    if (!mlirAttributeIsADenseI32Array(a) || mlirDenseArrayGetNumElements(a) != 5) return none;
    for (int i = 0; i < 5; ++i) seg[i] = mlirDenseI32ArrayGetElement(a, i);
  } else if (mlirOperationGetNumOperands(sl) != 3) {
    return none;
  }
  MlirValue x = operand(sl, 0);
  int64_t xd[8], yd[8];
  int r = static_dims(x, xd, 8);
  if (r < 1 || static_dims(v, yd, 8) != r) return none;
  for (int i = 0; i < r - 1; ++i)
    if (yd[i] != xd[i]) return none;
  if (yd[r - 1] != count) return none;
  double st, ax = 0.0, step = 1.0;
  intptr_t k = 1;
  if (!moai_const_scalar(operand(sl, k), &st)) return none;
  k += 2; /* starts, ends: the end follows from the result's dim */
  if (seg[3] && !moai_const_scalar(operand(sl, k++), &ax)) return none;
  if (seg[4] && !moai_const_scalar(operand(sl, k), &step)) return none;
  int64_t s0 = (int64_t)st, axis = (int64_t)ax;
  if (s0 < 0) s0 += xd[r - 1];
  if (step != 1.0 || (axis != -1 && axis != r - 1) || s0 != start) return none;
  *out_op = sl;
  return x;
}

/* rotate_half(x) = concat(neg(x[..., h:]), x[..., :h]) over the last axis:
 * x and the four ops (concat, neg, both slices), else null. */
static MlirValue rotate_half_of(MlirValue v, MlirOperation *ops) {
  MlirValue none = {NULL};
  MlirOperation cat = def_of(v, "concat");
  int64_t d[8], axis;
  int r = static_dims(v, d, 8);
  if (mlirOperationIsNull(cat) || !single_use(v) || mlirOperationGetNumOperands(cat) != 2 || r < 1 ||
      d[r - 1] % 2 != 0 || !attr_int(cat, "axis", 0, &axis) || (axis != -1 && axis != r - 1))
    return none;
  int64_t h = d[r - 1] / 2;
  MlirOperation ng = def_of(operand(cat, 0), "neg");
  if (mlirOperationIsNull(ng) || !single_use(operand(cat, 0))) return none;
  MlirValue x = half_slice_of(operand(ng, 0), h, h, &ops[2]);
  MlirValue x2 = half_slice_of(operand(cat, 1), 0, h, &ops[3]);
  if (mlirValueIsNull(x) || mlirValueIsNull(x2) || !mlirValueEqual(x, x2) ||
      !mlirTypeEqual(mlirValueGetType(x), mlirValueGetType(v)))
    return none;
  ops[0] = cat, ops[1] = ng;
  return x;
}

/* cos (or sin) broadcasting to x right-aligned with x's last dim and x's
 * float type. */
static bool rotary_table_fits(MlirValue c, MlirValue x) {
  int64_t cd[8], xd[8];
  int rc = static_dims(c, cd, 8), rx = static_dims(x, xd, 8);
  if (rc < 1 || rc > rx || cd[rc - 1] != xd[rx - 1] || !mlirTypeEqual(elem_of(c), elem_of(x)))
    return false;
  for (int i = 0; i < rc - 1; ++i)
    if (cd[i] != 1 && cd[i] != xd[rx - rc + i]) return false;
  return true;
}

/* add(mul(x, cos), mul(rotate_half(x), sin)), each add and mul in either
 * operand order -> moai.rotary(x, cos, sin). */
static bool fuse_rotary(MlirOperation add) {
  MlirValue y = result(add);
  for (int i = 0; i < 4; ++i) {
    /* i & 1: which add operand is x * cos; i & 2: rotate_half's side of its mul */
    MlirValue xc = operand(add, i & 1), rs = operand(add, 1 - (i & 1));
    MlirOperation m1 = def_of(xc, "mul"), m2 = def_of(rs, "mul"), ops[4];
    if (mlirOperationIsNull(m1) || mlirOperationIsNull(m2) || !single_use(xc) || !single_use(rs))
      continue;
    int ri = (i & 2) ? 1 : 0;
    MlirValue x = rotate_half_of(operand(m2, ri), ops), sn = operand(m2, 1 - ri), cs;
    if (mlirValueIsNull(x)) continue;
    if (mlirValueEqual(operand(m1, 0), x)) cs = operand(m1, 1);
    else if (mlirValueEqual(operand(m1, 1), x)) cs = operand(m1, 0);
    else continue;
    if (!is_float_elem(elem_of(x)) || !same_static_type(x, y) || !same_static_type(x, xc) ||
        !same_static_type(x, rs) || !mlirTypeEqual(mlirValueGetType(cs), mlirValueGetType(sn)) ||
        !rotary_table_fits(cs, x))
      continue;
    MlirValue in[3] = {x, cs, sn};
    if (mlirOperationIsNull(replace_with(add, y, "rotary", in, 3, mlirValueGetType(x)))) return false;
    MlirOperation order[7] = {add, m1, m2, ops[0], ops[1], ops[2], ops[3]};
    for (int k = 0; k < 7; ++k) erase_if_dead(order[k]);
    return true;
  }
  return false;
}

/* ---- linear layers -------------------------------------------------------- */

/* A 1-D i64 moai.constant inserted before `before`. */
static MlirValue i64_const(MlirOperation before, int n, const int64_t *v) {
  MlirContext ctx = mlirOperationGetContext(before);
  int64_t d = n;
  MlirType t = mlirRankedTensorTypeGet(1, &d, mlirIntegerTypeGet(ctx, 64), mlirAttributeGetNull());
  MlirNamedAttribute a = mlirNamedAttributeGet(
      mlirIdentifierGet(ctx, mlirStringRefCreateFromCString("value")),
      mlirDenseElementsAttrInt64Get(t, n, v));
  char err[160];
  MlirOperation op = moai_op_build(ctx, mlirOperationGetLocation(before), "constant", NULL, 0, 0,
                                   &t, 1, &a, 1, err, sizeof(err));
  if (mlirOperationIsNull(op)) return (MlirValue){NULL};
  mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(before), before, op);
  return result(op);
}

/* moai.<name>(in...) -> one result of type t, inserted before `before`. */
static MlirValue build_before(MlirOperation before, const char *name, const MlirValue *in, int n_in,
                              MlirType t, const MlirNamedAttribute *attrs, int n_attrs) {
  char err[160];
  MlirOperation op = moai_op_build(mlirOperationGetContext(before), mlirOperationGetLocation(before),
                                   name, in, n_in, 0, &t, 1, attrs, n_attrs, err, sizeof(err));
  if (mlirOperationIsNull(op)) return (MlirValue){NULL};
  mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(before), before, op);
  return result(op);
}

/* matmul(x [..., M, K], transpose(w [N, K]) {perm = [1, 0]}), which is what
 * exporters make of torch.nn.Linear, -> reshape(gemm(reshape(x, [rows, K]),
 * w) {transB = 1}, [..., M, N]): the packed GEMM reads w transposed in
 * place, so neither the forward nor (through moai-autodiff's Gemm rule) the
 * backward copies a transposed weight or activation. The reshapes of
 * contiguous values are aliases. */
static bool fuse_linear(MlirOperation mm) {
  MlirValue x = operand(mm, 0);
  MlirOperation tr = def_of(operand(mm, 1), "transpose");
  if (mlirOperationIsNull(tr)) return false;
  MlirAttribute perm = mlirOperationGetAttributeByName(tr, mlirStringRefCreateFromCString("perm"));
  if (mlirAttributeIsNull(perm) || !mlirAttributeIsADenseI64Array(perm) ||
      mlirDenseArrayGetNumElements(perm) != 2 || mlirDenseI64ArrayGetElement(perm, 0) != 1 ||
      mlirDenseI64ArrayGetElement(perm, 1) != 0)
    return false;
  MlirValue w = operand(tr, 0);
  int64_t xd[8], wd[8], od[8];
  int rx = static_dims(x, xd, 8);
  if (rx < 2 || static_dims(w, wd, 8) != 2 || static_dims(result(mm), od, 8) != rx ||
      xd[rx - 1] != wd[1] || od[rx - 1] != wd[0])
    return false;
  MlirType elem = elem_of(x);
  if (!is_float_elem(elem) || !mlirTypeEqual(elem, elem_of(w))) return false;
  int64_t rows = 1;
  for (int i = 0; i < rx - 1; ++i) rows *= xd[i];
  MlirContext ctx = mlirOperationGetContext(mm);
  MlirValue x2 = x;
  if (rx > 2) {
    int64_t s2[2] = {rows, xd[rx - 1]};
    MlirValue in[2] = {x, i64_const(mm, 2, s2)};
    if (mlirValueIsNull(in[1])) return false;
    x2 = build_before(mm, "reshape", in, 2,
                      mlirRankedTensorTypeGet(2, s2, elem, mlirAttributeGetNull()), NULL, 0);
    if (mlirValueIsNull(x2)) return false;
  }
  int64_t yd[2] = {rows, wd[0]};
  MlirNamedAttribute tb = mlirNamedAttributeGet(
      mlirIdentifierGet(ctx, mlirStringRefCreateFromCString("transB")),
      mlirIntegerAttrGet(mlirIntegerTypeGet(ctx, 64), 1));
  MlirValue gin[3] = {x2, w, {NULL}};
  MlirValue y = build_before(mm, "gemm", gin, 3,
                             mlirRankedTensorTypeGet(2, yd, elem, mlirAttributeGetNull()), &tb, 1);
  if (mlirValueIsNull(y)) return false;
  if (rx > 2) {
    MlirValue in[2] = {y, i64_const(mm, rx, od)};
    if (mlirValueIsNull(in[1])) return false;
    y = build_before(mm, "reshape", in, 2, mlirValueGetType(result(mm)), NULL, 0);
    if (mlirValueIsNull(y)) return false;
  }
  mlirValueReplaceAllUsesOfWith(result(mm), y);
  mlirOperationDestroy(mm);
  erase_if_dead(tr);
  return true;
}

/* ---- the pass -------------------------------------------------------------- */

static void fuse_region_ops(MlirOperation op, const moai_fuse_options_t *o, moai_fuse_stats_t *st);

static void fuse_block(MlirBlock block, const moai_fuse_options_t *o, moai_fuse_stats_t *st) {
  /* A fusion erases ops on both sides of the one it starts from (the
   * attention's final matmul, a grouped-query repeat of v placed after the
   * softmax), so the scan starts over after each one: cheap next to the
   * rest of compilation, and every op seen is alive. */
  MlirOperation op = mlirBlockGetFirstOperation(block);
  while (!mlirOperationIsNull(op)) {
    MlirOperation next = mlirOperationGetNextInBlock(op);
    if (mlirOperationGetNumRegions(op)) {
      fuse_region_ops(op, o, st);
    } else if (o->attention && op_named(op, "softmax") && fuse_attention(op)) {
      st->attention++;
      next = mlirBlockGetFirstOperation(block);
    } else if (o->rms_norm && op_named(op, "mul") && fuse_rms_norm(op)) {
      st->rms_norm++;
      next = mlirBlockGetFirstOperation(block);
    } else if (o->swiglu && op_named(op, "mul") && fuse_swiglu(op)) {
      st->swiglu++; /* erases op and the two ops before it */
    } else if (o->rotary && op_named(op, "add") && fuse_rotary(op)) {
      st->rotary++; /* erases op and the six ops before it */
    } else if (o->linear && op_named(op, "matmul") && fuse_linear(op)) {
      st->linear++; /* erases only op and the transpose before it */
    }
    op = next;
  }
}

static void fuse_region_ops(MlirOperation op, const moai_fuse_options_t *o, moai_fuse_stats_t *st) {
  for (intptr_t r = 0; r < mlirOperationGetNumRegions(op); ++r)
    for (MlirBlock b = mlirRegionGetFirstBlock(mlirOperationGetRegion(op, r)); !mlirBlockIsNull(b);
         b = mlirBlockGetNextInRegion(b))
      fuse_block(b, o, st);
}

moai_fuse_options_t moai_fuse_options_default(void) {
  return (moai_fuse_options_t){
      .attention = true, .rms_norm = true, .linear = true, .swiglu = true, .rotary = true};
}

void moai_fuse_run(MlirOperation root, const moai_fuse_options_t *options,
                   moai_fuse_stats_t *out_stats) {
  moai_fuse_stats_t stats = {0};
  fuse_region_ops(root, options, &stats);
  if (out_stats) *out_stats = stats;
}

static void run_pass(MlirOperation op, MlirExternalPass pass, const void *options) {
  (void)pass;
  moai_fuse_run(op, options, NULL);
}

static _Alignas(8) const char kTypeId = 0;

MlirPass moai_fuse_pass_create(const moai_fuse_options_t *options) {
  static const moai_external_pass_t def = {
      .type_id_storage = &kTypeId,
      .name = "MoaiFuse",
      .argument = "moai-fuse",
      .description = "Fuse attention, RMSNorm, SwiGLU and rotary-embedding op chains into "
                     "moai.attention, rms_norm, swiglu and rotary; linear layers into gemm",
      .op_name = "builtin.module",
      .run = run_pass,
  };
  return moai_external_pass_create(&def, options, sizeof(*options));
}
