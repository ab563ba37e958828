#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages deltaedit builds against (OpenBLAS, LAPACKE, pkg-config).
# `--with-chromium` also installs Chromium, which the report-rendering test uses.
# Runs apt-get directly as root, through sudo otherwise; installs nothing already present.
set -euo pipefail
packages=(libopenblas-dev liblapacke-dev pkg-config)
for arg in "$@"; do
  case "$arg" in
    --with-chromium) packages+=(chromium) ;;
    *) echo "install-system-deps.sh: unknown option '$arg' (expected --with-chromium)" >&2; exit 2 ;;
  esac
done
need=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  run=()
elif command -v sudo >/dev/null 2>&1; then
  run=(sudo)
else
  echo "install-system-deps.sh: need root or sudo to install: ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${run[@]}" apt-get update -qq
"${run[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
echo "installed: ${need[*]}"
