/*
 * What the nsnet-cni client's two files share: where the package and node are (client.c), and
 * reaching the daemon, starting it when none answers (autostart.c).
 */
#ifndef NSNET_CNI_CLIENT_H
#define NSNET_CNI_CLIENT_H

#include <stddef.h>

/* The package directory (the one holding dist/lib/cni/main.js), resolved once. */
const char *nsnet_package_dir(void);

/* The node executable to run (a path, or a name for PATH lookup). */
const char *nsnet_node(void);

/*
 * A connected socket to the daemon at `path`; when nothing answers there, starts the daemon
 * (see autostart.c) and connects to it. Returns -1 when no daemon can be had: the caller runs
 * the plugin in node itself.
 */
int nsnet_daemon_connect(const char *path);

#endif
