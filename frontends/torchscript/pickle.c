/* The restricted unpickler: the pickle machine (stack, marks, memo) and its
 * opcodes. What the allowed globals build is in pickle_globals.c.
 *
 * Pickle format: Python's Lib/pickletools.py documents every opcode.
 * Values are shared through the memo exactly as Python shares objects; to
 * keep the result a finite DAG (no cycles), a value is frozen once it is
 * placed inside another one and a frozen value is never mutated again
 * (APPEND, SETITEM, BUILD on it are errors). Python's pickler always
 * finishes a container before placing it, so real pickles never trip this. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torchscript/pickle_internal.h"

/* ---- Arena --------------------------------------------------------------- */

typedef struct pk_block_t {
  struct pk_block_t *next;
  size_t used, cap;
  _Alignas(16) unsigned char data[];
} pk_block_t;

struct moai_pk_arena_t {
  pk_block_t *head;
  uint64_t bytes;
};

#define PK_BLOCK_BYTES (64u << 10)

void moai_pk_arena_free(moai_pk_arena_t *arena) {
  if (!arena) return;
  for (pk_block_t *b = arena->head; b;) {
    pk_block_t *next = b->next;
    free(b);
    b = next;
  }
  free(arena);
}

/* Zeroed, 16-byte aligned memory, or NULL (out of memory or over the limit). */
static void *arena_alloc(moai_pk_arena_t *arena, size_t size) {
  size = (size + 15) & ~(size_t)15;
  if (size == 0) size = 16;
  pk_block_t *b = arena->head;
  if (!b || b->cap - b->used < size) {
    size_t cap = size > PK_BLOCK_BYTES / 4 ? size : PK_BLOCK_BYTES;
    if (arena->bytes + cap > MOAI_PK_MAX_ARENA_BYTES) return NULL;
    pk_block_t *nb = malloc(sizeof(pk_block_t) + cap);
    if (!nb) return NULL;
    nb->used = 0;
    nb->cap = cap;
    arena->bytes += cap;
    if (b && cap != PK_BLOCK_BYTES) {
      /* A large allocation gets its own block behind the current one. */
      nb->next = b->next;
      b->next = nb;
    } else {
      nb->next = b;
      arena->head = nb;
    }
    b = nb;
  }
  void *p = b->data + b->used;
  b->used += size;
  memset(p, 0, size);
  return p;
}

/* ---- Machine ------------------------------------------------------------- */

struct pk_machine_t {
  const uint8_t *data;
  size_t size, pos;
  size_t op_pos; /* offset of the opcode being run, for errors */
  const char *name;
  moai_pk_arena_t *arena;
  pk_node_t **stack;
  size_t sp, stack_cap;
  size_t marks[MOAI_PK_MAX_MARKS];
  size_t nmarks;
  pk_node_t **memo;
  size_t memo_cap, memo_count;
};

moai_status_t pk_error(const pk_machine_t *m, moai_status_code_t code,
                       const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return MOAI_STATUS(code, "%s: byte %zu: %s", m->name, m->op_pos, msg);
}

static moai_status_t oom(const pk_machine_t *m) {
  return pk_error(m, MOAI_OUT_OF_MEMORY,
                  "out of memory (the pickle needs more than %llu MiB)",
                  (unsigned long long)(MOAI_PK_MAX_ARENA_BYTES >> 20));
}

moai_status_t pk_new(pk_machine_t *m, moai_pk_kind_t kind, pk_node_t **out) {
  pk_node_t *n = arena_alloc(m->arena, sizeof *n);
  if (!n) return oom(m);
  n->v.kind = kind;
  n->depth = 1;
  n->nodes = 1;
  n->internal = kind == MOAI_PK_GLOBAL;
  *out = n;
  return moai_ok_status();
}

moai_status_t pk_strdup(pk_machine_t *m, const char *s, const char **out) {
  size_t n = strlen(s);
  char *p = arena_alloc(m->arena, n + 1);
  if (!p) return oom(m);
  memcpy(p, s, n + 1);
  *out = p;
  return moai_ok_status();
}

