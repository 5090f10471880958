/*
 * What the nsnet-cni client (client.c) asks of autostart.c: reaching the daemon, starting it
 * when none answers.
 */
#ifndef NSNET_CNI_CLIENT_H
#define NSNET_CNI_CLIENT_H

#include <stddef.h>

/*
 * A connected socket to the daemon at `path`; when nothing answers there, starts the daemon
 * (see autostart.c) and connects to it. Returns -1 when no daemon can be had: the caller runs
 * the plugin in node itself.
 */
int nsnet_daemon_connect(const char *path);

#endif
