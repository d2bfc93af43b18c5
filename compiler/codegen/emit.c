/* The device binary as an MLIR module in the LLVM dialect, written as text
 * and parsed (the simplest way to build it from C):
 *
 *   @moai_op_<i>      one constant byte array per op descriptor
 *   @moai_const       the CONST region
 *   @moai_str_<k>     NUL-terminated strings (version, target, io names)
 *   @moai_inputs/outputs/weights   moai_io_desc_t arrays {ptr, tensor bytes}
 *   @moai_step        step(ex, ith, nth): per op, ex->kernels[id](ex, desc,
 *                     ith, nth) then ex->barrier(ex)
 *   @moai_uop_<i>, @moai_update, @moai_state, @moai_training
 *                     training modules: the update's descriptors and
 *                     function (like step), the moai_state_desc_t array and
 *                     the moai_device_training_t the table points to
 *   @moai_forward     pipeline stages: like step, over the step's first
 *                     num_forward_ops descriptors
 *   @moai_table       the moai_device_table_t
 *   moai_device_table_v3()   returns &moai_table (the only exported symbol)
 *
 * The struct types spell out moai_abi.h's layouts for x86-64 System V; the
 * static assertions below tie the two together. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi/moai_ops.h"
#include "codegen/codegen.h"
#include "mlir-c/BuiltinAttributes.h"
#include "version.h"

_Static_assert(sizeof(moai_tensor_t) == 88, "moai_tensor_t layout");
_Static_assert(offsetof(moai_io_desc_t, tensor) == 8 &&
                   sizeof(moai_io_desc_t) == 96,
               "moai_io_desc_t layout");
_Static_assert(offsetof(moai_exec_t, kernels) == 0 &&
                   offsetof(moai_exec_t, barrier) == 40,
               "moai_exec_t layout");
_Static_assert(offsetof(moai_device_table_t, moai_version) == 8 &&
                   offsetof(moai_device_table_t, arena_size) == 40 &&
                   offsetof(moai_device_table_t, const_data) == 64 &&
                   offsetof(moai_device_table_t, num_inputs) == 72 &&
                   offsetof(moai_device_table_t, num_ops) == 84 &&
                   offsetof(moai_device_table_t, inputs) == 88 &&
                   offsetof(moai_device_table_t, step) == 112 &&
                   offsetof(moai_device_table_t, training) == 120 &&
                   sizeof(moai_device_table_t) == 128,
               "moai_device_table_t layout");
_Static_assert(offsetof(moai_state_desc_t, role) == 16 &&
                   offsetof(moai_state_desc_t, tensor) == 24 &&
                   sizeof(moai_state_desc_t) == 112,
               "moai_state_desc_t layout");
_Static_assert(offsetof(moai_device_training_t, num_state) == 8 &&
                   offsetof(moai_device_training_t, state) == 16 &&
                   offsetof(moai_device_training_t, update) == 24 &&
                   offsetof(moai_device_training_t, num_forward_ops) == 32 &&
                   offsetof(moai_device_training_t, forward_output) == 36 &&
                   offsetof(moai_device_training_t, forward) == 40 &&
                   sizeof(moai_device_training_t) == 48,
               "moai_device_training_t layout");

/* moai_exec_t and moai_device_table_t as LLVM struct types. */
#define EXEC_TYPE "!llvm.struct<(ptr, array<4 x ptr>, ptr, ptr)>"
#define TABLE_TYPE                                                          \
  "!llvm.struct<(i32, i32, ptr, ptr, ptr, ptr, i64, i64, i64, ptr, i32, "   \
  "i32, i32, i32, ptr, ptr, ptr, ptr, ptr)>"
#define IO_TYPE "!llvm.struct<(ptr, array<88 x i8>)>"

static void append_hex(moai_strbuf_t *sb, const unsigned char *data,
                       size_t n) {
  static const char digits[] = "0123456789ABCDEF";
  char chunk[1024];
  size_t k = 0;
  for (size_t i = 0; i < n; ++i) {
    chunk[k++] = digits[data[i] >> 4];
    chunk[k++] = digits[data[i] & 15];
    if (k == sizeof(chunk)) {
      moai_strbuf_append_n(sb, chunk, k);
      k = 0;
    }
  }
  moai_strbuf_append_n(sb, chunk, k);
}