/* Records `child` as placed inside `parent` (limits, freezing). */
static moai_status_t adopt(pk_machine_t *m, pk_node_t *parent,
                           pk_node_t *child) {
  if (child == parent)
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "a value placed inside itself (a cyclic structure moai "
                    "does not read)");
  child->frozen = true;
  if (child->depth + 1 > parent->depth) parent->depth = child->depth + 1;
  if (parent->depth > MOAI_PK_MAX_DEPTH)
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "values nested more than %d deep", MOAI_PK_MAX_DEPTH);
  parent->nodes += child->nodes; /* both <= MAX_NODES: cannot overflow */
  if (parent->nodes > MOAI_PK_MAX_NODES)
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "a value holds more than %llu values (counting shared "
                    "ones each time)", (unsigned long long)MOAI_PK_MAX_NODES);
  parent->internal |= child->internal;
  return moai_ok_status();
}

/* Makes room for one more item in a LIST/DICT's items (len + need <= cap). */
static moai_status_t reserve(pk_machine_t *m, pk_node_t *c, size_t need) {
  if (c->v.len + need <= c->cap) return moai_ok_status();
  size_t cap = c->cap ? 2 * c->cap : 8;
  while (cap < c->v.len + need) cap *= 2;
  moai_pk_value_t **items = arena_alloc(m->arena, cap * sizeof *items);
  if (!items) return oom(m);
  if (c->v.len) memcpy(items, c->v.items, c->v.len * sizeof *items);
  c->v.items = items;
  c->cap = cap;
  return moai_ok_status();
}

static moai_status_t check_mutable(pk_machine_t *m, pk_node_t *c,
                                   moai_pk_kind_t kind, const char *op) {
  if (c->v.kind != kind)
    return pk_error(m, MOAI_INVALID_ARGUMENT, "%s on a value that is not a %s",
                    op, kind == MOAI_PK_LIST ? "list" : "dict");
  if (c->frozen)
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "%s on a %s already placed inside another value (a "
                    "cyclic or shared structure moai does not read)",
                    op, kind == MOAI_PK_LIST ? "list" : "dict");
  return moai_ok_status();
}

static moai_status_t list_push(pk_machine_t *m, pk_node_t *list,
                               pk_node_t *item, const char *op) {
  MOAI_RETURN_IF_ERROR(check_mutable(m, list, MOAI_PK_LIST, op));
  if (list->v.len >= MOAI_PK_MAX_ITEMS)
    return pk_error(m, MOAI_INVALID_ARGUMENT, "a list of more than %u items",
                    MOAI_PK_MAX_ITEMS);
  MOAI_RETURN_IF_ERROR(reserve(m, list, 1));
  MOAI_RETURN_IF_ERROR(adopt(m, list, item));
  list->v.items[list->v.len++] = &item->v;
  return moai_ok_status();
}

static bool key_equal(const moai_pk_value_t *a, const moai_pk_value_t *b) {
  if (a->kind != b->kind) return false;
  switch (a->kind) {
    case MOAI_PK_STR: return a->len == b->len && !memcmp(a->str, b->str, a->len);
    case MOAI_PK_INT: return a->i == b->i;
    case MOAI_PK_BOOL: return a->b == b->b;
    case MOAI_PK_NONE: return true;
    default: return a == b;
  }
}

/* dict[key] = value; an existing equal key keeps its place (Python's dict). */
static moai_status_t dict_set(pk_machine_t *m, pk_node_t *dict, pk_node_t *key,
                              pk_node_t *value, const char *op) {
  MOAI_RETURN_IF_ERROR(check_mutable(m, dict, MOAI_PK_DICT, op));
  MOAI_RETURN_IF_ERROR(adopt(m, dict, key));
  MOAI_RETURN_IF_ERROR(adopt(m, dict, value));
  for (size_t i = 0; i < dict->v.len; i += 2) {
    if (key_equal(dict->v.items[i], &key->v)) {
      dict->v.items[i + 1] = &value->v;
      return moai_ok_status();
    }
  }
  if (dict->v.len / 2 >= MOAI_PK_MAX_DICT_PAIRS)
    return pk_error(m, MOAI_INVALID_ARGUMENT, "a dict of more than %u items",
                    MOAI_PK_MAX_DICT_PAIRS);
  MOAI_RETURN_IF_ERROR(reserve(m, dict, 2));
  dict->v.items[dict->v.len++] = &key->v;
  dict->v.items[dict->v.len++] = &value->v;
  return moai_ok_status();
}

