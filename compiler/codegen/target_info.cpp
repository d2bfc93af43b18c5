// What a CPU name and feature string mean to LLVM's x86 backend: the one
// question the LLVM-C API cannot answer (it has no MCSubtargetInfo), asked
// through a few lines of C++ in the way compiler/registry/register.cpp wraps
// pass registration. Used by target.c to validate --target-cpu and
// --target-features and to list the features a binary for a named CPU may
// use (for the manifest).
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/TargetParser/Triple.h"

namespace {

char *copy_string(const std::string &s) {
  char *out = static_cast<char *>(std::malloc(s.size() + 1));
  if (out) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

bool known_feature(const llvm::MCSubtargetInfo &sti, llvm::StringRef name) {
  for (const llvm::SubtargetFeatureKV &kv : sti.getAllProcessorFeatures())
    if (name == kv.Key) return true;
  return false;
}

}  // namespace

extern "C" int moai_llvm_cpu_features(const char *triple, const char *cpu,
                                      const char *features,
                                      char **out_features, char **out_error) {
  std::string error;
  llvm::Triple t(triple);
  const llvm::Target *target = llvm::TargetRegistry::lookupTarget(t, error);
  if (!target) {
    *out_error = copy_string("no LLVM target for '" + std::string(triple) +
                             "': " + error);
    return 1;
  }
  // Validate with the bare CPU first: unknown names would only be warned
  // about (on stderr) by LLVM.
  std::unique_ptr<llvm::MCSubtargetInfo> probe(
      target->createMCSubtargetInfo(t, "generic", ""));
  if (!probe) {
    *out_error = copy_string("LLVM cannot describe subtargets of " +
                             std::string(triple));
    return 1;
  }
  if (!probe->isCPUStringValid(cpu)) {
    *out_error = copy_string("unknown target CPU '" + std::string(cpu) +
                             "' for " + triple +
                             " (LLVM names such as x86-64-v3, skylake-avx512, "
                             "znver4)");
    return 1;
  }
  llvm::StringRef rest(features);
  while (!rest.empty()) {
    auto [item, tail] = rest.split(',');
    rest = tail;
    item = item.trim();
    if (item.empty()) continue;
    if (item[0] != '+' && item[0] != '-') {
      *out_error = copy_string("target feature '" + item.str() +
                               "' must start with + or -");
      return 1;
    }
    if (!known_feature(*probe, item.drop_front())) {
      *out_error = copy_string("unknown target feature '" +
                               item.drop_front().str() + "' for " + triple);
      return 1;
    }
  }
  std::unique_ptr<llvm::MCSubtargetInfo> sti(
      target->createMCSubtargetInfo(t, cpu, features));
  if (!sti) {
    *out_error = copy_string("LLVM cannot describe CPU '" + std::string(cpu) + "'");
    return 1;
  }
  std::string list;
  for (const llvm::SubtargetFeatureKV &kv : sti->getEnabledProcessorFeatures()) {
    if (!list.empty()) list += ',';
    list += '+';
    list += kv.Key;
  }
  *out_features = copy_string(list);
  return *out_features ? 0 : 1;
}
