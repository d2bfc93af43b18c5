# Third-party dependencies, all from Debian 12 (scripts/setup.sh installs them).
set(MOAI_LLVM_ROOT /usr/lib/llvm-22 CACHE PATH "Root of the LLVM/MLIR 22 install")
find_package(MLIR REQUIRED CONFIG PATHS ${MOAI_LLVM_ROOT}/lib/cmake/mlir NO_DEFAULT_PATH)
if(NOT LLVM_VERSION_MAJOR EQUAL 22)
  message(FATAL_ERROR "moai needs LLVM/MLIR 22, found ${LLVM_VERSION_MAJOR} at ${MLIR_DIR}")
endif()
message(STATUS "moai: MLIR ${LLVM_PACKAGE_VERSION} from ${MLIR_DIR}")

find_package(PkgConfig REQUIRED)
pkg_check_modules(PROTOBUF_C REQUIRED IMPORTED_TARGET libprotobuf-c)
pkg_check_modules(CUNIT IMPORTED_TARGET cunit)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(LIBZIP REQUIRED IMPORTED_TARGET libzip)
find_package(OpenMP REQUIRED COMPONENTS C)
find_program(PROTOC_C protoc-c REQUIRED)
set(MOAI_ONNX_PROTO /usr/include/onnx/onnx.proto CACHE FILEPATH "ONNX's onnx.proto (libonnx-dev)")
if(NOT EXISTS ${MOAI_ONNX_PROTO})
  message(FATAL_ERROR "moai: ${MOAI_ONNX_PROTO} not found; run scripts/setup.sh (package libonnx-dev)")
endif()

# The MLIR C API ships only as static archives resolved against libMLIR.so.
# They are linked by file path (never through the imported targets, which
# would drag in static MLIR) into exactly one shared library: libmoai.so.
set(MOAI_MLIR_CAPI_LIBS
  MLIRCAPIIR MLIRCAPIRegisterEverything MLIRCAPIIRDL MLIRCAPITransforms
  MLIRCAPIConversion MLIRCAPIFunc MLIRCAPIArith MLIRCAPILLVM MLIRCAPITarget
  MLIRCAPIDebug)
set(MOAI_MLIR_CAPI_FILES)
foreach(lib ${MOAI_MLIR_CAPI_LIBS})
  list(APPEND MOAI_MLIR_CAPI_FILES ${MOAI_LLVM_ROOT}/lib/lib${lib}.a)
endforeach()

# Interface target for code that includes MLIR C headers.
add_library(moai_mlir_headers INTERFACE)
target_include_directories(moai_mlir_headers SYSTEM INTERFACE ${MLIR_INCLUDE_DIRS} ${LLVM_INCLUDE_DIRS})

set(CMAKE_BUILD_RPATH "${MOAI_LLVM_ROOT}/lib;${PROJECT_BINARY_DIR}/lib")
set(CMAKE_INSTALL_RPATH "${MOAI_LLVM_ROOT}/lib;$ORIGIN/../lib")

find_program(MOAI_FILECHECK FileCheck PATHS ${MOAI_LLVM_ROOT}/bin NO_DEFAULT_PATH)
find_program(MOAI_LIT lit PATHS ${MOAI_LLVM_ROOT}/bin NO_DEFAULT_PATH)
find_program(MOAI_MLIR_OPT mlir-opt PATHS ${MOAI_LLVM_ROOT}/bin NO_DEFAULT_PATH)
