/* Network layers: embedding, convolution, pooling, normalisation and
 * dropout, in the forms torch.onnx exports them (training mode where the
 * call says so). */
#include <string.h>

#include "torchscript/aten_internal.h"

/* embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False,
 * sparse=False): Gather(weight, indices). */
static moai_status_t op_embedding(ts_call_t *c) {
  moai_ts_value_t *w, *idx;
  bool scale, sparse;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &w));
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 1, &idx));
  MOAI_RETURN_IF_ERROR(ts_arg_bool(c, 3, false, &scale));
  MOAI_RETURN_IF_ERROR(ts_arg_bool(c, 4, false, &sparse));
  if (scale || sparse)
    return ts_err(c, MOAI_UNIMPLEMENTED,
                  "scale_grad_by_freq and sparse are not supported");
  if (ts_dtype_is_float(ts_dtype(idx)))
    return ts_err(c, MOAI_INVALID_ARGUMENT, "indices must be integers");
  MlirValue ops[2], r;
  MOAI_RETURN_IF_ERROR(ts_value(c, w, &ops[0]));
  MOAI_RETURN_IF_ERROR(ts_value_as(c, idx, MOAI_PK_I64, &ops[1]));
  ts_attr_t a = {"axis", ts_attr_i64(c, 0)};
  MOAI_RETURN_IF_ERROR(ts_op(c, "gather", ops, 2, &a, 1, &r));
  OUT_TENSOR(c, r);
}

/* A list argument of `n` spatial ints (one int repeats). */
static moai_status_t spatial(ts_call_t *c, size_t slot, int n, int64_t def,
                             int64_t *out) {
  size_t got = 0;
  if (ts_is_none(c->a[slot]) ||
      (c->a[slot]->kind == MOAI_TS_LIST && c->a[slot]->len == 0)) {
    for (int i = 0; i < n; ++i) out[i] = def;
    return moai_ok_status();
  }
  MOAI_RETURN_IF_ERROR(ts_arg_ints(c, slot, out, MOAI_PK_MAX_RANK, (size_t)n, &got));
  if (got == 1) for (int i = 1; i < n; ++i) out[i] = out[0];
  else if ((int)got != n)
    return ts_err(c, MOAI_INVALID_ARGUMENT, "expects %d spatial values, got %zu", n, got);
  return moai_ok_status();
}

/* conv1d/conv2d(input, weight, bias, stride, padding, dilation, groups) and
 * _convolution(input, weight, bias, stride, padding, dilation, transposed,
 * output_padding, groups, ...). */
static moai_status_t op_conv(ts_call_t *c) {
  moai_ts_value_t *x, *w;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 1, &w));
  int wr;
  int64_t wd[MOAI_PK_MAX_RANK];
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, w, &wr, wd));
  int n = wr - 2;
  if (n < 1 || n > 3)
    return ts_err(c, MOAI_INVALID_ARGUMENT, "weight of rank %d", wr);
  bool full = strcmp(c->entry->aux, "full") == 0;
  int64_t groups, stride[3], pad[3], dil[3];
  if (full) {
    bool transposed;
    MOAI_RETURN_IF_ERROR(ts_arg_bool(c, 6, false, &transposed));
    if (transposed)
      return ts_err(c, MOAI_UNIMPLEMENTED, "transposed convolution is not supported");
    MOAI_RETURN_IF_ERROR(ts_arg_int(c, 8, true, 1, &groups));
  } else {
    MOAI_RETURN_IF_ERROR(ts_arg_int(c, 6, true, 1, &groups));
  }
  if (c->a[4] && c->a[4]->kind == MOAI_TS_STR) {
    if (strcmp(c->a[4]->str, "valid") != 0)
      return ts_err(c, MOAI_UNIMPLEMENTED, "padding '%s' is not supported (give ints)",
                    c->a[4]->str);
    for (int i = 0; i < n; ++i) pad[i] = 0;
  } else {
    MOAI_RETURN_IF_ERROR(spatial(c, 4, n, 0, pad));
  }
  MOAI_RETURN_IF_ERROR(spatial(c, 3, n, 1, stride));
  MOAI_RETURN_IF_ERROR(spatial(c, 5, n, 1, dil));
  int64_t pads[6];
  for (int i = 0; i < n; ++i) pads[i] = pads[i + n] = pad[i];
  MlirValue ops[3] = {{NULL}, {NULL}, {NULL}}, r;
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &ops[0]));
  MOAI_RETURN_IF_ERROR(ts_value(c, w, &ops[1]));
  if (!ts_is_none(c->a[2])) MOAI_RETURN_IF_ERROR(ts_value(c, c->a[2], &ops[2]));
  ts_attr_t a[5] = {{"dilations", ts_attr_ints(c, dil, (size_t)n)},
                    {"group", ts_attr_i64(c, groups)},
                    {"kernel_shape", ts_attr_ints(c, wd + 2, (size_t)n)},
                    {"pads", ts_attr_ints(c, pads, (size_t)(2 * n))},
                    {"strides", ts_attr_ints(c, stride, (size_t)n)}};
  MOAI_RETURN_IF_ERROR(ts_op(c, "conv", ops, 3, a, 5, &r));
  OUT_TENSOR(c, r);
}

