/* placeholder until the storage engine lands */
int io_placeholder_unused(void); int io_placeholder_unused(void) { return 0; }
