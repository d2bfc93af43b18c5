/* The parser of TorchScript code files: recursive descent over the lexer's
 * tokens with Python's precedence (or < and < not < comparisons < | < ^ <
 * & < shifts < + - < * / // % @ < unary < ** < calls, attributes,
 * subscripts). Nesting is bounded by MOAI_TS_MAX_NESTING, so no input can
 * exhaust the stack. */
#include <string.h>

#include "torchscript/ast.h"

struct moai_ts_source_t {
  moai_ts_ast_arena_t *arena;
  const char *file;
  moai_ts_block_t body;
};

typedef struct parser_t {
  moai_ts_ast_arena_t *arena;
  const char *archive, *file;
  moai_ts_token_t *toks;
  size_t count, pos;
  int depth;
} parser_t;

const char *moai_ts_op_spelling(int op) {
  static const char *const names[] = {
      "//", "**", "==", "!=", "<=", ">=", "<<", ">>",
      "is", "is not", "in", "not in", "not"};
  static const char *const singles[] = {"+", "-", "*", "/", "%", "&",
                                        "|", "^", "~", "@", "<", ">"};
  if (op >= MOAI_TS_OP_FLOORDIV && op <= MOAI_TS_OP_NOT)
    return names[op - MOAI_TS_OP_FLOORDIV];
  for (size_t i = 0; i < sizeof(singles) / sizeof(singles[0]); ++i)
    if (op == singles[i][0]) return singles[i];
  return "?";
}

static const moai_ts_token_t *peek(const parser_t *p) { return &p->toks[p->pos]; }

static const moai_ts_token_t *peek_at(const parser_t *p, size_t ahead) {
  size_t i = p->pos + ahead;
  return &p->toks[i < p->count ? i : p->count - 1];
}

static const moai_ts_token_t *advance(parser_t *p) {
  const moai_ts_token_t *t = &p->toks[p->pos];
  if (t->kind != MOAI_TS_TOK_EOF) ++p->pos;
  return t;
}

static bool is_op(const moai_ts_token_t *t, int op) {
  return t->kind == MOAI_TS_TOK_OP && t->op == op;
}

static bool is_kw(const moai_ts_token_t *t, const char *kw) {
  return t->kind == MOAI_TS_TOK_NAME && strcmp(t->text, kw) == 0;
}

static moai_status_t syntax_error(const parser_t *p, const char *what) {
  return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: %s:%d: syntax error: %s",
                     p->archive, p->file, peek(p)->line, what);
}

static moai_status_t oom(const parser_t *p) {
  return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "%s: %s: out of memory parsing",
                     p->archive, p->file);
}

static moai_status_t expect_op(parser_t *p, int op, const char *what) {
  if (!is_op(peek(p), op)) return syntax_error(p, what);
  advance(p);
  return moai_ok_status();
}

static bool is_keyword(const char *s) {
  static const char *const kws[] = {
      "and", "as", "assert", "break", "class", "continue", "def", "del",
      "elif", "else", "for", "from", "global", "if", "import", "in", "is",
      "lambda", "not", "or", "pass", "raise", "return", "while", "with",
      "None", "True", "False"};
  for (size_t i = 0; i < sizeof(kws) / sizeof(kws[0]); ++i)
    if (strcmp(s, kws[i]) == 0) return true;
  return false;
}

static moai_status_t new_expr(parser_t *p, moai_ts_expr_kind_t kind, int line,
                              moai_ts_expr_t **out) {
  moai_ts_expr_t *e = moai_ts_ast_arena_alloc(p->arena, sizeof(*e));
  if (!e) return oom(p);
  e->kind = kind;
  e->line = line;
  *out = e;
  return moai_ok_status();
}

/* A growable array of pointers built in the arena (the final copy is
 * exact-size; the old buffers stay in the arena until it is freed). */
typedef struct vec_t {
  void **items;
  size_t n, cap;
} vec_t;

static moai_status_t vec_push(parser_t *p, vec_t *v, void *item) {
  if (v->n == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 8;
    void **items = moai_ts_ast_arena_alloc(p->arena, cap * sizeof(void *));
    if (!items) return oom(p);
    if (v->n) memcpy(items, v->items, v->n * sizeof(void *));
    v->items = items;
    v->cap = cap;
  }
  v->items[v->n++] = item;
  return moai_ok_status();
}

static moai_status_t enter(parser_t *p) {
  if (++p->depth > MOAI_TS_MAX_NESTING)
    return syntax_error(p, "expressions or blocks nested too deeply");
  return moai_ok_status();
}

