/*
 * nsnet-cni: the CNI plugin executable, a thin client of the nsnet daemon.
 *
 * A runtime runs this once per CNI operation. It connects to the daemon's unix socket
 * ($NSNET_CNI_SOCKET, default /run/nsnet/cni.sock), sends its CNI_* variables and stdin in the
 * frame of lib/cni/protocol.ts, prints the daemon's stdout and stderr, and exits with its
 * status. No node, no JSON: a process start and one round trip.
 *
 * When no daemon answers it starts one (./autostart.c: one at a time, however many clients
 * find none) and hands it the request. When no daemon can be had (not root, the daemon cannot
 * start, it declines or dies before replying), it execs `node <package>/dist/lib/cni/main.js`
 * — the same plugin in process — with the same environment and the same stdin (already read?
 * then from a memfd holding it). Every operation is idempotent and all-or-nothing, so running
 * it again after a daemon that died half-way is safe.
 *
 *   NSNET_CNI_SOCKET   the daemon's socket; "none" skips the daemon (and never starts one)
 *   NSNET_PACKAGE      the nsnet package directory (default: two levels up from this
 *                      executable's real path — build/Release/ or prebuilds/<platform>/ —
 *                      then the package directory it was built in)
 *   NSNET_NODE         the node executable for the fallback and the daemon (default: the node
 *                      that built this, then `node` on PATH)
 *   NSNET_CNI_MAIN     the fallback script (default: <package>/dist/lib/cni/main.js)
 *   NSNET_CNI_AUTOSTART, NSNET_CNI_IDLE_EXIT: see ./autostart.c
 */
#define _GNU_SOURCE
#include "client.h"
#include "package.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/nsnet/cni.sock"
#define MAGIC "NSNETCNI"
#define MAGIC_LEN 8
#define PROTOCOL_VERSION 1u
#define HEADER_LEN (MAGIC_LEN + 8)
#define MAX_BODY (16u * 1024u * 1024u)
#define MAX_ENV 64
#define STATUS_SERVED 0u

extern char **environ;

struct buf {
  unsigned char *data;
  size_t len, cap;
};

static int buf_reserve(struct buf *b, size_t more) {
  if (b->len + more <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + more) {
    if (cap > SIZE_MAX / 2) return -1;
    cap *= 2;
  }
  unsigned char *p = realloc(b->data, cap);
  if (!p) return -1;
  b->data = p;
  b->cap = cap;
  return 0;
}

