#include "shape_infer/shape_infer.h"

#include "ir/pass_util.h"

/* Placeholder body replaced by the real implementation. */
moai_shape_infer_options_t moai_shape_infer_options_default(void) {
  return (moai_shape_infer_options_t){.max_fold_elements = 1 << 16,
                                      .require_static = true};
}

bool moai_shape_infer_op(MlirOperation op) { (void)op; return true; }

bool moai_shape_infer_run(MlirOperation root,
                          const moai_shape_infer_options_t *options) {
  (void)root; (void)options; return true;
}

static void run_pass(MlirOperation op, MlirExternalPass pass, const void *options) {
  if (!moai_shape_infer_run(op, options)) mlirExternalPassSignalFailure(pass);
}

static _Alignas(8) const char kTypeId = 0;

MlirPass moai_shape_infer_pass_create(const moai_shape_infer_options_t *options) {
  static const moai_external_pass_t def = {
      .type_id_storage = &kTypeId, .name = "MoaiShapeInfer",
      .argument = "moai-shape-infer", .description = "static shapes and dtypes",
      .op_name = "builtin.module", .run = run_pass};
  return moai_external_pass_create(&def, options, sizeof(*options));
}
