#!/usr/bin/env bash
# A real container engine for `ppc-llm build --toolchain docker`, without any registry: shared by
# the tests (scripts/test.sh) and CI (.ci/run).
#
#   bash scripts/docker-engine.sh start   # engine answering + base image present (idempotent)
#   bash scripts/docker-engine.sh stop    # stop the dockerd this script started (by its PID)
#
# start: when no engine answers, install Debian's docker.io (and debootstrap) if missing and start
# `dockerd` in the background (its PID in $PPC_LLM_DOCKER_STATE/dockerd.pid). When the base image
# (debian:bookworm, the FROM of docker/Dockerfile) is missing, make it without pulling:
# debootstrap a minbase bookworm from the Debian mirror apt already uses and `docker import` it.
# `docker build` then installs the cross-compiler from the same mirror.
set -euo pipefail
cd "$(dirname "$0")/.."

STATE="${PPC_LLM_DOCKER_STATE:-/tmp/ppc-llm-docker}"
SOCKET="/var/run/docker.sock"
BASE_IMAGE="debian:bookworm"
SUITE="bookworm"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

say() { echo "docker-engine: $*" >&2; }

apt_install() {
    local missing=()
    for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    [ "${#missing[@]}" -eq 0 ] && return 0
    say "+ apt-get install ${missing[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
        --no-install-recommends "${missing[@]}" >&2
}

answers() { timeout 20 docker info >/dev/null 2>&1; }

debian_mirror() {
    # The first Debian URI apt is configured with (deb822 .sources or one-line sources.list).
    local uri
    uri=$(grep -hsE '^\s*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
          | awk '{print $2}' | grep -v security | head -n1 || true)
    [ -z "$uri" ] && uri=$(grep -hsE '^\s*deb\s' /etc/apt/sources.list 2>/dev/null \
          | awk '{print $2}' | grep -v security | head -n1 || true)
    echo "${uri:-http://deb.debian.org/debian}"
}

start_engine() {
    if answers; then
        say "engine answers on ${DOCKER_HOST:-$SOCKET}"
        return 0
    fi
    apt_install docker.io
    mkdir -p "$STATE"
    say "+ dockerd --host unix://$SOCKET (log: $STATE/dockerd.log)"
    $SUDO dockerd --host "unix://$SOCKET" >"$STATE/dockerd.log" 2>&1 &
    echo $! >"$STATE/dockerd.pid"
    for _ in $(seq 1 60); do
        if answers; then say "dockerd is ready (pid $(cat "$STATE/dockerd.pid"))"; return 0; fi
        kill -0 "$(cat "$STATE/dockerd.pid")" 2>/dev/null || break
        sleep 0.5
    done
    say "dockerd did not start; the end of its log:"
    tail -n 20 "$STATE/dockerd.log" >&2 || true
    exit 1
}

import_base_image() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        say "base image $BASE_IMAGE is present"
        return 0
    fi
    apt_install debootstrap
    local rootfs mirror
    rootfs=$(mktemp -d "${TMPDIR:-/tmp}/ppc-llm-rootfs.XXXXXX")
    mirror=$(debian_mirror)
    say "+ debootstrap --variant=minbase $SUITE $rootfs $mirror"
    if ! $SUDO debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" >"$STATE/debootstrap.log" 2>&1; then
        tail -n 20 "$STATE/debootstrap.log" >&2
        $SUDO rm -rf "$rootfs"
        exit 1
    fi
    say "+ tar --numeric-owner -C $rootfs -c . | docker import - $BASE_IMAGE"
    $SUDO tar --numeric-owner -C "$rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null
    $SUDO rm -rf "$rootfs"
}

stop_engine() {
    local pidfile="$STATE/dockerd.pid"
    [ -f "$pidfile" ] || { say "no dockerd started by this script"; return 0; }
    local pid
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        say "stopping dockerd (pid $pid)"
        $SUDO kill "$pid"
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
    rm -f "$pidfile"
}

case "${1:-}" in
    start) mkdir -p "$STATE"; start_engine; import_base_image ;;
    stop) stop_engine ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
