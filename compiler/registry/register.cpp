// The only C++ in moai: the C API can create a pass but cannot register it
// under a name, which textual pipelines and mlir-opt plugins need.
#include <memory>
#include <mutex>

#include "mlir-c/RegisterEverything.h"
#include "mlir/CAPI/Pass.h"
#include "mlir/Pass/PassRegistry.h"
#include "registry.h"

extern "C" void moai_register_passes(void) {
  static std::once_flag once;
  std::call_once(once, [] {
    mlirRegisterAllPasses();
    size_t count = 0;
    const moai_pass_info_t *passes = moai_pass_registry(&count);
    for (size_t i = 0; i < count; ++i) {
      auto create = passes[i].create;
      mlir::registerPass([create]() -> std::unique_ptr<mlir::Pass> {
        return std::unique_ptr<mlir::Pass>(unwrap(create()));
      });
    }
  });
}
