#!/usr/bin/env bash
# `make lambda-image`: a local image laid out like AWS's Python 3.13 Lambda base image, built from Debian's
# packages and PyPI only (no image registry is needed), tagged public.ecr.aws/lambda/python:3.13-<arch> so that
# `sam local invoke --skip-pull-image` uses it. Rebuilt only when this recipe changes (a label holds its hash).
#
#   /var/lang/bin/python3    Debian trixie's Python 3.13 (debootstrap --variant=minbase)
#   /var/runtime             awslambdaric (the runtime interface client), boto3 and botocore, as Lambda ships them
#   /var/runtime/bootstrap   runs awslambdaric with the handler
#   /var/task                the function's code (SAM CLI mounts it)
#   /lambda-entrypoint.sh    AWS's entrypoint; /usr/local/bin/aws-lambda-rie is SAM CLI's own copy
#
# Usage: build.sh [x86_64|arm64]   (default: this machine's architecture; another one is refused)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite=trixie
ric=awslambdaric==4.2.2
# The boto3 and botocore of the functions' lock: the ones the tests run and sam build packages.
sdk=$(grep -oE '^(boto3|botocore)==[^ ]+' "$root/functions/requirements.txt" | tr '\n' ' ')

case "$(uname -m)" in x86_64) host=x86_64 ;; aarch64|arm64) host=arm64 ;; *) host="$(uname -m)" ;; esac
arch="${1:-$host}"
if [ "$arch" != "$host" ]; then
  echo "build.sh: this machine is $host; an $arch image would need emulation (qemu). Deploy with" \
       "--parameter-overrides Architecture=$host for local invokes (docs/sam-local.md)." >&2
  exit 2
fi
case "$arch" in x86_64) platform=manylinux2014_x86_64 ;; arm64) platform=manylinux2014_aarch64 ;; esac
tag="public.ecr.aws/lambda/python:3.13-$arch"
recipe=$(cat "$here/build.sh" "$here/bootstrap" "$here/lambda-entrypoint.sh" <(echo "$suite $ric $sdk $arch") \
         | sha256sum | cut -c1-16)

if [ "$(docker image inspect "$tag" --format '{{ index .Config.Labels "welcome-pipeline.recipe" }}' 2>/dev/null)" \
     = "$recipe" ]; then
  echo "$tag is up to date (recipe $recipe)"
  exit 0
fi
for tool in debootstrap docker; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool is needed (apt-get install debootstrap docker.io)" >&2; exit 2; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
echo "debootstrap $suite with python3.13 from $mirror ..."
debootstrap --variant=minbase --include=python3.13,ca-certificates "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

mkdir -p "$rootfs/var/lang/bin" "$rootfs/var/runtime" "$rootfs/var/task" "$rootfs/opt" "$rootfs/usr/local/bin"
for name in python3 python3.13 python; do ln -s /usr/bin/python3.13 "$rootfs/var/lang/bin/$name"; done
# shellcheck disable=SC2086  # $sdk is two requirements
"$python" -m pip install --quiet --no-compile --target "$rootfs/var/runtime" --python-version 3.13 \
  --platform "$platform" --only-binary=:all: "$ric" $sdk
install -m 0755 "$here/bootstrap" "$rootfs/var/runtime/bootstrap"
install -m 0755 "$here/lambda-entrypoint.sh" "$rootfs/lambda-entrypoint.sh"
rie="$("$python" -c 'import samcli, pathlib; print(pathlib.Path(samcli.__file__).parent / "local/rapid")')/aws-lambda-rie-$arch"
install -m 0755 "$rie" "$rootfs/usr/local/bin/aws-lambda-rie"

echo "docker import as $tag ..."
tar -C "$rootfs" -c . | docker import \
  --change 'ENV LANG=en_US.UTF-8 TZ=:/etc/localtime PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin' \
  --change 'ENV LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib' \
  --change 'ENV LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime' \
  --change 'WORKDIR /var/task' \
  --change 'ENTRYPOINT ["/lambda-entrypoint.sh"]' \
  --change "LABEL welcome-pipeline.recipe=$recipe" \
  - "$tag" >/dev/null
echo "built $tag (recipe $recipe)"
