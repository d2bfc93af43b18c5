/* The TorchScript interpreter: runs the code of a module's forward over
 * compile-time values. Statements and control flow run here (loops and
 * branches need compile-time conditions: ints, bools, sizes); submodule
 * and function calls are inlined; every operator call goes to
 * moai_ts_call_op, which appends moai ops. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torchscript/interp.h"

typedef enum flow_e { FLOW_NEXT, FLOW_RETURN, FLOW_BREAK, FLOW_CONTINUE } flow_t;

/* The variables of one call. */
typedef struct frame_t {
  const char **names;
  moai_ts_value_t **values;
  size_t n, cap;
  moai_ts_value_t *ret;
} frame_t;

static moai_status_t oom(moai_ts_interp_t *in) {
  return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "%s: out of memory interpreting %s",
                     in->em.archive, in->em.file ? in->em.file : "the code");
}

moai_status_t moai_ts_interp_error(moai_ts_interp_t *in, int line,
                                   moai_status_code_t code, const char *fmt,
                                   ...) {
  char msg[1024];
  va_list args;
  va_start(args, fmt);
  vsnprintf(msg, sizeof(msg), fmt, args);
  va_end(args);
  return moai_status_make(code, __FILE__, __LINE__, "%s: %s:%d: %s",
                          in->em.archive, in->em.file ? in->em.file : "?",
                          line, msg);
}

void moai_ts_interp_at(moai_ts_interp_t *in, int line) {
  char where[1024];
  snprintf(where, sizeof(where), "%s:%s", in->em.archive,
           in->em.file ? in->em.file : "?");
  in->em.line = line;
  in->em.loc = mlirLocationFileLineColGet(
      in->em.ctx, mlirStringRefCreateFromCString(where), (unsigned)line, 1);
}

static moai_ts_value_t *new_value(moai_ts_interp_t *in, moai_ts_kind_t kind) {
  moai_ts_value_t *v = moai_ts_arena_alloc(in->em.arena, sizeof(*v));
  if (v) v->kind = kind;
  return v;
}

static const char *kind_name(moai_ts_kind_t kind) {
  static const char *const names[] = {"None", "bool",  "int",    "float", "str",
                                      "list", "tuple", "Tensor", "module"};
  return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}

/* ---- variables ------------------------------------------------------------ */

static moai_status_t bind(moai_ts_interp_t *in, frame_t *f, const char *name,
                          moai_ts_value_t *v) {
  for (size_t i = f->n; i-- > 0;)
    if (strcmp(f->names[i], name) == 0) {
      f->values[i] = v;
      return moai_ok_status();
    }
  if (f->n == f->cap) {
    size_t cap = f->cap ? f->cap * 2 : 16;
    const char **names = moai_ts_arena_alloc(in->em.arena, cap * sizeof(*names));
    moai_ts_value_t **values =
        moai_ts_arena_alloc(in->em.arena, cap * sizeof(*values));
    if (!names || !values) return oom(in);
    if (f->n) {
      memcpy(names, f->names, f->n * sizeof(*names));
      memcpy(values, f->values, f->n * sizeof(*values));
    }
    f->names = names;
    f->values = values;
    f->cap = cap;
  }
  f->names[f->n] = name;
  f->values[f->n++] = v;
  return moai_ok_status();
}

static moai_ts_value_t *lookup(const frame_t *f, const char *name) {
  for (size_t i = f->n; i-- > 0;)
    if (strcmp(f->names[i], name) == 0) return f->values[i];
  return NULL;
}

/* ---- expressions ---------------------------------------------------------- */

static moai_status_t eval(moai_ts_interp_t *in, frame_t *f,
                          const moai_ts_expr_t *e, moai_ts_value_t **out);

/* The dotted spelling of a NAME/ATTR chain whose root is not a variable
 * ("torch.linear", "ops.prim.NumToTensor", "__torch__.a.f"), or false. */
static bool dotted_name(const frame_t *f, const moai_ts_expr_t *e, char *buf,
                        size_t size) {
  if (e->kind == MOAI_TS_EX_NAME) {
    if (lookup(f, e->name)) return false;
    return (size_t)snprintf(buf, size, "%s", e->name) < size;
  }
  if (e->kind != MOAI_TS_EX_ATTR || !dotted_name(f, e->base, buf, size))
    return false;
  size_t n = strlen(buf);
  return (size_t)snprintf(buf + n, size - n, ".%s", e->name) < size - n;
}

static bool scalar_number(const moai_ts_value_t *v, double *out) {
  if (v->kind == MOAI_TS_INT) *out = (double)v->i;
  else if (v->kind == MOAI_TS_FLOAT) *out = v->f;
  else if (v->kind == MOAI_TS_BOOL) *out = v->b;
  else return false;
  return true;
}

static bool is_intlike(const moai_ts_value_t *v) {
  return v->kind == MOAI_TS_INT || v->kind == MOAI_TS_BOOL;
}