static moai_status_t parse_expr(parser_t *p, moai_ts_expr_t **out);

/* Comma-separated expressions up to `close` (a trailing comma allowed);
 * keyword arguments NAME=expr when `kw` (CALL). */
static moai_status_t parse_items(parser_t *p, int close, moai_ts_expr_t *e,
                                 bool kw, bool *out_comma) {
  vec_t items = {0}, names = {0}, values = {0};
  bool comma = false;
  while (!is_op(peek(p), close)) {
    if (kw && peek(p)->kind == MOAI_TS_TOK_NAME && is_op(peek_at(p, 1), '=')) {
      const char *name = advance(p)->text;
      advance(p);
      moai_ts_expr_t *v = NULL;
      MOAI_RETURN_IF_ERROR(parse_expr(p, &v));
      MOAI_RETURN_IF_ERROR(vec_push(p, &names, (void *)name));
      MOAI_RETURN_IF_ERROR(vec_push(p, &values, v));
    } else {
      if (names.n)
        return syntax_error(p, "a positional argument after a keyword one");
      moai_ts_expr_t *v = NULL;
      MOAI_RETURN_IF_ERROR(parse_expr(p, &v));
      MOAI_RETURN_IF_ERROR(vec_push(p, &items, v));
    }
    comma = false;
    if (!is_op(peek(p), ',')) break;
    advance(p);
    comma = true;
  }
  if (!is_op(peek(p), close))
    return syntax_error(p, close == ')' ? "expected ',' or ')'"
                                        : "expected ',' or ']'");
  advance(p);
  e->n = items.n;
  e->items = (moai_ts_expr_t **)items.items;
  e->nkw = names.n;
  e->kw_names = (const char **)names.items;
  e->kw_values = (moai_ts_expr_t **)values.items;
  if (out_comma) *out_comma = comma;
  return moai_ok_status();
}

static moai_status_t parse_atom(parser_t *p, moai_ts_expr_t **out) {
  const moai_ts_token_t *t = peek(p);
  int line = t->line;
  moai_ts_expr_t *e = NULL;
  switch (t->kind) {
    case MOAI_TS_TOK_INT:
      if (t->u > (uint64_t)INT64_MAX)
        return syntax_error(p, "an integer literal does not fit int64");
      MOAI_RETURN_IF_ERROR(new_expr(p, MOAI_TS_EX_INT, line, &e));
      e->i = (int64_t)t->u;
      advance(p);
      break;
    case MOAI_TS_TOK_FLOAT:
      MOAI_RETURN_IF_ERROR(new_expr(p, MOAI_TS_EX_FLOAT, line, &e));
      e->f = t->f;
      advance(p);
      break;
    case MOAI_TS_TOK_STR:
      MOAI_RETURN_IF_ERROR(new_expr(p, MOAI_TS_EX_STR, line, &e));
      e->name = t->text;
      e->len = t->len;
      advance(p);
      break;
    case MOAI_TS_TOK_NAME:
      if (is_kw(t, "None")) {
        MOAI_RETURN_IF_ERROR(new_expr(p, MOAI_TS_EX_NONE, line, &e));
      } else if (is_kw(t, "True") || is_kw(t, "False")) {
        MOAI_RETURN_IF_ERROR(new_expr(p, MOAI_TS_EX_BOOL, line, &e));
        e->b = is_kw(t, "True");
      } else if (is_keyword(t->text)) {
        return syntax_error(p, "a keyword where an expression was expected");
      } else {
        MOAI_RETURN_IF_ERROR(new_expr(p, MOAI_TS_EX_NAME, line, &e));
        e->name = t->text;
      }
      advance(p);
      break;
    case MOAI_TS_TOK_OP:
      if (t->op == '(') {
        advance(p);
        MOAI_RETURN_IF_ERROR(new_expr(p, MOAI_TS_EX_TUPLE, line, &e));
        bool comma = false;
        MOAI_RETURN_IF_ERROR(parse_items(p, ')', e, false, &comma));
        /* (x) is x; (x,) and () are tuples. */
        if (e->n == 1 && !comma) e = e->items[0];
        break;
      }
      if (t->op == '[') {
        advance(p);
        MOAI_RETURN_IF_ERROR(new_expr(p, MOAI_TS_EX_LIST, line, &e));
        MOAI_RETURN_IF_ERROR(parse_items(p, ']', e, false, NULL));
        break;
      }
      return syntax_error(p, "expected an expression");
    default:
      return syntax_error(p, "expected an expression");
  }
  *out = e;
  return moai_ok_status();
}

