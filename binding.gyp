{
  "targets": [
    {
      "target_name": "nsnet",
      "sources": [
        "native/addon.cc",
        "native/netlink/codec.cc",
        "native/netlink/json.cc",
        "native/netlink/registry.cc",
        "native/netlink/socket.cc",
        "native/rtnl/link.cc",
        "native/rtnl/addr.cc",
        "native/rtnl/route.cc",
        "native/rtnl/neigh.cc",
        "native/nft/objects.cc",
        "native/nft/expr_payload.cc",
        "native/nft/expr_meta.cc",
        "native/nft/expr_verdict.cc",
        "native/nft/expr_nat.cc",
        "native/nft/expr_misc.cc",
        "native/ct/conntrack.cc",
        "native/diag/inet_diag.cc",
        "native/xfrm/xfrm.cc",
        "native/netns/netns.cc",
        "native/netns/inet_socket.cc",
        "native/udp/change_watch.cc",
        "native/udp/responder.cc",
        "native/worker/handle.cc",
        "native/worker/monitor.cc",
        "native/worker/worker_thread.cc",
        "native/worker/thread_promise.cc",
        "native/worker/pool.cc",
        "native/worker/request.cc",
        "native/worker/exec_in.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-fexceptions"],
      "cflags": ["-Wall", "-Wextra", "-Werror"]
    },
    {
      "target_name": "nsnet-cni",
      "type": "executable",
      "sources": ["native/cni/client.c", "native/cni/autostart.c", "native/cni/package.c"],
      "defines": [
        "NSNET_NODE_PATH=\"<!(node -p process.execPath)\"",
        "NSNET_PACKAGE_DIR=\"<(module_root_dir)\""
      ],
      "cflags": ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"],
      "ldflags": ["-Wl,-z,relro,-z,now"]
    }
  ]
}
