#!/usr/bin/env bash
# Schemathesis against a release server on a fresh SQLite database, signed
# in as a user and an admin (scripts/schemathesis/hooks.py), every phase
# (examples, coverage, fuzzing, stateful) and every check but those named
# below. Fails on any 5xx, any answer the OpenAPI document does not
# describe, and any undocumented status.
#
#   scripts/schemathesis.sh BINARY [extra schemathesis arguments]
#
# Needs Python 3 with venv; schemathesis is installed, pinned, into
# target/schemathesis-venv the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:?usage: scripts/schemathesis.sh BINARY [schemathesis arguments]}")
shift

SCHEMATHESIS_VERSION=4.32.5
venv=target/schemathesis-venv
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

work=$(mktemp -d)
. scripts/server-lib.sh
trap 'stop; rm -rf "$work"' EXIT
db="sqlite://$work/schemathesis.db"
admin_password="schemathesis-admin-password"
echo "$admin_password" | DATABASE_URL="$db" LOG_LEVEL=warn "$bin" create-admin \
    --username st_admin --email st_admin@example.com --password-stdin >/dev/null
start "$bin" "$db"

# Every check is on; scripts/schemathesis/schemathesis.toml says where a
# check accepts more statuses, or is off for one operation, and why.
export STORYBOOK_URL="$url" STORYBOOK_ADMIN_USERNAME=st_admin STORYBOOK_ADMIN_PASSWORD="$admin_password"
export PYTHONPATH="$PWD/scripts/schemathesis" SCHEMATHESIS_HOOKS=hooks
"$venv/bin/schemathesis" --config-file scripts/schemathesis/schemathesis.toml run "$url/api/openapi.json" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --seed "${SCHEMATHESIS_SEED:-1}" \
    --workers 1 \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-100}" \
    --output-truncate false \
    "$@"
