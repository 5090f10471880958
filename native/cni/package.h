/*
 * Where the nsnet package and node are (package.c), for the nsnet-cni client and autostart.
 */
#ifndef NSNET_CNI_PACKAGE_H
#define NSNET_CNI_PACKAGE_H

/* The package directory (the one holding dist/lib/cni/main.js), resolved once. */
const char *nsnet_package_dir(void);

/* The node executable to run (a path, or a name for PATH lookup). */
const char *nsnet_node(void);

#endif
