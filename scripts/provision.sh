#!/usr/bin/env bash
# Provision a Debian bookworm machine that has no Docker engine: engine, Compose v2, buildx,
# debootstrap (for the offline base image), a running dockerd, and Chromium (the tests screenshot
# optuna-dashboard with it, headless). Idempotent: every step checks
# first, so running it on a machine that already has Docker changes nothing.
#
# Why trixie's .debs: bookworm ships neither Compose v2 nor buildx, and trixie's builds need only
# libc6 >= 2.34 (see shared/ENVIRONMENT.md). Only those two .deb files are taken from trixie;
# nothing else is upgraded.
set -euo pipefail

log() { printf '[provision] %s\n' "$*"; }
need_root() { [ "$(id -u)" -eq 0 ] || { echo "provision.sh must run as root (it installs packages)" >&2; exit 2; }; }

apt_updated=0
apt_update_once() { [ "$apt_updated" -eq 1 ] || { apt-get update -qq; apt_updated=1; }; }

install_engine() {
  if command -v dockerd >/dev/null && command -v debootstrap >/dev/null; then
    log "engine and debootstrap already installed"; return
  fi
  need_root; apt_update_once
  log "installing docker.io and debootstrap from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    docker.io debootstrap ca-certificates iptables >/dev/null
}

install_plugins() {
  if docker compose version >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1; then
    log "compose and buildx already installed"; return
  fi
  need_root
  local src=/etc/apt/sources.list.d/hpo-trixie.sources tmp
  tmp=$(mktemp -d)
  trap 'rm -f "$src"; rm -rf "$tmp"' RETURN
  local uri
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  uri=${uri:-http://deb.debian.org/debian}
  printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uri" >"$src"
  log "fetching docker-compose and docker-buildx from trixie ($uri)"
  apt-get update -qq
  (cd "$tmp" && apt-get download -qq docker-compose/trixie docker-buildx/trixie)
  rm -f "$src"
  apt-get update -qq
  dpkg -i "$tmp"/docker-compose_*.deb "$tmp"/docker-buildx_*.deb >/dev/null
}

install_compiler() {
  if command -v g++ >/dev/null; then log "g++ already installed"; return; fi
  need_root; apt_update_once
  log "installing g++ from Debian (hpo's C++ extension, csrc/, is compiled on install)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++ >/dev/null
}

install_chromium() {
  if command -v chromium >/dev/null; then log "chromium already installed"; return; fi
  need_root; apt_update_once
  log "installing chromium from Debian (headless screenshots of the dashboard in tests)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
}

start_daemon() {
  if docker info >/dev/null 2>&1; then log "docker engine already answering"; return; fi
  need_root
  log "starting dockerd (log: /var/log/dockerd.log)"
  setsid nohup dockerd >/var/log/dockerd.log 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && { log "docker engine is up"; return; }
    sleep 1
  done
  echo "dockerd did not answer within 60 s; last lines of /var/log/dockerd.log:" >&2
  tail -n 20 /var/log/dockerd.log >&2
  exit 1
}

install_engine
install_plugins
install_compiler
install_chromium
start_daemon
docker version --format 'engine {{.Server.Version}} (API {{.Server.APIVersion}})'
docker compose version
docker buildx version
