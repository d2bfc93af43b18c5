/* Internal to the TorchScript frontend: the syntax tree of one code file of
 * a TorchScript archive (the .py files under code/ as torch.jit.save prints
 * it), and the lexer and parser that build it (lexer.c, parser.c).
 *
 * The language is the subset of Python the TorchScript printer writes:
 * classes with `__parameters__ = [...]`, attribute annotations
 * `name : Type [= value]`, `__annotations__["0"] = T`, methods and free
 * functions with annotated parameters, statements (assignment with tuple
 * unpacking, return, if/elif/else, for, while, break, continue, pass,
 * assert, raise, expression statements) and expressions (calls with
 * positional and keyword arguments, attributes, subscripts, lists, tuples,
 * literals, unary and binary operators, comparisons, and/or/not). Types are
 * parsed as expressions (`List[int]`, `Tuple[Tensor, Tensor]`,
 * `__torch__.a.B`). Every node keeps its 1-based source line. The whole
 * tree lives in the source's arena; freeing the source frees it. */
#ifndef MOAI_FRONTENDS_TORCHSCRIPT_AST_H
#define MOAI_FRONTENDS_TORCHSCRIPT_AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Deepest nesting of expressions and blocks the parser accepts. */
#define MOAI_TS_MAX_NESTING 128
/* Largest code file parsed (bytes). */
#define MOAI_TS_MAX_SOURCE_BYTES (64u << 20)

typedef enum moai_ts_expr_kind_e {
  MOAI_TS_EX_NAME,      /* name */
  MOAI_TS_EX_INT,       /* i */
  MOAI_TS_EX_FLOAT,     /* f */
  MOAI_TS_EX_STR,       /* name (the decoded text), len */
  MOAI_TS_EX_NONE,
  MOAI_TS_EX_BOOL,      /* b */
  MOAI_TS_EX_ATTR,      /* base.name */
  MOAI_TS_EX_CALL,      /* base(items..., kw_names[i]=kw_values[i]...) */
  MOAI_TS_EX_SUBSCRIPT, /* base[rhs] */
  MOAI_TS_EX_LIST,      /* [items...] */
  MOAI_TS_EX_TUPLE,     /* (items...) */
  MOAI_TS_EX_UNARY,     /* op base: '-', '+', '~', or MOAI_TS_OP_NOT */
  MOAI_TS_EX_BINARY,    /* base op rhs: arithmetic, bitwise, comparison */
  MOAI_TS_EX_AND,       /* base and rhs */
  MOAI_TS_EX_OR,        /* base or rhs */
} moai_ts_expr_kind_t;

/* Operators of UNARY/BINARY nodes: a one-character operator is its
 * character ('+', '-', '*', '/', '%', '&', '|', '^', '~', '@', '<', '>');
 * the others are these codes. */
enum {
  MOAI_TS_OP_FLOORDIV = 256, /* // */
  MOAI_TS_OP_POW,            /* ** */
  MOAI_TS_OP_EQ,             /* == */
  MOAI_TS_OP_NE,             /* != */
  MOAI_TS_OP_LE,             /* <= */
  MOAI_TS_OP_GE,             /* >= */
  MOAI_TS_OP_LSHIFT,         /* << */
  MOAI_TS_OP_RSHIFT,         /* >> */
  MOAI_TS_OP_IS,             /* is */
  MOAI_TS_OP_IS_NOT,         /* is not */
  MOAI_TS_OP_IN,             /* in */
  MOAI_TS_OP_NOT_IN,         /* not in */
  MOAI_TS_OP_NOT,            /* not (unary) */
};

/* The printable spelling of an operator code ("//", "is not", "+"). */
const char *moai_ts_op_spelling(int op);

typedef struct moai_ts_expr_t moai_ts_expr_t;
struct moai_ts_expr_t {
  moai_ts_expr_kind_t kind;
  int line;
  int op;
  const char *name;
  size_t len;
  int64_t i;
  double f;
  bool b;
  moai_ts_expr_t *base;
  moai_ts_expr_t *rhs;
  size_t n; /* CALL positional arguments, LIST/TUPLE items */
  moai_ts_expr_t **items;
  size_t nkw; /* CALL keyword arguments */
  const char **kw_names;
  moai_ts_expr_t **kw_values;
};

typedef struct moai_ts_stmt_t moai_ts_stmt_t;
typedef struct moai_ts_block_t {
  size_t n;
  moai_ts_stmt_t **items;
} moai_ts_block_t;

typedef struct moai_ts_param_t {
  const char *name;
  int line;
  moai_ts_expr_t *type;  /* or NULL */
  moai_ts_expr_t *value; /* default, or NULL */
} moai_ts_param_t;

typedef struct moai_ts_def_t {
  const char *name;
  int line;
  size_t nparams;
  moai_ts_param_t *params;
  moai_ts_expr_t *ret; /* or NULL */
  moai_ts_block_t body;
} moai_ts_def_t;

typedef struct moai_ts_class_t {
  const char *name;
  int line;
  moai_ts_expr_t *base; /* or NULL */
  moai_ts_block_t body; /* ANNOT, ASSIGN, DEF, PASS statements */
} moai_ts_class_t;

