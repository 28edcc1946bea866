#!/bin/sh
# As in AWS's Lambda base images: under the Runtime Interface Emulator outside Lambda, else the bootstrap
# directly. (`sam local invoke` replaces this entrypoint with its own copy of the emulator.)
if [ $# -ne 1 ]; then
  echo "entrypoint requires the handler name to be the first argument" 1>&2
  exit 142
fi
export _HANDLER="$1"
if [ -z "${AWS_LAMBDA_RUNTIME_API}" ]; then
  exec /usr/local/bin/aws-lambda-rie /var/runtime/bootstrap
else
  exec /var/runtime/bootstrap
fi