/* A byte-array constant attribute: dense<"0x..."> : tensor<Nxi8>. */
static void append_bytes_attr(moai_strbuf_t *sb, const void *data, size_t n) {
  moai_strbuf_append(sb, "dense<\"0x");
  append_hex(sb, data, n);
  moai_strbuf_appendf(sb, "\"> : tensor<%zuxi8>", n);
}

static void global_bytes(moai_strbuf_t *sb, const char *name, const void *data,
                         size_t n, unsigned alignment) {
  moai_strbuf_appendf(sb, "  llvm.mlir.global internal constant @%s(", name);
  append_bytes_attr(sb, data, n);
  moai_strbuf_appendf(sb,
                      ") {addr_space = 0 : i32, alignment = %u : i64} : "
                      "!llvm.array<%zu x i8>\n",
                      alignment, n);
}

/* Emits a NUL-terminated string global @moai_str_<*counter>; returns its
 * number. */
static unsigned global_string(moai_strbuf_t *sb, unsigned *counter,
                              const char *s) {
  unsigned id = (*counter)++;
  char name[32];
  snprintf(name, sizeof(name), "moai_str_%u", id);
  global_bytes(sb, name, s, strlen(s) + 1, 1);
  return id;
}

/* An array of moai_io_desc_t, or nothing when n == 0. */
static void global_ios(moai_strbuf_t *sb, const char *name,
                       const moai_device_io_t *ios, uint32_t n,
                       unsigned *counter) {
  if (n == 0) return;
  unsigned first = *counter;
  for (uint32_t i = 0; i < n; ++i) global_string(sb, counter, ios[i].name);
  moai_strbuf_appendf(sb,
                      "  llvm.mlir.global internal constant @%s() {addr_space "
                      "= 0 : i32, alignment = 16 : i64} : !llvm.array<%u x " IO_TYPE
                      "> {\n",
                      name, n);
  moai_strbuf_appendf(sb, "    %%v0 = llvm.mlir.zero : !llvm.array<%u x " IO_TYPE ">\n", n);
  for (uint32_t i = 0; i < n; ++i) {
    moai_strbuf_appendf(sb, "    %%p%u = llvm.mlir.addressof @moai_str_%u : !llvm.ptr\n",
                        i, first + i);
    moai_strbuf_appendf(sb, "    %%a%u = llvm.insertvalue %%p%u, %%v%u[%u, 0] : !llvm.array<%u x " IO_TYPE ">\n",
                        i, i, i, i, n);
    moai_strbuf_appendf(sb, "    %%t%u = llvm.mlir.constant(", i);
    append_bytes_attr(sb, &ios[i].tensor, sizeof(moai_tensor_t));
    moai_strbuf_append(sb, ") : !llvm.array<88 x i8>\n");
    moai_strbuf_appendf(sb, "    %%v%u = llvm.insertvalue %%t%u, %%a%u[%u, 1] : !llvm.array<%u x " IO_TYPE ">\n",
                        i + 1, i, i, i, n);
  }
  moai_strbuf_appendf(sb, "    llvm.return %%v%u : !llvm.array<%u x " IO_TYPE ">\n  }\n", n, n);
}

/* Whether op d (update) writes only its own weight and optimizer state:
 * consecutive such ops run back to back, one pass over all the parameters
 * with a single barrier after the last (no op reads what another writes;
 * optimizer_finish, which advances the step counter they read, comes after
 * that barrier). */
static bool per_weight_update(const moai_op_desc_t *d) {
  return d->kernel == MOAI_KERNEL_ADAMW || d->kernel == MOAI_KERNEL_SGD;
}

/* A step-like function @<fn>: per op, the kernel call on @<prefix><i>, then
 * the barrier (in the update, not between per-weight optimizer ops). */
