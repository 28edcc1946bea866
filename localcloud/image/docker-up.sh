#!/usr/bin/env bash
# `make docker-up`: Docker for `sam local invoke` on a machine like CI's. Debian's docker.io (and debootstrap,
# for `make lambda-image`) installed if missing; dockerd started without its default bridge (--bridge=none):
# containers here run in the host's network namespace (localcloud/image/host_network.py), never on a bridge.
# Nothing happens where Docker already answers.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v debootstrap >/dev/null || ! command -v dockerd >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "docker-up: install docker.io and debootstrap (Debian's packages) first" >&2; exit 2; }
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io debootstrap >/dev/null
fi
docker info >/dev/null 2>&1 && exit 0
[ "$(id -u)" = 0 ] || { echo "docker-up: Docker does not answer; start it (dockerd runs as root)" >&2; exit 2; }
mkdir -p .localcloud
nohup dockerd --bridge=none --iptables=false --ip-masq=false >.localcloud/dockerd.log 2>&1 &
for _ in $(seq 60); do
  docker info >/dev/null 2>&1 && { echo "dockerd started (no bridge; log: .localcloud/dockerd.log)"; exit 0; }
  sleep 1
done
echo "docker-up: dockerd did not answer within 60 s; see .localcloud/dockerd.log" >&2
exit 1
