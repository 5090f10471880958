/*
 * Reaching the nsnet daemon, and starting it when nothing answers — so nobody has to start it
 * by hand.
 *
 * The daemon holds an exclusive flock(2) on `<socket without .sock>.lock` for its whole life
 * (lib/cni/daemon.ts). A client that finds no daemon (no socket, or connection refused):
 *
 *   1. opens the lock file (in the socket's directory, which must be root's and not writable
 *      by others, as the daemon requires) and tries the lock without waiting;
 *   2. got it: nobody runs a daemon for this socket. It starts one — fork, setsid, fork again
 *      (the daemon is nobody's child and in no terminal's session), stdin and stdout on
 *      /dev/null, stderr appended to `<base>.log`, every other descriptor closed, a small
 *      environment (PATH and the NSNET_* variables) — passing it the held lock as fd 3
 *      (`--lock-fd 3`: the lock now belongs to the daemon too, so no other client can start a
 *      second one) and a pipe as fd 4 (`--ready-fd 4`) on which it says "ready" once it
 *      listens, or which reaches end-of-file if it dies first. Then it connects. (Node runs it
 *      with a 1 MiB young generation and MALLOC_ARENA_MAX=2, settings that must be given at
 *      start: with them and what the daemon sets itself, its memory stays under 64 MiB with
 *      1,000 endpoints; bench/daemon.ts);
 *   3. the lock is held: another client is starting the daemon (or one is exiting). It keeps
 *      trying to connect, and to take the lock, with a growing pause (1 ms doubling to 25 ms),
 *      until one succeeds or START_TIMEOUT_MS passes.
 *
 * So concurrent clients that all find no daemon start exactly one. Any failure (not root, an
 * unsafe directory, a daemon that died or took too long to start) returns -1 and the caller
 * runs the plugin in node itself; a line on stderr says why when it is not the plain "not
 * root" case.
 *
 *   NSNET_CNI_AUTOSTART=0   never start a daemon (fall back when none answers)
 *   NSNET_CNI_IDLE_EXIT=S   the started daemon exits after S seconds without requests
 *                           (default 60; 0: never)
 */
#define _GNU_SOURCE
#include "client.h"
#include "package.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TIMEOUT_MS 30000
#define DEFAULT_IDLE_EXIT "60"
#define LOG_LIMIT (1024 * 1024)
#define DAEMON_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define MAX_ENV 64

extern char **environ;

static int try_connect(const char *path) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  size_t n = strlen(path);
  if (n >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(addr.sun_path, path, n + 1);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  int rc;
  do rc = connect(s, (struct sockaddr *)&addr, sizeof addr);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    int e = errno;
    close(s);
    errno = e;
    return -1;
  }
  return s;
}

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void pause_ms(long ms) {
  struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) < 0 && errno == EINTR) {
  }
}

static void note(const char *what, int err) {
  fprintf(stderr, "nsnet-cni: cannot start the nsnet daemon: %s%s%s; running the plugin in node\n", what,
          err ? ": " : "", err ? strerror(err) : "");
}

/* The socket's directory as the daemon demands it: root's (or ours), not writable by others unless sticky. */
static int safe_directory(const char *dir) {
  if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
    if (errno != ENOENT) return -1;
    /* parents missing: make them, as the daemon would (mkdir -p) */
    char p[PATH_MAX];
    if (strlen(dir) >= sizeof p) return -1;
    strcpy(p, dir);
    for (char *s = p + 1; *s; s++) {
      if (*s != '/') continue;
      *s = '\0';
      if (mkdir(p, 0755) < 0 && errno != EEXIST) return -1;
      *s = '/';
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) return -1;
  }
  struct stat st;
  if (lstat(dir, &st) < 0) return -1;
  int sticky = (st.st_mode & S_ISVTX) != 0;
  if (!S_ISDIR(st.st_mode) || (st.st_uid != 0 && st.st_uid != geteuid()) || ((st.st_mode & 022) && !sticky)) {
    errno = EPERM;
    return -1;
  }
  return 0;
}

