# Sourced by scripts/stack.sh and scripts/services.sh. close_inherited_fds, run in the subshell
# that is about to exec a long-running daemon, closes every descriptor but stdin, stdout and
# stderr: an inherited one (a lock held by whoever called the script, such as
# `flock /tmp/x.lock scripts/stack.sh up`, or a pipe a CI step waits to see closed) would stay
# open as long as the daemon runs, and the lock would never be released.
close_inherited_fds() {
    local fd
    for fd in /proc/$BASHPID/fd/*; do
        fd=${fd##*/}
        [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
    done
    return 0
}
