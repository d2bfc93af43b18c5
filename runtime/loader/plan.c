/* Opening a plan: every integrity check happens here, before anything runs. */
/* realpath is XSI; memfd_create is Linux (glibc exposes it with _GNU_SOURCE). */
#define _XOPEN_SOURCE 700
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/dtype.h"
#include "io/file.h"
#include "io/sha256.h"
#include "loader/cpu_features.h"
#include "loader/plan_internal.h"

#if defined(__x86_64__)
#define HOST_ARCH "x86_64"
#elif defined(__aarch64__)
#define HOST_ARCH "aarch64"
#else
#define HOST_ARCH "unknown"
#endif

moai_plan_options_t moai_plan_options_default(void) {
  return (moai_plan_options_t){.verify_checksums = true, .cpu_features = NULL, .log = NULL};
}

const char *moai_runtime_version(void) { return MOAI_VERSION_STRING; }

/* "DIR/NAME" into buf. */
static moai_status_t plan_path(const moai_plan_t *plan, const char *name, char *buf,
                               size_t size) {
  if (snprintf(buf, size, "%s/%s", plan->dir, name) >= (int)size)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s/%s: path too long", plan->dir, name);
  return moai_ok_status();
}

static moai_status_t check_dir(const char *dir) {
  struct stat st;
  if (stat(dir, &st) != 0)
    return MOAI_STATUS(errno == ENOENT ? MOAI_NOT_FOUND : MOAI_IO_ERROR,
                       "%s: no such plan directory (%s); write one with moaicc MODEL.onnx -o %s",
                       dir, strerror(errno), dir);
  if (!S_ISDIR(st.st_mode))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: not a directory: a plan is the directory moaicc -o writes", dir);
  return moai_ok_status();
}

/* The manifest's target: this OS and architecture, and every listed CPU
 * feature present. */
static moai_status_t check_target(const moai_plan_t *plan, const char *manifest_path) {
  const moai_manifest_t *m = plan->manifest;
  size_t arch_len = strlen(HOST_ARCH);
  if (strncmp(m->target_triple, HOST_ARCH, arch_len) != 0 ||
      m->target_triple[arch_len] != '-' || !strstr(m->target_triple, "-linux"))
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION,
                       "%s: the plan was compiled for %s, but this machine is %s Linux; "
                       "recompile it for this machine", manifest_path, m->target_triple,
                       HOST_ARCH);
  char missing[512];
  size_t count = moai_cpu_features_missing(m->features, m->feature_count,
                                           plan->options.cpu_features, missing, sizeof(missing));
  if (count)
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION,
                       "%s: the plan was compiled for a CPU with %s, which this machine "
                       "lacks; recompile on/for this machine", manifest_path, missing);
  return moai_ok_status();
}

static moai_status_t verify_sha256(const char *path, const char *expected) {
  char actual[MOAI_SHA256_HEX_SIZE];
  MOAI_RETURN_IF_ERROR(moai_sha256_file(path, actual));
  if (strcmp(actual, expected) != 0)
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: SHA-256 mismatch: the plan was modified after it was written; "
                       "recompile it", path);
  return moai_ok_status();
}

/* Reads a file into the heap (not a mapping: a mapped page could still
 * change if the file is rewritten between hashing and loading). */
static moai_status_t read_whole_file(const char *path, moai_file_map_t *out) {
  FILE *f = fopen(path, "rb");
  if (!f) return MOAI_STATUS(MOAI_NOT_FOUND, "%s: cannot open: %s", path, strerror(errno));
  size_t cap = 1 << 16, len = 0;
  unsigned char *buf = malloc(cap);
  while (buf) {
    size_t n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (n == 0) break;
    if (len == cap) {
      unsigned char *grown = cap > ((size_t)1 << 40) ? NULL : realloc(buf, cap * 2);
      if (!grown) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = grown;
      cap *= 2;
    }
  }
  int failed = ferror(f);
  fclose(f);
  if (!buf || failed) {
    free(buf);
    return MOAI_STATUS(buf ? MOAI_IO_ERROR : MOAI_OUT_OF_MEMORY, "%s: cannot read the file",
                       path);
  }
  out->data = buf;
  out->size = len;
  return moai_ok_status();
}

