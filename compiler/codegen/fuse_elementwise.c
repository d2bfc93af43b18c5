/* Elementwise chains fused by code generation (codegen.h,
 * moai_codegen_elementwise_groups / moai_codegen_emit_elementwise).
 *
 * A group is a run of consecutive step descriptors i..j (j > i) of float
 * elementwise kernels (add, sub, mul, div, neg, sqrt, exp, sigmoid, relu)
 * where each op after the first reads the previous op's output and every
 * operand and result has the output's element count or is a single element
 * (a broadcast scalar), all of one dtype (f32 or f64). Instead of j - i + 1
 * kernel calls, each writing its result to memory and each followed by a
 * barrier, the step calls one generated function: a loop over the elements
 * of this thread's share that loads the chain's outside operands, computes
 * the chain in registers and stores the last result; LLVM vectorises it for
 * the target CPU (the device binary is compiled at O3 for it).
 *
 * Safety, from the descriptors alone: an intermediate result is left in
 * registers only when no later descriptor (of the step or the update) reads
 * any of its bytes before some descriptor writes over them (the memory
 * plan's next tenant), and it is no graph output. The last result may share
 * memory with an outside operand only exactly (element i read, then element
 * i written), never partially. add, sub, mul, div and neg give bit-identical
 * results to the separate kernels (LLVM does not contract them into FMAs
 * without fast-math flags); sqrt is IEEE-exact too; exp and sigmoid use
 * LLVM's exp (correctly rounded to within an ulp, as libm's expf that the
 * kernels call). */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "abi/moai_ops.h"
#include "codegen/codegen.h"

#define MOAI_EW_MAX_GROUP 64 /* ops in one group */

static bool ew_kernel(uint32_t k) {
  switch (k) {
    case MOAI_KERNEL_ADD: case MOAI_KERNEL_SUB: case MOAI_KERNEL_MUL: case MOAI_KERNEL_DIV:
    case MOAI_KERNEL_NEG: case MOAI_KERNEL_SQRT: case MOAI_KERNEL_EXP:
    case MOAI_KERNEL_SIGMOID: case MOAI_KERNEL_RELU:
      return true;
    default:
      return false;
  }
}

static const moai_tensor_t *desc_tensor(const moai_op_desc_t *d, uint32_t i) {
  return (const moai_tensor_t *)(const void *)((const unsigned char *)d + sizeof(*d)) + i;
}

static int64_t numel(const moai_tensor_t *t) {
  int64_t n = 1;
  for (int32_t i = 0; i < t->rank; ++i) n *= t->dims[i];
  return n;
}

static uint64_t elem_size(int32_t dtype) { return dtype == MOAI_ABI_F64 ? 8 : 4; }

static bool same_place(const moai_tensor_t *a, const moai_tensor_t *b) {
  return a->region == b->region && a->offset == b->offset;
}

/* Whether byte ranges of a and b (same region) overlap. */
static bool overlaps(const moai_tensor_t *a, const moai_tensor_t *b) {
  if (a->region != b->region || a->region >= MOAI_REGION_COUNT) return false;
  uint64_t ea = a->offset + (uint64_t)numel(a) * elem_size(a->dtype);
  uint64_t eb = b->offset + (uint64_t)numel(b) * elem_size(b->dtype);
  return a->offset < eb && b->offset < ea;
}

/* One descriptor's fitness as a group member of n elements of `dtype`. */
static bool ew_member(const moai_op_desc_t *d, int32_t dtype, int64_t n) {
  if (!ew_kernel(d->kernel) || d->n_out != 1 || d->n_in < 1 || d->n_in > 2) return false;
  uint32_t want_in = (d->kernel == MOAI_KERNEL_ADD || d->kernel == MOAI_KERNEL_SUB ||
                      d->kernel == MOAI_KERNEL_MUL || d->kernel == MOAI_KERNEL_DIV) ? 2 : 1;
  if (d->n_in != want_in) return false;
  for (uint32_t i = 0; i < d->n_in + d->n_out; ++i) {
    const moai_tensor_t *t = desc_tensor(d, i);
    if (t->region >= MOAI_REGION_COUNT || t->dtype != dtype) return false;
    int64_t m = numel(t);
    if (m != n && !(i < d->n_in && m == 1)) return false;
  }
  return true;
}