static moai_status_t parse_postfix(parser_t *p, moai_ts_expr_t **out) {
  moai_ts_expr_t *e = NULL;
  MOAI_RETURN_IF_ERROR(parse_atom(p, &e));
  for (;;) {
    const moai_ts_token_t *t = peek(p);
    moai_ts_expr_t *n = NULL;
    if (is_op(t, '.')) {
      advance(p);
      if (peek(p)->kind != MOAI_TS_TOK_NAME)
        return syntax_error(p, "expected a name after '.'");
      MOAI_RETURN_IF_ERROR(new_expr(p, MOAI_TS_EX_ATTR, t->line, &n));
      n->name = advance(p)->text;
    } else if (is_op(t, '(')) {
      advance(p);
      MOAI_RETURN_IF_ERROR(new_expr(p, MOAI_TS_EX_CALL, t->line, &n));
      MOAI_RETURN_IF_ERROR(parse_items(p, ')', n, true, NULL));
    } else if (is_op(t, '[')) {
      advance(p);
      MOAI_RETURN_IF_ERROR(new_expr(p, MOAI_TS_EX_SUBSCRIPT, t->line, &n));
      /* a[i] or a[i, j] (a tuple index, as in Tuple[Tensor, Tensor]). */
      moai_ts_expr_t *index = NULL;
      MOAI_RETURN_IF_ERROR(new_expr(p, MOAI_TS_EX_TUPLE, t->line, &index));
      bool comma = false;
      MOAI_RETURN_IF_ERROR(parse_items(p, ']', index, false, &comma));
      if (index->n == 0) return syntax_error(p, "an empty subscript");
      n->rhs = index->n == 1 && !comma ? index->items[0] : index;
    } else {
      break;
    }
    n->base = e;
    e = n;
  }
  *out = e;
  return moai_ok_status();
}

static moai_status_t parse_unary(parser_t *p, moai_ts_expr_t **out);

static moai_status_t parse_power(parser_t *p, moai_ts_expr_t **out) {
  moai_ts_expr_t *e = NULL;
  MOAI_RETURN_IF_ERROR(parse_postfix(p, &e));
  if (is_op(peek(p), MOAI_TS_OP_POW)) {
    int line = advance(p)->line;
    moai_ts_expr_t *rhs = NULL, *n = NULL;
    MOAI_RETURN_IF_ERROR(enter(p));
    MOAI_RETURN_IF_ERROR(parse_unary(p, &rhs)); /* right-associative */
    --p->depth;
    MOAI_RETURN_IF_ERROR(new_expr(p, MOAI_TS_EX_BINARY, line, &n));
    n->op = MOAI_TS_OP_POW;
    n->base = e;
    n->rhs = rhs;
    e = n;
  }
  *out = e;
  return moai_ok_status();
}

static moai_status_t parse_unary(parser_t *p, moai_ts_expr_t **out) {
  const moai_ts_token_t *t = peek(p);
  if (!(is_op(t, '-') || is_op(t, '+') || is_op(t, '~')))
    return parse_power(p, out);
  advance(p);
  MOAI_RETURN_IF_ERROR(enter(p));
  /* -9223372036854775808: the one literal that only fits when negated. */
  const moai_ts_token_t *next = peek(p);
  moai_ts_expr_t *e = NULL;
  if (t->op == '-' && next->kind == MOAI_TS_TOK_INT &&
      next->u == (UINT64_C(1) << 63) &&
      !is_op(peek_at(p, 1), MOAI_TS_OP_POW)) {
    MOAI_RETURN_IF_ERROR(new_expr(p, MOAI_TS_EX_INT, t->line, &e));
    e->i = INT64_MIN;
    advance(p);
  } else {
    moai_ts_expr_t *operand = NULL;
    MOAI_RETURN_IF_ERROR(parse_unary(p, &operand));
    MOAI_RETURN_IF_ERROR(new_expr(p, MOAI_TS_EX_UNARY, t->line, &e));
    e->op = t->op;
    e->base = operand;
  }
  --p->depth;
  *out = e;
  return moai_ok_status();
}

/* Binary levels, loosest first; each is left-associative. */
static const int k_levels[][6] = {
    {'|'},
    {'^'},
    {'&'},
    {MOAI_TS_OP_LSHIFT, MOAI_TS_OP_RSHIFT},
    {'+', '-'},
    {'*', '/', MOAI_TS_OP_FLOORDIV, '%', '@'},
};
#define NUM_LEVELS ((int)(sizeof(k_levels) / sizeof(k_levels[0])))

