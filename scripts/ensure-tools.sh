#!/usr/bin/env bash
# The commands the docs' examples use (tests/docs runs them): curl and jq; installed when we can (root on Debian).
set -euo pipefail

missing=()
for tool in curl jq; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "==> installing ${missing[*]} (the docs' examples use them)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "ERROR: the docs' examples need: ${missing[*]}; install them (Debian: apt-get install ${missing[*]})" >&2
  exit 1
fi