static moai_status_t verify_sha256_bytes(const char *path, const moai_file_map_t *bytes,
                                         const char *expected) {
  char actual[MOAI_SHA256_HEX_SIZE];
  MOAI_RETURN_IF_ERROR(moai_sha256_buffer(bytes->data, bytes->size, actual));
  if (strcmp(actual, expected) != 0)
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: SHA-256 mismatch: the plan was modified after it was written; "
                       "recompile it", path);
  return moai_ok_status();
}

static bool same_shape(const moai_tensor_t *t, int32_t rank, const int64_t *dims) {
  if (t->rank != rank) return false;
  for (int32_t i = 0; i < rank; ++i)
    if (t->dims[i] != dims[i]) return false;
  return true;
}

/* One input or output of the table against the manifest's. */
static moai_status_t check_io(const char *so, const char *kind, size_t i,
                              const moai_io_desc_t *io, const moai_tensor_desc_t *want,
                              const uint64_t region_size[MOAI_REGION_COUNT]) {
  if (!io->name || strcmp(io->name, want->name) != 0)
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: %s %zu is '%s' in the binary but '%s' in manifest.json; the "
                       "binary does not belong to this plan: recompile it",
                       so, kind, i, io->name ? io->name : "(null)", want->name);
  const moai_tensor_t *t = &io->tensor;
  if (t->dtype != want->dtype || !same_shape(t, want->rank, want->dims))
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: %s '%s' has another dtype or shape in the binary than in "
                       "manifest.json; recompile the plan", so, kind, want->name);
  bool input = kind[0] == 'i';
  if (t->region >= MOAI_REGION_COUNT || (input && t->region != MOAI_REGION_ARENA))
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s: %s '%s' is in region %u, which is not valid for it",
                       so, kind, want->name, t->region);
  if (t->offset > region_size[t->region] || want->nbytes > region_size[t->region] - t->offset)
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s: %s '%s' lies outside its region (%llu + %llu > %llu)",
                       so, kind, want->name, (unsigned long long)t->offset,
                       (unsigned long long)want->nbytes,
                       (unsigned long long)region_size[t->region]);
  return moai_ok_status();
}

/* Every weight the binary addresses exists in the safetensors file, with its
 * dtype and shape, at the offset the binary uses, naturally aligned. */
static moai_status_t check_weights(const char *so, const char *st_path,
                                   const moai_device_table_t *table,
                                   const moai_safetensors_t *weights) {
  uint64_t data_file_offset = moai_safetensors_data_file_offset(weights);
  for (uint32_t i = 0; i < table->num_weights; ++i) {
    const moai_io_desc_t *w = &table->weights[i];
    if (!w->name)
      return MOAI_STATUS(MOAI_DATA_LOSS, "%s: weight %u has no name", so, i);
    const moai_safetensors_entry_t *e = moai_safetensors_find(weights, w->name);
    if (!e)
      return MOAI_STATUS(MOAI_DATA_LOSS,
                         "%s: weight '%s' used by the binary is not in %s; recompile the plan",
                         so, w->name, st_path);
    bool persist = w->tensor.region == MOAI_REGION_PERSIST;
    if ((w->tensor.region != MOAI_REGION_WEIGHTS && !persist) || e->dtype != w->tensor.dtype ||
        !same_shape(&w->tensor, e->rank, e->dims))
      return MOAI_STATUS(MOAI_DATA_LOSS,
                         "%s: weight '%s' has another dtype or shape in %s than in the "
                         "binary; recompile the plan", so, w->name, st_path);
    if (persist) {
      /* A trained weight: its initial value is copied into the persistent
       * region at load (copy_trainable). */
      const moai_device_training_t *tr = table->training;
      if (!tr || w->tensor.offset % 64 || w->tensor.offset > tr->persist_size ||
          e->nbytes > tr->persist_size - w->tensor.offset)
        return MOAI_STATUS(MOAI_DATA_LOSS,
                           "%s: trained weight '%s' lies outside the persistent region; "
                           "recompile the plan", so, w->name);
      continue;
    }
    if (e->offset != w->tensor.offset)
      return MOAI_STATUS(MOAI_DATA_LOSS,
                         "%s: weight '%s' is at data offset %llu in %s but the binary reads "
                         "it at %llu; recompile the plan", so, w->name,
                         (unsigned long long)e->offset, st_path,
                         (unsigned long long)w->tensor.offset);
    if ((data_file_offset + e->offset) % moai_abi_dtype_size(e->dtype) != 0)
      return MOAI_STATUS(MOAI_DATA_LOSS,
                         "%s: weight '%s' is not aligned to its element size; the file was "
                         "not written by moai", st_path, w->name);
  }
  return moai_ok_status();
}

