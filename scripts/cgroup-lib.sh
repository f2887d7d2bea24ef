# Shared by the scripts that run a server on a hosting plan's budget
# (freetier.sh, cold-start.sh): a cgroup capped in CPU and memory, v1 or
# v2. Source it; needs root. Call remove_cgroups when done.
cgroup_name="storybook-capped-$$"
made=()
remove_cgroups() {
    for dir in "${made[@]}"; do rmdir "$dir" 2>/dev/null || true; done
    made=()
    return 0
}
# make_cgroup CPUS MEM_MB: sets $procs to the files a process joins by
# (write its pid to each).
make_cgroup() {
    local cpus=$1 mem=$2 quota
    quota=$(awk -v c="$cpus" 'BEGIN { printf "%d", c * 100000 }')
    procs=()
    if [ -d /sys/fs/cgroup/cpu ] && [ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
        local c=/sys/fs/cgroup/cpu/$cgroup_name m=/sys/fs/cgroup/memory/$cgroup_name
        mkdir -p "$c" "$m"; made+=("$c" "$m")
        echo 100000 > "$c/cpu.cfs_period_us"
        echo "$quota" > "$c/cpu.cfs_quota_us"
        echo $((mem * 1024 * 1024)) > "$m/memory.limit_in_bytes"
        procs=("$c/cgroup.procs" "$m/cgroup.procs")
    else
        local g=/sys/fs/cgroup/$cgroup_name
        echo "+cpu +memory" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
        mkdir -p "$g"; made+=("$g")
        echo "$quota 100000" > "$g/cpu.max"
        echo $((mem * 1024 * 1024)) > "$g/memory.max"
        procs=("$g/cgroup.procs")
    fi
}