/* A compile-time truth value, or an error for a tensor without data. */
static moai_status_t truth(moai_ts_interp_t *in, const moai_ts_value_t *v,
                           int line, const char *what, bool *out) {
  switch (v->kind) {
    case MOAI_TS_NONE: *out = false; return moai_ok_status();
    case MOAI_TS_BOOL: *out = v->b; return moai_ok_status();
    case MOAI_TS_INT: *out = v->i != 0; return moai_ok_status();
    case MOAI_TS_FLOAT: *out = v->f != 0; return moai_ok_status();
    case MOAI_TS_STR: *out = v->str && *v->str; return moai_ok_status();
    case MOAI_TS_LIST:
    case MOAI_TS_TUPLE: *out = v->len != 0; return moai_ok_status();
    case MOAI_TS_MODULE: *out = true; return moai_ok_status();
    case MOAI_TS_TENSOR:
      if (v->konst && v->konst->numel == 1) {
        const moai_ts_const_t *k = v->konst;
        switch (k->dtype) {
          case MOAI_PK_I64: *out = ((const int64_t *)k->data)[0] != 0; break;
          case MOAI_PK_F64: *out = ((const double *)k->data)[0] != 0; break;
          case MOAI_PK_F32: *out = ((const float *)k->data)[0] != 0; break;
          default: *out = ((const uint8_t *)k->data)[0] != 0; break;
        }
        return moai_ok_status();
      }
      break;
  }
  return moai_ts_interp_error(
      in, line, MOAI_UNIMPLEMENTED,
      "the %s depends on tensor data, which is not known at compile time "
      "(moai compiles straight-line graphs: only conditions on sizes, ints "
      "and bools are supported)",
      what);
}

/* Compile-time arithmetic and comparisons on ints, floats and bools. */
static moai_status_t eval_binary_scalar(moai_ts_interp_t *in, int line, int op,
                                        const moai_ts_value_t *a,
                                        const moai_ts_value_t *b,
                                        moai_ts_value_t **out) {
  double x, y;
  if (!scalar_number(a, &x) || !scalar_number(b, &y))
    return moai_ts_interp_error(
        in, line, MOAI_UNIMPLEMENTED,
        "operator '%s' on %s and %s is not supported (only on compile-time "
        "ints, floats and bools; tensor arithmetic is printed as torch.* "
        "calls)",
        moai_ts_op_spelling(op), kind_name(a->kind), kind_name(b->kind));
  bool ints = is_intlike(a) && is_intlike(b);
  int64_t i = a->i, j = b->i;
  if (a->kind == MOAI_TS_BOOL) i = a->b;
  if (b->kind == MOAI_TS_BOOL) j = b->b;
  moai_ts_value_t *r = new_value(in, ints ? MOAI_TS_INT : MOAI_TS_FLOAT);
  if (!r) return oom(in);
  bool cmp = true, res = false;
  switch (op) {
    case '<': res = ints ? i < j : x < y; break;
    case '>': res = ints ? i > j : x > y; break;
    case MOAI_TS_OP_LE: res = ints ? i <= j : x <= y; break;
    case MOAI_TS_OP_GE: res = ints ? i >= j : x >= y; break;
    case MOAI_TS_OP_EQ: res = ints ? i == j : x == y; break;
    case MOAI_TS_OP_NE: res = ints ? i != j : x != y; break;
    default: cmp = false; break;
  }
  if (cmp) {
    r->kind = MOAI_TS_BOOL;
    r->b = res;
    *out = r;
    return moai_ok_status();
  }
  if ((op == '/' || op == MOAI_TS_OP_FLOORDIV || op == '%') &&
      (ints ? j == 0 : y == 0))
    return moai_ts_interp_error(in, line, MOAI_INVALID_ARGUMENT,
                                "division by zero in '%s'",
                                moai_ts_op_spelling(op));
  switch (op) {
    case '+': if (ints) r->i = (int64_t)((uint64_t)i + (uint64_t)j); else r->f = x + y; break;
    case '-': if (ints) r->i = (int64_t)((uint64_t)i - (uint64_t)j); else r->f = x - y; break;
    case '*': if (ints) r->i = (int64_t)((uint64_t)i * (uint64_t)j); else r->f = x * y; break;
    case '/': r->kind = MOAI_TS_FLOAT; r->f = x / y; break;
    case MOAI_TS_OP_FLOORDIV:
      if (ints) {
        if (i == INT64_MIN && j == -1) r->i = INT64_MIN;
        else r->i = i / j - ((i % j != 0) && ((i < 0) != (j < 0)));
      } else {
        r->f = floor(x / y);
      }
      break;
    case '%':
      if (ints) {
        int64_t m = (i == INT64_MIN && j == -1) ? 0 : i % j;
        r->i = (m != 0 && ((m < 0) != (j < 0))) ? m + j : m;
      } else {
        r->f = x - floor(x / y) * y;
      }
      break;
    case MOAI_TS_OP_POW:
      if (ints && j >= 0) {
        int64_t p = 1;
        for (int64_t k = 0; k < j && k < 64; ++k) p = (int64_t)((uint64_t)p * (uint64_t)i);
        r->i = p;
      } else {
        r->kind = MOAI_TS_FLOAT;
        r->f = pow(x, y);
      }
      break;
    case '&': case '|': case '^':
      if (!ints)
        return moai_ts_interp_error(in, line, MOAI_UNIMPLEMENTED,
                                    "operator '%c' on floats", op);
      r->i = op == '&' ? (i & j) : op == '|' ? (i | j) : (i ^ j);
      if (a->kind == MOAI_TS_BOOL && b->kind == MOAI_TS_BOOL) {
        r->kind = MOAI_TS_BOOL;
        r->b = r->i != 0;
      }
      break;
    default:
      return moai_ts_interp_error(in, line, MOAI_UNIMPLEMENTED,
                                  "operator '%s' is not supported",
                                  moai_ts_op_spelling(op));
  }
  *out = r;
  return moai_ok_status();
}

static bool values_identical(const moai_ts_value_t *a, const moai_ts_value_t *b) {
  if (a->kind == MOAI_TS_NONE || b->kind == MOAI_TS_NONE)
    return a->kind == b->kind;
  return a == b;
}