static bool listed(const char *const *names, size_t n, const char *name) {
  for (size_t i = 0; i < n; ++i)
    if (strcmp(names[i], name) == 0) return true;
  return false;
}

/* The training table against the manifest's training object: present iff
 * the manifest has one, the persistent size, the state descriptors (inside
 * the region, 64-byte aligned, sane roles), and the trained weights (those
 * in PERSIST are exactly the manifest's trainable list). */
static moai_status_t check_training(const moai_plan_t *plan, const char *so,
                                    const char *manifest_path,
                                    const moai_device_table_t *t) {
  const moai_manifest_t *m = plan->manifest;
  const moai_device_training_t *tr = t->training;
  if (!m->training && tr)
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: 'training' is null, but %s is a training binary; the manifest "
                       "was edited: recompile the plan", manifest_path, so);
  if (!m->training) return moai_ok_status();
  if (!tr)
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: has a 'training' object, but %s is an inference binary; "
                       "recompile the plan", manifest_path, so);
  if (!tr->update || (tr->num_state && !tr->state))
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s: the training table is incomplete", so);
  if (tr->persist_size != m->train.persist_bytes)
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: 'training.persist_bytes' is %llu, but %s's persistent region is "
                       "%llu bytes; recompile the plan", manifest_path,
                       (unsigned long long)m->train.persist_bytes, so,
                       (unsigned long long)tr->persist_size);
  for (uint32_t i = 0; i < tr->num_state; ++i) {
    const moai_state_desc_t *st = &tr->state[i];
    const moai_tensor_t *x = &st->tensor;
    uint64_t nbytes = 0;
    if (!st->name || st->role < MOAI_STATE_GRAD || st->role > MOAI_STATE_LOSS_WEIGHT ||
        x->region != MOAI_REGION_PERSIST || x->rank < 0 || x->rank > MOAI_MAX_RANK ||
        !moai_shape_nbytes(x->dtype, x->rank, x->dims, &nbytes) || x->offset % 64 ||
        x->offset > tr->persist_size || nbytes > tr->persist_size - x->offset)
      return MOAI_STATUS(MOAI_DATA_LOSS,
                         "%s: training state %u ('%s') is malformed or lies outside the "
                         "persistent region; recompile the plan", so, i,
                         st->name ? st->name : "(null)");
  }
  size_t trained = 0;
  for (uint32_t i = 0; i < t->num_weights; ++i) {
    const moai_io_desc_t *w = &t->weights[i];
    bool persist = w->tensor.region == MOAI_REGION_PERSIST;
    bool want = w->name && listed(m->train.trainable, m->train.trainable_count, w->name);
    if (persist != want)
      return MOAI_STATUS(MOAI_DATA_LOSS,
                         "%s: 'training.trainable' %s '%s', but %s %s it; recompile the plan",
                         manifest_path, want ? "lists" : "does not list",
                         w->name ? w->name : "(null)", so, persist ? "trains" : "does not train");
    trained += persist;
  }
  if (trained != m->train.trainable_count)
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: 'training.trainable' lists %zu weights, but %s trains %zu; "
                       "recompile the plan", manifest_path, m->train.trainable_count, so,
                       trained);
  return moai_ok_status();
}

