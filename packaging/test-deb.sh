#!/usr/bin/env bash
# Builds the Debian package (cargo deb, metadata in Cargo.toml), installs it on THIS machine,
# checks what it installed, removes it (only the conffile may stay), then purges it.
# Needs root, dpkg and cargo-deb (.ci/run installs the pinned version:
#   cargo install cargo-deb --version 3.8.0 --locked).
# Refuses to run where a relevo package or /etc/relevo already exists: it would remove them.
# Run from anywhere: packaging/test-deb.sh
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "test-deb: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root (dpkg -i)"
if dpkg-query -W -f='${Status}' relevo 2>/dev/null | grep -q installed; then
    fail "a relevo package is already installed here; not touching it"
fi
[ ! -e /etc/relevo ] || fail "/etc/relevo exists; not touching it"

echo "== cargo deb"
deb=$(cargo deb | tail -n 1)
[ -f "$deb" ] || fail "cargo deb did not print the package path (got '$deb')"
echo "$deb"
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'

installed=0
cleanup() {
    if [ "$installed" = 1 ]; then
        echo "== cleaning up after a failure: dpkg -P relevo"
        dpkg -P relevo >/dev/null || true
    fi
}
trap cleanup EXIT

echo "== dpkg -i"
dpkg -i "$deb"
installed=1
files=$(mktemp)
dpkg -L relevo >"$files"

echo "== what it installed"
relevo_bin=/usr/sbin/relevo
"$relevo_bin" --version
"$relevo_bin" check -c /etc/relevo/relevo.toml
for f in /usr/lib/systemd/system/relevo.service \
    /usr/share/man/man8/relevo.8.gz /usr/share/man/man7/relevo-control.7.gz \
    /usr/share/man/man5/relevo.toml.5.gz /usr/share/man/man7/relevo-hooks.7.gz \
    /usr/share/bash-completion/completions/relevo /usr/share/zsh/vendor-completions/_relevo \
    /usr/share/fish/vendor_completions.d/relevo.fish \
    /usr/share/doc/relevo/examples/relevo.toml /usr/share/doc/relevo/examples/cluster.toml \
    /usr/share/doc/relevo/examples/hooks/shared-storage; do
    [ -f "$f" ] || fail "$f is not installed"
done
if readelf -S "$relevo_bin" | grep -q '\.debug_info'; then
    fail "$relevo_bin is not stripped"
fi
[ -x /usr/share/doc/relevo/examples/hooks/vm-restart ] || fail "example hooks are not executable"
dpkg-query -W -f='${Conffiles}\n' relevo | grep -q '/etc/relevo/relevo.toml' ||
    fail "/etc/relevo/relevo.toml is not a conffile"
zcat /usr/share/man/man8/relevo.8.gz | grep -q 'relevo\\-control(7)' || fail "relevo.8.gz is not the generated page"
if command -v systemd-analyze >/dev/null; then
    # With the binary and the man pages installed, the unit as shipped must verify cleanly.
    out=$(systemd-analyze verify /usr/lib/systemd/system/relevo.service 2>&1) ||
        fail "systemd-analyze verify: $out"
    [ -z "$out" ] || fail "systemd-analyze verify: $out"
    echo "systemd-analyze verify: clean"
elif [ "${CI:-}" = true ]; then
    fail "systemd-analyze missing (apt-get install systemd)"
fi

echo "== dpkg -r: only the conffile stays"
dpkg -r relevo
left=""
while IFS= read -r path; do
    [ "$path" = /etc/relevo/relevo.toml ] && continue
    if [ -f "$path" ] || [ -L "$path" ]; then
        left+=" $path"
    fi
done <"$files"
[ -z "$left" ] || fail "left after dpkg -r:$left"
[ -f /etc/relevo/relevo.toml ] || fail "the conffile did not survive dpkg -r"

echo "== dpkg -P"
dpkg -P relevo
installed=0
[ ! -e /etc/relevo/relevo.toml ] || fail "the conffile survived dpkg -P"
rm -f "$files"
echo "test-deb: OK ($deb)"
