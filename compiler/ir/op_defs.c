#include "op_defs.h"

#include <string.h>

/* Operand, result and attribute names follow the ONNX operator schemas
 * (opset 21). min_opset is the opset that introduced the op type; older
 * forms of ops that changed since are upgraded by the importer. */
static const moai_op_def_t kOpDefs[] = {
    {.onnx_type = NULL,
     .name = "weight",
     .min_opset = 1,
     .results = {{"output", MOAI_ARITY_SINGLE}},
     .attrs = {{"name", MOAI_ATTR_STRING, MOAI_ATTR_REQUIRED},
               {"trainable", MOAI_ATTR_INT, "0"},
               {"storage", MOAI_ATTR_STRING, "absent"},
               {"file", MOAI_ATTR_STRING, NULL},
               {"offset", MOAI_ATTR_INT, NULL},
               {"length", MOAI_ATTR_INT, NULL}},
     .summary = "A named tensor whose bytes stay in the model file (storage: raw, external, field or absent)."},
    {.onnx_type = "Constant",
     .name = "constant",
     .min_opset = 1,
     .results = {{"output", MOAI_ARITY_SINGLE}},
     .attrs = {{"value", MOAI_ATTR_TENSOR, MOAI_ATTR_REQUIRED}},
     .summary = "A small tensor held inline."},
    {.onnx_type = "ConstantOfShape",
     .name = "constant_of_shape",
     .min_opset = 9,
     .operands = {{"input", MOAI_ARITY_SINGLE}},
     .results = {{"output", MOAI_ARITY_SINGLE}},
     .attrs = {{"value", MOAI_ATTR_TENSOR, NULL}},
     .flags = MOAI_OP_FLAG_NO_GRAD,
     .summary = "A tensor of the given shape filled with one value (default float 0)."},
    {.onnx_type = "Shape",
     .name = "shape",
     .min_opset = 1,
     .operands = {{"data", MOAI_ARITY_SINGLE}},
     .results = {{"shape", MOAI_ARITY_SINGLE}},
     .attrs = {{"start", MOAI_ATTR_INT, "0"},
               {"end", MOAI_ATTR_INT, NULL}},
     .flags = MOAI_OP_FLAG_NO_GRAD,
     .summary = "The shape of a tensor as int64."},
    {.onnx_type = "Gather",
     .name = "gather",
     .min_opset = 1,
     .operands = {{"data", MOAI_ARITY_SINGLE}, {"indices", MOAI_ARITY_SINGLE}},
     .results = {{"output", MOAI_ARITY_SINGLE}},
     .attrs = {{"axis", MOAI_ATTR_INT, "0"}},
     .summary = "Gathers slices along an axis."},
    {.onnx_type = "Unsqueeze",
     .name = "unsqueeze",
     .min_opset = 1,
     .operands = {{"data", MOAI_ARITY_SINGLE}, {"axes", MOAI_ARITY_SINGLE}},
     .results = {{"expanded", MOAI_ARITY_SINGLE}},
     .summary = "Inserts size-1 axes."},
    {.onnx_type = "Squeeze",
     .name = "squeeze",
     .min_opset = 1,
     .operands = {{"data", MOAI_ARITY_SINGLE}, {"axes", MOAI_ARITY_OPTIONAL}},
     .results = {{"squeezed", MOAI_ARITY_SINGLE}},
     .summary = "Removes size-1 axes."},
    {.onnx_type = "Reshape",
     .name = "reshape",
     .min_opset = 1,
     .operands = {{"data", MOAI_ARITY_SINGLE}, {"shape", MOAI_ARITY_SINGLE}},
     .results = {{"reshaped", MOAI_ARITY_SINGLE}},
     .attrs = {{"allowzero", MOAI_ATTR_INT, "0"}},
     .summary = "Reshapes to the given shape (0 copies, -1 infers)."},
    {.onnx_type = "Transpose",
     .name = "transpose",
     .min_opset = 1,
     .operands = {{"data", MOAI_ARITY_SINGLE}},
     .results = {{"transposed", MOAI_ARITY_SINGLE}},
     .attrs = {{"perm", MOAI_ATTR_INTS, NULL}},
     .summary = "Permutes axes (default: reverse)."},
    {.onnx_type = "Concat",
     .name = "concat",
     .min_opset = 1,
     .operands = {{"inputs", MOAI_ARITY_VARIADIC}},
     .results = {{"concat_result", MOAI_ARITY_SINGLE}},
     .attrs = {{"axis", MOAI_ATTR_INT, MOAI_ATTR_REQUIRED}},
     .summary = "Concatenates along an axis."},
    {.onnx_type = "Slice",
     .name = "slice",
     .min_opset = 1,
     .operands = {{"data", MOAI_ARITY_SINGLE}, {"starts", MOAI_ARITY_SINGLE}, {"ends", MOAI_ARITY_SINGLE}, {"axes", MOAI_ARITY_OPTIONAL}, {"steps", MOAI_ARITY_OPTIONAL}},
     .results = {{"output", MOAI_ARITY_SINGLE}},
     .summary = "Strided slice."},
    {.onnx_type = "Expand",
     .name = "expand",
     .min_opset = 8,
     .operands = {{"input", MOAI_ARITY_SINGLE}, {"shape", MOAI_ARITY_SINGLE}},
     .results = {{"output", MOAI_ARITY_SINGLE}},
     .summary = "Broadcasts to a shape."},
    {.onnx_type = "Where",
     .name = "where",
     .min_opset = 9,
     .operands = {{"condition", MOAI_ARITY_SINGLE}, {"x", MOAI_ARITY_SINGLE}, {"y", MOAI_ARITY_SINGLE}},
     .results = {{"output", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE,
     .summary = "Selects X where condition else Y."},
    {.onnx_type = "Equal",
     .name = "equal",
     .min_opset = 1,
     .operands = {{"a", MOAI_ARITY_SINGLE}, {"b", MOAI_ARITY_SINGLE}},
     .results = {{"c", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE | MOAI_OP_FLAG_NO_GRAD,
     .summary = "Elementwise comparison, bool result."},
    {.onnx_type = "Less",
     .name = "less",
     .min_opset = 1,
     .operands = {{"a", MOAI_ARITY_SINGLE}, {"b", MOAI_ARITY_SINGLE}},
     .results = {{"c", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE | MOAI_OP_FLAG_NO_GRAD,
     .summary = "Elementwise comparison, bool result."},
    {.onnx_type = "LessOrEqual",
     .name = "less_or_equal",
     .min_opset = 12,
     .operands = {{"a", MOAI_ARITY_SINGLE}, {"b", MOAI_ARITY_SINGLE}},
     .results = {{"c", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE | MOAI_OP_FLAG_NO_GRAD,
     .summary = "Elementwise comparison, bool result."},
    {.onnx_type = "Greater",
     .name = "greater",
     .min_opset = 1,
     .operands = {{"a", MOAI_ARITY_SINGLE}, {"b", MOAI_ARITY_SINGLE}},
     .results = {{"c", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE | MOAI_OP_FLAG_NO_GRAD,
     .summary = "Elementwise comparison, bool result."},
    {.onnx_type = "GreaterOrEqual",
     .name = "greater_or_equal",
     .min_opset = 12,
     .operands = {{"a", MOAI_ARITY_SINGLE}, {"b", MOAI_ARITY_SINGLE}},
     .results = {{"c", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE | MOAI_OP_FLAG_NO_GRAD,
     .summary = "Elementwise comparison, bool result."},
    {.onnx_type = "And",
     .name = "and",
     .min_opset = 1,
     .operands = {{"a", MOAI_ARITY_SINGLE}, {"b", MOAI_ARITY_SINGLE}},
     .results = {{"c", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE | MOAI_OP_FLAG_NO_GRAD,
     .summary = "Logical and."},
    {.onnx_type = "Or",
     .name = "or",
     .min_opset = 1,
     .operands = {{"a", MOAI_ARITY_SINGLE}, {"b", MOAI_ARITY_SINGLE}},
     .results = {{"c", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE | MOAI_OP_FLAG_NO_GRAD,
     .summary = "Logical or."},
    {.onnx_type = "Not",
     .name = "not",
     .min_opset = 1,
     .operands = {{"x", MOAI_ARITY_SINGLE}},
     .results = {{"y", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE | MOAI_OP_FLAG_NO_GRAD,
     .summary = "Logical not."},
    {.onnx_type = "Cast",
     .name = "cast",
     .min_opset = 1,
     .operands = {{"input", MOAI_ARITY_SINGLE}},
     .results = {{"output", MOAI_ARITY_SINGLE}},
     .attrs = {{"to", MOAI_ATTR_TYPE, MOAI_ATTR_REQUIRED},
               {"saturate", MOAI_ATTR_INT, "1"}},
     .summary = "Converts the element type."},
    {.onnx_type = "Add",
     .name = "add",
     .min_opset = 1,
     .operands = {{"a", MOAI_ARITY_SINGLE}, {"b", MOAI_ARITY_SINGLE}},
     .results = {{"c", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE,
     .summary = "Elementwise arithmetic with broadcasting."},
    {.onnx_type = "Sub",
     .name = "sub",
     .min_opset = 1,
     .operands = {{"a", MOAI_ARITY_SINGLE}, {"b", MOAI_ARITY_SINGLE}},
     .results = {{"c", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE,
     .summary = "Elementwise arithmetic with broadcasting."},
    {.onnx_type = "Mul",
     .name = "mul",
     .min_opset = 1,
     .operands = {{"a", MOAI_ARITY_SINGLE}, {"b", MOAI_ARITY_SINGLE}},
     .results = {{"c", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE,
     .summary = "Elementwise arithmetic with broadcasting."},
    {.onnx_type = "Div",
     .name = "div",
     .min_opset = 1,
     .operands = {{"a", MOAI_ARITY_SINGLE}, {"b", MOAI_ARITY_SINGLE}},
     .results = {{"c", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE,
     .summary = "Elementwise arithmetic with broadcasting."},
    {.onnx_type = "Pow",
     .name = "pow",
     .min_opset = 1,
     .operands = {{"x", MOAI_ARITY_SINGLE}, {"y", MOAI_ARITY_SINGLE}},
     .results = {{"z", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE,
     .summary = "Elementwise power."},
    {.onnx_type = "Sqrt",
     .name = "sqrt",
     .min_opset = 1,
     .operands = {{"x", MOAI_ARITY_SINGLE}},
     .results = {{"y", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE,
     .summary = "Elementwise unary function."},
    {.onnx_type = "Neg",
     .name = "neg",
     .min_opset = 1,
     .operands = {{"x", MOAI_ARITY_SINGLE}},
     .results = {{"y", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE,
     .summary = "Elementwise unary function."},
    {.onnx_type = "Cos",
     .name = "cos",
     .min_opset = 1,
     .operands = {{"x", MOAI_ARITY_SINGLE}},
     .results = {{"y", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE,
     .summary = "Elementwise unary function."},
    {.onnx_type = "Sin",
     .name = "sin",
     .min_opset = 1,
     .operands = {{"x", MOAI_ARITY_SINGLE}},
     .results = {{"y", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE,
     .summary = "Elementwise unary function."},
    {.onnx_type = "Exp",
     .name = "exp",
     .min_opset = 1,
     .operands = {{"x", MOAI_ARITY_SINGLE}},
     .results = {{"y", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE,
     .summary = "Elementwise unary function."},
    {.onnx_type = "Log",
     .name = "log",
     .min_opset = 1,
     .operands = {{"x", MOAI_ARITY_SINGLE}},
     .results = {{"y", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE,
     .summary = "Elementwise unary function."},
    {.onnx_type = "Sigmoid",
     .name = "sigmoid",
     .min_opset = 1,
     .operands = {{"x", MOAI_ARITY_SINGLE}},
     .results = {{"y", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE,
     .summary = "Elementwise unary function."},
    {.onnx_type = "Tanh",
     .name = "tanh",
     .min_opset = 1,
     .operands = {{"x", MOAI_ARITY_SINGLE}},
     .results = {{"y", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE,
     .summary = "Elementwise unary function."},
    {.onnx_type = "Erf",
     .name = "erf",
     .min_opset = 9,
     .operands = {{"x", MOAI_ARITY_SINGLE}},
     .results = {{"y", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE,
     .summary = "Elementwise unary function."},
    {.onnx_type = "Relu",
     .name = "relu",
     .min_opset = 1,
     .operands = {{"x", MOAI_ARITY_SINGLE}},
     .results = {{"y", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE,
     .summary = "Elementwise unary function."},
    {.onnx_type = "Abs",
     .name = "abs",
     .min_opset = 1,
     .operands = {{"x", MOAI_ARITY_SINGLE}},
     .results = {{"y", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE,
     .summary = "Elementwise unary function."},
    {.onnx_type = "LeakyRelu",
     .name = "leaky_relu",
     .min_opset = 1,
     .operands = {{"x", MOAI_ARITY_SINGLE}},
     .results = {{"y", MOAI_ARITY_SINGLE}},
     .attrs = {{"alpha", MOAI_ATTR_FLOAT, "0.01"}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE,
     .summary = "max(x, alpha*x)."},
    {.onnx_type = "Gelu",
     .name = "gelu",
     .min_opset = 20,
     .operands = {{"x", MOAI_ARITY_SINGLE}},
     .results = {{"y", MOAI_ARITY_SINGLE}},
     .attrs = {{"approximate", MOAI_ATTR_STRING, "none"}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE,
     .summary = "GELU, exact or tanh approximation."},
    {.onnx_type = "MatMul",
     .name = "matmul",
     .min_opset = 1,
     .operands = {{"a", MOAI_ARITY_SINGLE}, {"b", MOAI_ARITY_SINGLE}},
     .results = {{"y", MOAI_ARITY_SINGLE}},
     .summary = "numpy.matmul."},
    {.onnx_type = "Gemm",
     .name = "gemm",
     .min_opset = 1,
     .operands = {{"a", MOAI_ARITY_SINGLE}, {"b", MOAI_ARITY_SINGLE}, {"c", MOAI_ARITY_OPTIONAL}},
     .results = {{"y", MOAI_ARITY_SINGLE}},
     .attrs = {{"alpha", MOAI_ATTR_FLOAT, "1.0"},
               {"beta", MOAI_ATTR_FLOAT, "1.0"},
               {"transA", MOAI_ATTR_INT, "0"},
               {"transB", MOAI_ATTR_INT, "0"}},
     .summary = "alpha*A'*B' + beta*C."},
    {.onnx_type = "ReduceMean",
     .name = "reduce_mean",
     .min_opset = 1,
     .operands = {{"data", MOAI_ARITY_SINGLE}, {"axes", MOAI_ARITY_OPTIONAL}},
     .results = {{"reduced", MOAI_ARITY_SINGLE}},
     .attrs = {{"keepdims", MOAI_ATTR_INT, "1"},
               {"noop_with_empty_axes", MOAI_ATTR_INT, "0"}},
     .summary = "Reduction over axes (all when none given)."},
    {.onnx_type = "ReduceSum",
     .name = "reduce_sum",
     .min_opset = 1,
     .operands = {{"data", MOAI_ARITY_SINGLE}, {"axes", MOAI_ARITY_OPTIONAL}},
     .results = {{"reduced", MOAI_ARITY_SINGLE}},
     .attrs = {{"keepdims", MOAI_ATTR_INT, "1"},
               {"noop_with_empty_axes", MOAI_ATTR_INT, "0"}},
     .summary = "Reduction over axes (all when none given)."},
    {.onnx_type = "ReduceMax",
     .name = "reduce_max",
     .min_opset = 1,
     .operands = {{"data", MOAI_ARITY_SINGLE}, {"axes", MOAI_ARITY_OPTIONAL}},
     .results = {{"reduced", MOAI_ARITY_SINGLE}},
     .attrs = {{"keepdims", MOAI_ATTR_INT, "1"},
               {"noop_with_empty_axes", MOAI_ATTR_INT, "0"}},
     .summary = "Reduction over axes (all when none given)."},
    {.onnx_type = "Softmax",
     .name = "softmax",
     .min_opset = 1,
     .operands = {{"input", MOAI_ARITY_SINGLE}},
     .results = {{"output", MOAI_ARITY_SINGLE}},
     .attrs = {{"axis", MOAI_ATTR_INT, "-1"}},
     .summary = "Softmax along an axis."},
    {.onnx_type = "LogSoftmax",
     .name = "log_softmax",
     .min_opset = 1,
     .operands = {{"input", MOAI_ARITY_SINGLE}},
     .results = {{"output", MOAI_ARITY_SINGLE}},
     .attrs = {{"axis", MOAI_ATTR_INT, "-1"}},
     .summary = "Log of softmax along an axis."},
    {.onnx_type = "SoftmaxCrossEntropyLoss",
     .name = "softmax_cross_entropy_loss",
     .min_opset = 12,
     .operands = {{"scores", MOAI_ARITY_SINGLE}, {"labels", MOAI_ARITY_SINGLE}, {"weights", MOAI_ARITY_OPTIONAL}},
     .results = {{"output", MOAI_ARITY_SINGLE}, {"log_prob", MOAI_ARITY_OPTIONAL}},
     .attrs = {{"reduction", MOAI_ATTR_STRING, "mean"},
               {"ignore_index", MOAI_ATTR_INT, NULL}},
     .summary = "Cross-entropy of softmax(scores) against labels."},
    {.onnx_type = "Trilu",
     .name = "trilu",
     .min_opset = 14,
     .operands = {{"input", MOAI_ARITY_SINGLE}, {"k", MOAI_ARITY_OPTIONAL}},
     .results = {{"output", MOAI_ARITY_SINGLE}},
     .attrs = {{"upper", MOAI_ATTR_INT, "1"}},
     .summary = "Upper or lower triangle."},
    {.onnx_type = "Range",
     .name = "range",
     .min_opset = 11,
     .operands = {{"start", MOAI_ARITY_SINGLE}, {"limit", MOAI_ARITY_SINGLE}, {"delta", MOAI_ARITY_SINGLE}},
     .results = {{"output", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_NO_GRAD,
     .summary = "start, start+delta, ... below limit."},
    {.onnx_type = "CumSum",
     .name = "cumsum",
     .min_opset = 11,
     .operands = {{"x", MOAI_ARITY_SINGLE}, {"axis", MOAI_ARITY_SINGLE}},
     .results = {{"y", MOAI_ARITY_SINGLE}},
     .attrs = {{"exclusive", MOAI_ATTR_INT, "0"},
               {"reverse", MOAI_ATTR_INT, "0"}},
     .summary = "Cumulative sum along an axis."},
    {.onnx_type = "Identity",
     .name = "identity",
     .min_opset = 1,
     .operands = {{"input", MOAI_ARITY_SINGLE}},
     .results = {{"output", MOAI_ARITY_SINGLE}},
     .summary = "Returns its input."},
    {.onnx_type = "Conv",
     .name = "conv",
     .min_opset = 1,
     .operands = {{"x", MOAI_ARITY_SINGLE}, {"w", MOAI_ARITY_SINGLE}, {"b", MOAI_ARITY_OPTIONAL}},
     .results = {{"y", MOAI_ARITY_SINGLE}},
     .attrs = {{"auto_pad", MOAI_ATTR_STRING, "NOTSET"},
               {"dilations", MOAI_ATTR_INTS, NULL},
               {"group", MOAI_ATTR_INT, "1"},
               {"kernel_shape", MOAI_ATTR_INTS, NULL},
               {"pads", MOAI_ATTR_INTS, NULL},
               {"strides", MOAI_ATTR_INTS, NULL}},
     .summary = "N-d convolution."},
    {.onnx_type = "MaxPool",
     .name = "max_pool",
     .min_opset = 1,
     .operands = {{"x", MOAI_ARITY_SINGLE}},
     .results = {{"y", MOAI_ARITY_SINGLE}, {"indices", MOAI_ARITY_OPTIONAL}},
     .attrs = {{"auto_pad", MOAI_ATTR_STRING, "NOTSET"},
               {"ceil_mode", MOAI_ATTR_INT, "0"},
               {"dilations", MOAI_ATTR_INTS, NULL},
               {"kernel_shape", MOAI_ATTR_INTS, MOAI_ATTR_REQUIRED},
               {"pads", MOAI_ATTR_INTS, NULL},
               {"storage_order", MOAI_ATTR_INT, "0"},
               {"strides", MOAI_ATTR_INTS, NULL}},
     .summary = "Max pooling."},
    {.onnx_type = "AveragePool",
     .name = "average_pool",
     .min_opset = 1,
     .operands = {{"x", MOAI_ARITY_SINGLE}},
     .results = {{"y", MOAI_ARITY_SINGLE}},
     .attrs = {{"auto_pad", MOAI_ATTR_STRING, "NOTSET"},
               {"ceil_mode", MOAI_ATTR_INT, "0"},
               {"count_include_pad", MOAI_ATTR_INT, "0"},
               {"dilations", MOAI_ATTR_INTS, NULL},
               {"kernel_shape", MOAI_ATTR_INTS, MOAI_ATTR_REQUIRED},
               {"pads", MOAI_ATTR_INTS, NULL},
               {"strides", MOAI_ATTR_INTS, NULL}},
     .summary = "Average pooling."},
    {.onnx_type = "GlobalAveragePool",
     .name = "global_average_pool",
     .min_opset = 1,
     .operands = {{"x", MOAI_ARITY_SINGLE}},
     .results = {{"y", MOAI_ARITY_SINGLE}},
     .summary = "Mean over all spatial axes."},
    {.onnx_type = "BatchNormalization",
     .name = "batch_normalization",
     .min_opset = 1,
     .operands = {{"x", MOAI_ARITY_SINGLE}, {"scale", MOAI_ARITY_SINGLE}, {"b", MOAI_ARITY_SINGLE}, {"input_mean", MOAI_ARITY_SINGLE}, {"input_var", MOAI_ARITY_SINGLE}},
     .results = {{"y", MOAI_ARITY_SINGLE}, {"running_mean", MOAI_ARITY_OPTIONAL}, {"running_var", MOAI_ARITY_OPTIONAL}},
     .attrs = {{"epsilon", MOAI_ATTR_FLOAT, "1e-05"},
               {"momentum", MOAI_ATTR_FLOAT, "0.9"},
               {"training_mode", MOAI_ATTR_INT, "0"}},
     .summary = "Batch normalization (inference or training mode)."},
    {.onnx_type = "LayerNormalization",
     .name = "layer_normalization",
     .min_opset = 17,
     .operands = {{"x", MOAI_ARITY_SINGLE}, {"scale", MOAI_ARITY_SINGLE}, {"b", MOAI_ARITY_OPTIONAL}},
     .results = {{"y", MOAI_ARITY_SINGLE}, {"mean", MOAI_ARITY_OPTIONAL}, {"inv_std_dev", MOAI_ARITY_OPTIONAL}},
     .attrs = {{"axis", MOAI_ATTR_INT, "-1"},
               {"epsilon", MOAI_ATTR_FLOAT, "1e-05"},
               {"stash_type", MOAI_ATTR_INT, "1"}},
     .summary = "Layer normalization over the trailing axes from `axis`."},
    {.onnx_type = "Flatten",
     .name = "flatten",
     .min_opset = 1,
     .operands = {{"input", MOAI_ARITY_SINGLE}},
     .results = {{"output", MOAI_ARITY_SINGLE}},
     .attrs = {{"axis", MOAI_ATTR_INT, "1"}},
     .summary = "Flattens to 2-D at an axis."},
    {.onnx_type = "Dropout",
     .name = "dropout",
     .min_opset = 1,
     .operands = {{"data", MOAI_ARITY_SINGLE}, {"ratio", MOAI_ARITY_OPTIONAL}, {"training_mode", MOAI_ARITY_OPTIONAL}},
     .results = {{"output", MOAI_ARITY_SINGLE}, {"mask", MOAI_ARITY_OPTIONAL}},
     .attrs = {{"seed", MOAI_ATTR_INT, NULL}},
     .flags = MOAI_OP_FLAG_RANDOM,
     .summary = "Dropout (identity unless training_mode)."},
    {.onnx_type = "Clip",
     .name = "clip",
     .min_opset = 1,
     .operands = {{"input", MOAI_ARITY_SINGLE}, {"min", MOAI_ARITY_OPTIONAL}, {"max", MOAI_ARITY_OPTIONAL}},
     .results = {{"output", MOAI_ARITY_SINGLE}},
     .summary = "Clamps to [min, max]."},
    {.onnx_type = "Split",
     .name = "split",
     .min_opset = 1,
     .operands = {{"input", MOAI_ARITY_SINGLE}, {"split", MOAI_ARITY_OPTIONAL}},
     .results = {{"outputs", MOAI_ARITY_VARIADIC}},
     .attrs = {{"axis", MOAI_ATTR_INT, "0"},
               {"num_outputs", MOAI_ATTR_INT, NULL}},
     .summary = "Splits along an axis."},
    {.onnx_type = "Max",
     .name = "max",
     .min_opset = 1,
     .operands = {{"data_0", MOAI_ARITY_VARIADIC}},
     .results = {{"max", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE,
     .summary = "Elementwise maximum of the inputs."},
    {.onnx_type = "Min",
     .name = "min",
     .min_opset = 1,
     .operands = {{"data_0", MOAI_ARITY_VARIADIC}},
     .results = {{"min", MOAI_ARITY_SINGLE}},
     .flags = MOAI_OP_FLAG_ELEMENTWISE,
     .summary = "Elementwise minimum of the inputs."},
};

const moai_op_def_t *moai_op_defs(size_t *out_count) {
  *out_count = sizeof(kOpDefs) / sizeof(kOpDefs[0]);
  return kOpDefs;
}

const moai_op_def_t *moai_op_def_find_onnx(const char *onnx_type) {
  for (size_t i = 0; i < sizeof(kOpDefs) / sizeof(kOpDefs[0]); ++i) {
    if (kOpDefs[i].onnx_type && strcmp(kOpDefs[i].onnx_type, onnx_type) == 0)
      return &kOpDefs[i];
  }
  return NULL;
}

const moai_op_def_t *moai_op_def_find(const char *name, size_t len) {
  if (len > 5 && strncmp(name, "moai.", 5) == 0) {
    name += 5;
    len -= 5;
  }
  for (size_t i = 0; i < sizeof(kOpDefs) / sizeof(kOpDefs[0]); ++i) {
    if (strlen(kOpDefs[i].name) == len &&
        strncmp(kOpDefs[i].name, name, len) == 0)
      return &kOpDefs[i];
  }
  return NULL;
}

size_t moai_op_def_operand_count(const moai_op_def_t *def) {
  size_t n = 0;
  while (n < MOAI_OP_MAX_OPERANDS && def->operands[n].name) ++n;
  return n;
}

size_t moai_op_def_result_count(const moai_op_def_t *def) {
  size_t n = 0;
  while (n < MOAI_OP_MAX_RESULTS && def->results[n].name) ++n;
  return n;
}

static bool needs_segments(const moai_value_def_t *values, size_t count) {
  size_t non_single = 0;
  for (size_t i = 0; i < count; ++i) {
    if (values[i].arity == MOAI_ARITY_VARIADIC) return true;
    if (values[i].arity != MOAI_ARITY_SINGLE) ++non_single;
  }
  return non_single > 1;
}

bool moai_op_def_needs_operand_segments(const moai_op_def_t *def) {
  return needs_segments(def->operands, moai_op_def_operand_count(def));
}

bool moai_op_def_needs_result_segments(const moai_op_def_t *def) {
  return needs_segments(def->results, moai_op_def_result_count(def));
}

static const moai_value_def_t *values_of(const moai_op_def_t *def,
                                         bool results, size_t *out_count) {
  *out_count = results ? moai_op_def_result_count(def)
                       : moai_op_def_operand_count(def);
  return results ? def->results : def->operands;
}

size_t moai_op_def_irdl_slots(const moai_op_def_t *def, bool results) {
  size_t n = 0, slots = 0;
  const moai_value_def_t *v = values_of(def, results, &n);
  for (size_t i = 0; i < n; ++i)
    slots += v[i].arity == MOAI_ARITY_VARIADIC ? MOAI_VARIADIC_SLOTS : 1;
  return slots;
}

bool moai_op_def_encode_segments(const moai_op_def_t *def, bool results,
                                 const int32_t *counts, int32_t *out_sizes,
                                 size_t cap, size_t *out_count) {
  size_t n = 0, k = 0;
  const moai_value_def_t *v = values_of(def, results, &n);
  for (size_t i = 0; i < n; ++i) {
    int32_t c = counts[i];
    if (v[i].arity == MOAI_ARITY_VARIADIC) {
      if (c < 0 || c > MOAI_VARIADIC_SLOTS || k + MOAI_VARIADIC_SLOTS > cap)
        return false;
      for (int32_t j = 0; j < MOAI_VARIADIC_SLOTS; ++j)
        out_sizes[k++] = j < c ? 1 : 0;
    } else {
      if (k + 1 > cap || c < 0 || c > 1 ||
          (v[i].arity == MOAI_ARITY_SINGLE && c != 1))
        return false;
      out_sizes[k++] = c;
    }
  }
  *out_count = k;
  return true;
}

bool moai_op_def_decode_segments(const moai_op_def_t *def, bool results,
                                 const int32_t *sizes, size_t n_sizes,
                                 int32_t *out_counts) {
  size_t n = 0, k = 0;
  const moai_value_def_t *v = values_of(def, results, &n);
  if (n_sizes != moai_op_def_irdl_slots(def, results)) return false;
  for (size_t i = 0; i < n; ++i) {
    if (v[i].arity == MOAI_ARITY_VARIADIC) {
      int32_t c = 0;
      bool gap = false;
      for (int32_t j = 0; j < MOAI_VARIADIC_SLOTS; ++j, ++k) {
        if (sizes[k] < 0 || sizes[k] > 1) return false;
        if (sizes[k] == 1) {
          if (gap) return false; /* values must fill slots from the first */
          ++c;
        } else {
          gap = true;
        }
      }
      out_counts[i] = c;
    } else {
      int32_t c = sizes[k++];
      if (c < 0 || c > 1 || (v[i].arity == MOAI_ARITY_SINGLE && c != 1))
        return false;
      out_counts[i] = c;
    }
  }
  return true;
}

const moai_attr_def_t *moai_op_def_find_attr(const moai_op_def_t *def,
                                             const char *name) {
  for (size_t i = 0; i < MOAI_OP_MAX_ATTRS && def->attrs[i].name; ++i)
    if (strcmp(def->attrs[i].name, name) == 0) return &def->attrs[i];
  return NULL;
}