static moai_status_t check_table(const moai_plan_t *plan, const char *so, const char *st_path,
                                 const moai_manifest_device_t *dev,
                                 const moai_device_table_t *t) {
  const moai_manifest_t *m = plan->manifest;
  if (!t) return MOAI_STATUS(MOAI_DATA_LOSS, "%s: the device table is NULL", so);
  if (t->abi_version != MOAI_ABI_VERSION)
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION,
                       "%s: device ABI %u, but this runtime implements ABI %u; recompile the "
                       "plan with a matching moai", so, t->abi_version, MOAI_ABI_VERSION);
  if (t->device != dev->index)
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s: the binary is device %u, the manifest says %u", so,
                       t->device, dev->index);
  if (t->arena_size != dev->arena_bytes || t->weights_size != dev->weights_bytes ||
      t->const_size != dev->const_bytes)
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: region sizes (arena %llu, weights %llu, const %llu) differ from "
                       "manifest.json's (%llu, %llu, %llu); recompile the plan", so,
                       (unsigned long long)t->arena_size, (unsigned long long)t->weights_size,
                       (unsigned long long)t->const_size, (unsigned long long)dev->arena_bytes,
                       (unsigned long long)dev->weights_bytes,
                       (unsigned long long)dev->const_bytes);
  if (t->weights_size != moai_safetensors_data_size(plan->weights))
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: holds %llu bytes of weights but the binary expects %llu; "
                       "recompile the plan", st_path,
                       (unsigned long long)moai_safetensors_data_size(plan->weights),
                       (unsigned long long)t->weights_size);
  if (!t->step || (t->const_size && !t->const_data) || (t->num_inputs && !t->inputs) ||
      (t->num_outputs && !t->outputs) || (t->num_weights && !t->weights))
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s: the device table is incomplete", so);
  if (t->target_triple && strcmp(t->target_triple, m->target_triple) != 0)
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s: built for %s, but manifest.json says %s", so,
                       t->target_triple, m->target_triple);
  if (t->num_inputs != m->input_count || t->num_outputs != m->output_count)
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: %u inputs and %u outputs, but manifest.json lists %zu and %zu; "
                       "recompile the plan", so, t->num_inputs, t->num_outputs,
                       m->input_count, m->output_count);
  char manifest_path[PATH_MAX];
  MOAI_RETURN_IF_ERROR(plan_path(plan, "manifest.json", manifest_path, sizeof(manifest_path)));
  MOAI_RETURN_IF_ERROR(check_training(plan, so, manifest_path, t));
  const uint64_t sizes[MOAI_REGION_COUNT] = {t->arena_size, t->weights_size, t->const_size,
                                             t->training ? t->training->persist_size : 0};
  for (uint32_t i = 0; i < t->num_inputs; ++i)
    MOAI_RETURN_IF_ERROR(check_io(so, "input", i, &t->inputs[i], &m->inputs[i], sizes));
  for (uint32_t i = 0; i < t->num_outputs; ++i)
    MOAI_RETURN_IF_ERROR(check_io(so, "output", i, &t->outputs[i], &m->outputs[i], sizes));
  return check_weights(so, st_path, t, plan->weights);
}

/* Loads the binary whose bytes were hashed: they are copied into an
 * anonymous memory file and dlopen'ed from there, so a device-<k>.so
 * replaced on disk between the check and the load can never run. */
static moai_status_t dlopen_verified(moai_plan_t *plan, const char *so,
                                     const moai_file_map_t *bytes) {
  int fd = memfd_create("moai-device", MFD_CLOEXEC);
  if (fd < 0)
    return MOAI_STATUS(MOAI_IO_ERROR, "%s: cannot create a memory file: %s", so,
                       strerror(errno));
  const unsigned char *p = bytes->data;
  size_t left = bytes->size;
  while (left > 0) {
    ssize_t n = write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      close(fd);
      return MOAI_STATUS(MOAI_IO_ERROR, "%s: cannot copy the binary: %s", so, strerror(err));
    }
    p += n;
    left -= (size_t)n;
  }
  char path[64];
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  dlerror();
  plan->library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!plan->library) {
    close(fd);
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "%s: cannot load the device binary: %s", so,
                       dlerror());
  }
  /* Open until dlclose: while it is, no other plan's binary gets this path
   * (dlopen would return this library for it: two devices of a mesh plan
   * would run the same code). */
  plan->library_fd = fd;
  plan->library_fd_open = true;
  return moai_ok_status();
}

static moai_status_t load_binary(moai_plan_t *plan, const char *so, const char *st_path,
                                 const moai_manifest_device_t *dev,
                                 const moai_file_map_t *verified) {
  if (verified) {
    MOAI_RETURN_IF_ERROR(dlopen_verified(plan, so, verified));
  } else {
    char abs[PATH_MAX];
    if (!realpath(so, abs))
      return MOAI_STATUS(MOAI_IO_ERROR, "%s: %s", so, strerror(errno));
    dlerror();
    plan->library = dlopen(abs, RTLD_NOW | RTLD_LOCAL);
    if (!plan->library)
      return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "%s: cannot load the device binary: %s",
                         so, dlerror());
  }
  moai_device_table_fn_t fn;
  /* POSIX's sanctioned way to turn dlsym's void * into a function pointer. */
  *(void **)&fn = dlsym(plan->library, MOAI_DEVICE_TABLE_SYMBOL);
  if (!fn)
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: no " MOAI_DEVICE_TABLE_SYMBOL " symbol: not a moai device binary",
                       so);
  const moai_device_table_t *table = fn();
  MOAI_RETURN_IF_ERROR(check_table(plan, so, st_path, dev, table));
  plan->table = table;
  return moai_ok_status();
}