/* A TUPLE of the `n` nodes at `items`. */
static moai_status_t make_tuple(pk_machine_t *m, pk_node_t **items, size_t n,
                                pk_node_t **out) {
  if (n > MOAI_PK_MAX_ITEMS)
    return pk_error(m, MOAI_INVALID_ARGUMENT, "a tuple of more than %u items",
                    MOAI_PK_MAX_ITEMS);
  pk_node_t *t = NULL;
  MOAI_RETURN_IF_ERROR(pk_new(m, MOAI_PK_TUPLE, &t));
  if (n) {
    t->v.items = arena_alloc(m->arena, n * sizeof *t->v.items);
    if (!t->v.items) return oom(m);
  }
  for (size_t i = 0; i < n; ++i) {
    MOAI_RETURN_IF_ERROR(adopt(m, t, items[i]));
    t->v.items[i] = &items[i]->v;
  }
  t->v.len = n;
  *out = t;
  return moai_ok_status();
}

/* ---- Stack, marks, memo -------------------------------------------------- */

static moai_status_t push(pk_machine_t *m, pk_node_t *n) {
  if (m->sp == m->stack_cap) {
    if (m->sp >= MOAI_PK_MAX_STACK)
      return pk_error(m, MOAI_INVALID_ARGUMENT,
                      "more than %d values on the stack", MOAI_PK_MAX_STACK);
    size_t cap = m->stack_cap ? 2 * m->stack_cap : 64;
    if (cap > MOAI_PK_MAX_STACK) cap = MOAI_PK_MAX_STACK;
    pk_node_t **s = realloc(m->stack, cap * sizeof *s);
    if (!s) return oom(m);
    m->stack = s;
    m->stack_cap = cap;
  }
  m->stack[m->sp++] = n;
  return moai_ok_status();
}

/* The bottom of the current frame: the innermost MARK, or 0. */
static size_t frame_base(const pk_machine_t *m) {
  return m->nmarks ? m->marks[m->nmarks - 1] : 0;
}

/* Pops one value (not below the innermost MARK). */
static moai_status_t pop(pk_machine_t *m, pk_node_t **out) {
  if (m->sp <= frame_base(m))
    return pk_error(m, MOAI_INVALID_ARGUMENT, "stack underflow");
  *out = m->stack[--m->sp];
  return moai_ok_status();
}

static moai_status_t top(pk_machine_t *m, pk_node_t **out) {
  if (m->sp <= frame_base(m))
    return pk_error(m, MOAI_INVALID_ARGUMENT, "stack underflow");
  *out = m->stack[m->sp - 1];
  return moai_ok_status();
}

/* Pops to the innermost MARK: *out_items = the values above it (they stay
 * valid in the stack array until the next push), *out_n their count. */
static moai_status_t pop_mark(pk_machine_t *m, pk_node_t ***out_items,
                              size_t *out_n) {
  if (!m->nmarks)
    return pk_error(m, MOAI_INVALID_ARGUMENT, "no MARK to pop to");
  size_t base = m->marks[--m->nmarks];
  *out_items = m->stack + base;
  *out_n = m->sp - base;
  m->sp = base;
  return moai_ok_status();
}

static moai_status_t memo_put(pk_machine_t *m, uint64_t index) {
  if (index >= MOAI_PK_MAX_MEMO)
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "memo index %llu over the limit of %d",
                    (unsigned long long)index, MOAI_PK_MAX_MEMO);
  pk_node_t *v = NULL;
  MOAI_RETURN_IF_ERROR(top(m, &v));
  if (index >= m->memo_cap) {
    size_t cap = m->memo_cap ? m->memo_cap : 64;
    while (cap <= index) cap *= 2;
    pk_node_t **memo = realloc(m->memo, cap * sizeof *memo);
    if (!memo) return oom(m);
    memset(memo + m->memo_cap, 0, (cap - m->memo_cap) * sizeof *memo);
    m->memo = memo;
    m->memo_cap = cap;
  }
  if (!m->memo[index]) m->memo_count++;
  m->memo[index] = v;
  return moai_ok_status();
}

static moai_status_t memo_get(pk_machine_t *m, uint64_t index) {
  if (index >= m->memo_cap || !m->memo[index])
    return pk_error(m, MOAI_INVALID_ARGUMENT, "memo entry %llu is not set",
                    (unsigned long long)index);
  return push(m, m->memo[index]);
}