/* max_pool2d(self, kernel_size, stride=[], padding=0, dilation=1,
 * ceil_mode=False), avg_pool2d(self, kernel_size, stride=[], padding=0,
 * ceil_mode=False, count_include_pad=True, divisor_override=None). */
static moai_status_t op_pool(ts_call_t *c) {
  bool is_max = strcmp(c->entry->aux, "max") == 0;
  moai_ts_value_t *x;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  const int n = 2;
  int64_t k[2], s[2], p[2], d[2] = {1, 1}, pads[4];
  bool ceil_mode, include_pad = true;
  MOAI_RETURN_IF_ERROR(spatial(c, 1, n, 1, k));
  MOAI_RETURN_IF_ERROR(spatial(c, 2, n, 0, s));
  if (s[0] == 0) { s[0] = k[0]; s[1] = k[1]; } /* stride [] = kernel */
  MOAI_RETURN_IF_ERROR(spatial(c, 3, n, 0, p));
  if (is_max) {
    MOAI_RETURN_IF_ERROR(spatial(c, 4, n, 1, d));
    MOAI_RETURN_IF_ERROR(ts_arg_bool(c, 5, false, &ceil_mode));
  } else {
    MOAI_RETURN_IF_ERROR(ts_arg_bool(c, 4, false, &ceil_mode));
    MOAI_RETURN_IF_ERROR(ts_arg_bool(c, 5, true, &include_pad));
    if (!ts_is_none(c->a[6]))
      return ts_err(c, MOAI_UNIMPLEMENTED, "divisor_override is not supported");
  }
  pads[0] = pads[2] = p[0];
  pads[1] = pads[3] = p[1];
  MlirValue v, r;
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &v));
  ts_attr_t a[5] = {{"ceil_mode", ts_attr_i64(c, ceil_mode)},
                    {"kernel_shape", ts_attr_ints(c, k, 2)},
                    {"pads", ts_attr_ints(c, pads, 4)},
                    {"strides", ts_attr_ints(c, s, 2)},
                    {NULL, {NULL}}};
  size_t na = 4;
  if (is_max && (d[0] != 1 || d[1] != 1))
    a[na++] = (ts_attr_t){"dilations", ts_attr_ints(c, d, 2)};
  if (!is_max) a[na++] = (ts_attr_t){"count_include_pad", ts_attr_i64(c, include_pad)};
  MOAI_RETURN_IF_ERROR(
      ts_op(c, is_max ? "max_pool" : "average_pool", &v, 1, a, na, &r));
  OUT_TENSOR(c, r);
}

/* adaptive_avg_pool2d(self, output_size): GlobalAveragePool for 1x1, an
 * AveragePool when the input divides evenly (as the exporter does). */
static moai_status_t op_adaptive_avg_pool(ts_call_t *c) {
  moai_ts_value_t *x;
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK], out[2];
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, x, &rank, dims));
  MOAI_RETURN_IF_ERROR(spatial(c, 1, 2, 1, out));
  if (rank != 4) return ts_err(c, MOAI_INVALID_ARGUMENT, "needs an NCHW tensor");
  MlirValue v, r;
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &v));
  if (out[0] == 1 && out[1] == 1) {
    MOAI_RETURN_IF_ERROR(ts_op(c, "global_average_pool", &v, 1, NULL, 0, &r));
    OUT_TENSOR(c, r);
  }
  if (out[0] <= 0 || out[1] <= 0 || dims[2] % out[0] || dims[3] % out[1])
    return ts_err(c, MOAI_UNIMPLEMENTED,
                  "output %lldx%lld does not divide the input %lldx%lld",
                  (long long)out[0], (long long)out[1], (long long)dims[2],
                  (long long)dims[3]);
  int64_t k[2] = {dims[2] / out[0], dims[3] / out[1]}, pads[4] = {0, 0, 0, 0};
  ts_attr_t a[3] = {{"kernel_shape", ts_attr_ints(c, k, 2)},
                    {"pads", ts_attr_ints(c, pads, 4)},
                    {"strides", ts_attr_ints(c, k, 2)}};
  MOAI_RETURN_IF_ERROR(ts_op(c, "average_pool", &v, 1, a, 3, &r));
  OUT_TENSOR(c, r);
}

