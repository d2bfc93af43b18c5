/* moai-memory-plan: static offsets for every activation in one arena.
 *
 * Per func.func, graph inputs (block arguments) and every result of every
 * moai op except moai.weight / moai.constant (which live in the WEIGHTS and
 * CONST regions of runtime/abi/moai_abi.h) get a byte offset into the
 * function's arena. Buffers whose lifetimes (positions in op order) do not
 * overlap share memory; views (reshape, squeeze, unsqueeze, flatten,
 * identity, inference dropout) share the buffer of their data operand;
 * elementwise ops may write into an operand's buffer at its last use.
 *
 * Attributes written (all i64 unless said):
 *   func:  moai.arena_size, moai.live_lower_bound, moai.arena_alignment
 *   arg:   moai.offset in the arg_attrs dictionary
 *   op:    moai.offsets (DenseI64ArrayAttr, one offset per result),
 *          moai.inplace = operand index (result 0 reuses that operand's
 *          buffer), moai.alias = 0 (a view of operand 0)
 * Weights, constants and training state (moai.state, in the persistent
 * region) get nothing; ops without results (moai.accumulate, moai.adamw,
 * moai.sgd, moai.optimizer_finish) get nothing but keep their operands alive
 * up to their position, and are never an in-place or view target. A
 * function without arguments or results (a training module's @update) is
 * planned like any other (its arena is usually empty). */
#ifndef MOAI_PASSES_MEMORY_PLAN_H
#define MOAI_PASSES_MEMORY_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "mlir-c/IR.h"
#include "mlir-c/Pass.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the planner, on abstract lifetimes -------------------------------- */

/* One buffer request. Lifetimes are inclusive positions in op order; -1 is
 * "before the first op" (graph inputs). */
typedef struct moai_buffer_req_t {
  uint64_t size;    /* bytes; the planner rounds up to the alignment */
  int64_t first;    /* first position the buffer is live at */
  int64_t last;     /* last position, >= first */
  int64_t alias_of; /* index of a request whose buffer this one shares, or -1 */
} moai_buffer_req_t;

/* Places `n` requests in one arena. Requests joined by alias_of (chains
 * allowed, no cycles) form one buffer: the union of their lifetimes, the
 * largest of their sizes. Buffers live at a common position never overlap in
 * memory. Writes one offset per request (multiples of `alignment`, a power of
 * two), the arena size, and the live-set lower bound (the largest sum of
 * buffer sizes live at one position). Outputs are untouched on failure. */
moai_status_t moai_memory_plan_buffers(const moai_buffer_req_t *reqs, size_t n,
                                       uint64_t alignment,
                                       uint64_t *out_offsets,
                                       uint64_t *out_arena,
                                       uint64_t *out_lower_bound) MOAI_MUST_USE;

/* Checks a placement: aliased requests share an offset, offsets are aligned,
 * buffers fit in `arena`, and no two buffers with overlapping lifetimes
 * overlap in memory. Returns the first violation as a status. */
moai_status_t moai_memory_plan_check(const moai_buffer_req_t *reqs, size_t n,
                                     uint64_t alignment,
                                     const uint64_t *offsets,
                                     uint64_t arena) MOAI_MUST_USE;

/* ---- the pass ------------------------------------------------------------ */

typedef struct moai_memory_plan_options_t {
  uint64_t alignment; /* bytes, power of two (default 64) */
  bool views;         /* views share their operand's buffer (default on) */
  bool inplace;       /* elementwise ops reuse a dying operand (default on) */
  bool check;         /* re-check the placement with moai_memory_plan_check
                         (default on in debug builds, off with NDEBUG) */
} moai_memory_plan_options_t;

typedef struct moai_memory_plan_stats_t {
  uint64_t arena_size;       /* summed over planned functions */
  uint64_t live_lower_bound; /* summed over planned functions */
  size_t functions;          /* func.func ops planned */
  size_t values;             /* values given an offset */
  size_t views;              /* results sharing their operand's buffer */
  size_t inplace;            /* results written into an operand's buffer */
} moai_memory_plan_stats_t;

moai_memory_plan_options_t moai_memory_plan_options_default(void);

/* The pass, anchored on builtin.module; owned by the caller. */
MlirPass moai_memory_plan_pass_create(const moai_memory_plan_options_t *options);

/* The pass's logic on `root` (a module or a func.func): plans every
 * func.func. Problems are diagnostics at the op; returns false after one.
 * *out_stats may be NULL. */
bool moai_memory_plan_run(MlirOperation root,
                          const moai_memory_plan_options_t *options,
                          moai_memory_plan_stats_t *out_stats);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_PASSES_MEMORY_PLAN_H */