typedef enum moai_ts_stmt_kind_e {
  MOAI_TS_ST_ASSIGN,   /* target = value */
  MOAI_TS_ST_AUGASSIGN,/* target op= value (op in `op`) */
  MOAI_TS_ST_EXPR,     /* value */
  MOAI_TS_ST_RETURN,   /* return [value] */
  MOAI_TS_ST_IF,       /* if value: body else: orelse (elif: an IF in orelse) */
  MOAI_TS_ST_FOR,      /* for target in value: body */
  MOAI_TS_ST_WHILE,    /* while value: body */
  MOAI_TS_ST_BREAK,
  MOAI_TS_ST_CONTINUE,
  MOAI_TS_ST_PASS,
  MOAI_TS_ST_ASSERT,   /* assert value[, extra] */
  MOAI_TS_ST_RAISE,    /* raise [value] */
  MOAI_TS_ST_ANNOT,    /* target : value [= extra] */
  MOAI_TS_ST_DEF,      /* def */
  MOAI_TS_ST_CLASS,    /* cls */
  MOAI_TS_ST_IMPORT,   /* import ... / from ... import ... (ignored) */
} moai_ts_stmt_kind_t;

struct moai_ts_stmt_t {
  moai_ts_stmt_kind_t kind;
  int line;
  int op;
  moai_ts_expr_t *target;
  moai_ts_expr_t *value;
  moai_ts_expr_t *extra;
  moai_ts_block_t body;
  moai_ts_block_t orelse;
  moai_ts_def_t *def;
  moai_ts_class_t *cls;
};

/* One parsed code file. */
typedef struct moai_ts_source_t moai_ts_source_t;

/* Parses `len` bytes of `text` (need not be NUL-terminated; borrowed for
 * the call). `archive` and `file` name the code in errors: "m.pt:
 * code/__torch__/m.py:12: syntax error: expected ')' after the arguments".
 * On success *out owns the tree. */
moai_status_t moai_ts_parse(const char *archive, const char *file,
                            const char *text, size_t len,
                            moai_ts_source_t **out) MOAI_MUST_USE;
void moai_ts_source_free(moai_ts_source_t *source);

/* The file name given to moai_ts_parse (owned by the source). */
const char *moai_ts_source_file(const moai_ts_source_t *source);
/* The top-level statements. */
const moai_ts_block_t *moai_ts_source_body(const moai_ts_source_t *source);
/* The top-level class / function `name`, or NULL. */
const moai_ts_class_t *moai_ts_source_class(const moai_ts_source_t *source,
                                            const char *name);
const moai_ts_def_t *moai_ts_source_def(const moai_ts_source_t *source,
                                        const char *name);
/* Method `name` of a class, or NULL. */
const moai_ts_def_t *moai_ts_class_method(const moai_ts_class_t *cls,
                                          const char *name);

/* ---- the lexer (used by the parser; exposed for its tests) -------------- */

typedef enum moai_ts_tok_kind_e {
  MOAI_TS_TOK_EOF,
  MOAI_TS_TOK_NEWLINE,
  MOAI_TS_TOK_INDENT,
  MOAI_TS_TOK_DEDENT,
  MOAI_TS_TOK_NAME,   /* identifiers and keywords */
  MOAI_TS_TOK_INT,    /* u: the value (may exceed INT64_MAX by one: 2^63) */
  MOAI_TS_TOK_FLOAT,  /* f */
  MOAI_TS_TOK_STR,    /* text, len: the decoded string */
  MOAI_TS_TOK_OP,     /* op: a character or a MOAI_TS_OP_* code, '->', ... */
} moai_ts_tok_kind_t;

/* Two-character punctuation that is not an expression operator. */
enum { MOAI_TS_OP_ARROW = 300 /* -> */, MOAI_TS_OP_AUGASSIGN /* op= */ };

typedef struct moai_ts_token_t {
  moai_ts_tok_kind_t kind;
  int line;
  int op;       /* OP; for AUGASSIGN the operator in `aug` */
  int aug;
  const char *text; /* NAME: the identifier (NUL-terminated); STR: decoded */
  size_t len;
  uint64_t u;
  double f;
} moai_ts_token_t;

/* The syntax tree lives in a value arena (value.h). */
typedef struct moai_ts_arena_t moai_ts_ast_arena_t;

/* Splits `text` into tokens (NEWLINE/INDENT/DEDENT for the layout, ending
 * with EOF) allocated in `arena`. */
moai_status_t moai_ts_lex(moai_ts_ast_arena_t *arena, const char *archive,
                          const char *file, const char *text, size_t len,
                          moai_ts_token_t **out_tokens,
                          size_t *out_count) MOAI_MUST_USE;

moai_ts_ast_arena_t *moai_ts_ast_arena_create(void);
void moai_ts_ast_arena_destroy(moai_ts_ast_arena_t *arena);
/* Zeroed memory, or NULL when out of memory. */
void *moai_ts_ast_arena_alloc(moai_ts_ast_arena_t *arena, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_FRONTENDS_TORCHSCRIPT_AST_H */
