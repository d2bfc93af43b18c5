#include "driver/pipeline.h"

#include "ir/strbuf.h"
#include "mlir-c/Pass.h"
#include "registry/registry.h"

moai_status_t moai_pipeline_run(MlirModule module,
                                const moai_pipeline_options_t *options,
                                moai_diag_sink_t *diag) {
  moai_register_passes();
  MlirContext ctx = mlirModuleGetContext(module);
  MlirPassManager pm = mlirPassManagerCreate(ctx);
  mlirPassManagerEnableVerifier(pm, options->verify_each);
  if (options->print_ir_after_all || options->print_ir_before_all) {
    /* IR printing needs single-threaded execution to print in order. */
    MlirOpPrintingFlags flags = mlirOpPrintingFlagsCreate();
    mlirPassManagerEnableIRPrinting(pm, options->print_ir_before_all,
                                    options->print_ir_after_all,
                                    /*printModuleScope=*/true,
                                    /*printAfterOnlyOnChange=*/false,
                                    /*printAfterOnlyOnFailure=*/false, flags,
                                    mlirStringRefCreateFromCString(""));
    mlirOpPrintingFlagsDestroy(flags);
  }
  moai_strbuf_t err;
  moai_strbuf_init(&err, moai_allocator_system());
  MlirOpPassManager opm = mlirPassManagerGetAsOpPassManager(pm);
  MlirLogicalResult parsed = mlirParsePassPipeline(
      opm, mlirStringRefCreateFromCString(options->pipeline),
      moai_strbuf_mlir_callback, &err);
  if (mlirLogicalResultIsFailure(parsed)) {
    moai_status_t s = MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                                  "invalid pass pipeline '%s': %s",
                                  options->pipeline, err.data ? err.data : "");
    moai_strbuf_reset(&err);
    mlirPassManagerDestroy(pm);
    return s;
  }
  moai_strbuf_reset(&err);
  MlirLogicalResult ran =
      mlirPassManagerRunOnOp(pm, mlirModuleGetOperation(module));
  mlirPassManagerDestroy(pm);
  if (mlirLogicalResultIsFailure(ran))
    return moai_diag_take_status(diag, MOAI_INVALID_ARGUMENT,
                                 "the pass pipeline failed");
  return moai_ok_status();
}

moai_status_t moai_module_verify(MlirModule module, moai_diag_sink_t *diag) {
  if (mlirOperationVerify(mlirModuleGetOperation(module)))
    return moai_ok_status();
  return moai_diag_take_status(diag, MOAI_INVALID_ARGUMENT,
                               "the module does not verify");
}
