/* Internal to the bundle module. */
#ifndef HOIST_BUNDLE_INTERNAL_H
#define HOIST_BUNDLE_INTERNAL_H

#include "hoist/bundle.h"

/* True when p is a canonical relative path: non-empty components, none "."
 * or "..", no leading or trailing slash. */
bool hoist_bundle_path_valid(const char *p);

#endif
