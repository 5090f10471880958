/*
 * Where the nsnet package and node are, for the nsnet-cni client (client.c: its fallback) and
 * the daemon it starts (autostart.c). Apart from both so that neither needs the other for it.
 */
#define _GNU_SOURCE
#include "package.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef NSNET_NODE_PATH
#define NSNET_NODE_PATH "node"
#endif
#ifndef NSNET_PACKAGE_DIR
#define NSNET_PACKAGE_DIR "."
#endif

static int executable(const char *p) { return p && *p && access(p, X_OK) == 0; }
static int readable(const char *p) { return p && *p && access(p, R_OK) == 0; }

/* Whether `dir` holds the built package (its dist/lib/cni/main.js). */
static int is_package(const char *dir) {
  char p[PATH_MAX];
  return dir && *dir && (size_t)snprintf(p, sizeof p, "%s/dist/lib/cni/main.js", dir) < sizeof p && readable(p);
}

const char *nsnet_package_dir(void) {
  static char found[PATH_MAX];
  if (found[0]) return found;
  const char *env = getenv("NSNET_PACKAGE");
  if (is_package(env) && strlen(env) < sizeof found) return strcpy(found, env);
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash) {
      *slash = '\0'; /* .../build/Release or .../prebuilds/linux-x64 */
      char up[PATH_MAX];
      if ((size_t)snprintf(up, sizeof up, "%s/../..", self) < sizeof up && is_package(up)) {
        if (!realpath(up, found)) strcpy(found, up);
        return found;
      }
    }
  }
  snprintf(found, sizeof found, "%s", NSNET_PACKAGE_DIR);
  return found;
}

const char *nsnet_node(void) {
  const char *node = getenv("NSNET_NODE");
  if (executable(node)) return node;
  return executable(NSNET_NODE_PATH) ? NSNET_NODE_PATH : "node";
}