static void emit_ops_function(moai_strbuf_t *sb, const char *fn, const char *prefix,
                              const unsigned char *descs, const size_t *offsets,
                              uint32_t count, bool update, const uint32_t *group_end) {
  moai_strbuf_appendf(sb,
      "  llvm.func internal @%s(%%ex: !llvm.ptr {llvm.noundef}, "
      "%%ith: i32 {llvm.noundef}, %%nth: i32 {llvm.noundef}) "
      "attributes {passthrough = [\"nounwind\"]} {\n", fn);
  for (uint32_t i = 0; i < count; ++i) {
    const moai_op_desc_t *d = (const moai_op_desc_t *)(const void *)(descs + offsets[i]);
    if (group_end && group_end[i] > i) { /* a fused elementwise chain */
      moai_strbuf_appendf(sb,
          "    llvm.call @moai_ew_%u(%%ex, %%ith, %%nth) : (!llvm.ptr, i32, i32) -> ()\n"
          "    %%ba%u = llvm.getelementptr %%ex[0, 2] : (!llvm.ptr) -> !llvm.ptr, " EXEC_TYPE "\n"
          "    %%b%u = llvm.load %%ba%u : !llvm.ptr -> !llvm.ptr\n"
          "    llvm.call %%b%u(%%ex) : !llvm.ptr, (!llvm.ptr) -> ()\n",
          i, i, i, i, i);
      i = group_end[i];
      continue;
    }
    moai_strbuf_appendf(sb,
        "    %%k%u = llvm.load %%ex : !llvm.ptr -> !llvm.ptr\n"
        "    %%fa%u = llvm.getelementptr %%k%u[%u] : (!llvm.ptr) -> !llvm.ptr, !llvm.ptr\n"
        "    %%f%u = llvm.load %%fa%u : !llvm.ptr -> !llvm.ptr\n"
        "    %%d%u = llvm.mlir.addressof @%s%u : !llvm.ptr\n"
        "    llvm.call %%f%u(%%ex, %%d%u, %%ith, %%nth) : !llvm.ptr, (!llvm.ptr, !llvm.ptr, i32, i32) -> ()\n",
        i, i, i, d->kernel, i, i, i, prefix, i, i, i);
    const moai_op_desc_t *next = i + 1 < count
        ? (const moai_op_desc_t *)(const void *)(descs + offsets[i + 1]) : NULL;
    if (update && next && per_weight_update(d) && per_weight_update(next)) continue;
    moai_strbuf_appendf(sb,
        "    %%ba%u = llvm.getelementptr %%ex[0, 2] : (!llvm.ptr) -> !llvm.ptr, " EXEC_TYPE "\n"
        "    %%b%u = llvm.load %%ba%u : !llvm.ptr -> !llvm.ptr\n"
        "    llvm.call %%b%u(%%ex) : !llvm.ptr, (!llvm.ptr) -> ()\n",
        i, i, i, i);
  }
  moai_strbuf_append(sb, "    llvm.return\n  }\n");
}

/* The training table (moai_device_training_t): the state descriptors
 * (moai_state_desc_t) and @moai_update. */
#define STATE_TYPE "!llvm.struct<(ptr, ptr, i32, i32, array<88 x i8>)>"
#define TRAINING_TYPE "!llvm.struct<(i64, i32, i32, ptr, ptr, i32, i32, ptr)>"

