/* moai-autodiff: the vector-Jacobian rules of the fused ops moai-fuse makes
 * (moai.attention, rms_norm, swiglu, rotary), each producing its fused
 * gradient op. */
#include "autodiff/autodiff_internal.h"
#include "mlir-c/BuiltinAttributes.h"

#define OPERAND(op, i) mlirOperationGetOperand((op), (i))
#define RESULT(op, i) mlirOperationGetResult((op), (i))
#define NOPS(op) ((int)mlirOperationGetNumOperands(op))

/* Optional operand `entry` of an op whose table entries are single or
 * optional (no variadic ones), through operandSegmentSizes; null when
 * absent. */
static MlirValue optional_operand(MlirOperation op, int entry) {
  MlirAttribute seg = ad_attr(op, "operandSegmentSizes");
  if (mlirAttributeIsNull(seg) || !mlirAttributeIsADenseI32Array(seg) ||
      mlirDenseArrayGetNumElements(seg) <= entry)
    return NOPS(op) > entry ? OPERAND(op, entry) : (MlirValue){NULL}; /* no segments: in order */
  int k = 0;
  for (int e = 0; e < entry; ++e) k += mlirDenseI32ArrayGetElement(seg, e);
  return mlirDenseI32ArrayGetElement(seg, entry) ? OPERAND(op, k) : (MlirValue){NULL};
}

/* attention: one attention_grad recomputing the probabilities from q, k,
 * the masks and the forward's log-sum-exp (FlashAttention's backward). The
 * mask is additive and takes no gradient; key_padding and the causal,
 * window and masked_value attributes pass through unchanged. */
void ad_rule_attention(ad_t *ad, MlirOperation op, const MlirValue *g) {
  if (mlirOperationGetNumResults(op) > 1 && !mlirValueIsNull(g[1])) {
    ad_error(ad, "gradients through attention's lse output are not supported");
    return;
  }
  if (mlirValueIsNull(g[0])) return;
  if (mlirOperationGetNumResults(op) < 2) {
    ad_error(ad, "moai.attention needs its lse result to be differentiated");
    return;
  }
  MlirValue q = OPERAND(op, 0), k = OPERAND(op, 1), v = OPERAND(op, 2);
  MlirValue mask = optional_operand(op, 3), key_padding = optional_operand(op, 4);
  if (!mlirValueIsNull(mask) && ad_needs(ad, mask)) {
    ad_error(ad, "gradients with respect to attention's mask are not supported");
    return;
  }
  MlirNamedAttribute a[4] = {
      ad_named(ad, "scale", ad_f32_attr(ad, ad_attr_float(op, "scale", 1.0))),
      ad_named(ad, "causal", ad_i64_attr(ad, ad_attr_int(op, "causal", 0))),
      ad_named(ad, "window", ad_i64_attr(ad, ad_attr_int(op, "window", 0))),
      ad_named(ad, "masked_value",
               ad_f32_attr(ad, ad_attr_float(op, "masked_value", -3.40282347e+38))),
  };
  MlirValue in[8] = {q, k, v, RESULT(op, 0), RESULT(op, 1), g[0], mask, key_padding};
  MlirType t[3] = {mlirValueGetType(q), mlirValueGetType(k), mlirValueGetType(v)};
  MlirValue out[3];
  ad_build(ad, "attention_grad", in, 8, 0, t, 3, a, 4, out);
  if (ad->failed) return;
  ad_accumulate(ad, q, out[0]);
  ad_accumulate(ad, k, out[1]);
  ad_accumulate(ad, v, out[2]);
}

void ad_rule_rms_norm(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue x = OPERAND(op, 0), scale = OPERAND(op, 1);
  MlirNamedAttribute a =
      ad_named(ad, "epsilon", ad_f32_attr(ad, ad_attr_float(op, "epsilon", 1e-6)));
  MlirValue in[3] = {x, scale, g[0]};
  MlirType t[2] = {mlirValueGetType(x), mlirValueGetType(scale)};
  MlirValue out[2];
  ad_build(ad, "rms_norm_grad", in, 3, 0, t, 2, &a, 1, out);
  if (ad->failed) return;
  ad_accumulate(ad, x, out[0]);
  ad_accumulate(ad, scale, out[1]);
}

/* swiglu: y = silu(g) u; swiglu_grad gives both gradients at once (the
 * one not needed is dead and removed by moai-simplify). */
void ad_rule_swiglu(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue gate = OPERAND(op, 0), up = OPERAND(op, 1);
  MlirValue in[3] = {gate, up, g[0]};
  MlirType t[2] = {mlirValueGetType(gate), mlirValueGetType(up)};
  MlirValue out[2];
  ad_build(ad, "swiglu_grad", in, 3, 0, t, 2, NULL, 0, out);
  if (ad->failed) return;
  if (ad_needs(ad, gate)) ad_accumulate(ad, gate, out[0]);
  if (ad_needs(ad, up)) ad_accumulate(ad, up, out[1]);
}

/* rotate_half(x) = concat(-x[..., h:], x[..., :h]) over the last axis. */
static MlirValue rotate_half(ad_t *ad, MlirValue x) {
  int64_t d[AD_MAX_RANK];
  int r = ad_dims(x, d), h = (int)(d[r - 1] / 2);
  MlirValue parts[2] = {ad_unary(ad, "neg", ad_slice(ad, x, r - 1, h, d[r - 1])),
                        ad_slice(ad, x, r - 1, 0, h)};
  MlirType t = mlirValueGetType(x);
  MlirNamedAttribute a = ad_named(ad, "axis", ad_i64_attr(ad, r - 1));
  return ad_build(ad, "concat", parts, 2, 2, &t, 1, &a, 1, NULL);
}

/* rotary: y = x cos + rotate_half(x) sin. x's gradient is one rotary_grad;
 * cos and sin usually come from position ids and need none, but when they
 * do (a learned frequency table) they get torch's product-rule gradients
 * from unfused ops: dcos = sum-to-shape(dy x), dsin = sum-to-shape(dy
 * rotate_half(x)). */
void ad_rule_rotary(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue x = OPERAND(op, 0), c = OPERAND(op, 1), s = OPERAND(op, 2);
  if (ad_needs(ad, x)) {
    MlirValue in[3] = {g[0], c, s};
    MlirType t = mlirValueGetType(x);
    ad_accumulate(ad, x, ad_build(ad, "rotary_grad", in, 3, 0, &t, 1, NULL, 0, NULL));
  }
  if (ad_needs(ad, c)) ad_accumulate(ad, c, ad_reduce_to_like(ad, ad_mul(ad, g[0], x), c));
  if (ad_needs(ad, s))
    ad_accumulate(ad, s, ad_reduce_to_like(ad, ad_mul(ad, g[0], rotate_half(ad, x)), s));
}