/* ---- Reading the stream -------------------------------------------------- */

static moai_status_t need(pk_machine_t *m, uint64_t n) {
  if (n > m->size - m->pos)
    return pk_error(m, MOAI_DATA_LOSS,
                    "truncated pickle (an operand runs past the end)");
  return moai_ok_status();
}

static uint64_t read_le(pk_machine_t *m, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; ++i) v |= (uint64_t)m->data[m->pos + i] << (8 * i);
  m->pos += n;
  return v;
}

/* Whether `s[0..n)` is UTF-8 without NUL (names, keys, devices). */
static bool valid_utf8(const uint8_t *s, size_t n) {
  for (size_t i = 0; i < n;) {
    uint8_t c = s[i];
    size_t k = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2
             : (c >> 3) == 30 ? 3 : 9;
    if (c == 0 || k == 9 || n - i <= k) return false;
    for (size_t j = 1; j <= k; ++j)
      if ((s[i + j] & 0xc0) != 0x80) return false;
    i += k + 1;
  }
  return true;
}

static moai_status_t push_str(pk_machine_t *m, unsigned len_bytes) {
  MOAI_RETURN_IF_ERROR(need(m, len_bytes));
  uint64_t n = read_le(m, len_bytes);
  if (n > MOAI_PK_MAX_STR)
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "a string of %llu bytes (the limit is %u)",
                    (unsigned long long)n, MOAI_PK_MAX_STR);
  MOAI_RETURN_IF_ERROR(need(m, n));
  if (!valid_utf8(m->data + m->pos, n))
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "a string that is not UTF-8 (or holds a NUL)");
  pk_node_t *s;
  MOAI_RETURN_IF_ERROR(pk_new(m, MOAI_PK_STR, &s));
  char *p = arena_alloc(m->arena, n + 1);
  if (!p) return oom(m);
  memcpy(p, m->data + m->pos, n);
  m->pos += n;
  s->v.str = p;
  s->v.len = n;
  return push(m, s);
}

static moai_status_t push_int(pk_machine_t *m, int64_t i) {
  pk_node_t *n;
  MOAI_RETURN_IF_ERROR(pk_new(m, MOAI_PK_INT, &n));
  n->v.i = i;
  return push(m, n);
}

static moai_status_t push_kind(pk_machine_t *m, moai_pk_kind_t kind, bool b) {
  pk_node_t *n;
  MOAI_RETURN_IF_ERROR(pk_new(m, kind, &n));
  n->v.b = b;
  return push(m, n);
}

static moai_status_t op_long1(pk_machine_t *m) {
  MOAI_RETURN_IF_ERROR(need(m, 1));
  unsigned n = m->data[m->pos++];
  if (n > 8)
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "LONG1 of %u bytes does not fit in 64 bits", n);
  MOAI_RETURN_IF_ERROR(need(m, n));
  uint64_t v = read_le(m, n);
  if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~(uint64_t)0 << (8 * n);
  return push_int(m, (int64_t)v);
}

static moai_status_t op_binfloat(pk_machine_t *m) {
  MOAI_RETURN_IF_ERROR(need(m, 8));
  uint64_t bits = 0;
  for (int i = 0; i < 8; ++i) bits = bits << 8 | m->data[m->pos++];
  pk_node_t *n;
  MOAI_RETURN_IF_ERROR(pk_new(m, MOAI_PK_FLOAT, &n));
  memcpy(&n->v.f, &bits, sizeof bits);
  return push(m, n);
}

/* One newline-terminated line of GLOBAL's operand, copied into `buf`. */
static moai_status_t read_line(pk_machine_t *m, char *buf, size_t cap) {
  size_t i = 0;
  for (;;) {
    MOAI_RETURN_IF_ERROR(need(m, 1));
    char c = (char)m->data[m->pos++];
    if (c == '\n') break;
    if (c < 0x20 || c > 0x7e || i + 1 >= cap)
      return pk_error(m, MOAI_INVALID_ARGUMENT,
                      "GLOBAL operand is not a short printable name");
    buf[i++] = c;
  }
  buf[i] = '\0';
  return moai_ok_status();
}

