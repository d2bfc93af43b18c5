/* Writes the plan of the hand-built device binary (test_device.c) into a
 * directory, with the runtime's own writers: weights-0.safetensors,
 * manifest.json and a copy of the binary as device-0.so. Shared by the
 * loader's unit tests and make_test_plan (moai-run's CLI tests).
 *
 *   inputs a, b: float32 [2,3]; output y = a + b + w: float32 [2,3]
 *   weights: step int64 [2] = {7, 9}; w float32 [2,3] = {10, 20, ..., 60} */
#ifndef MOAI_TESTS_TEST_PLAN_BUILDER_H
#define MOAI_TESTS_TEST_PLAN_BUILDER_H

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "io/safetensors.h"
#include "io/sha256.h"
#include "loader/cpu_features.h"
#include "loader/manifest.h"

static const float k_tp_w[6] = {10, 20, 30, 40, 50, 60};
static const int64_t k_tp_step[2] = {7, 9};

static inline moai_status_t tp_fill(void *user, size_t index, void *dst, uint64_t nbytes) {
  (void)user;
  memcpy(dst, index == 0 ? (const void *)k_tp_w : (const void *)k_tp_step, (size_t)nbytes);
  return moai_ok_status();
}

static inline moai_status_t tp_copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "rb");
  if (!in) return MOAI_STATUS(MOAI_NOT_FOUND, "%s: %s", from, strerror(errno));
  FILE *out = fopen(to, "wb");
  if (!out) {
    fclose(in);
    return MOAI_STATUS(MOAI_IO_ERROR, "%s: %s", to, strerror(errno));
  }
  char buf[65536];
  size_t n;
  int bad = 0;
  while ((n = fread(buf, 1, sizeof(buf), in)) > 0) bad |= fwrite(buf, 1, n, out) != n;
  bad |= ferror(in);
  fclose(in);
  bad |= fclose(out) != 0;
  return bad ? MOAI_STATUS(MOAI_IO_ERROR, "copying %s to %s failed", from, to)
             : moai_ok_status();
}

/* The weights file of the test plan (layout puts step at 0, w at 16). */
static inline moai_status_t tp_write_weights(const char *path) {
  moai_safetensors_entry_t e[2] = {
      {.name = "w", .dtype = MOAI_ABI_F32, .rank = 2, .dims = {2, 3}},
      {.name = "step", .dtype = MOAI_ABI_I64, .rank = 1, .dims = {2}},
  };
  uint64_t size = 0;
  moai_safetensors_layout(e, 2, &size);
  if (size != 40 || e[1].offset != 0 || e[0].offset != 16)
    return MOAI_STATUS(MOAI_INTERNAL, "unexpected weights layout");
  const char *kv[] = {"format", "pt", "moai.device", "0"};
  return moai_safetensors_write(path, e, 2, kv, 2, tp_fill, NULL);
}

/* Writes the whole plan into `dir` (created if missing). */
static inline moai_status_t tp_write_plan(const char *dir, const char *device_so) {
  char so[1024], st[1024], manifest_path[1024];
  snprintf(so, sizeof(so), "%s/device-0.so", dir);
  snprintf(st, sizeof(st), "%s/weights-0.safetensors", dir);
  snprintf(manifest_path, sizeof(manifest_path), "%s/manifest.json", dir);
  if (mkdir(dir, 0777) != 0 && errno != EEXIST)
    return MOAI_STATUS(MOAI_IO_ERROR, "%s: %s", dir, strerror(errno));
  MOAI_RETURN_IF_ERROR(tp_copy_file(device_so, so));
  MOAI_RETURN_IF_ERROR(tp_write_weights(st));
  moai_tensor_desc_t io[3] = {
      {.name = "a", .dtype = MOAI_ABI_F32, .rank = 2, .dims = {2, 3}, .nbytes = 24},
      {.name = "b", .dtype = MOAI_ABI_F32, .rank = 2, .dims = {2, 3}, .nbytes = 24},
      {.name = "y", .dtype = MOAI_ABI_F32, .rank = 2, .dims = {2, 3}, .nbytes = 24},
  };
  moai_manifest_device_t dev = {.index = 0, .binary = "device-0.so",
                                .weights = "weights-0.safetensors", .arena_bytes = 256,
                                .weights_bytes = 40, .const_bytes = 0,
                                .live_lower_bound_bytes = 96};
  MOAI_RETURN_IF_ERROR(moai_sha256_file(so, dev.binary_sha256));
  MOAI_RETURN_IF_ERROR(moai_sha256_file(st, dev.weights_sha256));
  /* Features the host has, so the plan loads here. */
  const char *features[2];
  size_t n_features = 0;
  if (moai_cpu_has_feature("sse4.2")) features[n_features++] = "sse4.2";
  if (moai_cpu_has_feature("avx2")) features[n_features++] = "avx2";
  moai_manifest_t m = {
      .format_version = 1, /* single device, no mesh: format 1, as moaicc writes it */
      .abi_version = MOAI_ABI_VERSION,
      .moai_version = "0.1.0",
#if defined(__x86_64__)
      .target_triple = "x86_64-pc-linux-gnu",
#else
      .target_triple = "aarch64-unknown-linux-gnu",
#endif
      .target_cpu = "generic",
      .feature_count = n_features,
      .features = features,
      .model_source = "add.onnx",
      .model_opset = 17,
      .model_producer = "test_plan_builder.h",
      .input_count = 2,
      .output_count = 1,
      .device_count = 1,
      .inputs = io,
      .outputs = io + 2,
      .devices = &dev,
  };
  return moai_manifest_write(manifest_path, &m);
}

#endif /* MOAI_TESTS_TEST_PLAN_BUILDER_H */
