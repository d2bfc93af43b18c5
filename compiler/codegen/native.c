/* From the LLVM dialect to a shared object: MLIR's translation to LLVM IR,
 * LLVM's O3 pipeline and code generator through the LLVM-C API (libLLVM),
 * then the system's C compiler driver to link (`cc -shared`). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "llvm-c/Core.h"
#include "llvm-c/Error.h"
#include "llvm-c/Target.h"
#include "llvm-c/TargetMachine.h"
#include "llvm-c/Transforms/PassBuilder.h"
#include "mlir-c/RegisterEverything.h"
#include "mlir-c/Target/LLVMIR.h"

extern char **environ;

/* Sets up the native target once per process (idempotent in LLVM). */
static bool init_native_target(void) {
  return !LLVMInitializeNativeTarget() && !LLVMInitializeNativeAsmPrinter();
}

static moai_status_t take_llvm_error(LLVMErrorRef err, const char *what) {
  char *msg = LLVMGetErrorMessage(err);
  moai_status_t s = MOAI_STATUS(MOAI_INTERNAL, "%s: %s", what, msg ? msg : "?");
  LLVMDisposeErrorMessage(msg);
  return s;
}

static moai_status_t make_target_machine(const moai_target_t *t,
                                         LLVMTargetMachineRef *out_tm) {
  if (!init_native_target())
    return MOAI_STATUS(MOAI_INTERNAL, "LLVM has no native target here");
  LLVMTargetRef target;
  char *err = NULL;
  if (LLVMGetTargetFromTriple(t->triple, &target, &err)) {
    moai_status_t s = MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                                  "no LLVM target for triple '%s': %s",
                                  t->triple, err ? err : "?");
    LLVMDisposeMessage(err);
    return s;
  }
  LLVMTargetMachineRef tm = LLVMCreateTargetMachine(
      target, t->triple, t->cpu, t->features, LLVMCodeGenLevelAggressive,
      LLVMRelocPIC, LLVMCodeModelDefault);
  if (!tm)
    return MOAI_STATUS(MOAI_INTERNAL, "cannot create an LLVM target machine "
                                      "for %s (%s)", t->triple, t->cpu);
  *out_tm = tm;
  return moai_ok_status();
}

moai_status_t moai_codegen_compile(MlirModule llvm_module,
                                   const moai_target_t *target,
                                   const char *object_path,
                                   char **out_llvm_ir) {
  MlirContext ctx = mlirModuleGetContext(llvm_module);
  mlirRegisterAllLLVMTranslations(ctx);
  LLVMTargetMachineRef tm = NULL;
  MOAI_RETURN_IF_ERROR(make_target_machine(target, &tm));
  LLVMContextRef llctx = LLVMContextCreate();
  LLVMModuleRef mod =
      mlirTranslateModuleToLLVMIR(mlirModuleGetOperation(llvm_module), llctx);
  moai_status_t status = moai_ok_status();
  if (!mod) {
    status = MOAI_STATUS(MOAI_INTERNAL,
                         "translating the device module to LLVM IR failed");
    goto done;
  }
  LLVMSetTarget(mod, target->triple);
  LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(mod, layout);
  LLVMDisposeTargetData(layout);
  LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
  LLVMErrorRef err = LLVMRunPasses(mod, "default<O3>", tm, opts);
  LLVMDisposePassBuilderOptions(opts);
  if (err) {
    status = take_llvm_error(err, "LLVM's O3 pipeline failed");
    goto done;
  }
  if (out_llvm_ir) {
    char *ir = LLVMPrintModuleToString(mod);
    *out_llvm_ir = ir ? strdup(ir) : NULL;
    LLVMDisposeMessage(ir);
    if (!*out_llvm_ir) {
      status = MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory printing LLVM IR");
      goto done;
    }
  }
  if (object_path) {
    char *msg = NULL;
    if (LLVMTargetMachineEmitToFile(tm, mod, object_path, LLVMObjectFile, &msg)) {
      status = MOAI_STATUS(MOAI_IO_ERROR, "emitting the object file %s failed: %s",
                           object_path, msg ? msg : "?");
      LLVMDisposeMessage(msg);
      if (out_llvm_ir) {
        free(*out_llvm_ir);
        *out_llvm_ir = NULL;
      }
    }
  }
done:
  if (mod) LLVMDisposeModule(mod);
  LLVMContextDispose(llctx);
  LLVMDisposeTargetMachine(tm);
  return status;
}

/* ---- linking --------------------------------------------------------------- */

moai_status_t moai_codegen_link(const char *object_path, const char *so_path) {
  int pipefd[2];
  if (pipe(pipefd) != 0)
    return MOAI_STATUS(MOAI_IO_ERROR, "pipe: %s", strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addclose(&fa, pipefd[0]);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&fa, pipefd[1]);
  char *argv[] = {"cc", "-shared", "-o", (char *)so_path, (char *)object_path,
                  NULL};
  pid_t pid;
  int rc = posix_spawnp(&pid, "cc", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(pipefd[1]);
  if (rc != 0) {
    close(pipefd[0]);
    if (rc == ENOENT)
      return MOAI_STATUS(MOAI_NOT_FOUND,
                         "no C compiler driver 'cc' on PATH: moaicc links "
                         "device binaries with 'cc -shared' (install gcc or "
                         "clang)");
    return MOAI_STATUS(MOAI_IO_ERROR, "cannot run 'cc': %s", strerror(rc));
  }
  char out[2048];
  size_t len = 0;
  for (;;) {
    char buf[512];
    ssize_t n = read(pipefd[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    size_t take = (size_t)n < sizeof(out) - 1 - len ? (size_t)n : sizeof(out) - 1 - len;
    memcpy(out + len, buf, take);
    len += take;
  }
  out[len] = '\0';
  close(pipefd[0]);
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0)
    return MOAI_STATUS(MOAI_INTERNAL, "linking %s with 'cc -shared' failed:\n%s",
                       so_path, out);
  return moai_ok_status();
}
