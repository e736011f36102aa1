/*
 * ipc-dev-broker: a Kafka-protocol development broker for tests and demos.
 *
 * It runs librdkafka's mock cluster (real Kafka wire protocol over TCP on
 * 127.0.0.1) with 1..N brokers and exposes a line-based control port for
 * creating topics and injecting faults:
 *
 *   ping                                   -> ok
 *   info                                   -> ok bootstrap=HOST:PORT,... brokers=N
 *   topic-create <name> <partitions> [rf]  -> ok | error ...
 *   broker-down <id>                       (id -1 = every broker)
 *   broker-up <id>
 *   broker-rtt <id> <ms>
 *   request-errors <apiKey> <errcode>...   (rd_kafka_mock_push_request_errors)
 *   request-errors-clear <apiKey>
 *   shutdown                               -> ok, then the process exits
 *
 * Build: gcc -O2 -o ipc-dev-broker scripts/mock-broker.c -lrdkafka
 *
 * Fixed broker ports: librdkafka 2.0.2's mock API always binds its brokers to
 * an ephemeral port on 127.0.0.1. To give the brokers stable addresses
 * (--port BASE: broker i listens on BASE+i-1) this program defines bind():
 * the dynamic linker resolves librdkafka's call to bind() to the definition
 * in the executable, which substitutes the chosen port while the cluster is
 * being created and otherwise forwards to the C library.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BROKERS 16
#define MAX_CLIENTS 64
#define MAX_LINE 4096
#define MAX_ARGS 64

/* Next port to hand out to a mock broker listener; 0 = leave ephemeral. */
static int next_broker_port = 0;

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
        static int (*libc_bind)(int, const struct sockaddr *, socklen_t);
        if (!libc_bind)
                libc_bind = (int (*)(int, const struct sockaddr *, socklen_t))
                    dlsym(RTLD_NEXT, "bind");
        if (next_broker_port > 0 && addr && addr->sa_family == AF_INET &&
            len >= (socklen_t)sizeof(struct sockaddr_in)) {
                struct sockaddr_in sin;
                memcpy(&sin, addr, sizeof(sin));
                if (sin.sin_port == 0 &&
                    sin.sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
                        sin.sin_port = htons((uint16_t)next_broker_port++);
                        return libc_bind(fd, (const struct sockaddr *)&sin,
                                         sizeof(sin));
                }
        }
        return libc_bind(fd, addr, len);
}

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
        (void)sig;
        stop_requested = 1;
}