static moai_status_t parse_binary(parser_t *p, int level, moai_ts_expr_t **out) {
  if (level == NUM_LEVELS) return parse_unary(p, out);
  moai_ts_expr_t *e = NULL;
  MOAI_RETURN_IF_ERROR(parse_binary(p, level + 1, &e));
  for (;;) {
    const moai_ts_token_t *t = peek(p);
    int op = 0;
    for (int i = 0; i < 6 && k_levels[level][i]; ++i)
      if (is_op(t, k_levels[level][i])) op = k_levels[level][i];
    if (!op) break;
    advance(p);
    moai_ts_expr_t *rhs = NULL, *n = NULL;
    MOAI_RETURN_IF_ERROR(parse_binary(p, level + 1, &rhs));
    MOAI_RETURN_IF_ERROR(new_expr(p, MOAI_TS_EX_BINARY, t->line, &n));
    n->op = op;
    n->base = e;
    n->rhs = rhs;
    e = n;
  }
  *out = e;
  return moai_ok_status();
}

/* The comparison operator at the cursor (consumed), or 0. */
static int take_compare_op(parser_t *p) {
  const moai_ts_token_t *t = peek(p);
  static const int ops[] = {'<', '>', MOAI_TS_OP_EQ, MOAI_TS_OP_NE,
                            MOAI_TS_OP_LE, MOAI_TS_OP_GE};
  for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); ++i)
    if (is_op(t, ops[i])) {
      advance(p);
      return ops[i];
    }
  if (is_kw(t, "in")) {
    advance(p);
    return MOAI_TS_OP_IN;
  }
  if (is_kw(t, "not") && is_kw(peek_at(p, 1), "in")) {
    advance(p);
    advance(p);
    return MOAI_TS_OP_NOT_IN;
  }
  if (is_kw(t, "is")) {
    advance(p);
    if (is_kw(peek(p), "not")) {
      advance(p);
      return MOAI_TS_OP_IS_NOT;
    }
    return MOAI_TS_OP_IS;
  }
  return 0;
}

static moai_status_t parse_compare(parser_t *p, moai_ts_expr_t **out) {
  moai_ts_expr_t *e = NULL;
  MOAI_RETURN_IF_ERROR(parse_binary(p, 0, &e));
  int line = peek(p)->line;
  int op = take_compare_op(p);
  if (op) {
    moai_ts_expr_t *rhs = NULL, *n = NULL;
    MOAI_RETURN_IF_ERROR(parse_binary(p, 0, &rhs));
    MOAI_RETURN_IF_ERROR(new_expr(p, MOAI_TS_EX_BINARY, line, &n));
    n->op = op;
    n->base = e;
    n->rhs = rhs;
    e = n;
    if (take_compare_op(p))
      return syntax_error(p, "chained comparisons are not supported");
  }
  *out = e;
  return moai_ok_status();
}

static moai_status_t parse_not(parser_t *p, moai_ts_expr_t **out) {
  const moai_ts_token_t *t = peek(p);
  if (!is_kw(t, "not")) return parse_compare(p, out);
  advance(p);
  MOAI_RETURN_IF_ERROR(enter(p));
  moai_ts_expr_t *operand = NULL, *e = NULL;
  MOAI_RETURN_IF_ERROR(parse_not(p, &operand));
  --p->depth;
  MOAI_RETURN_IF_ERROR(new_expr(p, MOAI_TS_EX_UNARY, t->line, &e));
  e->op = MOAI_TS_OP_NOT;
  e->base = operand;
  *out = e;
  return moai_ok_status();
}

static moai_status_t parse_andor(parser_t *p, bool is_or,
                                 moai_ts_expr_t **out) {
  moai_ts_expr_t *e = NULL;
  MOAI_RETURN_IF_ERROR(is_or ? parse_andor(p, false, &e) : parse_not(p, &e));
  while (is_kw(peek(p), is_or ? "or" : "and")) {
    int line = advance(p)->line;
    moai_ts_expr_t *rhs = NULL, *n = NULL;
    MOAI_RETURN_IF_ERROR(is_or ? parse_andor(p, false, &rhs)
                               : parse_not(p, &rhs));
    MOAI_RETURN_IF_ERROR(
        new_expr(p, is_or ? MOAI_TS_EX_OR : MOAI_TS_EX_AND, line, &n));
    n->base = e;
    n->rhs = rhs;
    e = n;
  }
  *out = e;
  return moai_ok_status();
}