static moai_status_t eval_binary(moai_ts_interp_t *in, frame_t *f,
                                 const moai_ts_expr_t *e,
                                 moai_ts_value_t **out) {
  moai_ts_value_t *a = NULL, *b = NULL;
  MOAI_RETURN_IF_ERROR(eval(in, f, e->base, &a));
  MOAI_RETURN_IF_ERROR(eval(in, f, e->rhs, &b));
  if (e->op == MOAI_TS_OP_IS || e->op == MOAI_TS_OP_IS_NOT) {
    moai_ts_value_t *r = new_value(in, MOAI_TS_BOOL);
    if (!r) return oom(in);
    r->b = values_identical(a, b) == (e->op == MOAI_TS_OP_IS);
    *out = r;
    return moai_ok_status();
  }
  if (e->op == MOAI_TS_OP_IN || e->op == MOAI_TS_OP_NOT_IN) {
    if (b->kind != MOAI_TS_LIST && b->kind != MOAI_TS_TUPLE)
      return moai_ts_interp_error(in, e->line, MOAI_UNIMPLEMENTED,
                                  "'in' needs a list or tuple, not %s",
                                  kind_name(b->kind));
    bool found = false;
    double x, y;
    for (size_t i = 0; i < b->len && !found; ++i) {
      const moai_ts_value_t *it = b->items[i];
      if (scalar_number(a, &x) && scalar_number(it, &y)) found = x == y;
      else if (a->kind == MOAI_TS_STR && it->kind == MOAI_TS_STR)
        found = strcmp(a->str, it->str) == 0;
    }
    moai_ts_value_t *r = new_value(in, MOAI_TS_BOOL);
    if (!r) return oom(in);
    r->b = found == (e->op == MOAI_TS_OP_IN);
    *out = r;
    return moai_ok_status();
  }
  if (a->kind == MOAI_TS_STR && b->kind == MOAI_TS_STR &&
      (e->op == MOAI_TS_OP_EQ || e->op == MOAI_TS_OP_NE)) {
    moai_ts_value_t *r = new_value(in, MOAI_TS_BOOL);
    if (!r) return oom(in);
    r->b = (strcmp(a->str, b->str) == 0) == (e->op == MOAI_TS_OP_EQ);
    *out = r;
    return moai_ok_status();
  }
  return eval_binary_scalar(in, e->line, e->op, a, b, out);
}

static moai_status_t eval_unary(moai_ts_interp_t *in, frame_t *f,
                                const moai_ts_expr_t *e, moai_ts_value_t **out) {
  moai_ts_value_t *a = NULL;
  MOAI_RETURN_IF_ERROR(eval(in, f, e->base, &a));
  if (e->op == MOAI_TS_OP_NOT) {
    bool t;
    MOAI_RETURN_IF_ERROR(truth(in, a, e->line, "operand of 'not'", &t));
    moai_ts_value_t *r = new_value(in, MOAI_TS_BOOL);
    if (!r) return oom(in);
    r->b = !t;
    *out = r;
    return moai_ok_status();
  }
  if (e->op == '+' && (a->kind == MOAI_TS_INT || a->kind == MOAI_TS_FLOAT)) {
    *out = a;
    return moai_ok_status();
  }
  if (e->op == '-' && (a->kind == MOAI_TS_INT || a->kind == MOAI_TS_FLOAT)) {
    moai_ts_value_t *r = new_value(in, a->kind);
    if (!r) return oom(in);
    r->i = (int64_t)(0 - (uint64_t)a->i);
    r->f = -a->f;
    *out = r;
    return moai_ok_status();
  }
  if (e->op == '~' && is_intlike(a)) {
    moai_ts_value_t *r = new_value(in, MOAI_TS_INT);
    if (!r) return oom(in);
    r->i = ~(a->kind == MOAI_TS_BOOL ? (int64_t)a->b : a->i);
    *out = r;
    return moai_ok_status();
  }
  return moai_ts_interp_error(in, e->line, MOAI_UNIMPLEMENTED,
                              "unary '%s' on %s is not supported",
                              moai_ts_op_spelling(e->op), kind_name(a->kind));
}

static moai_status_t eval_items(moai_ts_interp_t *in, frame_t *f,
                                const moai_ts_expr_t *e, moai_ts_kind_t kind,
                                moai_ts_value_t **out) {
  moai_ts_value_t *v = new_value(in, kind);
  if (!v) return oom(in);
  v->len = e->n;
  if (e->n) {
    v->items = moai_ts_arena_alloc(in->em.arena, e->n * sizeof(*v->items));
    if (!v->items) return oom(in);
  }
  for (size_t i = 0; i < e->n; ++i)
    MOAI_RETURN_IF_ERROR(eval(in, f, e->items[i], &v->items[i]));
  *out = v;
  return moai_ok_status();
}

