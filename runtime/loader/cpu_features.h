/* The CPU features a plan may require (manifest.json target.features).
 *
 * One canonical set, named as LLVM's x86 target features (which the compiler
 * targets) and as GCC/Clang's __builtin_cpu_supports (which the runtime uses
 * to check them, including OS support for the AVX-512 and AMX state). The
 * compiler writes only these names; the loader refuses a plan listing a name
 * outside the set, or one this CPU lacks. Append only. */
#ifndef MOAI_LOADER_CPU_FEATURES_H
#define MOAI_LOADER_CPU_FEATURES_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(name): every feature of the set, in a fixed order. */
#define MOAI_CPU_FEATURE_LIST(X)                                              \
  X("sse4.1") X("sse4.2") X("popcnt") X("avx") X("avx2") X("fma") X("f16c")   \
  X("bmi") X("bmi2") X("avx512f") X("avx512bw") X("avx512vl") X("avx512dq")   \
  X("avx512cd") X("avx512vnni") X("avx512bf16") X("avx512fp16")               \
  X("avx512vbmi") X("avx512ifma") X("avxvnni") X("amx-tile") X("amx-int8")   \
  X("amx-bf16")

/* Number of features in the set, and the name of the i-th (NULL past it). */
size_t moai_cpu_feature_count(void);
const char *moai_cpu_feature_name(size_t i);

/* Whether `name` is in the set. */
bool moai_cpu_feature_known(const char *name);

/* Whether this CPU (and OS) supports `name`; false for names not in the set
 * and on hosts that are not x86-64. */
bool moai_cpu_has_feature(const char *name);

/* Lists (into buf, ", "-separated, always NUL-terminated) the features among
 * features[0..n) that the CPU lacks, and returns how many. `cpu` NULL means
 * this CPU; otherwise a comma-separated feature list describing another. */
size_t moai_cpu_features_missing(const char *const *features, size_t n, const char *cpu,
                                 char *buf, size_t size);

/* Writes the host's features as "avx,avx2,fma" (set order) into buf, always
 * NUL-terminated; returns the length the full list needs. */
size_t moai_cpu_features_host(char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_LOADER_CPU_FEATURES_H */