/* Orphaned barrier: called by every thread inside moai_plan_run's region. */
static void plan_barrier(const moai_exec_t *ex) {
  (void)ex;
#pragma omp barrier
}

/* Allocates the persistent region zeroed and copies every trained weight's
 * initial value from the weights file into it (check_weights checked
 * dtype, shape and place). */
static moai_status_t prepare_persist(moai_plan_t *plan) {
  const moai_device_table_t *t = plan->table;
  uint64_t size = t->training->persist_size;
  if (size > SIZE_MAX - 64)
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "%s: persistent region of %llu bytes is too large",
                       plan->dir, (unsigned long long)size);
  MOAI_RETURN_IF_ERROR_CTX(
      moai_allocator_malloc(plan->allocator, (size_t)size + 63, (void **)&plan->persist_block),
      "allocating the %llu-byte persistent region of %s", (unsigned long long)size, plan->dir);
  plan->persist = (unsigned char *)(((uintptr_t)plan->persist_block + 63) & ~(uintptr_t)63);
  const unsigned char *data = moai_safetensors_data(plan->weights);
  for (uint32_t i = 0; i < t->num_weights; ++i) {
    const moai_io_desc_t *w = &t->weights[i];
    if (w->tensor.region != MOAI_REGION_PERSIST) continue;
    const moai_safetensors_entry_t *e = moai_safetensors_find(plan->weights, w->name);
    if (e->nbytes) memcpy(plan->persist + w->tensor.offset, data + e->offset, (size_t)e->nbytes);
  }
  return moai_ok_status();
}

static moai_status_t prepare_exec(moai_plan_t *plan) {
  const moai_device_table_t *t = plan->table;
  if (t->training) {
    MOAI_RETURN_IF_ERROR(prepare_persist(plan));
    plan->exec.base[MOAI_REGION_PERSIST] = plan->persist;
  }
  if (t->arena_size > SIZE_MAX - 64)
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "%s: arena of %llu bytes is too large", plan->dir,
                       (unsigned long long)t->arena_size);
  MOAI_RETURN_IF_ERROR_CTX(
      moai_allocator_malloc(plan->allocator, (size_t)t->arena_size + 63, (void **)&plan->arena_block),
      "allocating the %llu-byte arena of %s", (unsigned long long)t->arena_size, plan->dir);
  plan->arena = (unsigned char *)(((uintptr_t)plan->arena_block + 63) & ~(uintptr_t)63);
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(
      plan->allocator, (plan->manifest->input_count + 1) * sizeof(bool), (void **)&plan->input_set));
  moai_kernels_fill(moai_isa_detect(), plan->kernels);
  plan->exec.kernels = plan->kernels;
  plan->exec.base[MOAI_REGION_ARENA] = plan->arena;
  plan->exec.base[MOAI_REGION_WEIGHTS] = (unsigned char *)moai_safetensors_data(plan->weights);
  plan->exec.base[MOAI_REGION_CONST] = (unsigned char *)t->const_data;
  plan->exec.barrier = plan_barrier;
  plan->exec.runtime = &plan->kernel_status;
  return moai_ok_status();
}