/* `/run/nsnet/cni.sock` + ".lock" → `/run/nsnet/cni.lock` (lib/cni/daemon.ts lockPathOf). */
static int sibling(char *out, size_t size, const char *socket_path, const char *suffix) {
  size_t n = strlen(socket_path);
  if (n >= 5 && strcmp(socket_path + n - 5, ".sock") == 0) n -= 5;
  int w = snprintf(out, size, "%.*s%s", (int)n, socket_path, suffix);
  return w < 0 || (size_t)w >= size ? -1 : 0;
}

/* Closes every descriptor from `from` up (close_range, else one by one from /proc/self/fd). */
static void close_from(int from) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, (unsigned)from, ~0U, 0) == 0) return;
#endif
  DIR *d = opendir("/proc/self/fd");
  if (!d) {
    for (int fd = from; fd < 1024; fd++) close(fd);
    return;
  }
  int self = dirfd(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    int fd = atoi(e->d_name);
    if (fd >= from && fd != self && e->d_name[0] != '.') close(fd);
  }
  closedir(d);
}

static const char *idle_exit(void) {
  const char *v = getenv("NSNET_CNI_IDLE_EXIT");
  if (!v || !*v || strlen(v) > 12) return DEFAULT_IDLE_EXIT;
  int dots = 0;
  for (const char *p = v; *p; p++) {
    if (*p == '.' && !dots++) continue;
    if (*p < '0' || *p > '9') return DEFAULT_IDLE_EXIT;
  }
  return v;
}

/* In the grandchild: becomes the daemon, or exits 127. */
static void exec_daemon(int lock_fd, int ready_fd, int log_fd, const char *socket_path) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
  if (chdir("/") < 0) _exit(127);
  int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
  /* Out of the way of 0..4 first, so that no dup2 below overwrites a source. */
  int l = fcntl(lock_fd, F_DUPFD_CLOEXEC, 16), r = fcntl(ready_fd, F_DUPFD_CLOEXEC, 16);
  int g = log_fd >= 0 ? fcntl(log_fd, F_DUPFD_CLOEXEC, 16) : -1;
  if (nul < 0 || l < 0 || r < 0) _exit(127);
  if (dup2(nul, 0) < 0 || dup2(nul, 1) < 0 || dup2(g >= 0 ? g : nul, 2) < 0 || dup2(l, 3) < 0 || dup2(r, 4) < 0)
    _exit(127);
  close_from(5);

  char script[PATH_MAX];
  if ((size_t)snprintf(script, sizeof script, "%s/dist/lib/cni/daemon.js", nsnet_package_dir()) >= sizeof script)
    _exit(127);
  const char *node = nsnet_node();
  /* A young generation of 1 MiB: V8 otherwise grows it to 32 MiB under a burst of requests
   * and never gives it back (lib/cni/server.ts collects the rest when idle). */
  char *argv[] = {(char *)node,
                  "--max-semi-space-size=1",
                  script,
                  "--socket",
                  (char *)socket_path,
                  "--lock-fd",
                  "3",
                  "--ready-fd",
                  "4",
                  "--idle-exit",
                  (char *)idle_exit(),
                  NULL};
  char *envp[MAX_ENV + 3];
  int n = 0;
  envp[n++] = DAEMON_PATH;
  envp[n++] = "MALLOC_ARENA_MAX=2"; /* a few MiB less resident: fewer per-thread malloc arenas */
  for (char **e = environ; *e && n < MAX_ENV; e++)
    if (strncmp(*e, "NSNET_", 6) == 0) envp[n++] = *e;
  envp[n] = NULL;
  /* `node` by name is looked up in this process's PATH (the runtime's), as the fallback does. */
  execvpe(node, argv, envp);
  _exit(127);
}