/* A per-channel constant (ones or zeros) for a missing affine parameter or
 * running statistic. */
static moai_status_t channel_const(ts_call_t *c, moai_ts_value_t *v, int dtype,
                                   int64_t channels, double fill,
                                   MlirValue *out) {
  if (!ts_is_none(v)) return ts_value_as(c, v, dtype, out);
  moai_ts_const_t *k = ts_konst_new(c, dtype == MOAI_PK_F64 ? MOAI_PK_F64 : MOAI_PK_F32,
                                    1, &channels);
  if (!k) return ts_err(c, MOAI_UNIMPLEMENTED, "too many channels (%lld)",
                        (long long)channels);
  for (int64_t i = 0; i < channels; ++i) ts_k_setf(k, i, fill);
  moai_ts_value_t *kv = ts_konst_value(c, k);
  if (!kv) return TS_OOM(c);
  return moai_ts_tensor_value(c->em, kv, out);
}

/* batch_norm(input, weight, bias, running_mean, running_var, training,
 * momentum, eps, cudnn_enabled): BatchNormalization; in training the
 * batch's statistics (training_mode=1, with the running-statistic results
 * as the ONNX training export has them); ONNX momentum = 1 - torch's. */
static moai_status_t op_batch_norm(ts_call_t *c) {
  moai_ts_value_t *x;
  bool training;
  double momentum, eps;
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK];
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MOAI_RETURN_IF_ERROR(ts_arg_bool(c, 5, false, &training));
  MOAI_RETURN_IF_ERROR(ts_arg_float(c, 6, true, 0.1, &momentum));
  MOAI_RETURN_IF_ERROR(ts_arg_float(c, 7, true, 1e-5, &eps));
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, x, &rank, dims));
  if (rank < 2) return ts_err(c, MOAI_INVALID_ARGUMENT, "needs an input of rank >= 2");
  if (!training && (ts_is_none(c->a[3]) || ts_is_none(c->a[4])))
    return ts_err(c, MOAI_INVALID_ARGUMENT,
                  "in eval mode needs running_mean and running_var");
  int dt = ts_dtype(x);
  MlirValue ops[5], rs[3];
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &ops[0]));
  MOAI_RETURN_IF_ERROR(channel_const(c, c->a[1], dt, dims[1], 1.0, &ops[1]));
  MOAI_RETURN_IF_ERROR(channel_const(c, c->a[2], dt, dims[1], 0.0, &ops[2]));
  MOAI_RETURN_IF_ERROR(channel_const(c, c->a[3], dt, dims[1], 0.0, &ops[3]));
  MOAI_RETURN_IF_ERROR(channel_const(c, c->a[4], dt, dims[1], 1.0, &ops[4]));
  ts_attr_t a[3] = {{"epsilon", ts_attr_f32(c, eps)},
                    {"momentum", ts_attr_f32(c, 1.0 - momentum)},
                    {"training_mode", ts_attr_i64(c, training)}};
  MOAI_RETURN_IF_ERROR(ts_build(c, "batch_normalization", ops, 5, a, 3,
                                training ? 3 : 1, rs));
  OUT_TENSOR(c, rs[0]);
}

