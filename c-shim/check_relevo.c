/* check_relevo: a Nagios/Icinga plugin for Relevo, built on librelevo_c.
 *
 * Asks the daemon for its status over the control socket and exits
 *   0 OK        every instance MASTER or BACKUP, every group healthy, quorate, all links up
 *   1 WARNING   a heartbeat link late/down/never heard, a cluster node lost, an instance in
 *               INIT, or an -i NAME not in the -e state (e.g. BACKUP where MASTER is expected)
 *   2 CRITICAL  the daemon is not running (no socket, or connection refused), an instance in
 *               FAULT, a group failed, quorum lost, or a failed fence
 *   3 UNKNOWN   bad options, permission denied, timeout, an unexpected or error reply, an
 *               -i NAME the daemon does not have
 * with one status line and perfdata. See c-shim/README.md.
 *
 * Usage: check_relevo [-s SOCKET] [-t SECONDS] [-i NAME]... [-e MASTER|BACKUP] */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relevo.h"

enum { OK = 0, WARNING = 1, CRITICAL = 2, UNKNOWN = 3 };
static const char *const STATE_NAMES[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

#define MAX_NAMES 32

/* The verdict so far: the worst state, and the problems behind it. */
struct verdict {
    int state;
    char problems[2048];
};

static void raise_to(struct verdict *v, int state, const char *fmt, ...) {
    if (state > v->state) {
        v->state = state;
    }
    size_t used = strlen(v->problems);
    if (used + 3 >= sizeof v->problems) {
        return;
    }
    if (used > 0) {
        strcat(v->problems, "; ");
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->problems + used, sizeof v->problems - used, fmt, ap);
    va_end(ap);
}

/* The string at pointer `fmt` (printf-formatted) of `json` into `out`; "" when missing. */
static void get(const char *json, char *out, size_t size, const char *fmt, ...) {
    char pointer[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pointer, sizeof pointer, fmt, ap);
    va_end(ap);
    char *value = NULL;
    out[0] = '\0';
    if (relevo_json_get(json, pointer, &value) == RELEVO_OK) {
        snprintf(out, size, "%s", value);
    }
    relevo_free(value);
}

static size_t len(const char *json, const char *pointer) {
    size_t n = 0;
    if (relevo_json_len(json, pointer, &n) != RELEVO_OK) {
        return 0;
    }
    return n;
}

static void usage(FILE *to) {
    fprintf(to,
            "usage: check_relevo [-s SOCKET] [-t SECONDS] [-i NAME]... [-e MASTER|BACKUP]\n"
            "  -s SOCKET   the control socket (default %s)\n"
            "  -t SECONDS  give up after this long (default 5): UNKNOWN\n"
            "  -i NAME     this VRRP instance or cluster group must exist (repeatable)\n"
            "  -e STATE    and be in STATE: MASTER (instance MASTER, group held here) or\n"
            "              BACKUP (instance BACKUP, group held elsewhere); else WARNING\n",
            relevo_default_socket());
}

static int finish(int state, const char *text, const char *perf) {
    printf("RELEVO %s - %s", STATE_NAMES[state], text);
    if (perf != NULL && perf[0] != '\0') {
        printf(" | %s", perf);
    }
    printf("\n");
    return state;
}

int main(int argc, char **argv) {
    const char *socket = NULL;
    int timeout_s = 5;
    const char *names[MAX_NAMES];
    int nnames = 0;
    const char *expect = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "s:t:i:e:hV")) != -1) {
        switch (opt) {
        case 's': socket = optarg; break;
        case 't':
            timeout_s = atoi(optarg);
            if (timeout_s <= 0 || timeout_s > 3600) {
                return finish(UNKNOWN, "-t wants 1 to 3600 seconds", NULL);
            }
            break;
        case 'i':
            if (nnames == MAX_NAMES) {
                return finish(UNKNOWN, "too many -i names", NULL);
            }
            names[nnames++] = optarg;
            break;
        case 'e':
            if (strcmp(optarg, "MASTER") != 0 && strcmp(optarg, "BACKUP") != 0) {
                return finish(UNKNOWN, "-e wants MASTER or BACKUP", NULL);
            }
            expect = optarg;
            break;
        case 'h': usage(stdout); return UNKNOWN;
        case 'V': printf("check_relevo 0.1.0\n"); return UNKNOWN;
        default: usage(stderr); return UNKNOWN;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return UNKNOWN;
    }
    const char *path = socket != NULL ? socket : relevo_default_socket();
    char text[2600];

    int err = 0;
    relevo_conn *conn = relevo_connect(path, &err);
    char *status = NULL;
    if (conn != NULL) {
        relevo_set_timeout(conn, timeout_s * 1000);
        err = relevo_status(conn, &status);
        relevo_close(conn);
    }
    if (err != RELEVO_OK) {
        /* Not running is the failure this check exists for; anything else means the check
         * could not tell. */
        int state = (err == RELEVO_E_NO_SOCKET || err == RELEVO_E_REFUSED) ? CRITICAL : UNKNOWN;
        char *message = NULL;
        if (status != NULL) {
            relevo_json_get(status, "/error", &message);
        }
        snprintf(text, sizeof text, "%s: %s%s%s", path, relevo_strerror(err),
                 message != NULL ? ": " : "", message != NULL ? message : "");
        relevo_free(message);
        relevo_free(status);
        return finish(state, text, NULL);
    }

    struct verdict v = {OK, ""};
    char node[128], name[128], state[64], buf[128];
    get(status, node, sizeof node, "/node");

    /* VRRP instances. */
    size_t ninst = len(status, "/instances");
    unsigned master = 0, backup = 0, fault = 0, other = 0;
    for (size_t i = 0; i < ninst; i++) {
        get(status, name, sizeof name, "/instances/%zu/name", i);
        get(status, state, sizeof state, "/instances/%zu/state", i);
        if (strcmp(state, "MASTER") == 0) {
            master++;
        } else if (strcmp(state, "BACKUP") == 0) {
            backup++;
        } else if (strcmp(state, "FAULT") == 0) {
            fault++;
            get(status, buf, sizeof buf, "/instances/%zu/reason", i);
            raise_to(&v, CRITICAL, "instance %s FAULT%s%s", name, buf[0] ? " " : "", buf);
        } else {
            other++;
            raise_to(&v, WARNING, "instance %s %s", name, state);
        }
    }

    /* Cluster mode: quorum, nodes, heartbeat links, groups. */
    int cluster = len(status, "/cluster") > 0;
    size_t ngroups = 0, nmembers = 0;
    unsigned held = 0, failed = 0, alive = 0, links_up = 0, links_bad = 0;
    char quorate[16] = "", votes[16] = "", needed[16] = "";
    if (cluster) {
        get(status, quorate, sizeof quorate, "/cluster/quorate");
        get(status, votes, sizeof votes, "/cluster/votes");
        get(status, needed, sizeof needed, "/cluster/needed");
        if (strcmp(quorate, "true") != 0) {
            raise_to(&v, CRITICAL, "no quorum (%s of %s votes)", votes, needed);
        }
        nmembers = len(status, "/cluster/members");
        for (size_t m = 0; m < nmembers; m++) {
            get(status, name, sizeof name, "/cluster/members/%zu/name", m);
            get(status, state, sizeof state, "/cluster/members/%zu/alive", m);
            get(status, buf, sizeof buf, "/cluster/members/%zu/fence", m);
            if (strcmp(buf, "failed") == 0) {
                raise_to(&v, CRITICAL, "fencing %s failed", name);
            }
            char pointer[96];
            snprintf(pointer, sizeof pointer, "/cluster/members/%zu/links", m);
            size_t nlinks = len(status, pointer);
            if (strcmp(state, "true") != 0) {
                raise_to(&v, WARNING, "node %s lost%s%s", name, buf[0] ? ", fence " : "", buf);
                links_bad += (unsigned)nlinks;
                continue;
            }
            alive++;
            for (size_t l = 0; l < nlinks; l++) {
                char health[32];
                get(status, health, sizeof health, "/cluster/members/%zu/links/%zu", m, l);
                if (strcmp(health, "up") == 0) {
                    links_up++;
                } else {
                    links_bad++;
                    raise_to(&v, WARNING, "link %zu to %s %s", l, name, health);
                }
            }
        }
        ngroups = len(status, "/cluster/groups");
        for (size_t g = 0; g < ngroups; g++) {
            get(status, name, sizeof name, "/cluster/groups/%zu/name", g);
            get(status, state, sizeof state, "/cluster/groups/%zu/state", g);
            if (strcmp(state, "held") == 0) {
                held++;
            } else if (strcmp(state, "failed") == 0) {
                failed++;
                get(status, buf, sizeof buf, "/cluster/groups/%zu/reason", g);
                raise_to(&v, CRITICAL, "group %s failed%s%s", name, buf[0] ? " " : "", buf);
            }
        }
    }

    /* The names the operator asked about, and the state expected of them. */
    for (int n = 0; n < nnames; n++) {
        const char *want = names[n];
        int found = 0;
        for (size_t i = 0; i < ninst && !found; i++) {
            get(status, name, sizeof name, "/instances/%zu/name", i);
            if (strcmp(name, want) != 0) {
                continue;
            }
            found = 1;
            get(status, state, sizeof state, "/instances/%zu/state", i);
            if (expect != NULL && strcmp(state, expect) != 0 && strcmp(state, "FAULT") != 0) {
                raise_to(&v, WARNING, "instance %s is %s, expected %s", want, state, expect);
            }
        }
        for (size_t g = 0; g < ngroups && !found; g++) {
            get(status, name, sizeof name, "/cluster/groups/%zu/name", g);
            if (strcmp(name, want) != 0) {
                continue;
            }
            found = 1;
            get(status, state, sizeof state, "/cluster/groups/%zu/state", g);
            const char *as = strcmp(state, "held") == 0 ? "MASTER" : "BACKUP";
            if (expect != NULL && strcmp(as, expect) != 0 && strcmp(state, "failed") != 0) {
                raise_to(&v, WARNING, "group %s is %s, expected %s", want, state, expect);
            }
        }
        if (!found) {
            raise_to(&v, UNKNOWN, "no instance or group %s", want);
        }
    }

    char perf[1024];
    int used = snprintf(perf, sizeof perf,
                        "instances=%zu instances_master=%u instances_backup=%u "
                        "instances_fault=%u instances_other=%u",
                        ninst, master, backup, fault, other);
    if (cluster && used > 0 && (size_t)used < sizeof perf) {
        snprintf(perf + used, sizeof perf - (size_t)used,
                 " quorate=%d votes=%s votes_needed=%s members=%zu members_alive=%u "
                 "links_up=%u links_degraded=%u groups=%zu groups_held=%u groups_failed=%u",
                 strcmp(quorate, "true") == 0, votes, needed, nmembers, alive, links_up,
                 links_bad, ngroups, held, failed);
    }
    if (v.state == OK) {
        int n = snprintf(text, sizeof text, "node %s: %zu instance(s), %u MASTER, %u BACKUP",
                         node, ninst, master, backup);
        if (cluster && n > 0 && (size_t)n < sizeof text) {
            snprintf(text + n, sizeof text - (size_t)n,
                     "; quorate %s/%s votes, %u/%zu nodes alive, %u links up, %u/%zu groups held here",
                     votes, needed, alive, nmembers, links_up, held, ngroups);
        }
    } else {
        snprintf(text, sizeof text, "node %s: %s", node, v.problems);
    }
    relevo_free(status);
    return finish(v.state, text, perf);
}