static void emit_training(moai_strbuf_t *sb, const moai_device_program_t *p,
                          unsigned *counter) {
  char name[32];
  for (uint32_t i = 0; i < p->update.count; ++i) {
    const moai_op_desc_t *d = moai_device_program_update_op(p, i);
    snprintf(name, sizeof(name), "moai_uop_%u", i);
    global_bytes(sb, name, d, d->size, 16);
  }
  emit_ops_function(sb, "moai_update", "moai_uop_", p->update.descs, p->update.offsets,
                    p->update.count, true, NULL);
  /* A pipeline stage's forward: the step's first descriptors, shared. */
  if (p->pipeline)
    emit_ops_function(sb, "moai_forward", "moai_op_", p->descs, p->desc_offsets,
                      p->num_forward_ops, false, NULL);
  uint32_t n = p->num_state;
  if (n) {
    unsigned *names = malloc(2 * (size_t)n * sizeof(unsigned));
    for (uint32_t i = 0; names && i < n; ++i) {
      names[2 * i] = global_string(sb, counter, p->state[i].name);
      names[2 * i + 1] = p->state[i].param ? global_string(sb, counter, p->state[i].param)
                                           : UINT32_MAX;
    }
    moai_strbuf_appendf(sb,
                        "  llvm.mlir.global internal constant @moai_state() {addr_space = 0 : "
                        "i32, alignment = 16 : i64} : !llvm.array<%u x " STATE_TYPE "> {\n"
                        "    %%v0 = llvm.mlir.zero : !llvm.array<%u x " STATE_TYPE ">\n",
                        n, n);
    for (uint32_t i = 0; names && i < n; ++i) {
      const moai_device_state_t *st = &p->state[i];
      unsigned v = 4 * i;
      moai_strbuf_appendf(sb, "    %%n%u = llvm.mlir.addressof @moai_str_%u : !llvm.ptr\n"
                              "    %%v%u = llvm.insertvalue %%n%u, %%v%u[%u, 0] : !llvm.array<%u x " STATE_TYPE ">\n",
                          i, names[2 * i], v + 1, i, v, i, n);
      if (st->param)
        moai_strbuf_appendf(sb, "    %%q%u = llvm.mlir.addressof @moai_str_%u : !llvm.ptr\n"
                                "    %%v%u = llvm.insertvalue %%q%u, %%v%u[%u, 1] : !llvm.array<%u x " STATE_TYPE ">\n",
                            i, names[2 * i + 1], v + 2, i, v + 1, i, n);
      else
        moai_strbuf_appendf(sb, "    %%v%u = llvm.insertvalue %%n%u, %%v%u[%u, 0] : !llvm.array<%u x " STATE_TYPE ">\n",
                            v + 2, i, v + 1, i, n);
      moai_strbuf_appendf(sb, "    %%r%u = llvm.mlir.constant(%u : i32) : i32\n"
                              "    %%v%u = llvm.insertvalue %%r%u, %%v%u[%u, 2] : !llvm.array<%u x " STATE_TYPE ">\n",
                          i, st->role, v + 3, i, v + 2, i, n);
      /* Field 3, the gradient's bucket, where it has one (%g<i> then
       * stands for %v<v+3> in the chain). */
      char prev[32];
      snprintf(prev, sizeof(prev), "%%v%u", v + 3);
      if (st->grad_bucket) {
        moai_strbuf_appendf(sb, "    %%b%u = llvm.mlir.constant(%u : i32) : i32\n"
                                "    %%g%u = llvm.insertvalue %%b%u, %%v%u[%u, 3] : !llvm.array<%u x " STATE_TYPE ">\n",
                            i, st->grad_bucket, i, i, v + 3, i, n);
        snprintf(prev, sizeof(prev), "%%g%u", i);
      }
      moai_strbuf_appendf(sb, "    %%t%u = llvm.mlir.constant(", i);
      append_bytes_attr(sb, &st->tensor, sizeof(moai_tensor_t));
      moai_strbuf_appendf(sb, ") : !llvm.array<88 x i8>\n"
                              "    %%v%u = llvm.insertvalue %%t%u, %s[%u, 4] : !llvm.array<%u x " STATE_TYPE ">\n",
                          v + 4, i, prev, i, n);
    }
    moai_strbuf_appendf(sb, "    llvm.return %%v%u : !llvm.array<%u x " STATE_TYPE ">\n  }\n",
                        names ? 4 * n : 0, n);
    free(names);
  }
  moai_strbuf_appendf(sb,
      "  llvm.mlir.global internal constant @moai_training() {addr_space = 0 : i32, "
      "alignment = 16 : i64} : " TRAINING_TYPE " {\n"
      "    %%w0 = llvm.mlir.zero : " TRAINING_TYPE "\n"
      "    %%c0 = llvm.mlir.constant(%llu : i64) : i64\n"
      "    %%w1 = llvm.insertvalue %%c0, %%w0[0] : " TRAINING_TYPE "\n"
      "    %%c1 = llvm.mlir.constant(%u : i32) : i32\n"
      "    %%w2 = llvm.insertvalue %%c1, %%w1[1] : " TRAINING_TYPE "\n"
      "    %%c2 = llvm.mlir.constant(%u : i32) : i32\n"
      "    %%w3 = llvm.insertvalue %%c2, %%w2[2] : " TRAINING_TYPE "\n"
      "    %%c4 = llvm.mlir.addressof @moai_update : !llvm.ptr\n"
      "    %%w4 = llvm.insertvalue %%c4, %%w3[4] : " TRAINING_TYPE "\n",
      (unsigned long long)p->persist_size, n, p->update.count);
  unsigned w = 4;
  if (n) {
    moai_strbuf_append(sb,
        "    %c3 = llvm.mlir.addressof @moai_state : !llvm.ptr\n"
        "    %w5 = llvm.insertvalue %c3, %w4[3] : " TRAINING_TYPE "\n");
    w = 5;
  }
  if (p->pipeline) {
    moai_strbuf_appendf(sb,
        "    %%c5 = llvm.mlir.constant(%u : i32) : i32\n"
        "    %%w%u = llvm.insertvalue %%c5, %%w%u[5] : " TRAINING_TYPE "\n"
        "    %%c6 = llvm.mlir.constant(%u : i32) : i32\n"
        "    %%w%u = llvm.insertvalue %%c6, %%w%u[6] : " TRAINING_TYPE "\n"
        "    %%c7 = llvm.mlir.addressof @moai_forward : !llvm.ptr\n"
        "    %%w%u = llvm.insertvalue %%c7, %%w%u[7] : " TRAINING_TYPE "\n",
        p->num_forward_ops, w + 1, w, p->forward_output, w + 2, w + 1, w + 3, w + 2);
    w += 3;
  }
  moai_strbuf_appendf(sb, "    llvm.return %%w%u : " TRAINING_TYPE "\n  }\n", w);
}

