/* The TorchScript frontend: reads a TorchScript archive (torch.jit.save of
 * a traced or scripted module, `.pt`/`.pth`) into a module in the moai
 * dialect, the same as the ONNX frontend produces for the model's ONNX
 * export: one `func.func @main` whose arguments are forward's tensor
 * arguments (names in `moai.name`: the argument names of forward) and
 * whose results are its tensor results ("output", or "output_<i>" for a
 * tuple); parameters become `moai.weight` ops named by the module hierarchy
 * ("model.layers.0.self_attn.q_proj.weight"), trainable, storage "zip"
 * (file = the archive, entry = "data/<key>", offset, length); buffers
 * become frozen weights (or constants when small); every op's location is
 * the TorchScript source line (file "m.pt:code/__torch__/m.py", line).
 *
 * Errors name the archive and, for code, the source file, line and
 * operator: "m.pt: code/__torch__/m.py:12: unsupported operator
 * torch.foo". */
#ifndef MOAI_FRONTENDS_TORCHSCRIPT_TS_IMPORT_H
#define MOAI_FRONTENDS_TORCHSCRIPT_TS_IMPORT_H

#include "base/status.h"
#include "mlir-c/IR.h"
#include "onnx/onnx_import.h"

#ifdef __cplusplus
extern "C" {
#endif

/* `options`: the ONNX frontend's options, with the same meaning where they
 * apply: trainable/frozen lists by parameter name; input_shapes
 * "NAME=DIMS[:DTYPE]" give each tensor argument of forward its shape and
 * element type (float32 when DTYPE is left out; int64, int32, float64,
 * bool), required for every tensor argument since an archive records no
 * shapes (an argument without one is an error that says how to pass it);
 * dim_values do not apply. May be NULL. */
moai_status_t moai_ts_import_file(MlirContext ctx, const char *path,
                                  const moai_onnx_import_options_t *options,
                                  MlirModule *out_module) MOAI_MUST_USE;

#ifdef __cplusplus
}
#endif

#endif /* MOAI_FRONTENDS_TORCHSCRIPT_TS_IMPORT_H */
