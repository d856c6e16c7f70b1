#!/usr/bin/env bash
# Chromium for the HTML report's rendering test (tests/test_html_report.py), which skips
# without a browser (and a skip fails under CI=true). Idempotent: does nothing when
# `chromium` is already on PATH; otherwise installs Debian's chromium package.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "install-chromium: $(command -v chromium) is already installed ($(chromium --version 2>/dev/null || echo 'version unknown'))"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: no apt-get here; install Chromium with this system's package manager" >&2
    echo "  (or point DBSCOPE_CHROMIUM at a Chromium or Chrome executable)" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "install-chromium: installed $(command -v chromium) ($(chromium --version 2>/dev/null || echo 'version unknown'))"