/* One field of the table: `value` is an SSA value already defined. */
static void table_set(moai_strbuf_t *sb, unsigned *v, unsigned field,
                      const char *value) {
  moai_strbuf_appendf(sb, "    %%s%u = llvm.insertvalue %s, %%s%u[%u] : " TABLE_TYPE "\n",
                      *v + 1, value, *v, field);
  ++*v;
}

static void table_int(moai_strbuf_t *sb, unsigned *v, unsigned field,
                      unsigned bits, unsigned long long value) {
  moai_strbuf_appendf(sb, "    %%c%u = llvm.mlir.constant(%llu : i%u) : i%u\n",
                      field, value, bits, bits);
  char ref[16];
  snprintf(ref, sizeof(ref), "%%c%u", field);
  table_set(sb, v, field, ref);
}

static void table_ptr(moai_strbuf_t *sb, unsigned *v, unsigned field,
                      const char *symbol) {
  if (!symbol) return; /* stays null */
  moai_strbuf_appendf(sb, "    %%c%u = llvm.mlir.addressof @%s : !llvm.ptr\n",
                      field, symbol);
  char ref[16];
  snprintf(ref, sizeof(ref), "%%c%u", field);
  table_set(sb, v, field, ref);
}

static void emit_table(moai_strbuf_t *sb, const moai_device_program_t *p,
                       unsigned str_version, unsigned str_triple,
                       unsigned str_cpu, unsigned str_features) {
  char sym[4][32];
  snprintf(sym[0], sizeof(sym[0]), "moai_str_%u", str_version);
  snprintf(sym[1], sizeof(sym[1]), "moai_str_%u", str_triple);
  snprintf(sym[2], sizeof(sym[2]), "moai_str_%u", str_cpu);
  snprintf(sym[3], sizeof(sym[3]), "moai_str_%u", str_features);
  moai_strbuf_append(sb,
      "  llvm.mlir.global internal constant @moai_table() {addr_space = 0 : "
      "i32, alignment = 16 : i64} : " TABLE_TYPE " {\n"
      "    %s0 = llvm.mlir.zero : " TABLE_TYPE "\n");
  unsigned v = 0;
  table_int(sb, &v, 0, 32, MOAI_ABI_VERSION);
  table_int(sb, &v, 1, 32, p->device);
  table_ptr(sb, &v, 2, sym[0]);
  table_ptr(sb, &v, 3, sym[1]);
  table_ptr(sb, &v, 4, sym[2]);
  table_ptr(sb, &v, 5, sym[3]);
  table_int(sb, &v, 6, 64, p->arena_size);
  table_int(sb, &v, 7, 64, p->weights_size);
  table_int(sb, &v, 8, 64, p->const_size);
  table_ptr(sb, &v, 9, p->const_size ? "moai_const" : NULL);
  table_int(sb, &v, 10, 32, p->num_inputs);
  table_int(sb, &v, 11, 32, p->num_outputs);
  table_int(sb, &v, 12, 32, p->num_weights);
  table_int(sb, &v, 13, 32, p->num_ops);
  table_ptr(sb, &v, 14, p->num_inputs ? "moai_inputs" : NULL);
  table_ptr(sb, &v, 15, p->num_outputs ? "moai_outputs" : NULL);
  table_ptr(sb, &v, 16, p->num_weights ? "moai_weights" : NULL);
  table_ptr(sb, &v, 17, "moai_step");
  table_ptr(sb, &v, 18, p->training ? "moai_training" : NULL);
  moai_strbuf_appendf(sb, "    llvm.return %%s%u : " TABLE_TYPE "\n  }\n", v);
  moai_strbuf_append(sb,
      "  llvm.func @" MOAI_DEVICE_TABLE_SYMBOL "() -> !llvm.ptr {\n"
      "    %0 = llvm.mlir.addressof @moai_table : !llvm.ptr\n"
      "    llvm.return %0 : !llvm.ptr\n  }\n");
}