static moai_status_t parse_expr(parser_t *p, moai_ts_expr_t **out) {
  MOAI_RETURN_IF_ERROR(enter(p));
  moai_status_t status = parse_andor(p, true, out);
  --p->depth;
  return status;
}

/* expr or expr, expr[,] (a bare tuple, as in `return a, b` or `a, b = t`). */
static moai_status_t parse_expr_list(parser_t *p, moai_ts_expr_t **out) {
  int line = peek(p)->line;
  moai_ts_expr_t *first = NULL;
  MOAI_RETURN_IF_ERROR(parse_expr(p, &first));
  if (!is_op(peek(p), ',')) {
    *out = first;
    return moai_ok_status();
  }
  vec_t items = {0};
  MOAI_RETURN_IF_ERROR(vec_push(p, &items, first));
  while (is_op(peek(p), ',')) {
    advance(p);
    const moai_ts_token_t *t = peek(p);
    if (t->kind == MOAI_TS_TOK_NEWLINE || is_op(t, '=') || is_op(t, ':') ||
        is_kw(t, "in"))
      break;
    moai_ts_expr_t *e = NULL;
    MOAI_RETURN_IF_ERROR(parse_expr(p, &e));
    MOAI_RETURN_IF_ERROR(vec_push(p, &items, e));
  }
  moai_ts_expr_t *tuple = NULL;
  MOAI_RETURN_IF_ERROR(new_expr(p, MOAI_TS_EX_TUPLE, line, &tuple));
  tuple->n = items.n;
  tuple->items = (moai_ts_expr_t **)items.items;
  *out = tuple;
  return moai_ok_status();
}

/* The target of a for loop: names (or a tuple of them) parsed below the
 * comparisons, so that `in` ends it. */
static moai_status_t parse_for_target(parser_t *p, moai_ts_expr_t **out) {
  int line = peek(p)->line;
  vec_t items = {0};
  bool comma = false;
  do {
    moai_ts_expr_t *e = NULL;
    MOAI_RETURN_IF_ERROR(enter(p));
    MOAI_RETURN_IF_ERROR(parse_binary(p, 0, &e));
    --p->depth;
    MOAI_RETURN_IF_ERROR(vec_push(p, &items, e));
    comma = is_op(peek(p), ',');
    if (comma) advance(p);
  } while (comma && !is_kw(peek(p), "in"));
  if (items.n == 1 && !comma) {
    *out = items.items[0];
    return moai_ok_status();
  }
  moai_ts_expr_t *tuple = NULL;
  MOAI_RETURN_IF_ERROR(new_expr(p, MOAI_TS_EX_TUPLE, line, &tuple));
  tuple->n = items.n;
  tuple->items = (moai_ts_expr_t **)items.items;
  *out = tuple;
  return moai_ok_status();
}

/* ---- statements ---------------------------------------------------------- */

static moai_status_t parse_block(parser_t *p, moai_ts_block_t *out);

static moai_status_t new_stmt(parser_t *p, moai_ts_stmt_kind_t kind, int line,
                              moai_ts_stmt_t **out) {
  moai_ts_stmt_t *s = moai_ts_ast_arena_alloc(p->arena, sizeof(*s));
  if (!s) return oom(p);
  s->kind = kind;
  s->line = line;
  *out = s;
  return moai_ok_status();
}

static moai_status_t expect_newline(parser_t *p) {
  if (peek(p)->kind != MOAI_TS_TOK_NEWLINE)
    return syntax_error(p, "expected the end of the line");
  advance(p);
  return moai_ok_status();
}

/* ':' then an indented block (or a simple statement on the same line is
 * not printed by TorchScript and not accepted). */
static moai_status_t parse_suite(parser_t *p, moai_ts_block_t *out) {
  MOAI_RETURN_IF_ERROR(expect_op(p, ':', "expected ':'"));
  MOAI_RETURN_IF_ERROR(expect_newline(p));
  if (peek(p)->kind != MOAI_TS_TOK_INDENT)
    return syntax_error(p, "expected an indented block");
  advance(p);
  MOAI_RETURN_IF_ERROR(enter(p));
  MOAI_RETURN_IF_ERROR(parse_block(p, out));
  --p->depth;
  if (peek(p)->kind != MOAI_TS_TOK_DEDENT && peek(p)->kind != MOAI_TS_TOK_EOF)
    return syntax_error(p, "expected the end of the block");
  advance(p);
  return moai_ok_status();
}