static moai_status_t eval_subscript(moai_ts_interp_t *in, frame_t *f,
                                    const moai_ts_expr_t *e,
                                    moai_ts_value_t **out) {
  moai_ts_value_t *a = NULL, *idx = NULL;
  MOAI_RETURN_IF_ERROR(eval(in, f, e->base, &a));
  MOAI_RETURN_IF_ERROR(eval(in, f, e->rhs, &idx));
  if ((a->kind == MOAI_TS_LIST || a->kind == MOAI_TS_TUPLE) &&
      idx->kind == MOAI_TS_INT) {
    int64_t i = idx->i < 0 ? idx->i + (int64_t)a->len : idx->i;
    if (i < 0 || i >= (int64_t)a->len)
      return moai_ts_interp_error(in, e->line, MOAI_INVALID_ARGUMENT,
                                  "index %lld out of range for a %s of %zu",
                                  (long long)idx->i, kind_name(a->kind), a->len);
    *out = a->items[i];
    return moai_ok_status();
  }
  if (a->kind == MOAI_TS_TENSOR) {
    /* x[i] on a tensor: aten::select / aten::index, as the op table has it. */
    moai_ts_value_t *args[2] = {a, idx};
    moai_ts_interp_at(in, e->line);
    return moai_ts_call_op(&in->em, "ops.aten.__getitem__", args, 2, NULL, 0,
                           out);
  }
  return moai_ts_interp_error(in, e->line, MOAI_UNIMPLEMENTED,
                              "subscript of a %s by a %s is not supported",
                              kind_name(a->kind), kind_name(idx->kind));
}

/* Positional and keyword arguments of a call, evaluated. */
typedef struct call_args_t {
  moai_ts_value_t **args;
  size_t nargs;
  moai_ts_kwarg_t *kwargs;
  size_t nkwargs;
} call_args_t;

static moai_status_t eval_args(moai_ts_interp_t *in, frame_t *f,
                               const moai_ts_expr_t *call, call_args_t *out) {
  call_args_t a = {.nargs = call->n, .nkwargs = call->nkw};
  if (call->n) {
    a.args = moai_ts_arena_alloc(in->em.arena, call->n * sizeof(*a.args));
    if (!a.args) return oom(in);
  }
  if (call->nkw) {
    a.kwargs = moai_ts_arena_alloc(in->em.arena, call->nkw * sizeof(*a.kwargs));
    if (!a.kwargs) return oom(in);
  }
  for (size_t i = 0; i < call->n; ++i)
    MOAI_RETURN_IF_ERROR(eval(in, f, call->items[i], &a.args[i]));
  for (size_t i = 0; i < call->nkw; ++i) {
    a.kwargs[i].name = call->kw_names[i];
    MOAI_RETURN_IF_ERROR(eval(in, f, call->kw_values[i], &a.kwargs[i].value));
  }
  *out = a;
  return moai_ok_status();
}

static moai_status_t call_def(moai_ts_interp_t *in, const moai_ts_source_t *src,
                              const moai_ts_def_t *def, moai_ts_value_t *self,
                              const call_args_t *a, int line,
                              moai_ts_value_t **out);

/* Builtins the interpreter answers itself (they are about values, not
 * tensors). Sets *handled. */
static moai_status_t call_builtin(moai_ts_interp_t *in, frame_t *f,
                                  const moai_ts_expr_t *call, const char *fn,
                                  bool *handled, moai_ts_value_t **out) {
  *handled = true;
  if (strcmp(fn, "annotate") == 0 || strcmp(fn, "ops.prim.unchecked_cast") == 0) {
    if (call->n != 2)
      return moai_ts_interp_error(in, call->line, MOAI_INVALID_ARGUMENT,
                                  "%s takes a type and a value", fn);
    return eval(in, f, call->items[1], out);
  }
  if (strcmp(fn, "uninitialized") == 0) {
    *out = new_value(in, MOAI_TS_NONE);
    return *out ? moai_ok_status() : oom(in);
  }
  if (strcmp(fn, "torch.device") == 0) {
    moai_ts_value_t *v = NULL;
    if (call->n != 1) return moai_ts_interp_error(in, call->line, MOAI_INVALID_ARGUMENT, "torch.device takes one argument");
    MOAI_RETURN_IF_ERROR(eval(in, f, call->items[0], &v));
    if (v->kind != MOAI_TS_STR || strncmp(v->str, "cpu", 3) != 0)
      return moai_ts_interp_error(in, call->line, MOAI_UNIMPLEMENTED,
                                  "torch.device: only \"cpu\" is supported");
    *out = v;
    return moai_ok_status();
  }
  if (strcmp(fn, "getattr") == 0) {
    call_args_t a;
    MOAI_RETURN_IF_ERROR(eval_args(in, f, call, &a));
    if (a.nargs != 2 || a.args[0]->kind != MOAI_TS_MODULE ||
        a.args[1]->kind != MOAI_TS_STR)
      return moai_ts_interp_error(in, call->line, MOAI_UNIMPLEMENTED,
                                  "getattr: only getattr(module, \"name\") is "
                                  "supported");
    return moai_ts_interp_module_attr(in, a.args[0], a.args[1]->str,
                                      call->line, out);
  }
  if (strcmp(fn, "ops.prim.RaiseException") == 0 || strcmp(fn, "range") == 0 ||
      strcmp(fn, "isinstance") == 0) {
    return moai_ts_interp_error(
        in, call->line, MOAI_UNIMPLEMENTED, "%s is not supported here",
        strcmp(fn, "ops.prim.RaiseException") == 0
            ? "the model raises an exception: ops.prim.RaiseException"
            : fn);
  }
  if (strcmp(fn, "len") == 0 || strcmp(fn, "float") == 0 ||
      strcmp(fn, "int") == 0 || strcmp(fn, "bool") == 0) {
    call_args_t a;
    MOAI_RETURN_IF_ERROR(eval_args(in, f, call, &a));
    moai_ts_value_t *x = a.nargs == 1 && !a.nkwargs ? a.args[0] : NULL;
    double d;
    moai_ts_value_t *r = NULL;
    if (x && fn[0] == 'l' &&
        (x->kind == MOAI_TS_LIST || x->kind == MOAI_TS_TUPLE ||
         x->kind == MOAI_TS_STR)) {
      if (!(r = new_value(in, MOAI_TS_INT))) return oom(in);
      r->i = x->kind == MOAI_TS_STR ? (int64_t)strlen(x->str) : (int64_t)x->len;
    } else if (x && fn[0] == 'f' && x->kind == MOAI_TS_STR) {
      if (!(r = new_value(in, MOAI_TS_FLOAT))) return oom(in);
      if (strcmp(x->str, "inf") == 0) r->f = INFINITY;
      else if (strcmp(x->str, "-inf") == 0) r->f = -INFINITY;
      else if (strcmp(x->str, "nan") == 0) r->f = NAN;
      else return moai_ts_interp_error(in, call->line, MOAI_UNIMPLEMENTED, "float(\"%s\")", x->str);
    } else if (x && fn[0] != 'l' && scalar_number(x, &d)) {
      if (fn[0] == 'f') {
        if (!(r = new_value(in, MOAI_TS_FLOAT))) return oom(in);
        r->f = d;
      } else if (fn[0] == 'i') {
        if (!(r = new_value(in, MOAI_TS_INT))) return oom(in);
        r->i = x->kind == MOAI_TS_INT ? x->i : (int64_t)d;
      } else {
        if (!(r = new_value(in, MOAI_TS_BOOL))) return oom(in);
        r->b = d != 0;
      }
    }
    if (r) {
      *out = r;
      return moai_ok_status();
    }
    /* A tensor (int(v) of a NumToTensor): the operator table's business. */
    moai_ts_interp_at(in, call->line);
    return moai_ts_call_op(&in->em, fn, a.args, a.nargs, a.kwargs, a.nkwargs, out);
  }
  *handled = false;
  return moai_ok_status();
}