void moai_codegen_emit_text(const moai_device_program_t *p,
                            const moai_target_t *target, moai_strbuf_t *sb) {
  moai_strbuf_append(sb, "module {\n");
  char name[32];
  for (uint32_t i = 0; i < p->num_ops; ++i) {
    const moai_op_desc_t *d = moai_device_program_op(p, i);
    snprintf(name, sizeof(name), "moai_op_%u", i);
    global_bytes(sb, name, d, d->size, 16);
  }
  if (p->const_size) global_bytes(sb, "moai_const", p->const_data, p->const_size, 64);
  unsigned counter = 0;
  unsigned s_version = global_string(sb, &counter, moai_version_string());
  unsigned s_triple = global_string(sb, &counter, target->triple);
  unsigned s_cpu = global_string(sb, &counter, target->cpu);
  unsigned s_features = global_string(sb, &counter, target->features);
  global_ios(sb, "moai_inputs", p->inputs, p->num_inputs, &counter);
  global_ios(sb, "moai_outputs", p->outputs, p->num_outputs, &counter);
  global_ios(sb, "moai_weights", p->weight_ios, p->num_weights, &counter);
  /* Elementwise chains (fuse_elementwise.c): one generated loop each. */
  uint32_t *group_end = NULL;
  if (!p->no_elementwise_fusion && p->num_ops) {
    group_end = malloc(sizeof(uint32_t) * p->num_ops);
    if (group_end && moai_codegen_elementwise_groups(p, group_end) == 0) {
      free(group_end);
      group_end = NULL;
    }
    for (uint32_t i = 0; group_end && i < p->num_ops; ++i)
      if (group_end[i] > i) {
        snprintf(name, sizeof(name), "moai_ew_%u", i);
        moai_codegen_emit_elementwise(sb, p, i, group_end[i], name);
      }
  }
  emit_ops_function(sb, "moai_step", "moai_op_", p->descs, p->desc_offsets, p->num_ops, false,
                    group_end);
  free(group_end);
  if (p->training) emit_training(sb, p, &counter);
  emit_table(sb, p, s_version, s_triple, s_cpu, s_features);
  moai_strbuf_append(sb, "}\n");
}

moai_status_t moai_codegen_build(MlirContext ctx,
                                 const moai_device_program_t *program,
                                 const moai_target_t *target,
                                 MlirModule *out_module) {
  moai_strbuf_t sb;
  moai_strbuf_init(&sb, moai_allocator_system());
  moai_codegen_emit_text(program, target, &sb);
  char *text = NULL;
  MOAI_RETURN_IF_ERROR(moai_strbuf_finish(&sb, &text));
  MlirModule m = mlirModuleCreateParse(
      ctx, (MlirStringRef){.data = text, .length = strlen(text)});
  moai_allocator_free(moai_allocator_system(), text);
  if (mlirModuleIsNull(m))
    return MOAI_STATUS(MOAI_INTERNAL,
                       "the generated LLVM-dialect module does not parse");
  *out_module = m;
  return moai_ok_status();
}