static moai_status_t parse_name(parser_t *p, const char **out,
                                const char *what) {
  const moai_ts_token_t *t = peek(p);
  if (t->kind != MOAI_TS_TOK_NAME || is_keyword(t->text))
    return syntax_error(p, what);
  *out = advance(p)->text;
  return moai_ok_status();
}

static moai_status_t parse_def(parser_t *p, moai_ts_stmt_t *s) {
  moai_ts_def_t *d = moai_ts_ast_arena_alloc(p->arena, sizeof(*d));
  if (!d) return oom(p);
  d->line = s->line;
  MOAI_RETURN_IF_ERROR(parse_name(p, &d->name, "expected the function name"));
  MOAI_RETURN_IF_ERROR(expect_op(p, '(', "expected '(' after the name"));
  vec_t params = {0};
  while (!is_op(peek(p), ')')) {
    moai_ts_param_t *param = moai_ts_ast_arena_alloc(p->arena, sizeof(*param));
    if (!param) return oom(p);
    param->line = peek(p)->line;
    MOAI_RETURN_IF_ERROR(parse_name(p, &param->name, "expected a parameter"));
    if (is_op(peek(p), ':')) {
      advance(p);
      MOAI_RETURN_IF_ERROR(parse_expr(p, &param->type));
    }
    if (is_op(peek(p), '=')) {
      advance(p);
      MOAI_RETURN_IF_ERROR(parse_expr(p, &param->value));
    }
    MOAI_RETURN_IF_ERROR(vec_push(p, &params, param));
    if (!is_op(peek(p), ',')) break;
    advance(p);
  }
  MOAI_RETURN_IF_ERROR(expect_op(p, ')', "expected ',' or ')' in parameters"));
  d->nparams = params.n;
  if (params.n) {
    d->params = moai_ts_ast_arena_alloc(p->arena, params.n * sizeof(*d->params));
    if (!d->params) return oom(p);
    for (size_t i = 0; i < params.n; ++i)
      d->params[i] = *(moai_ts_param_t *)params.items[i];
  }
  if (is_op(peek(p), MOAI_TS_OP_ARROW)) {
    advance(p);
    MOAI_RETURN_IF_ERROR(parse_expr(p, &d->ret));
  }
  MOAI_RETURN_IF_ERROR(parse_suite(p, &d->body));
  s->def = d;
  return moai_ok_status();
}

static moai_status_t parse_class(parser_t *p, moai_ts_stmt_t *s) {
  moai_ts_class_t *c = moai_ts_ast_arena_alloc(p->arena, sizeof(*c));
  if (!c) return oom(p);
  c->line = s->line;
  MOAI_RETURN_IF_ERROR(parse_name(p, &c->name, "expected the class name"));
  if (is_op(peek(p), '(')) {
    advance(p);
    if (!is_op(peek(p), ')')) MOAI_RETURN_IF_ERROR(parse_expr(p, &c->base));
    MOAI_RETURN_IF_ERROR(expect_op(p, ')', "expected ')' after the base"));
  }
  MOAI_RETURN_IF_ERROR(parse_suite(p, &c->body));
  s->cls = c;
  return moai_ok_status();
}

static moai_status_t parse_if(parser_t *p, moai_ts_stmt_t *s) {
  MOAI_RETURN_IF_ERROR(parse_expr(p, &s->value));
  MOAI_RETURN_IF_ERROR(parse_suite(p, &s->body));
  const moai_ts_token_t *t = peek(p);
  if (is_kw(t, "elif")) {
    advance(p);
    moai_ts_stmt_t *elif = NULL;
    MOAI_RETURN_IF_ERROR(new_stmt(p, MOAI_TS_ST_IF, t->line, &elif));
    MOAI_RETURN_IF_ERROR(enter(p));
    MOAI_RETURN_IF_ERROR(parse_if(p, elif));
    --p->depth;
    s->orelse.n = 1;
    s->orelse.items = moai_ts_ast_arena_alloc(p->arena, sizeof(void *));
    if (!s->orelse.items) return oom(p);
    s->orelse.items[0] = elif;
  } else if (is_kw(t, "else")) {
    advance(p);
    MOAI_RETURN_IF_ERROR(parse_suite(p, &s->orelse));
  }
  return moai_ok_status();
}

/* A simple statement starting with an expression: assignment, augmented
 * assignment, annotation, or an expression statement. */