static moai_status_t op_global(pk_machine_t *m) {
  char module[256], name[256];
  MOAI_RETURN_IF_ERROR(read_line(m, module, sizeof module));
  MOAI_RETURN_IF_ERROR(read_line(m, name, sizeof name));
  pk_node_t *g;
  MOAI_RETURN_IF_ERROR(pk_global(m, module, name, &g));
  return push(m, g);
}

static moai_status_t op_stack_global(pk_machine_t *m) {
  pk_node_t *module = NULL, *name = NULL, *g = NULL;
  MOAI_RETURN_IF_ERROR(pop(m, &name));
  MOAI_RETURN_IF_ERROR(pop(m, &module));
  if (module->v.kind != MOAI_PK_STR || name->v.kind != MOAI_PK_STR ||
      module->v.len > 255 || name->v.len > 255)
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "STACK_GLOBAL of something other than two short strings");
  MOAI_RETURN_IF_ERROR(pk_global(m, module->v.str, name->v.str, &g));
  return push(m, g);
}

static moai_status_t op_tuple_n(pk_machine_t *m, size_t n) {
  if (m->sp - frame_base(m) < n)
    return pk_error(m, MOAI_INVALID_ARGUMENT, "stack underflow");
  pk_node_t *t = NULL;
  MOAI_RETURN_IF_ERROR(make_tuple(m, m->stack + m->sp - n, n, &t));
  m->sp -= n;
  return push(m, t);
}

static moai_status_t op_mark_tuple(pk_machine_t *m, moai_pk_kind_t kind) {
  pk_node_t **items = NULL, *c = NULL;
  size_t n = 0;
  MOAI_RETURN_IF_ERROR(pop_mark(m, &items, &n));
  if (kind == MOAI_PK_TUPLE) {
    MOAI_RETURN_IF_ERROR(make_tuple(m, items, n, &c));
  } else if (kind == MOAI_PK_LIST) {
    MOAI_RETURN_IF_ERROR(pk_new(m, MOAI_PK_LIST, &c));
    for (size_t i = 0; i < n; ++i)
      MOAI_RETURN_IF_ERROR(list_push(m, c, items[i], "LIST"));
  } else {
    if (n % 2)
      return pk_error(m, MOAI_INVALID_ARGUMENT, "DICT of an odd count");
    MOAI_RETURN_IF_ERROR(pk_new(m, MOAI_PK_DICT, &c));
    for (size_t i = 0; i < n; i += 2)
      MOAI_RETURN_IF_ERROR(dict_set(m, c, items[i], items[i + 1], "DICT"));
  }
  return push(m, c);
}

static moai_status_t op_appends(pk_machine_t *m) {
  pk_node_t **items = NULL, *list = NULL;
  size_t n = 0;
  MOAI_RETURN_IF_ERROR(pop_mark(m, &items, &n));
  MOAI_RETURN_IF_ERROR(top(m, &list));
  for (size_t i = 0; i < n; ++i)
    MOAI_RETURN_IF_ERROR(list_push(m, list, items[i], "APPENDS"));
  return moai_ok_status();
}

static moai_status_t op_setitems(pk_machine_t *m) {
  pk_node_t **items = NULL, *dict = NULL;
  size_t n = 0;
  MOAI_RETURN_IF_ERROR(pop_mark(m, &items, &n));
  if (n % 2)
    return pk_error(m, MOAI_INVALID_ARGUMENT, "SETITEMS of an odd count");
  MOAI_RETURN_IF_ERROR(top(m, &dict));
  for (size_t i = 0; i < n; i += 2)
    MOAI_RETURN_IF_ERROR(dict_set(m, dict, items[i], items[i + 1], "SETITEMS"));
  return moai_ok_status();
}

/* BUILD: an OBJECT takes its state dict; a dict is updated from one. */
static moai_status_t op_build(pk_machine_t *m) {
  pk_node_t *state = NULL, *target = NULL;
  MOAI_RETURN_IF_ERROR(pop(m, &state));
  MOAI_RETURN_IF_ERROR(top(m, &target));
  if (target->v.kind == MOAI_PK_DICT && state->v.kind == MOAI_PK_NONE)
    return moai_ok_status();
  if (state->v.kind != MOAI_PK_DICT)
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "BUILD with a state that is not a dict");
  if (target->v.kind == MOAI_PK_OBJECT) {
    if (target->frozen)
      return pk_error(m, MOAI_INVALID_ARGUMENT,
                      "BUILD of an object already placed inside another "
                      "value");
    if (target->v.state && target->v.state->len)
      return pk_error(m, MOAI_INVALID_ARGUMENT,
                      "a second BUILD of a %s object", target->v.str);
    MOAI_RETURN_IF_ERROR(adopt(m, target, state));
    target->v.state = &state->v;
    return moai_ok_status();
  }
  if (target->v.kind != MOAI_PK_DICT)
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "BUILD of a value that is not a module object or a dict");
  for (size_t i = 0; i < state->v.len; i += 2)
    MOAI_RETURN_IF_ERROR(dict_set(m, target, (pk_node_t *)state->v.items[i],
                                  (pk_node_t *)state->v.items[i + 1], "BUILD"));
  return moai_ok_status();
}