static moai_status_t open_plan(moai_plan_t *plan) {
  char path[PATH_MAX], so[PATH_MAX], st_path[PATH_MAX];
  MOAI_RETURN_IF_ERROR(check_dir(plan->dir));
  MOAI_RETURN_IF_ERROR(plan_path(plan, "manifest.json", path, sizeof(path)));
  moai_status_t status = moai_manifest_read(path, plan->allocator, &plan->manifest);
  if (status && moai_status_code(status) == MOAI_NOT_FOUND) {
    moai_status_free(status);
    return MOAI_STATUS(MOAI_NOT_FOUND,
                       "%s: not a moai plan directory (no manifest.json); write one with "
                       "moaicc MODEL.onnx -o %s", plan->dir, plan->dir);
  }
  MOAI_RETURN_IF_ERROR(status);
  const moai_manifest_t *m = plan->manifest;
  if (m->format_version >= 3)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s is a multi-device plan (mesh %u x %u x %u); run it with moai-run, "
                       "or open one device with moai_plan_open_device", plan->dir, m->mesh_dp,
                       m->mesh_tp, m->mesh_pp);
  if (m->abi_version != MOAI_ABI_VERSION)
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION,
                       "%s: device ABI %u, but this runtime implements ABI %u; recompile the "
                       "plan with a matching moai", path, m->abi_version, MOAI_ABI_VERSION);
  MOAI_RETURN_IF_ERROR(check_target(plan, path));
  /* Formats 1 and 2 hold one device; meshes with tp, pp or ZeRO-1 are
   * format 3 (sub-plans, moai_plan_open_device). */
  if (m->device_count != 1)
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: a format-%lld plan with %zu devices is not one moai writes (several "
                       "devices are format 3); the manifest was edited: recompile the plan",
                       path, (long long)m->format_version, m->device_count);
  if (m->mesh_tp > 1 || m->mesh_pp > 1)
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: a format-%lld plan with mesh dp=%u tp=%u pp=%u is not one moai writes "
                       "(tensor and pipeline parallel plans are format 3); the manifest was "
                       "edited: recompile the plan", path, (long long)m->format_version, m->mesh_dp,
                       m->mesh_tp, m->mesh_pp);
  const moai_manifest_device_t *dev = &m->devices[0];
  MOAI_RETURN_IF_ERROR(plan_path(plan, dev->binary, so, sizeof(so)));
  MOAI_RETURN_IF_ERROR(plan_path(plan, dev->weights, st_path, sizeof(st_path)));
  /* Hash before mapping or dlopen: a modified binary must never run. The
   * binary is hashed from memory and loaded from those same bytes. */
  moai_file_map_t binary = {0};
  if (plan->options.verify_checksums) {
    MOAI_LOG(plan->options.log, MOAI_LOG_LEVEL_INFO, "verifying %s and %s", so, st_path);
    MOAI_RETURN_IF_ERROR(read_whole_file(so, &binary));
    status = verify_sha256_bytes(so, &binary, dev->binary_sha256);
    if (!status) status = verify_sha256(st_path, dev->weights_sha256);
  }
  if (!status)
    status = moai_safetensors_open(st_path, plan->allocator, &plan->weights);
  if (!status)
    status = load_binary(plan, so, st_path, dev,
                         plan->options.verify_checksums ? &binary : NULL);
  free((void *)binary.data);
  MOAI_RETURN_IF_ERROR(status);
  return prepare_exec(plan);
}

moai_status_t moai_plan_open(const char *dir, const moai_plan_options_t *options,
                             moai_allocator_t allocator, moai_plan_t **out_plan) {
  moai_plan_t *plan = NULL;
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(allocator, sizeof(*plan), (void **)&plan));
  plan->allocator = allocator;
  plan->options = options ? *options : moai_plan_options_default();
  moai_status_t status = moai_allocator_strdup(allocator, dir, &plan->dir);
  if (!status) status = open_plan(plan);
  if (status) {
    moai_plan_close(plan);
    return status;
  }
  MOAI_LOG(plan->options.log, MOAI_LOG_LEVEL_INFO, "loaded %s: %zu inputs, %zu outputs, arena %llu bytes",
           dir, plan->manifest->input_count, plan->manifest->output_count,
           (unsigned long long)plan->table->arena_size);
  *out_plan = plan;
  return moai_ok_status();
}

void moai_plan_close(moai_plan_t *plan) {
  if (!plan) return;
  moai_allocator_t a = plan->allocator;
  if (plan->library) dlclose(plan->library);
  if (plan->library_fd_open) close(plan->library_fd);
  moai_safetensors_close(plan->weights);
  moai_manifest_free(plan->manifest);
  moai_allocator_free(a, plan->arena_block);
  moai_allocator_free(a, plan->persist_block);
  moai_allocator_free(a, plan->input_set);
  moai_allocator_free(a, plan->dir);
  moai_allocator_free(a, plan);
}

/* Device k's shards and pipeline names, from the top manifest, against the
 * device plan: each shard is one of its weights (axis inside its rank), each
 * pipeline name one of its inputs (recv, recv_grad) or outputs (send,
 * send_grad). */