static moai_status_t parse_simple(parser_t *p, moai_ts_stmt_t *s) {
  moai_ts_expr_t *first = NULL;
  MOAI_RETURN_IF_ERROR(parse_expr_list(p, &first));
  const moai_ts_token_t *t = peek(p);
  if (is_op(t, ':')) {
    advance(p);
    s->kind = MOAI_TS_ST_ANNOT;
    s->target = first;
    MOAI_RETURN_IF_ERROR(parse_expr(p, &s->value));
    if (is_op(peek(p), '=')) {
      advance(p);
      MOAI_RETURN_IF_ERROR(parse_expr(p, &s->extra));
    }
  } else if (is_op(t, '=')) {
    advance(p);
    s->kind = MOAI_TS_ST_ASSIGN;
    s->target = first;
    MOAI_RETURN_IF_ERROR(parse_expr_list(p, &s->value));
    if (is_op(peek(p), '='))
      return syntax_error(p, "chained assignments are not supported");
  } else if (is_op(t, MOAI_TS_OP_AUGASSIGN)) {
    advance(p);
    s->kind = MOAI_TS_ST_AUGASSIGN;
    s->op = t->aug;
    s->target = first;
    MOAI_RETURN_IF_ERROR(parse_expr(p, &s->value));
  } else {
    s->kind = MOAI_TS_ST_EXPR;
    s->value = first;
  }
  return expect_newline(p);
}

static moai_status_t parse_stmt(parser_t *p, moai_ts_stmt_t **out) {
  const moai_ts_token_t *t = peek(p);
  moai_ts_stmt_t *s = NULL;
  MOAI_RETURN_IF_ERROR(new_stmt(p, MOAI_TS_ST_EXPR, t->line, &s));
  *out = s;
  if (t->kind == MOAI_TS_TOK_INDENT)
    return syntax_error(p, "unexpected indentation");
  if (t->kind != MOAI_TS_TOK_NAME || !is_keyword(t->text))
    return parse_simple(p, s);
  const char *kw = t->text;
  if (strcmp(kw, "def") == 0 || strcmp(kw, "class") == 0) {
    advance(p);
    s->kind = kw[0] == 'd' ? MOAI_TS_ST_DEF : MOAI_TS_ST_CLASS;
    return kw[0] == 'd' ? parse_def(p, s) : parse_class(p, s);
  }
  if (strcmp(kw, "if") == 0) {
    advance(p);
    s->kind = MOAI_TS_ST_IF;
    return parse_if(p, s);
  }
  if (strcmp(kw, "for") == 0) {
    advance(p);
    s->kind = MOAI_TS_ST_FOR;
    MOAI_RETURN_IF_ERROR(parse_for_target(p, &s->target));
    if (!is_kw(peek(p), "in")) return syntax_error(p, "expected 'in'");
    advance(p);
    MOAI_RETURN_IF_ERROR(parse_expr(p, &s->value));
    return parse_suite(p, &s->body);
  }
  if (strcmp(kw, "while") == 0) {
    advance(p);
    s->kind = MOAI_TS_ST_WHILE;
    MOAI_RETURN_IF_ERROR(parse_expr(p, &s->value));
    return parse_suite(p, &s->body);
  }
  if (strcmp(kw, "return") == 0 || strcmp(kw, "raise") == 0) {
    advance(p);
    s->kind = kw[1] == 'e' ? MOAI_TS_ST_RETURN : MOAI_TS_ST_RAISE;
    if (peek(p)->kind != MOAI_TS_TOK_NEWLINE)
      MOAI_RETURN_IF_ERROR(parse_expr_list(p, &s->value));
    return expect_newline(p);
  }
  if (strcmp(kw, "assert") == 0) {
    advance(p);
    s->kind = MOAI_TS_ST_ASSERT;
    MOAI_RETURN_IF_ERROR(parse_expr(p, &s->value));
    if (is_op(peek(p), ',')) {
      advance(p);
      MOAI_RETURN_IF_ERROR(parse_expr(p, &s->extra));
    }
    return expect_newline(p);
  }
  if (strcmp(kw, "pass") == 0 || strcmp(kw, "break") == 0 ||
      strcmp(kw, "continue") == 0) {
    advance(p);
    s->kind = kw[0] == 'p'   ? MOAI_TS_ST_PASS
              : kw[0] == 'b' ? MOAI_TS_ST_BREAK
                             : MOAI_TS_ST_CONTINUE;
    return expect_newline(p);
  }
  if (strcmp(kw, "import") == 0 || strcmp(kw, "from") == 0) {
    s->kind = MOAI_TS_ST_IMPORT;
    while (peek(p)->kind != MOAI_TS_TOK_NEWLINE &&
           peek(p)->kind != MOAI_TS_TOK_EOF)
      advance(p);
    return expect_newline(p);
  }
  if (strcmp(kw, "None") == 0 || strcmp(kw, "True") == 0 ||
      strcmp(kw, "False") == 0 || strcmp(kw, "not") == 0)
    return parse_simple(p, s);
  char what[96];
  snprintf(what, sizeof(what), "'%s' is not supported here", kw);
  return syntax_error(p, what);
}

