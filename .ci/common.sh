# Shared by the .ci/ensure-*.sh scripts: sourced after they set SCRIPT (their name in
# messages) and AS_ROOT_ADVICE (what to do when a step needs root and there is none).

say() { echo "${SCRIPT}: $*"; }
die() {
    echo "${SCRIPT}: ERROR: $*" >&2
    exit 1
}

# Run a command as root: directly when we are root, else through passwordless sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        die "'$*' needs root, and this is neither root nor allowed passwordless sudo; ${AS_ROOT_ADVICE}"
    fi
}