static moai_status_t check_device_role(const char *top, const moai_manifest_device_t *d,
                                       const moai_plan_t *plan) {
  for (size_t i = 0; i < d->shard_count; ++i) {
    const moai_manifest_shard_t *sh = &d->shards[i];
    long t = moai_plan_find_tensor(plan, sh->name);
    moai_plan_tensor_t info;
    if (t < 0 || !moai_plan_tensor(plan, (size_t)t, &info) ||
        info.kind == MOAI_PLAN_TENSOR_STATE || (int32_t)sh->axis >= info.rank)
      return MOAI_STATUS(MOAI_DATA_LOSS,
                         "%s: devices[%u].shards[%zu] ('%s', axis %u) is not a weight of %s "
                         "with that axis; the manifest was edited: recompile the plan", top,
                         d->index, i, sh->name, sh->axis, plan->dir);
  }
  const moai_manifest_pipeline_t *pl = &d->pipeline;
  const char *names[4] = {pl->recv, pl->recv_grad, pl->send, pl->send_grad};
  static const char *const keys[4] = {"recv", "recv_grad", "send", "send_grad"};
  const moai_manifest_t *m = plan->manifest;
  for (int k = 0; k < 4; ++k) {
    if (!names[k]) continue;
    bool found = false;
    const moai_tensor_desc_t *io = k < 2 ? m->inputs : m->outputs;
    size_t n = k < 2 ? m->input_count : m->output_count;
    for (size_t i = 0; i < n && !found; ++i) found = strcmp(io[i].name, names[k]) == 0;
    if (!found)
      return MOAI_STATUS(MOAI_DATA_LOSS,
                         "%s: devices[%u].pipeline.%s ('%s') is not an %s of %s; the manifest "
                         "was edited: recompile the plan", top, d->index, keys[k], names[k],
                         k < 2 ? "input" : "output", plan->dir);
  }
  return moai_ok_status();
}

moai_status_t moai_plan_open_device(const char *dir, uint32_t device,
                                    const moai_plan_options_t *options,
                                    moai_allocator_t allocator, moai_plan_t **out_plan) {
  char top[PATH_MAX], sub[PATH_MAX], sub_manifest[PATH_MAX];
  MOAI_RETURN_IF_ERROR(check_dir(dir));
  if (snprintf(top, sizeof(top), "%s/manifest.json", dir) >= (int)sizeof(top))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: path too long", dir);
  moai_manifest_t *m = NULL;
  moai_status_t status = moai_manifest_read(top, allocator, &m);
  if (status && moai_status_code(status) == MOAI_NOT_FOUND) {
    moai_status_free(status);
    return MOAI_STATUS(MOAI_NOT_FOUND,
                       "%s: not a moai plan directory (no manifest.json); write one with "
                       "moaicc MODEL.onnx -o %s", dir, dir);
  }
  MOAI_RETURN_IF_ERROR(status);
  if (m->format_version < 3) {
    moai_manifest_free(m);
    if (device != 0)
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                         "%s: a single-device plan has no device %u (only device 0)", dir,
                         device);
    return moai_plan_open(dir, options, allocator, out_plan);
  }
  const moai_manifest_device_t *d = device < m->device_count ? &m->devices[device] : NULL;
  if (!d) {
    status = MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: the plan has %zu devices; there is no "
                         "device %u", top, m->device_count, device);
  } else if (snprintf(sub, sizeof(sub), "%s/%s", dir, d->plan) >= (int)sizeof(sub) ||
             snprintf(sub_manifest, sizeof(sub_manifest), "%s/manifest.json", sub) >=
                 (int)sizeof(sub_manifest)) {
    status = MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s/%s: path too long", dir, d->plan);
  } else {
    /* The top manifest pins the device's manifest, which pins its files. */
    char actual[MOAI_SHA256_HEX_SIZE];
    status = moai_sha256_file(sub_manifest, actual);
    if (!status && strcmp(actual, d->manifest_sha256) != 0)
      status = MOAI_STATUS(MOAI_DATA_LOSS,
                           "%s: SHA-256 mismatch with devices[%u].manifest_sha256 of %s: the "
                           "plan was modified after it was written; recompile it",
                           sub_manifest, device, top);
  }
  moai_plan_t *plan = NULL;
  if (!status) status = moai_plan_open(sub, options, allocator, &plan);
  if (!status) status = check_device_role(top, d, plan);
  moai_manifest_free(m);
  if (status) {
    moai_plan_close(plan);
    return status;
  }
  *out_plan = plan;
  return moai_ok_status();
}