/* layer_norm(input, normalized_shape, weight, bias, eps, cudnn_enable) */
static moai_status_t op_layer_norm(ts_call_t *c) {
  moai_ts_value_t *x;
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK], shape[MOAI_PK_MAX_RANK];
  size_t n;
  double eps;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, x, &rank, dims));
  MOAI_RETURN_IF_ERROR(ts_arg_ints(c, 1, shape, MOAI_PK_MAX_RANK, 1, &n));
  MOAI_RETURN_IF_ERROR(ts_arg_float(c, 4, true, 1e-5, &eps));
  if (n == 0 || (int)n > rank)
    return ts_err(c, MOAI_INVALID_ARGUMENT, "normalized_shape of %zu dims for rank %d",
                  n, rank);
  for (size_t i = 0; i < n; ++i)
    if (shape[i] != dims[rank - (int)n + (int)i])
      return ts_err(c, MOAI_INVALID_ARGUMENT,
                    "normalized_shape does not match the input's last dims");
  int dt = ts_dtype(x);
  MlirValue ops[3] = {{NULL}, {NULL}, {NULL}}, r;
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &ops[0]));
  if (ts_is_none(c->a[2])) {
    int64_t numel = ts_numel((int)n, shape);
    moai_ts_const_t *k = ts_konst_new(c, dt == MOAI_PK_F64 ? MOAI_PK_F64 : MOAI_PK_F32,
                                      (int)n, shape);
    if (!k) return ts_err(c, MOAI_UNIMPLEMENTED, "layer_norm without weight over %lld elements",
                          (long long)numel);
    for (int64_t i = 0; i < numel; ++i) ts_k_setf(k, i, 1.0);
    moai_ts_value_t *kv = ts_konst_value(c, k);
    if (!kv) return TS_OOM(c);
    MOAI_RETURN_IF_ERROR(moai_ts_tensor_value(c->em, kv, &ops[1]));
  } else {
    MOAI_RETURN_IF_ERROR(ts_value(c, c->a[2], &ops[1]));
  }
  if (!ts_is_none(c->a[3])) MOAI_RETURN_IF_ERROR(ts_value(c, c->a[3], &ops[2]));
  ts_attr_t a[2] = {{"axis", ts_attr_i64(c, -(int64_t)n)},
                    {"epsilon", ts_attr_f32(c, eps)}};
  MOAI_RETURN_IF_ERROR(ts_op(c, "layer_normalization", ops, 3, a, 2, &r));
  OUT_TENSOR(c, r);
}

/* dropout(input, p, train): the identity when p == 0 or not training;
 * random dropout is refused (moai's plans are deterministic). */
static moai_status_t op_dropout(ts_call_t *c) {
  moai_ts_value_t *x;
  double p;
  bool train;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MOAI_RETURN_IF_ERROR(ts_arg_float(c, 1, true, 0.5, &p));
  MOAI_RETURN_IF_ERROR(ts_arg_bool(c, 2, true, &train));
  if (p != 0.0 && train)
    return ts_err(c, MOAI_UNIMPLEMENTED,
                  "p = %g in training mode is not supported (random dropout); "
                  "use p = 0 or trace the module in eval mode", p);
  c->out = x;
  return moai_ok_status();
}

const ts_op_entry_t ts_ops_nn[] = {
    {"torch.embedding", "weight,indices,padding_idx,scale_grad_by_freq,sparse",
     op_embedding, NULL},
    {"torch.conv1d", "input,weight,bias,stride,padding,dilation,groups", op_conv, ""},
    {"torch.conv2d", "input,weight,bias,stride,padding,dilation,groups", op_conv, ""},
    {"torch._convolution",
     "input,weight,bias,stride,padding,dilation,transposed,output_padding,"
     "groups,benchmark,deterministic,cudnn_enabled,allow_tf32",
     op_conv, "full"},
    {"torch.max_pool2d", "self,kernel_size,stride,padding,dilation,ceil_mode",
     op_pool, "max"},
    {"torch.avg_pool2d",
     "self,kernel_size,stride,padding,ceil_mode,count_include_pad,divisor_override",
     op_pool, "avg"},
    {"torch.adaptive_avg_pool2d", "self,output_size", op_adaptive_avg_pool, NULL},
    {"torch.batch_norm",
     "input,weight,bias,running_mean,running_var,training,momentum,eps,cudnn_enabled",
     op_batch_norm, NULL},
    {"torch.layer_norm", "input,normalized_shape,weight,bias,eps,cudnn_enable",
     op_layer_norm, NULL},
    {"torch.dropout", "input,p,train", op_dropout, NULL},
    {"torch.feature_dropout", "input,p,train", op_dropout, NULL},
    {"torch.alpha_dropout", "input,p,train", op_dropout, NULL},
    {NULL, NULL, NULL, NULL},
};