static moai_status_t op_reduce(pk_machine_t *m, bool newobj) {
  pk_node_t *args = NULL, *fn = NULL, *r = NULL;
  MOAI_RETURN_IF_ERROR(pop(m, &args));
  MOAI_RETURN_IF_ERROR(pop(m, &fn));
  if (newobj)
    MOAI_RETURN_IF_ERROR(pk_newobj(m, fn, args, &r));
  else
    MOAI_RETURN_IF_ERROR(pk_reduce(m, fn, args, &r));
  return push(m, r);
}

static moai_status_t op_persid(pk_machine_t *m) {
  pk_node_t *pid = NULL, *r = NULL;
  MOAI_RETURN_IF_ERROR(pop(m, &pid));
  MOAI_RETURN_IF_ERROR(pk_persistent(m, pid, &r));
  return push(m, r);
}

/* Runs one opcode; *out_stop is set at STOP. */
static moai_status_t step(pk_machine_t *m, bool *out_stop) {
  m->op_pos = m->pos;
  MOAI_RETURN_IF_ERROR(need(m, 1));
  uint8_t op = m->data[m->pos++];
  switch (op) {
    case 0x80: /* PROTO */
      MOAI_RETURN_IF_ERROR(need(m, 1));
      if (m->data[m->pos] > 5)
        return pk_error(m, MOAI_UNIMPLEMENTED, "pickle protocol %u",
                        m->data[m->pos]);
      m->pos++;
      return moai_ok_status();
    case 0x95: /* FRAME: a length hint only */
      MOAI_RETURN_IF_ERROR(need(m, 8));
      m->pos += 8;
      return moai_ok_status();
    case '(':
      if (m->nmarks == MOAI_PK_MAX_MARKS)
        return pk_error(m, MOAI_INVALID_ARGUMENT,
                        "more than %d MARKs open", MOAI_PK_MAX_MARKS);
      m->marks[m->nmarks++] = m->sp;
      return moai_ok_status();
    case '.': *out_stop = true; return moai_ok_status();
    case 'N': return push_kind(m, MOAI_PK_NONE, false);
    case 0x88: return push_kind(m, MOAI_PK_BOOL, true);
    case 0x89: return push_kind(m, MOAI_PK_BOOL, false);
    case 'J':
      MOAI_RETURN_IF_ERROR(need(m, 4));
      return push_int(m, (int32_t)(uint32_t)read_le(m, 4));
    case 'K':
      MOAI_RETURN_IF_ERROR(need(m, 1));
      return push_int(m, (int64_t)read_le(m, 1));
    case 'M':
      MOAI_RETURN_IF_ERROR(need(m, 2));
      return push_int(m, (int64_t)read_le(m, 2));
    case 0x8a: return op_long1(m);
    case 'G': return op_binfloat(m);
    case 'X': return push_str(m, 4);
    case 0x8c: return push_str(m, 1);
    case 0x8d: return push_str(m, 8);
    case ')': return op_tuple_n(m, 0);
    case 0x85: return op_tuple_n(m, 1);
    case 0x86: return op_tuple_n(m, 2);
    case 0x87: return op_tuple_n(m, 3);
    case 't': return op_mark_tuple(m, MOAI_PK_TUPLE);
    case ']': return push_kind(m, MOAI_PK_LIST, false);
    case 'l': return op_mark_tuple(m, MOAI_PK_LIST);
    case '}': return push_kind(m, MOAI_PK_DICT, false);
    case 'd': return op_mark_tuple(m, MOAI_PK_DICT);
    case 'a': {
      pk_node_t *item = NULL, *list = NULL;
      MOAI_RETURN_IF_ERROR(pop(m, &item));
      MOAI_RETURN_IF_ERROR(top(m, &list));
      return list_push(m, list, item, "APPEND");
    }
    case 'e': return op_appends(m);
    case 's': {
      pk_node_t *key = NULL, *value = NULL, *dict = NULL;
      MOAI_RETURN_IF_ERROR(pop(m, &value));
      MOAI_RETURN_IF_ERROR(pop(m, &key));
      MOAI_RETURN_IF_ERROR(top(m, &dict));
      return dict_set(m, dict, key, value, "SETITEM");
    }
    case 'u': return op_setitems(m);
    case 'q':
      MOAI_RETURN_IF_ERROR(need(m, 1));
      return memo_put(m, read_le(m, 1));
    case 'r':
      MOAI_RETURN_IF_ERROR(need(m, 4));
      return memo_put(m, read_le(m, 4));
    case 0x94: return memo_put(m, m->memo_count);
    case 'h':
      MOAI_RETURN_IF_ERROR(need(m, 1));
      return memo_get(m, read_le(m, 1));
    case 'j':
      MOAI_RETURN_IF_ERROR(need(m, 4));
      return memo_get(m, read_le(m, 4));
    case 'c': return op_global(m);
    case 0x93: return op_stack_global(m);
    case 'R': return op_reduce(m, false);
    case 0x81: return op_reduce(m, true);
    case 'b': return op_build(m);
    case 'Q': return op_persid(m);
    default:
      return pk_error(m, MOAI_INVALID_ARGUMENT,
                      "opcode 0x%02x is not one a TorchScript archive uses",
                      op);
  }
}