/* torch.add(int, int) and friends in scripted code: arithmetic on
 * compile-time numbers (aten::add.int, aten::floordiv.int, ...). */
static bool scalar_op(const char *fn, int *out_op) {
  static const struct {
    const char *fn;
    int op;
  } ops[] = {
      {"torch.add", '+'},          {"torch.sub", '-'},
      {"torch.mul", '*'},          {"torch.div", '/'},
      {"torch.floordiv", MOAI_TS_OP_FLOORDIV},
      {"torch.remainder", '%'},    {"torch.pow", MOAI_TS_OP_POW},
      {"torch.eq", MOAI_TS_OP_EQ}, {"torch.ne", MOAI_TS_OP_NE},
      {"torch.lt", '<'},           {"torch.le", MOAI_TS_OP_LE},
      {"torch.gt", '>'},           {"torch.ge", MOAI_TS_OP_GE},
  };
  for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); ++i)
    if (strcmp(fn, ops[i].fn) == 0) {
      *out_op = ops[i].op;
      return true;
    }
  return false;
}

static moai_status_t eval_call(moai_ts_interp_t *in, frame_t *f,
                               const moai_ts_expr_t *e, moai_ts_value_t **out) {
  const moai_ts_expr_t *callee = e->base;
  char fn[512];
  if (dotted_name(f, callee, fn, sizeof(fn))) {
    bool handled = false;
    MOAI_RETURN_IF_ERROR(call_builtin(in, f, e, fn, &handled, out));
    if (handled) return moai_ok_status();
    call_args_t a;
    MOAI_RETURN_IF_ERROR(eval_args(in, f, e, &a));
    if (strncmp(fn, "__torch__.", 10) == 0) {
      const moai_ts_source_t *src = NULL;
      const moai_ts_def_t *def = NULL;
      MOAI_RETURN_IF_ERROR(moai_ts_interp_find_function(in, fn, &src, &def));
      return call_def(in, src, def, NULL, &a, e->line, out);
    }
    double x, y;
    int op = 0;
    if (a.nargs == 2 && !a.nkwargs && scalar_op(fn, &op) &&
        scalar_number(a.args[0], &x) && scalar_number(a.args[1], &y))
      return eval_binary_scalar(in, e->line, op, a.args[0], a.args[1], out);
    moai_ts_interp_at(in, e->line);
    return moai_ts_call_op(&in->em, fn, a.args, a.nargs, a.kwargs, a.nkwargs,
                           out);
  }
  if (callee->kind == MOAI_TS_EX_ATTR) {
    /* (module).method(...) */
    moai_ts_value_t *obj = NULL;
    MOAI_RETURN_IF_ERROR(eval(in, f, callee->base, &obj));
    if (obj->kind == MOAI_TS_MODULE) {
      call_args_t a;
      MOAI_RETURN_IF_ERROR(eval_args(in, f, e, &a));
      in->em.line = e->line;
      return moai_ts_interp_call_method(in, obj, callee->name, a.args, a.nargs,
                                        a.kwargs, a.nkwargs, out);
    }
    return moai_ts_interp_error(
        in, e->line, MOAI_UNIMPLEMENTED,
        "method call .%s() on a %s is not supported (only module methods)",
        callee->name, kind_name(obj->kind));
  }
  return moai_ts_interp_error(in, e->line, MOAI_UNIMPLEMENTED,
                              "this kind of call is not supported");
}

