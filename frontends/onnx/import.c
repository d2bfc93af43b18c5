#include "onnx/onnx_import.h"

/* Placeholder until the importer lands. */
moai_status_t moai_onnx_import_file(MlirContext ctx, const char *path,
                                    const moai_onnx_import_options_t *options,
                                    moai_allocator_t allocator,
                                    MlirModule *out_module) {
  return MOAI_STATUS(MOAI_UNIMPLEMENTED, "%s: importer not built", path);
}

moai_status_t moai_onnx_import_buffer(MlirContext ctx, const void *data,
                                      size_t size, const char *display_name,
                                      const char *base_dir,
                                      const moai_onnx_import_options_t *options,
                                      moai_allocator_t allocator,
                                      MlirModule *out_module) {
  return MOAI_STATUS(MOAI_UNIMPLEMENTED, "%s: importer not built", display_name);
}