static moai_status_t run(pk_machine_t *m, pk_node_t **out) {
  bool stop = false;
  while (!stop) {
    if (m->pos >= m->size) {
      m->op_pos = m->pos;
      return pk_error(m, MOAI_DATA_LOSS, "truncated pickle (no STOP)");
    }
    MOAI_RETURN_IF_ERROR(step(m, &stop));
  }
  if (m->nmarks || m->sp != 1)
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "STOP with %zu values and %zu MARKs on the stack (one "
                    "value expected)", m->sp, m->nmarks);
  if (m->stack[0]->internal)
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "the result holds a global or storage that was never "
                    "applied");
  *out = m->stack[0];
  return moai_ok_status();
}

moai_status_t moai_pk_load(const void *data, size_t size, const char *name,
                           moai_pk_arena_t **out_arena,
                           moai_pk_value_t **out_value) {
  pk_machine_t *m = calloc(1, sizeof *m);
  moai_pk_arena_t *arena = calloc(1, sizeof *arena);
  if (!m || !arena) {
    free(m);
    free(arena);
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "%s: out of memory", name);
  }
  m->data = data;
  m->size = data ? size : 0;
  m->name = name;
  m->arena = arena;
  pk_node_t *root = NULL;
  moai_status_t st = run(m, &root);
  free(m->stack);
  free(m->memo);
  free(m);
  if (st) {
    moai_pk_arena_free(arena);
    return st;
  }
  *out_arena = arena;
  *out_value = &root->v;
  return moai_ok_status();
}

const moai_pk_value_t *moai_pk_dict_get(const moai_pk_value_t *dict,
                                        const char *key) {
  if (dict && dict->kind == MOAI_PK_OBJECT) dict = dict->state;
  if (!dict || dict->kind != MOAI_PK_DICT) return NULL;
  size_t n = strlen(key);
  for (size_t i = 0; i + 1 < dict->len; i += 2) {
    const moai_pk_value_t *k = dict->items[i];
    if (k->kind == MOAI_PK_STR && k->len == n && !memcmp(k->str, key, n))
      return dict->items[i + 1];
  }
  return NULL;
}

size_t moai_pk_dtype_size(moai_pk_dtype_t dtype) {
  switch (dtype) {
    case MOAI_PK_U8: case MOAI_PK_I8: case MOAI_PK_BOOL_DT: return 1;
    case MOAI_PK_I16: case MOAI_PK_F16: case MOAI_PK_BF16: return 2;
    case MOAI_PK_I32: case MOAI_PK_F32: return 4;
    case MOAI_PK_I64: case MOAI_PK_F64: return 8;
  }
  return 0;
}