static moai_status_t eval_attr(moai_ts_interp_t *in, frame_t *f,
                               const moai_ts_expr_t *e, moai_ts_value_t **out) {
  char name[512];
  if (dotted_name(f, e, name, sizeof(name))) {
    /* CONSTANTS.c<i> */
    if (strncmp(name, "CONSTANTS.c", 11) == 0 && name[11]) {
      char *end = NULL;
      long long idx = strtoll(name + 11, &end, 10);
      if (end && !*end && idx >= 0)
        return moai_ts_interp_constant(in, idx, e->line, out);
    }
    return moai_ts_interp_error(in, e->line, MOAI_UNIMPLEMENTED,
                                "'%s' is not supported as a value", name);
  }
  moai_ts_value_t *obj = NULL;
  MOAI_RETURN_IF_ERROR(eval(in, f, e->base, &obj));
  if (obj->kind == MOAI_TS_MODULE)
    return moai_ts_interp_module_attr(in, obj, e->name, e->line, out);
  return moai_ts_interp_error(in, e->line, MOAI_UNIMPLEMENTED,
                              "attribute .%s of a %s is not supported",
                              e->name, kind_name(obj->kind));
}

static moai_status_t eval(moai_ts_interp_t *in, frame_t *f,
                          const moai_ts_expr_t *e, moai_ts_value_t **out) {
  moai_ts_value_t *v = NULL;
  switch (e->kind) {
    case MOAI_TS_EX_INT:
      if (!(v = new_value(in, MOAI_TS_INT))) return oom(in);
      v->i = e->i;
      break;
    case MOAI_TS_EX_FLOAT:
      if (!(v = new_value(in, MOAI_TS_FLOAT))) return oom(in);
      v->f = e->f;
      break;
    case MOAI_TS_EX_BOOL:
      if (!(v = new_value(in, MOAI_TS_BOOL))) return oom(in);
      v->b = e->b;
      break;
    case MOAI_TS_EX_NONE:
      if (!(v = new_value(in, MOAI_TS_NONE))) return oom(in);
      break;
    case MOAI_TS_EX_STR:
      if (!(v = new_value(in, MOAI_TS_STR))) return oom(in);
      v->str = e->name;
      break;
    case MOAI_TS_EX_NAME:
      v = lookup(f, e->name);
      if (!v)
        return moai_ts_interp_error(in, e->line, MOAI_INVALID_ARGUMENT,
                                    "name '%s' is not defined", e->name);
      break;
    case MOAI_TS_EX_LIST:
      return eval_items(in, f, e, MOAI_TS_LIST, out);
    case MOAI_TS_EX_TUPLE:
      return eval_items(in, f, e, MOAI_TS_TUPLE, out);
    case MOAI_TS_EX_ATTR:
      return eval_attr(in, f, e, out);
    case MOAI_TS_EX_CALL:
      return eval_call(in, f, e, out);
    case MOAI_TS_EX_SUBSCRIPT:
      return eval_subscript(in, f, e, out);
    case MOAI_TS_EX_UNARY:
      return eval_unary(in, f, e, out);
    case MOAI_TS_EX_BINARY:
      return eval_binary(in, f, e, out);
    case MOAI_TS_EX_AND:
    case MOAI_TS_EX_OR: {
      moai_ts_value_t *a = NULL;
      bool t;
      MOAI_RETURN_IF_ERROR(eval(in, f, e->base, &a));
      MOAI_RETURN_IF_ERROR(truth(in, a, e->line,
                                 e->kind == MOAI_TS_EX_AND ? "operand of 'and'"
                                                           : "operand of 'or'",
                                 &t));
      if (t == (e->kind == MOAI_TS_EX_OR)) {
        *out = a;
        return moai_ok_status();
      }
      return eval(in, f, e->rhs, out);
    }
  }
  if (!v)
    return moai_ts_interp_error(in, e->line, MOAI_INTERNAL,
                                "unknown expression kind %d", (int)e->kind);
  *out = v;
  return moai_ok_status();
}

/* ---- statements ----------------------------------------------------------- */

static moai_status_t assign(moai_ts_interp_t *in, frame_t *f,
                            const moai_ts_expr_t *target, moai_ts_value_t *v,
                            int line) {
  if (target->kind == MOAI_TS_EX_NAME) return bind(in, f, target->name, v);
  if (target->kind == MOAI_TS_EX_TUPLE || target->kind == MOAI_TS_EX_LIST) {
    if (v->kind != MOAI_TS_TUPLE && v->kind != MOAI_TS_LIST)
      return moai_ts_interp_error(in, line, MOAI_INVALID_ARGUMENT,
                                  "cannot unpack a %s into %zu names",
                                  kind_name(v->kind), target->n);
    if (v->len != target->n)
      return moai_ts_interp_error(in, line, MOAI_INVALID_ARGUMENT,
                                  "cannot unpack %zu values into %zu names",
                                  v->len, target->n);
    for (size_t i = 0; i < target->n; ++i)
      MOAI_RETURN_IF_ERROR(assign(in, f, target->items[i], v->items[i], line));
    return moai_ok_status();
  }
  return moai_ts_interp_error(in, line, MOAI_UNIMPLEMENTED,
                              "assignment to this target is not supported "
                              "(only names and tuples of names)");
}

static moai_status_t exec_block(moai_ts_interp_t *in, frame_t *f,
                                const moai_ts_block_t *b, flow_t *flow);

static moai_status_t exec_loop_body(moai_ts_interp_t *in, frame_t *f,
                                    const moai_ts_stmt_t *s, flow_t *flow,
                                    bool *stop) {
  MOAI_RETURN_IF_ERROR(exec_block(in, f, &s->body, flow));
  *stop = *flow == FLOW_RETURN || *flow == FLOW_BREAK;
  if (*flow != FLOW_RETURN) *flow = FLOW_NEXT;
  return moai_ok_status();
}

