/* stamp_child: appends "start NS" and "exit NS" (CLOCK_REALTIME) to $STAMP_FILE, then exits 1.
 * The gap from one child's "exit" to the next child's "start" is the supervisor's restart delay,
 * exec and dynamic loading included, measured without any shell in between. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void stamp(int fd, const char* what) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%s %lld\n", what, (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    if (write(fd, buf, (size_t)n) != n) _exit(2);
}

int main(void) {
    const char* path = getenv("STAMP_FILE");
    if (path == NULL) return 2;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (fd < 0) return 2;
    stamp(fd, "start");
    stamp(fd, "exit");
    return 1;
}
