/* abi_test: exercises librelevo_c through relevo.h, driven by tests/c_abi.rs.
 *   abi_test live SOCKET NODE   a running daemon named NODE
 *   abi_test refused SOCKET     a socket nobody listens on
 *   abi_test missing SOCKET     a path with no socket
 *   abi_test silent SOCKET      a server that accepts and never answers
 *   abi_test hangup SOCKET      a server that closes every connection unread
 *   abi_test stream SOCKET      a server that streams {"a":1}, then {"b":2} in two pieces
 *   abi_test json               the JSON pointer helpers
 * Prints one "ok ..." line per check; the first failed check prints "FAIL ..." and exits 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "relevo.h"

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (cond) {                                                        \
            printf("ok %s\n", #cond);                                      \
        } else {                                                           \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);         \
            printf(__VA_ARGS__);                                           \
            printf("\n");                                                  \
            exit(1);                                                       \
        }                                                                  \
    } while (0)

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void live(const char *socket, const char *node) {
    int err = 1;
    relevo_conn *conn = relevo_connect(socket, &err);
    CHECK(conn != NULL && err == RELEVO_OK, "connect: %d %s", err, relevo_strerror(err));

    char *status = NULL;
    int rc = relevo_status(conn, &status);
    CHECK(rc == RELEVO_OK && status != NULL, "status: %d %s", rc, relevo_strerror(rc));
    char *name = NULL;
    rc = relevo_json_get(status, "/node", &name);
    CHECK(rc == RELEVO_OK && strcmp(name, node) == 0, "node: %d %s", rc, name ? name : "(null)");
    size_t n = 0;
    rc = relevo_json_len(status, "/instances", &n);
    CHECK(rc == RELEVO_OK, "instances: %d", rc);
    printf("status %s\n", status);
    relevo_free(name);
    relevo_free(status);

    /* The same request, generically: a verb with no arguments, then a raw line. */
    char *reply = NULL;
    rc = relevo_send_verb(conn, "status", NULL, &reply);
    CHECK(rc == RELEVO_OK && strstr(reply, "\"instances\"") != NULL, "verb: %d", rc);
    relevo_free(reply);
    rc = relevo_request(conn, "{\"command\":\"status\"}\n", &reply);
    CHECK(rc == RELEVO_OK && strstr(reply, "\"node\"") != NULL, "request: %d", rc);
    relevo_free(reply);

    /* A verb the daemon does not know: its error reply comes back with RELEVO_E_DAEMON. */
    rc = relevo_send_verb(conn, "no-such-verb", "{\"x\":1}", &reply);
    CHECK(rc == RELEVO_E_DAEMON && reply != NULL, "unknown verb: %d", rc);
    char *message = NULL;
    CHECK(relevo_json_get(reply, "/error", &message) == RELEVO_OK
              && strstr(message, "no-such-verb") != NULL,
          "error reply %s", reply);
    printf("daemon error: %s\n", message);
    relevo_free(message);
    relevo_free(reply);

    /* Malformed requests never reach the daemon. */
    reply = (char *)1;
    CHECK(relevo_request(conn, "status", &reply) == RELEVO_E_INVALID && reply == NULL, "raw");
    CHECK(relevo_send_verb(conn, "status", "[1]", NULL) == RELEVO_E_INVALID, "array args");
    CHECK(relevo_send_verb(conn, "status", "{\"command\":\"x\"}", NULL) == RELEVO_E_INVALID,
          "command in args");
    CHECK(relevo_set_timeout(conn, 0) == RELEVO_E_INVALID, "timeout 0");
    CHECK(relevo_set_timeout(conn, 2000) == RELEVO_OK, "timeout 2000");

    /* A stream is any request whose reply lines are read one by one: status has one. */
    char *line = NULL;
    CHECK(relevo_events_next(conn, &line, 10) == RELEVO_E_INVALID, "no stream yet");
    rc = relevo_stream_verb(conn, "status", NULL);
    CHECK(rc == RELEVO_OK, "stream: %d", rc);
    rc = relevo_events_next(conn, &line, 2000);
    CHECK(rc == RELEVO_OK && strstr(line, "\"node\"") != NULL, "first line: %d", rc);
    relevo_free(line);
    rc = relevo_events_next(conn, &line, 2000);
    CHECK(rc == RELEVO_E_CLOSED && line == NULL, "end: %d", rc);
    CHECK(relevo_events_next(conn, &line, 0) == RELEVO_E_CLOSED, "still ended");
    relevo_close(conn);
}

static void connect_fails(const char *socket, int expected) {
    int err = 0;
    relevo_conn *conn = relevo_connect(socket, &err);
    CHECK(conn == NULL && err == expected, "connect: %d (%s)", err, relevo_strerror(err));
    printf("error %d %s\n", err, relevo_strerror(err));
}