static moai_status_t parse_block(parser_t *p, moai_ts_block_t *out) {
  vec_t stmts = {0};
  for (;;) {
    moai_ts_tok_kind_t k = peek(p)->kind;
    if (k == MOAI_TS_TOK_DEDENT || k == MOAI_TS_TOK_EOF) break;
    if (k == MOAI_TS_TOK_NEWLINE) {
      advance(p);
      continue;
    }
    moai_ts_stmt_t *s = NULL;
    MOAI_RETURN_IF_ERROR(parse_stmt(p, &s));
    MOAI_RETURN_IF_ERROR(vec_push(p, &stmts, s));
  }
  out->n = stmts.n;
  out->items = (moai_ts_stmt_t **)stmts.items;
  return moai_ok_status();
}

/* ---- entry points -------------------------------------------------------- */

moai_status_t moai_ts_parse(const char *archive, const char *file,
                            const char *text, size_t len,
                            moai_ts_source_t **out) {
  if (!archive) archive = "<archive>";
  if (!file) file = "<code>";
  if (!out || (!text && len))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: %s: moai_ts_parse needs text and an output",
                       archive, file);
  moai_ts_ast_arena_t *arena = moai_ts_ast_arena_create();
  moai_ts_source_t *src = arena ? moai_ts_ast_arena_alloc(arena, sizeof(*src)) : NULL;
  size_t flen = strlen(file);
  char *fcopy = src ? moai_ts_ast_arena_alloc(arena, flen + 1) : NULL;
  if (!fcopy) {
    moai_ts_ast_arena_destroy(arena);
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "%s: %s: out of memory parsing",
                       archive, file);
  }
  memcpy(fcopy, file, flen);
  src->arena = arena;
  src->file = fcopy;
  parser_t p = {.arena = arena, .archive = archive, .file = file};
  moai_status_t status =
      moai_ts_lex(arena, archive, file, text ? text : "", len, &p.toks, &p.count);
  if (!status) status = parse_block(&p, &src->body);
  if (!status && peek(&p)->kind != MOAI_TS_TOK_EOF)
    status = syntax_error(&p, "unexpected dedent");
  if (status) {
    moai_ts_ast_arena_destroy(arena);
    return status;
  }
  *out = src;
  return moai_ok_status();
}

void moai_ts_source_free(moai_ts_source_t *source) {
  if (source) moai_ts_ast_arena_destroy(source->arena);
}

const char *moai_ts_source_file(const moai_ts_source_t *source) {
  return source->file;
}

const moai_ts_block_t *moai_ts_source_body(const moai_ts_source_t *source) {
  return &source->body;
}

const moai_ts_class_t *moai_ts_source_class(const moai_ts_source_t *source,
                                            const char *name) {
  for (size_t i = 0; i < source->body.n; ++i) {
    const moai_ts_stmt_t *s = source->body.items[i];
    if (s->kind == MOAI_TS_ST_CLASS && strcmp(s->cls->name, name) == 0)
      return s->cls;
  }
  return NULL;
}

const moai_ts_def_t *moai_ts_source_def(const moai_ts_source_t *source,
                                        const char *name) {
  for (size_t i = 0; i < source->body.n; ++i) {
    const moai_ts_stmt_t *s = source->body.items[i];
    if (s->kind == MOAI_TS_ST_DEF && strcmp(s->def->name, name) == 0)
      return s->def;
  }
  return NULL;
}

const moai_ts_def_t *moai_ts_class_method(const moai_ts_class_t *cls,
                                          const char *name) {
  for (size_t i = 0; i < cls->body.n; ++i) {
    const moai_ts_stmt_t *s = cls->body.items[i];
    if (s->kind == MOAI_TS_ST_DEF && strcmp(s->def->name, name) == 0)
      return s->def;
  }
  return NULL;
}
