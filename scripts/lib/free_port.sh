# Sourced by the test and benchmark scripts: free_port prints a TCP port on 127.0.0.1 that
# nothing listens on, chosen at random below the ephemeral range (32768-60999) so that no
# client's source port takes it meanwhile; fails after 50 tries.
free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((12000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}