static void logf_(const char *fmt, ...) {
        char ts[32];
        time_t now = time(NULL);
        struct tm tm;
        va_list ap;
        localtime_r(&now, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s ipc-dev-broker: ", ts);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        fflush(stderr);
}

static void usage(FILE *out) {
        fprintf(out,
                "Usage: ipc-dev-broker [--brokers N] [--port BASE] "
                "[--control-port PORT] [--ready-file PATH] [--debug]\n"
                "  --brokers N         number of brokers, 1..%d (default 1)\n"
                "  --port BASE         broker i listens on 127.0.0.1:BASE+i-1; "
                "0 = ephemeral (default 0)\n"
                "  --control-port P    control port on 127.0.0.1; 0 = "
                "ephemeral (default 0)\n"
                "  --ready-file PATH   write KAFKA_BROKERS=/KAFKA_CONTROL= "
                "lines there once serving\n"
                "  --debug             librdkafka mock debug logging\n",
                MAX_BROKERS);
}

/* Parses a whole decimal integer within [min, max]. */
static int parse_int(const char *s, long min, long max, long *out) {
        char *end;
        long v;
        if (!s || !*s)
                return -1;
        errno = 0;
        v     = strtol(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return -1;
        *out = v;
        return 0;
}

/* Checks that a loopback port can be bound (and so is free) right now. */
static int port_is_free(int port) {
        struct sockaddr_in sin;
        int on = 1, ok;
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0)
                return 0;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
        memset(&sin, 0, sizeof(sin));
        sin.sin_family      = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sin.sin_port        = htons((uint16_t)port);
        ok = bind(s, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
             listen(s, 1) == 0;
        close(s);
        return ok;
}

static int open_control_listener(int port, int *bound_port) {
        struct sockaddr_in sin;
        socklen_t len = sizeof(sin);
        int on        = 1;
        int s         = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0)
                return -1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
        memset(&sin, 0, sizeof(sin));
        sin.sin_family      = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sin.sin_port        = htons((uint16_t)port);
        if (bind(s, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
            listen(s, 16) != 0 ||
            getsockname(s, (struct sockaddr *)&sin, &len) != 0) {
                close(s);
                return -1;
        }
        *bound_port = ntohs(sin.sin_port);
        return s;
}

static int write_ready_file(const char *path,
                            const char *bootstraps,
                            int control_port) {
        char tmp[PATH_MAX];
        FILE *f;
        if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
                return -1;
        if (!(f = fopen(tmp, "w")))
                return -1;
        fprintf(f, "KAFKA_BROKERS=%s\nKAFKA_CONTROL=127.0.0.1:%d\n",
                bootstraps, control_port);
        if (fclose(f) != 0)
                return -1;
        return rename(tmp, path);
}

struct client {
        int fd;
        size_t len;
        char buf[MAX_LINE];
};

static void reply(int fd, const char *fmt, ...) {
        char out[MAX_LINE + 64];
        va_list ap;
        int n;
        size_t off = 0;
        va_start(ap, fmt);
        n = vsnprintf(out, sizeof(out) - 1, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        if ((size_t)n > sizeof(out) - 2)
                n = (int)sizeof(out) - 2;
        out[n++] = '\n';
        while (off < (size_t)n) {
                ssize_t w = send(fd, out + off, (size_t)n - off, MSG_NOSIGNAL);
                if (w <= 0) {
                        if (w < 0 && errno == EINTR)
                                continue;
                        return;
                }
                off += (size_t)w;
        }
}

static void reply_err(int fd, rd_kafka_resp_err_t err) {
        if (err)
                reply(fd, "error %s: %s", rd_kafka_err2name(err),
                      rd_kafka_err2str(err));
        else
                reply(fd, "ok");
}

/* Handles one command line; returns 1 when the broker should shut down. */
static int handle_command(rd_kafka_mock_cluster_t *mcluster,
                          int broker_cnt,
                          int fd,
                          char *line) {
        char *argv[MAX_ARGS];
        int argc = 0;
        char *save, *tok;
        long a, b, c;

        for (tok = strtok_r(line, " \t\r", &save); tok && argc < MAX_ARGS;
             tok = strtok_r(NULL, " \t\r", &save))
                argv[argc++] = tok;
        if (argc == 0)
                return 0; /* blank line: no reply */

        if (!strcmp(argv[0], "ping") && argc == 1) {
                reply(fd, "ok");
        } else if (!strcmp(argv[0], "info") && argc == 1) {
                reply(fd, "ok bootstrap=%s brokers=%d",
                      rd_kafka_mock_cluster_bootstraps(mcluster), broker_cnt);
        } else if (!strcmp(argv[0], "topic-create")) {
                if ((argc != 3 && argc != 4) || !*argv[1] ||
                    parse_int(argv[2], 1, 100000, &a) ||
                    (argc == 4 && parse_int(argv[3], 1, broker_cnt, &b))) {
                        reply(fd,
                              "error usage: topic-create <name> "
                              "<partitions 1..100000> [replication 1..%d]",
                              broker_cnt);
                        return 0;
                }
                if (argc == 3)
                        b = broker_cnt < 3 ? broker_cnt : 3;
                reply_err(fd, rd_kafka_mock_topic_create(mcluster, argv[1],
                                                         (int)a, (int)b));
        } else if (!strcmp(argv[0], "broker-down") ||
                   !strcmp(argv[0], "broker-up")) {
                if (argc != 2 || parse_int(argv[1], -1, broker_cnt, &a) ||
                    a == 0) {
                        reply(fd, "error usage: %s <broker id 1..%d, or -1>",
                              argv[0], broker_cnt);
                        return 0;
                }
                reply_err(fd, !strcmp(argv[0], "broker-down")
                                  ? rd_kafka_mock_broker_set_down(mcluster,
                                                                  (int32_t)a)
                                  : rd_kafka_mock_broker_set_up(mcluster,
                                                                (int32_t)a));
        } else if (!strcmp(argv[0], "broker-rtt")) {
                if (argc != 3 || parse_int(argv[1], -1, broker_cnt, &a) ||
                    a == 0 || parse_int(argv[2], 0, 3600000, &b)) {
                        reply(fd,
                              "error usage: broker-rtt <broker id 1..%d, or "
                              "-1> <ms 0..3600000>",
                              broker_cnt);
                        return 0;
                }
                reply_err(fd, rd_kafka_mock_broker_set_rtt(
                                  mcluster, (int32_t)a, (int)b));
        } else if (!strcmp(argv[0], "request-errors")) {
                rd_kafka_resp_err_t errs[MAX_ARGS];
                int i;
                if (argc < 3 || parse_int(argv[1], 0, 32767, &a)) {
                        reply(fd, "error usage: request-errors <apiKey> "
                                  "<errcode> [<errcode>...]");
                        return 0;
                }
                for (i = 2; i < argc; i++) {
                        if (parse_int(argv[i], -200, 32767, &c)) {
                                reply(fd, "error invalid error code '%s'",
                                      argv[i]);
                                return 0;
                        }
                        errs[i - 2] = (rd_kafka_resp_err_t)c;
                }
                rd_kafka_mock_push_request_errors_array(
                    mcluster, (int16_t)a, (size_t)(argc - 2), errs);
                reply(fd, "ok");
        } else if (!strcmp(argv[0], "request-errors-clear")) {
                if (argc != 2 || parse_int(argv[1], 0, 32767, &a)) {
                        reply(fd, "error usage: request-errors-clear <apiKey>");
                        return 0;
                }
                rd_kafka_mock_clear_request_errors(mcluster, (int16_t)a);
                reply(fd, "ok");
        } else if (!strcmp(argv[0], "shutdown") && argc == 1) {
                reply(fd, "ok");
                return 1;
        } else {
                reply(fd, "error unknown command '%s' (or wrong arguments)",
                      argv[0]);
        }
        return 0;
}

static void close_client(struct pollfd *pfds,
                         struct client *clients,
                         int *nclients,
                         int i) {
        close(clients[i].fd);
        clients[i] = clients[*nclients - 1];
        pfds[i + 1] = pfds[*nclients];
        (*nclients)--;
}

int main(int argc, char **argv) {
        long broker_cnt = 1, base_port = 0, control_port = 0;
        const char *ready_file = NULL;
        int debug              = 0;
        int i;
        char errstr[512];
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        rd_kafka_mock_cluster_t *mcluster;
        int control_fd, bound_control_port;
        struct pollfd pfds[MAX_CLIENTS + 1];
        static struct client clients[MAX_CLIENTS];
        int nclients = 0, shutting_down = 0;
        struct sigaction sa;

        for (i = 1; i < argc; i++) {
                const char *opt = argv[i];
                const char *val = i + 1 < argc ? argv[i + 1] : NULL;
                if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) {
                        usage(stdout);
                        return 0;
                } else if (!strcmp(opt, "--debug")) {
                        debug = 1;
                        continue;
                }
                if (!val) {
                        fprintf(stderr, "ipc-dev-broker: %s needs a value\n",
                                opt);
                        usage(stderr);
                        return 2;
                }
                i++;
                if (!strcmp(opt, "--brokers")) {
                        if (parse_int(val, 1, MAX_BROKERS, &broker_cnt)) {
                                fprintf(stderr,
                                        "ipc-dev-broker: --brokers must be "
                                        "1..%d, got '%s'\n",
                                        MAX_BROKERS, val);
                                return 2;
                        }
                } else if (!strcmp(opt, "--port")) {
                        if (parse_int(val, 0, 65535, &base_port)) {
                                fprintf(stderr,
                                        "ipc-dev-broker: --port must be "
                                        "0..65535, got '%s'\n",
                                        val);
                                return 2;
                        }
                } else if (!strcmp(opt, "--control-port")) {
                        if (parse_int(val, 0, 65535, &control_port)) {
                                fprintf(stderr,
                                        "ipc-dev-broker: --control-port must "
                                        "be 0..65535, got '%s'\n",
                                        val);
                                return 2;
                        }
                } else if (!strcmp(opt, "--ready-file")) {
                        ready_file = val;
                } else {
                        fprintf(stderr, "ipc-dev-broker: unknown option %s\n",
                                opt);
                        usage(stderr);
                        return 2;
                }
        }
        if (base_port > 0 && base_port + broker_cnt - 1 > 65535) {
                fprintf(stderr, "ipc-dev-broker: --port %ld leaves no room "
                                "for %ld brokers\n",
                        base_port, broker_cnt);
                return 2;
        }

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns EINTR */
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        if (base_port > 0) {
                for (i = 0; i < broker_cnt; i++) {
                        if (!port_is_free((int)base_port + i)) {
                                logf_("broker port 127.0.0.1:%ld is in use "
                                      "(choose another with --port)",
                                      base_port + i);
                                return 1;
                        }
                }
        }
        /* The control port is opened first so that a busy port fails before
         * the cluster exists. */
        control_fd = open_control_listener((int)control_port,
                                           &bound_control_port);
        if (control_fd < 0) {
                logf_("cannot listen on control port 127.0.0.1:%ld: %s",
                      control_port, strerror(errno));
                return 1;
        }

        conf = rd_kafka_conf_new();
        /* The handle only hosts the mock cluster; it never connects anywhere,
         * so its own "no bootstrap.servers" warning is noise. */
        rd_kafka_conf_set(conf, "log_level", debug ? "7" : "3", errstr,
                          sizeof(errstr));
        if (debug &&
            rd_kafka_conf_set(conf, "debug", "mock", errstr, sizeof(errstr)) !=
                RD_KAFKA_CONF_OK)
                logf_("cannot enable debug: %s", errstr);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                logf_("cannot create librdkafka handle: %s", errstr);
                return 1;
        }

        next_broker_port = (int)base_port;
        mcluster         = rd_kafka_mock_cluster_new(rk, (int)broker_cnt);
        next_broker_port = 0;
        if (!mcluster) {
                logf_("cannot create the mock cluster (see messages above)");
                rd_kafka_destroy(rk);
                return 1;
        }

        if (ready_file && write_ready_file(ready_file,
                                           rd_kafka_mock_cluster_bootstraps(
                                               mcluster),
                                           bound_control_port) != 0) {
                logf_("cannot write %s: %s", ready_file, strerror(errno));
                rd_kafka_mock_cluster_destroy(mcluster);
                rd_kafka_destroy(rk);
                return 1;
        }
        logf_("serving: KAFKA_BROKERS=%s KAFKA_CONTROL=127.0.0.1:%d (librdkafka "
              "%s, %ld broker(s), pid %d)",
              rd_kafka_mock_cluster_bootstraps(mcluster), bound_control_port,
              rd_kafka_version_str(), broker_cnt, (int)getpid());

        pfds[0].fd     = control_fd;
        pfds[0].events = POLLIN;
        while (!stop_requested && !shutting_down) {
                int r = poll(pfds, (nfds_t)(nclients + 1), 1000);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        logf_("poll failed: %s", strerror(errno));
                        break;
                }
                if (pfds[0].revents & POLLIN) {
                        int fd = accept(control_fd, NULL, NULL);
                        if (fd >= 0 && nclients < MAX_CLIENTS) {
                                clients[nclients].fd  = fd;
                                clients[nclients].len = 0;
                                pfds[nclients + 1].fd      = fd;
                                pfds[nclients + 1].events  = POLLIN;
                                pfds[nclients + 1].revents = 0;
                                nclients++;
                        } else if (fd >= 0) {
                                reply(fd, "error too many control connections");
                                close(fd);
                        }
                }
                for (i = nclients - 1; i >= 0 && !shutting_down; i--) {
                        struct client *cl = &clients[i];
                        ssize_t n;
                        char *nl;
                        if (!(pfds[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        n = recv(cl->fd, cl->buf + cl->len,
                                 sizeof(cl->buf) - cl->len - 1, 0);
                        if (n <= 0) {
                                close_client(pfds, clients, &nclients, i);
                                continue;
                        }
                        cl->len += (size_t)n;
                        cl->buf[cl->len] = '\0';
                        while (!shutting_down &&
                               (nl = memchr(cl->buf, '\n', cl->len))) {
                                size_t linelen = (size_t)(nl - cl->buf);
                                char line[MAX_LINE];
                                memcpy(line, cl->buf, linelen);
                                line[linelen] = '\0';
                                memmove(cl->buf, nl + 1, cl->len - linelen - 1);
                                cl->len -= linelen + 1;
                                cl->buf[cl->len] = '\0';
                                if (line[0])
                                        logf_("control: %s", line);
                                shutting_down = handle_command(
                                    mcluster, (int)broker_cnt, cl->fd, line);
                        }
                        if (!shutting_down && cl->len >= sizeof(cl->buf) - 1) {
                                reply(cl->fd, "error line too long");
                                close_client(pfds, clients, &nclients, i);
                        }
                }
        }

        logf_("shutting down (%s)",
              shutting_down ? "shutdown command" : "signal");
        for (i = 0; i < nclients; i++)
                close(clients[i].fd);
        close(control_fd);
        if (ready_file)
                unlink(ready_file);
        rd_kafka_mock_cluster_destroy(mcluster);
        rd_kafka_destroy(rk);
        return 0;
}
