/* Placeholder until the loader lands. */
typedef int moai_loader_placeholder_t;