static int buf_put(struct buf *b, const void *p, size_t n) {
  if (buf_reserve(b, n) < 0) return -1;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

static int buf_u32(struct buf *b, uint32_t v) {
  unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
  return buf_put(b, x, 4);
}

static int buf_u64(struct buf *b, uint64_t v) {
  if (buf_u32(b, (uint32_t)v) < 0) return -1;
  return buf_u32(b, (uint32_t)(v >> 32));
}

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Reads fd to its end (EINTR-safe). Returns 0, or -1 on error or when over `limit`. */
static int read_all(int fd, struct buf *b, size_t limit) {
  for (;;) {
    if (buf_reserve(b, 65536) < 0) return -1;
    ssize_t n = read(fd, b->data + b->len, b->cap - b->len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) return 0;
    b->len += (size_t)n;
    if (b->len > limit) return -1;
  }
}

/* Writes all of p; to a socket with MSG_NOSIGNAL (a daemon that went away is EPIPE, not SIGPIPE). */
static int write_all_to(int fd, const unsigned char *p, size_t n, int sock) {
  while (n > 0) {
    ssize_t w = sock ? send(fd, p, n, MSG_NOSIGNAL) : write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int write_all(int fd, const unsigned char *p, size_t n) { return write_all_to(fd, p, n, 0); }

/* Prints a CNI error (code 5, I/O failure) and exits 1: only when even the fallback cannot run. */
static void die(const char *what) {
  char msg[512];
  snprintf(msg, sizeof msg, "{\"cniVersion\":\"1.1.0\",\"code\":5,\"msg\":\"nsnet-cni: %s: %s\"}\n", what,
           strerror(errno));
  if (write_all(1, (const unsigned char *)msg, strlen(msg)) < 0) { /* nothing more to do */
  }
  fprintf(stderr, "nsnet-cni: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* The fallback script: NSNET_CNI_MAIN, else the package's. */
static const char *main_script(char *space, size_t size) {
  const char *env = getenv("NSNET_CNI_MAIN");
  if (env && *env) return env;
  snprintf(space, size, "%s/dist/lib/cni/main.js", nsnet_package_dir());
  return space;
}

/* Runs the plugin in node with this environment; stdin is the original one or `consumed`. */
static void fallback(const struct buf *consumed) {
  if (consumed) {
    int fd = (int)syscall(SYS_memfd_create, "nsnet-cni-stdin", 0u);
    if (fd < 0) {
      char tmpl[] = "/tmp/nsnet-cni-stdin.XXXXXX";
      fd = mkstemp(tmpl);
      if (fd < 0) die("cannot keep stdin for the fallback");
      unlink(tmpl);
    }
    if (write_all(fd, consumed->data, consumed->len) < 0 || lseek(fd, 0, SEEK_SET) < 0 || dup2(fd, 0) < 0)
      die("cannot keep stdin for the fallback");
    close(fd);
  }
  char space[PATH_MAX + 64];
  const char *script = main_script(space, sizeof space);
  const char *node = nsnet_node();
  char *argv[] = {(char *)node, (char *)script, NULL};
  execvp(node, argv);
  die("cannot run node for the in-process fallback");
}

/* The request frame: pid, netns inode, CNI_* variables, stdin. */
static int build_request(struct buf *req, const struct buf *in) {
  struct stat st;
  uint64_t inode = stat("/proc/self/ns/net", &st) == 0 ? (uint64_t)st.st_ino : 0;
  struct buf body = {0};
  uint32_t count = 0;
  for (char **e = environ; *e; e++)
    if (strncmp(*e, "CNI_", 4) == 0) count++;
  if (count > MAX_ENV) return -1;
  int bad = buf_u32(&body, (uint32_t)getpid()) | buf_u64(&body, inode) | buf_u32(&body, count);
  for (char **e = environ; *e && !bad; e++) {
    if (strncmp(*e, "CNI_", 4) != 0) continue;
    size_t n = strlen(*e);
    bad |= buf_u32(&body, (uint32_t)n) | buf_put(&body, *e, n);
  }
  bad |= buf_u32(&body, (uint32_t)in->len) | buf_put(&body, in->data, in->len);
  if (bad || body.len > MAX_BODY) {
    free(body.data);
    return -1;
  }
  bad = buf_put(req, MAGIC, MAGIC_LEN) | buf_u32(req, PROTOCOL_VERSION) | buf_u32(req, (uint32_t)body.len) |
        buf_put(req, body.data, body.len);
  free(body.data);
  return bad ? -1 : 0;
}

/*
 * Parses the reply; prints it and exits when the daemon served the request. Returns 1 when it
 * declined, 0 when the reply is malformed or incomplete.
 */
static int finish(const struct buf *r) {
  if (r->len < HEADER_LEN || memcmp(r->data, MAGIC, MAGIC_LEN) != 0 || get_u32(r->data + MAGIC_LEN) != PROTOCOL_VERSION)
    return 0;
  uint32_t body = get_u32(r->data + MAGIC_LEN + 4);
  if (body != r->len - HEADER_LEN || body < 16) return 0;
  const unsigned char *p = r->data + HEADER_LEN, *end = r->data + r->len;
  uint32_t status = get_u32(p), code = get_u32(p + 4);
  if (status != STATUS_SERVED) return 1;
  uint32_t out_len = get_u32(p + 8);
  if ((size_t)(end - (p + 12)) < (size_t)out_len + 4) return 0;
  const unsigned char *out = p + 12;
  uint32_t err_len = get_u32(out + out_len);
  const unsigned char *err = out + out_len + 4;
  if ((size_t)(end - err) != err_len) return 0;
  int failed = write_all(1, out, out_len) | write_all(2, err, err_len);
  exit(failed ? 1 : (int)(code & 0xff));
}

/*
 * One round trip. Exits with the daemon's reply when it served the request; returns 1 when it
 * declined, 0 when there was no (complete) reply.
 */
static int exchange(int s, const struct buf *in) {
  struct buf req = {0}, reply = {0};
  int declined = 0;
  if (build_request(&req, in) == 0 && write_all_to(s, req.data, req.len, 1) == 0 && shutdown(s, SHUT_WR) == 0 &&
      read_all(s, &reply, MAX_BODY + HEADER_LEN) == 0)
    declined = finish(&reply); /* exits when the daemon served it */
  close(s);
  free(req.data);
  free(reply.data);
  return declined;
}

int main(void) {
  const char *path = getenv("NSNET_CNI_SOCKET");
  if (!path || !*path) path = DEFAULT_SOCKET;
  if (strcmp(path, "none") == 0) fallback(NULL);
  int s = nsnet_daemon_connect(path);
  if (s < 0) fallback(NULL); /* no daemon: stdin is untouched */
  struct buf in = {0};
  if (read_all(0, &in, MAX_BODY) < 0) die("cannot read stdin");
  if (exchange(s, &in)) fallback(&in); /* declined: it cannot tell this client's namespace */
  /*
   * No reply: the daemon went away after accepting (it was exiting when idle, or died). Once
   * more through a daemon — a new one if need be — then in node. Running the request again is
   * safe: every operation is idempotent.
   */
  s = nsnet_daemon_connect(path);
  if (s >= 0) exchange(s, &in);
  fallback(&in);
  return 1;
}