/* Reads of tensor t by descriptor d (inputs), writes (outputs). */
static bool reads(const moai_op_desc_t *d, const moai_tensor_t *t) {
  for (uint32_t i = 0; i < d->n_in; ++i)
    if (overlaps(desc_tensor(d, i), t)) return true;
  return false;
}
static bool writes(const moai_op_desc_t *d, const moai_tensor_t *t) {
  for (uint32_t i = d->n_in; i < d->n_in + d->n_out; ++i)
    if (overlaps(desc_tensor(d, i), t)) return true;
  return false;
}

/* Whether t, written by descriptor `at` and read by at + 1, is dead after
 * at + 1: scanning on, the first descriptor touching its bytes writes them
 * without reading them; never touched again, nothing in the update reads it,
 * and it is no graph output. */
static bool dead_after(const moai_device_program_t *p, uint32_t at, const moai_tensor_t *t) {
  if (t->region != MOAI_REGION_ARENA) return false;
  for (uint32_t i = 0; i < p->num_outputs; ++i)
    if (overlaps(&p->outputs[i].tensor, t)) return false;
  for (uint32_t k = at + 2; k < p->num_ops; ++k) {
    const moai_op_desc_t *d = moai_device_program_op(p, k);
    if (reads(d, t)) return false;
    if (writes(d, t)) return true;
  }
  for (uint32_t k = 0; p->training && k < p->update.count; ++k)
    if (reads(moai_device_program_update_op(p, k), t)) return false;
  return true;
}

uint32_t moai_codegen_elementwise_groups(const moai_device_program_t *p, uint32_t *group_end) {
  uint32_t groups = 0;
  for (uint32_t i = 0; i < p->num_ops; ++i) group_end[i] = i;
  if (p->pipeline) return 0; /* a stage's forward entry shares the step's prefix */
  for (uint32_t i = 0; i < p->num_ops;) {
    const moai_op_desc_t *d = moai_device_program_op(p, i);
    const moai_tensor_t *out = ew_kernel(d->kernel) && d->n_out == 1 ? desc_tensor(d, d->n_in) : NULL;
    if (!out || (out->dtype != MOAI_ABI_F32 && out->dtype != MOAI_ABI_F64) ||
        !ew_member(d, out->dtype, numel(out))) {
      ++i;
      continue;
    }
    int32_t dtype = out->dtype;
    int64_t n = numel(out);
    uint32_t j = i;
    while (j + 1 < p->num_ops && j + 1 - i < MOAI_EW_MAX_GROUP) {
      const moai_op_desc_t *cur = moai_device_program_op(p, j);
      const moai_op_desc_t *next = moai_device_program_op(p, j + 1);
      const moai_tensor_t *t = desc_tensor(cur, cur->n_in);
      if (!ew_member(next, dtype, n)) break;
      int uses = 0;
      for (uint32_t k = 0; k < next->n_in; ++k) uses += same_place(desc_tensor(next, k), t);
      if (uses == 0 || !dead_after(p, j, t)) break;
      /* the next result may overlap an outside operand of the group only
       * exactly (it is written where that one is read, element by element) */
      const moai_tensor_t *nout = desc_tensor(next, next->n_in);
      bool clash = false;
      for (uint32_t g = i; g <= j + 1 && !clash; ++g) {
        const moai_op_desc_t *m = moai_device_program_op(p, g);
        for (uint32_t k = 0; k < m->n_in && !clash; ++k) {
          const moai_tensor_t *x = desc_tensor(m, k);
          bool inner = false;
          for (uint32_t h = i; h < g; ++h) {
            const moai_op_desc_t *q = moai_device_program_op(p, h);
            inner |= same_place(desc_tensor(q, q->n_in), x);
          }
          if (!inner && overlaps(x, nout) && !(same_place(x, nout) && numel(x) == n)) clash = true;
        }
      }
      if (clash) break;
      ++j;
    }
    if (j > i) {
      group_end[i] = j;
      ++groups;
    }
    i = j + 1;
  }
  return groups;
}

/* ---- emission ------------------------------------------------------------ */

#define EXEC_T "!llvm.struct<(ptr, array<4 x ptr>, ptr, ptr)>"

/* SSA name of the pointer to outside operand x of the group (loaded once). */
typedef struct ew_operand_t {
  const moai_tensor_t *t;
  bool scalar;
} ew_operand_t;