static void silent(const char *socket) {
    int err = 0;
    relevo_conn *conn = relevo_connect(socket, &err);
    CHECK(conn != NULL, "connect: %d", err);
    CHECK(relevo_set_timeout(conn, 300) == RELEVO_OK, "timeout");
    double start = now_s();
    char *reply = NULL;
    int rc = relevo_status(conn, &reply);
    double took = now_s() - start;
    CHECK(rc == RELEVO_E_TIMEOUT && reply == NULL, "status: %d %s", rc, relevo_strerror(rc));
    CHECK(took >= 0.25 && took < 2.0, "took %.3f s", took);
    printf("timed out after %.3f s: %s\n", took, relevo_strerror(rc));
    relevo_close(conn);
}

/* The server closes the connection before the request is sent: an error code, and no
 * SIGPIPE (whose default action would kill this program). */
static void hangup(const char *socket) {
    int err = 0;
    relevo_conn *conn = relevo_connect(socket, &err);
    CHECK(conn != NULL, "connect: %d", err);
    struct timespec wait = {0, 300 * 1000 * 1000};
    nanosleep(&wait, NULL);
    char *reply = NULL;
    int rc = relevo_status(conn, &reply);
    CHECK((rc == RELEVO_E_IO || rc == RELEVO_E_CLOSED) && reply == NULL, "status: %d", rc);
    printf("hung up: %d %s\n", rc, relevo_strerror(rc));
    relevo_close(conn);
}

static void stream(const char *socket) {
    int err = 0;
    relevo_conn *conn = relevo_connect(socket, &err);
    CHECK(conn != NULL, "connect: %d", err);
    CHECK(relevo_stream(conn, "{\"command\":\"events\",\"follow\":true}") == RELEVO_OK, "start");
    char *line = NULL;
    int rc = relevo_events_next(conn, &line, 2000);
    CHECK(rc == RELEVO_OK && strcmp(line, "{\"a\":1}") == 0, "first: %d %s", rc, line);
    relevo_free(line);
    /* The server holds back the end of the second line for 500 ms. */
    rc = relevo_events_next(conn, &line, 100);
    CHECK(rc == RELEVO_E_TIMEOUT && line == NULL, "partial: %d", rc);
    rc = relevo_events_next(conn, &line, 3000);
    CHECK(rc == RELEVO_OK && strcmp(line, "{\"b\":2}") == 0, "second: %d %s", rc, line);
    relevo_free(line);
    rc = relevo_events_next(conn, &line, 3000);
    CHECK(rc == RELEVO_E_CLOSED, "closed: %d", rc);
    relevo_close(conn);
}

static void json(void) {
    const char *doc = "{\"node\":\"n1\",\"cluster\":{\"quorate\":true,\"votes\":3,"
                      "\"members\":[{\"name\":\"n2\",\"links\":[\"up\",\"late\"]}]},\"x\":null}";
    char *v = NULL;
    CHECK(relevo_json_get(doc, "/cluster/quorate", &v) == RELEVO_OK && strcmp(v, "true") == 0, "b");
    relevo_free(v);
    CHECK(relevo_json_get(doc, "/cluster/members/0/links/1", &v) == RELEVO_OK
              && strcmp(v, "late") == 0, "s");
    relevo_free(v);
    CHECK(relevo_json_get(doc, "/cluster/votes", &v) == RELEVO_OK && atoi(v) == 3, "n");
    relevo_free(v);
    CHECK(relevo_json_get(doc, "/x", &v) == RELEVO_E_NO_VALUE && v == NULL, "null");
    CHECK(relevo_json_get(doc, "/nope", &v) == RELEVO_E_NO_VALUE, "missing");
    CHECK(relevo_json_get("{", "", &v) == RELEVO_E_PROTOCOL, "bad json");
    CHECK(relevo_json_get(NULL, "", &v) == RELEVO_E_INVALID, "null json");
    size_t n = 0;
    CHECK(relevo_json_len(doc, "/cluster/members", &n) == RELEVO_OK && n == 1, "len");
    CHECK(relevo_json_len(doc, "/node", &n) == RELEVO_E_NO_VALUE, "len of a string");
    CHECK(strcmp(relevo_default_socket(), "/run/relevo/relevo.sock") == 0, "default socket");
    CHECK(strcmp(relevo_strerror(-12345), "unknown relevo error code") == 0, "unknown code");
    printf("default %s\n", relevo_default_socket());
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "live") == 0) {
        live(argv[2], argv[3]);
    } else if (argc >= 3 && strcmp(argv[1], "refused") == 0) {
        connect_fails(argv[2], RELEVO_E_REFUSED);
    } else if (argc >= 3 && strcmp(argv[1], "missing") == 0) {
        connect_fails(argv[2], RELEVO_E_NO_SOCKET);
    } else if (argc >= 3 && strcmp(argv[1], "silent") == 0) {
        silent(argv[2]);
    } else if (argc >= 3 && strcmp(argv[1], "hangup") == 0) {
        hangup(argv[2]);
    } else if (argc >= 3 && strcmp(argv[1], "stream") == 0) {
        stream(argv[2]);
    } else if (argc >= 2 && strcmp(argv[1], "json") == 0) {
        json();
    } else {
        fprintf(stderr, "usage: abi_test live|refused|missing|silent|hangup|stream|json [SOCKET [NODE]]\n");
        return 2;
    }
    return 0;
}