/* Starts the daemon with the held lock; 0 once it said it is ready. */
static int spawn_daemon(int lock_fd, const char *socket_path, const char *log_path) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) {
    note("pipe", errno);
    return -1;
  }
  int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
  struct stat st;
  if (log_fd >= 0 && fstat(log_fd, &st) == 0 && st.st_size > LOG_LIMIT &&
      ftruncate(log_fd, 0) < 0) { /* keep appending */
  }
  pid_t pid = fork();
  if (pid < 0) {
    note("fork", errno);
    close(p[0]);
    close(p[1]);
    if (log_fd >= 0) close(log_fd);
    return -1;
  }
  if (pid == 0) {
    close(p[0]);
    if (setsid() < 0) _exit(1);
    pid_t again = fork();
    if (again != 0) _exit(again < 0 ? 1 : 0);
    exec_daemon(lock_fd, p[1], log_fd, socket_path);
  }
  close(p[1]);
  if (log_fd >= 0) close(log_fd);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  long long deadline = now_ms() + START_TIMEOUT_MS;
  char c = 0;
  ssize_t got = -1;
  for (;;) {
    long long left = deadline - now_ms();
    if (left <= 0) break;
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    int rc = poll(&pf, 1, (int)left);
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) break;
    got = read(p[0], &c, 1);
    if (got < 0 && errno == EINTR) continue;
    break;
  }
  close(p[0]);
  if (got == 1 && c == 'r') return 0;
  if (got == 0) {
    char msg[PATH_MAX + 64];
    snprintf(msg, sizeof msg, "it exited before listening (see %s)", log_path);
    note(msg, 0);
  } else {
    note("it did not say it listens in time", 0);
  }
  return -1;
}

int nsnet_daemon_connect(const char *path) {
  int s = try_connect(path);
  if (s >= 0) return s;
  if (errno != ENOENT && errno != ECONNREFUSED) return -1;
  const char *off = getenv("NSNET_CNI_AUTOSTART");
  if (off && (strcmp(off, "0") == 0 || strcmp(off, "no") == 0 || strcmp(off, "false") == 0)) return -1;
  if (geteuid() != 0) return -1; /* the daemon is root's only: the plugin runs in node */

  char dir[PATH_MAX], lock_path[PATH_MAX], log_path[PATH_MAX];
  if (strlen(path) >= sizeof dir || sibling(lock_path, sizeof lock_path, path, ".lock") < 0 ||
      sibling(log_path, sizeof log_path, path, ".log") < 0)
    return -1;
  strcpy(dir, path);
  char *slash = strrchr(dir, '/');
  if (!slash)
    strcpy(dir, ".");
  else if (slash == dir)
    dir[1] = '\0';
  else
    *slash = '\0';
  if (safe_directory(dir) < 0) {
    char msg[PATH_MAX + 64];
    snprintf(msg, sizeof msg, "the socket directory %s", dir);
    note(msg, errno);
    return -1;
  }
  int lock_fd = open(lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  struct stat st;
  if (lock_fd < 0 || fstat(lock_fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
    note(lock_path, lock_fd < 0 ? errno : EPERM);
    if (lock_fd >= 0) close(lock_fd);
    return -1;
  }

  long long deadline = now_ms() + START_TIMEOUT_MS;
  long pause = 1;
  for (;;) {
    if (flock(lock_fd, LOCK_EX | LOCK_NB) == 0) {
      /* No daemon holds it; one may have come and gone between our connect and the lock. */
      s = try_connect(path);
      if (s < 0 && spawn_daemon(lock_fd, path, log_path) == 0) s = try_connect(path);
      close(lock_fd); /* the daemon's copy keeps the lock */
      return s;
    }
    if (errno != EWOULDBLOCK && errno != EINTR) {
      note("flock", errno);
      break;
    }
    s = try_connect(path); /* the lock's holder may be listening by now */
    if (s >= 0) break;
    if (now_ms() >= deadline) {
      note("another client's start did not finish in time", 0);
      break;
    }
    pause_ms(pause);
    if (pause < 25) pause *= 2;
  }
  close(lock_fd);
  return s;
}