static moai_status_t exec_for(moai_ts_interp_t *in, frame_t *f,
                              const moai_ts_stmt_t *s, flow_t *flow) {
  const moai_ts_expr_t *it = s->value;
  char fn[64];
  bool stop = false;
  if (it->kind == MOAI_TS_EX_CALL && dotted_name(f, it->base, fn, sizeof(fn)) &&
      strcmp(fn, "range") == 0) {
    call_args_t a;
    MOAI_RETURN_IF_ERROR(eval_args(in, f, it, &a));
    int64_t r[3] = {0, 0, 1};
    if (a.nargs < 1 || a.nargs > 3 || a.nkwargs)
      return moai_ts_interp_error(in, s->line, MOAI_INVALID_ARGUMENT,
                                  "range takes 1 to 3 arguments");
    for (size_t i = 0; i < a.nargs; ++i)
      if (a.args[i]->kind != MOAI_TS_INT)
        return moai_ts_interp_error(
            in, s->line, MOAI_UNIMPLEMENTED,
            "the bounds of range() must be compile-time ints, not %s",
            kind_name(a.args[i]->kind));
    if (a.nargs == 1) r[1] = a.args[0]->i;
    else for (size_t i = 0; i < a.nargs; ++i) r[i] = a.args[i]->i;
    if (r[2] == 0)
      return moai_ts_interp_error(in, s->line, MOAI_INVALID_ARGUMENT,
                                  "range() step is zero");
    for (int64_t i = r[0]; !stop && (r[2] > 0 ? i < r[1] : i > r[1]); i += r[2]) {
      moai_ts_value_t *v = new_value(in, MOAI_TS_INT);
      if (!v) return oom(in);
      v->i = i;
      MOAI_RETURN_IF_ERROR(assign(in, f, s->target, v, s->line));
      MOAI_RETURN_IF_ERROR(exec_loop_body(in, f, s, flow, &stop));
      if (++in->steps > MOAI_TS_MAX_STEPS)
        return moai_ts_interp_error(in, s->line, MOAI_INVALID_ARGUMENT,
                                    "the loop runs more than %d steps",
                                    MOAI_TS_MAX_STEPS);
    }
    return moai_ok_status();
  }
  moai_ts_value_t *seq = NULL;
  MOAI_RETURN_IF_ERROR(eval(in, f, it, &seq));
  if (seq->kind != MOAI_TS_LIST && seq->kind != MOAI_TS_TUPLE)
    return moai_ts_interp_error(
        in, s->line, MOAI_UNIMPLEMENTED,
        "a for loop over a %s is not supported (only range() and lists)",
        kind_name(seq->kind));
  for (size_t i = 0; !stop && i < seq->len; ++i) {
    MOAI_RETURN_IF_ERROR(assign(in, f, s->target, seq->items[i], s->line));
    MOAI_RETURN_IF_ERROR(exec_loop_body(in, f, s, flow, &stop));
  }
  return moai_ok_status();
}

static moai_status_t exec_stmt(moai_ts_interp_t *in, frame_t *f,
                               const moai_ts_stmt_t *s, flow_t *flow) {
  if (++in->steps > MOAI_TS_MAX_STEPS)
    return moai_ts_interp_error(in, s->line, MOAI_INVALID_ARGUMENT,
                                "the code runs more than %d statements",
                                MOAI_TS_MAX_STEPS);
  moai_ts_value_t *v = NULL;
  bool t = false;
  switch (s->kind) {
    case MOAI_TS_ST_ASSIGN:
      MOAI_RETURN_IF_ERROR(eval(in, f, s->value, &v));
      return assign(in, f, s->target, v, s->line);
    case MOAI_TS_ST_AUGASSIGN: {
      moai_ts_value_t *a = NULL, *b = NULL;
      MOAI_RETURN_IF_ERROR(eval(in, f, s->target, &a));
      MOAI_RETURN_IF_ERROR(eval(in, f, s->value, &b));
      MOAI_RETURN_IF_ERROR(eval_binary_scalar(in, s->line, s->op, a, b, &v));
      return assign(in, f, s->target, v, s->line);
    }
    case MOAI_TS_ST_EXPR:
      return eval(in, f, s->value, &v);
    case MOAI_TS_ST_RETURN:
      if (s->value) MOAI_RETURN_IF_ERROR(eval(in, f, s->value, &v));
      else if (!(v = new_value(in, MOAI_TS_NONE))) return oom(in);
      f->ret = v;
      *flow = FLOW_RETURN;
      return moai_ok_status();
    case MOAI_TS_ST_IF:
      MOAI_RETURN_IF_ERROR(eval(in, f, s->value, &v));
      MOAI_RETURN_IF_ERROR(truth(in, v, s->line, "condition of 'if'", &t));
      return exec_block(in, f, t ? &s->body : &s->orelse, flow);
    case MOAI_TS_ST_FOR:
      return exec_for(in, f, s, flow);
    case MOAI_TS_ST_WHILE:
      for (bool stop = false; !stop;) {
        MOAI_RETURN_IF_ERROR(eval(in, f, s->value, &v));
        MOAI_RETURN_IF_ERROR(truth(in, v, s->line, "condition of 'while'", &t));
        if (!t) break;
        MOAI_RETURN_IF_ERROR(exec_loop_body(in, f, s, flow, &stop));
        if (++in->steps > MOAI_TS_MAX_STEPS)
          return moai_ts_interp_error(in, s->line, MOAI_INVALID_ARGUMENT,
                                      "the loop runs more than %d steps",
                                      MOAI_TS_MAX_STEPS);
      }
      return moai_ok_status();
    case MOAI_TS_ST_BREAK:
      *flow = FLOW_BREAK;
      return moai_ok_status();
    case MOAI_TS_ST_CONTINUE:
      *flow = FLOW_CONTINUE;
      return moai_ok_status();
    case MOAI_TS_ST_PASS:
    case MOAI_TS_ST_IMPORT:
      return moai_ok_status();
    case MOAI_TS_ST_ASSERT:
      MOAI_RETURN_IF_ERROR(eval(in, f, s->value, &v));
      /* Checked when known; an assert on tensor data cannot be. */
      if (v->kind == MOAI_TS_TENSOR && !v->konst) return moai_ok_status();
      MOAI_RETURN_IF_ERROR(truth(in, v, s->line, "assertion", &t));
      if (!t)
        return moai_ts_interp_error(in, s->line, MOAI_INVALID_ARGUMENT,
                                    "assertion failed");
      return moai_ok_status();
    case MOAI_TS_ST_RAISE:
      return moai_ts_interp_error(in, s->line, MOAI_INVALID_ARGUMENT,
                                  "the model raises an exception here");
    case MOAI_TS_ST_ANNOT:
    case MOAI_TS_ST_DEF:
    case MOAI_TS_ST_CLASS:
      break;
  }
  return moai_ts_interp_error(in, s->line, MOAI_UNIMPLEMENTED,
                              "this statement is not supported inside a "
                              "function");
}

