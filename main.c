/* placeholder, replaced by the runtime helper */
#include "sl.h"
int main(void) { return 0; }
