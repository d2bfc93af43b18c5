# lit configuration for moai's pass tests (.mlir files with RUN lines).
import os
import lit.formats

config.name = "moai"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.join(config.moai_src_root, "tests", "lit")
config.test_exec_root = os.path.join(config.moai_obj_root, "tests", "lit")
config.excludes = ["lit.cfg.py", "lit.site.cfg.py.in", "Inputs"]

bin_dir = os.path.join(config.moai_obj_root, "bin")
lib_dir = os.path.join(config.moai_obj_root, "lib")
config.environment["PATH"] = os.pathsep.join(
    [bin_dir, config.llvm_tools_dir, config.environment.get("PATH", "")])
for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "LD_PRELOAD"):
    if var in os.environ:
        config.environment[var] = os.environ[var]
config.substitutions.append(("%moai_lib", lib_dir))
config.substitutions.append(("%moai_src", config.moai_src_root))
config.substitutions.append(("%moai_irdl", os.path.join(config.moai_obj_root, "share", "moai", "moai.irdl.mlir")))
config.substitutions.append(("%mlir_opt", os.path.join(config.llvm_tools_dir, "mlir-opt")))
config.substitutions.append(("%models", os.path.join(config.moai_src_root, "examples")))

# In a sanitizer build moai's libraries need the ASan runtime loaded first,
# which upstream mlir-opt (not instrumented) cannot do: plugin tests run in the
# normal build only.
if config.moai_sanitize:
    config.available_features.add("asan")