static moai_status_t exec_block(moai_ts_interp_t *in, frame_t *f,
                                const moai_ts_block_t *b, flow_t *flow) {
  *flow = FLOW_NEXT;
  for (size_t i = 0; i < b->n && *flow == FLOW_NEXT; ++i)
    MOAI_RETURN_IF_ERROR(exec_stmt(in, f, b->items[i], flow));
  return moai_ok_status();
}

/* ---- calls ---------------------------------------------------------------- */

static moai_status_t call_def(moai_ts_interp_t *in, const moai_ts_source_t *src,
                              const moai_ts_def_t *def, moai_ts_value_t *self,
                              const call_args_t *a, int line,
                              moai_ts_value_t **out) {
  if (in->call_depth >= MOAI_TS_MAX_CALL_DEPTH)
    return moai_ts_interp_error(in, line, MOAI_INVALID_ARGUMENT,
                                "calls nested more than %d deep (recursion?)",
                                MOAI_TS_MAX_CALL_DEPTH);
  size_t first = self ? 1 : 0;
  if (def->nparams < first || a->nargs > def->nparams - first)
    return moai_ts_interp_error(in, line, MOAI_INVALID_ARGUMENT,
                                "%s() takes %zu arguments, %zu given",
                                def->name, def->nparams - first, a->nargs);
  const char *caller_file = in->em.file;
  frame_t f = {0};
  moai_status_t st = moai_ok_status();
  if (self) st = bind(in, &f, def->params[0].name, self);
  for (size_t i = first; !st && i < def->nparams; ++i) {
    const moai_ts_param_t *p = &def->params[i];
    moai_ts_value_t *v = NULL;
    if (i - first < a->nargs) v = a->args[i - first];
    for (size_t k = 0; k < a->nkwargs; ++k)
      if (strcmp(a->kwargs[k].name, p->name) == 0) v = a->kwargs[k].value;
    if (!v && p->value) {
      in->em.file = moai_ts_source_file(src);
      st = eval(in, &f, p->value, &v);
      in->em.file = caller_file;
    }
    if (!st && !v)
      st = moai_ts_interp_error(in, line, MOAI_INVALID_ARGUMENT,
                                "%s(): no value for parameter '%s'", def->name,
                                p->name);
    if (!st) st = bind(in, &f, p->name, v);
  }
  for (size_t k = 0; !st && k < a->nkwargs; ++k) {
    bool known = false;
    for (size_t i = first; i < def->nparams; ++i)
      known |= strcmp(a->kwargs[k].name, def->params[i].name) == 0;
    if (!known)
      st = moai_ts_interp_error(in, line, MOAI_INVALID_ARGUMENT,
                                "%s(): no parameter '%s'", def->name,
                                a->kwargs[k].name);
  }
  if (st) return st;
  ++in->call_depth;
  in->em.file = moai_ts_source_file(src);
  flow_t flow = FLOW_NEXT;
  st = exec_block(in, &f, &def->body, &flow);
  in->em.file = caller_file;
  --in->call_depth;
  if (st) return st;
  if (!f.ret && !(f.ret = new_value(in, MOAI_TS_NONE))) return oom(in);
  *out = f.ret;
  return moai_ok_status();
}

moai_status_t moai_ts_interp_call_method(moai_ts_interp_t *in,
                                         moai_ts_value_t *self,
                                         const char *method,
                                         moai_ts_value_t **args, size_t nargs,
                                         const moai_ts_kwarg_t *kwargs,
                                         size_t nkwargs,
                                         moai_ts_value_t **out) {
  const moai_ts_source_t *src = NULL;
  const moai_ts_class_t *cls = NULL;
  int line = in->em.line;
  MOAI_RETURN_IF_ERROR(
      moai_ts_interp_find_class(in, self->module->str, &src, &cls));
  const moai_ts_def_t *def = moai_ts_class_method(cls, method);
  if (!def)
    return moai_ts_interp_error(
        in, line, MOAI_INVALID_ARGUMENT, "module '%s' (%s) has no method '%s'",
        self->module_path && *self->module_path ? self->module_path : "<root>",
        self->module->str, method);
  call_args_t a = {.args = args, .nargs = nargs,
                   .kwargs = (moai_ts_kwarg_t *)kwargs, .nkwargs = nkwargs};
  return call_def(in, src, def, self, &a, line, out);
}
