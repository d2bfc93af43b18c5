/* An MLIR pass plugin exposing moai's passes to upstream mlir-opt. The entry
 * point's struct mirrors mlir::PassPluginLibraryInfo (a plain C struct in
 * mlir/Tools/Plugins/PassPlugin.h, API version 1). */
#include <stdint.h>

#include "registry/registry.h"

typedef struct moai_pass_plugin_info_t {
  uint32_t api_version;
  const char *plugin_name;
  const char *plugin_version;
  void (*register_callbacks)(void);
} moai_pass_plugin_info_t;

#define MOAI_MLIR_PLUGIN_API_VERSION 1

__attribute__((visibility("default"))) moai_pass_plugin_info_t
mlirGetPassPluginInfo(void) {
  return (moai_pass_plugin_info_t){MOAI_MLIR_PLUGIN_API_VERSION, "moai",
                                   "0.1.0", moai_register_passes};
}