void moai_codegen_emit_elementwise(moai_strbuf_t *sb, const moai_device_program_t *p,
                                   uint32_t first, uint32_t last, const char *fn) {
  const moai_op_desc_t *d0 = moai_device_program_op(p, first);
  const moai_tensor_t *out0 = desc_tensor(d0, d0->n_in);
  const char *ty = out0->dtype == MOAI_ABI_F64 ? "f64" : "f32";
  int64_t n = numel(out0);
  /* Outside operands: inputs of group ops that are not the previous op's
   * result, in order of appearance. */
  ew_operand_t ops[2 * MOAI_EW_MAX_GROUP];
  uint32_t nops = 0;
  uint32_t count = last - first + 1;
  if (count > MOAI_EW_MAX_GROUP) count = MOAI_EW_MAX_GROUP; /* groups never are */
  /* operand index per (op, input): -1 = the previous result */
  int idx[MOAI_EW_MAX_GROUP][2];
  for (uint32_t g = 0; g < count; ++g) {
    const moai_op_desc_t *d = moai_device_program_op(p, first + g);
    const moai_tensor_t *prev =
        g ? desc_tensor(moai_device_program_op(p, first + g - 1),
                        moai_device_program_op(p, first + g - 1)->n_in)
          : NULL;
    for (uint32_t k = 0; k < d->n_in; ++k) {
      const moai_tensor_t *x = desc_tensor(d, k);
      if (prev && same_place(x, prev)) {
        idx[g][k] = -1;
        continue;
      }
      idx[g][k] = (int)nops;
      ops[nops].t = x;
      ops[nops].scalar = numel(x) == 1;
      ++nops;
    }
  }
  const moai_tensor_t *out = desc_tensor(moai_device_program_op(p, last),
                                         moai_device_program_op(p, last)->n_in);
  moai_strbuf_appendf(sb,
      "  llvm.func internal @%s(%%ex: !llvm.ptr {llvm.noundef}, %%ith: i32 {llvm.noundef}, "
      "%%nth: i32 {llvm.noundef}) attributes {passthrough = [\"nounwind\"]} {\n", fn);
  /* bases of the regions used, then the operand and result pointers */
  bool used[MOAI_REGION_COUNT] = {false};
  for (uint32_t k = 0; k < nops; ++k) used[ops[k].t->region] = true;
  used[out->region] = true;
  for (uint32_t r = 0; r < MOAI_REGION_COUNT; ++r)
    if (used[r])
      moai_strbuf_appendf(sb,
          "    %%bp%u = llvm.getelementptr %%ex[0, 1, %u] : (!llvm.ptr) -> !llvm.ptr, " EXEC_T "\n"
          "    %%b%u = llvm.load %%bp%u : !llvm.ptr -> !llvm.ptr\n", r, r, r, r);
  for (uint32_t k = 0; k < nops; ++k) {
    moai_strbuf_appendf(sb,
        "    %%o%u = llvm.mlir.constant(%" PRIu64 " : i64) : i64\n"
        "    %%p%u = llvm.getelementptr %%b%u[%%o%u] : (!llvm.ptr, i64) -> !llvm.ptr, i8\n",
        k, ops[k].t->offset, k, ops[k].t->region, k);
    if (ops[k].scalar)
      moai_strbuf_appendf(sb, "    %%s%u = llvm.load %%p%u : !llvm.ptr -> %s\n", k, k, ty);
  }
  moai_strbuf_appendf(sb,
      "    %%oy = llvm.mlir.constant(%" PRIu64 " : i64) : i64\n"
      "    %%py = llvm.getelementptr %%b%u[%%oy] : (!llvm.ptr, i64) -> !llvm.ptr, i8\n",
      out->offset, out->region);
  /* this thread's elements: whole 64-byte lines each, [begin, end) */
  moai_strbuf_appendf(sb,
      "    %%n = llvm.mlir.constant(%" PRId64 " : i64) : i64\n"
      "    %%c16 = llvm.mlir.constant(16 : i64) : i64\n"
      "    %%c15 = llvm.mlir.constant(15 : i64) : i64\n"
      "    %%c1 = llvm.mlir.constant(1 : i64) : i64\n"
      "    %%ith64 = llvm.sext %%ith : i32 to i64\n"
      "    %%nth64 = llvm.sext %%nth : i32 to i64\n"
      "    %%lines0 = llvm.add %%n, %%c15 : i64\n"
      "    %%lines = llvm.udiv %%lines0, %%c16 : i64\n"
      "    %%per0 = llvm.add %%lines, %%nth64 : i64\n"
      "    %%per1 = llvm.sub %%per0, %%c1 : i64\n"
      "    %%per = llvm.udiv %%per1, %%nth64 : i64\n"
      "    %%chunk = llvm.mul %%per, %%c16 : i64\n"
      "    %%b0x = llvm.mul %%chunk, %%ith64 : i64\n"
      "    %%e0x = llvm.add %%b0x, %%chunk : i64\n"
      "    %%lo = llvm.intr.umin(%%b0x, %%n) : (i64, i64) -> i64\n"
      "    %%hi = llvm.intr.umin(%%e0x, %%n) : (i64, i64) -> i64\n"
      "    llvm.br ^loop(%%lo : i64)\n"
      "  ^loop(%%i: i64):\n"
      "    %%more = llvm.icmp \"ult\" %%i, %%hi : i64\n"
      "    llvm.cond_br %%more, ^body, ^done\n"
      "  ^body:\n",
      n);
  for (uint32_t k = 0; k < nops; ++k)
    if (!ops[k].scalar)
      moai_strbuf_appendf(sb,
          "    %%q%u = llvm.getelementptr %%p%u[%%i] : (!llvm.ptr, i64) -> !llvm.ptr, %s\n"
          "    %%x%u = llvm.load %%q%u : !llvm.ptr -> %s\n", k, k, ty, k, k, ty);
  char a[32], b[32];
  for (uint32_t g = 0; g < count; ++g) {
    const moai_op_desc_t *d = moai_device_program_op(p, first + g);
    for (uint32_t k = 0; k < d->n_in; ++k) {
      char *dst = k ? b : a;
      int o = idx[g][k];
      if (o < 0) snprintf(dst, 32, "%%v%u", g - 1);
      else snprintf(dst, 32, ops[o].scalar ? "%%s%d" : "%%x%d", o);
    }
    switch (d->kernel) {
      case MOAI_KERNEL_ADD: moai_strbuf_appendf(sb, "    %%v%u = llvm.fadd %s, %s : %s\n", g, a, b, ty); break;
      case MOAI_KERNEL_SUB: moai_strbuf_appendf(sb, "    %%v%u = llvm.fsub %s, %s : %s\n", g, a, b, ty); break;
      case MOAI_KERNEL_MUL: moai_strbuf_appendf(sb, "    %%v%u = llvm.fmul %s, %s : %s\n", g, a, b, ty); break;
      case MOAI_KERNEL_DIV: moai_strbuf_appendf(sb, "    %%v%u = llvm.fdiv %s, %s : %s\n", g, a, b, ty); break;
      case MOAI_KERNEL_NEG: moai_strbuf_appendf(sb, "    %%v%u = llvm.fneg %s : %s\n", g, a, ty); break;
      case MOAI_KERNEL_SQRT:
        moai_strbuf_appendf(sb, "    %%v%u = llvm.intr.sqrt(%s) : (%s) -> %s\n", g, a, ty, ty);
        break;
      case MOAI_KERNEL_EXP:
        moai_strbuf_appendf(sb, "    %%v%u = llvm.intr.exp(%s) : (%s) -> %s\n", g, a, ty, ty);
        break;
      case MOAI_KERNEL_SIGMOID: /* 1 / (1 + exp(-x)) */
        moai_strbuf_appendf(sb,
            "    %%g%un = llvm.fneg %s : %s\n"
            "    %%g%ue = llvm.intr.exp(%%g%un) : (%s) -> %s\n"
            "    %%g%u1 = llvm.mlir.constant(1.0 : %s) : %s\n"
            "    %%g%ud = llvm.fadd %%g%u1, %%g%ue : %s\n"
            "    %%v%u = llvm.fdiv %%g%u1, %%g%ud : %s\n",
            g, a, ty, g, g, ty, ty, g, ty, ty, g, g, g, ty, g, g, g, ty);
        break;
      case MOAI_KERNEL_RELU: /* max(x, 0), NaN kept as the kernel does */
        moai_strbuf_appendf(sb,
            "    %%g%u0 = llvm.mlir.constant(0.0 : %s) : %s\n"
            "    %%g%uc = llvm.fcmp \"olt\" %s, %%g%u0 : %s\n"
            "    %%v%u = llvm.select %%g%uc, %%g%u0, %s : i1, %s\n",
            g, ty, ty, g, a, g, ty, g, g, g, a, ty);
        break;
      default: break;
    }
  }
  moai_strbuf_appendf(sb,
      "    %%qy = llvm.getelementptr %%py[%%i] : (!llvm.ptr, i64) -> !llvm.ptr, %s\n"
      "    llvm.store %%v%u, %%qy : %s, !llvm.ptr\n"
      "    %%inext = llvm.add %%i, %%c1 : i64\n"
      "    llvm.br ^loop(%%inext : i64)\n"
      "  ^done:\n"
      "    llvm.return\n  }\n",
      ty, count - 1, ty);
}
