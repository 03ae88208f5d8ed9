/* A shared object without the entry symbol. */
__attribute__((visibility("default"))) int something_else(void) { return 42; }
