#include "version.h"

const char *moai_version_string(void) { return MOAI_VERSION_STRING; }
