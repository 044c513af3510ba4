#!/usr/bin/env bash
# Real Debian programs under `smcd run` (the preload shim): nginx serving a
# file to curl and wrk, redis-server with redis-cli and redis-benchmark,
# iperf3, socat and sockperf — every byte checked where the program lets us,
# and each run's `--stats` must show SMC-D connections and no fallback. One
# side without the shim must still be correct (plain TCP). Installs the
# packages it needs. Everything binds 127.0.0.1 on ports that were free (no
# fixed ports: other runs on the host, and TIME_WAIT left by a previous run,
# would collide); every wait is bounded; every server is stopped on exit.
# Each step's time is printed at the end.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# step NAME: the steps' times (the previous one ends where NAME starts).
step_names=()
step_secs=()
step_start=$SECONDS
step() {
    step_names+=("$1")
    step_secs+=($((SECONDS - step_start)))
    step_start=$SECONDS
}

tools=(curl nginx wrk redis-server redis-cli redis-benchmark iperf3 socat sockperf)
packages=(curl nginx-light wrk redis-server redis-tools iperf3 socat sockperf)
missing=0
for t in "${tools[@]}"; do
    command -v "$t" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin" command -v "$t" >/dev/null 2>&1 || missing=1
done
if [[ $missing == 1 ]]; then
    smcd_log "installing ${packages[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"
step packages

work="$(mktemp -d /tmp/smcd-shim.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# Release builds: `smcd` as the `test` section made it for `--test echo`
# (found up to date then: the same units), and the shim on its own, so
# that its dependencies' features do not change smcd's and rebuild it.
# (The debug build of `cargo test` would cost no build at all, but under
# it a handshake race shows up in --apps often enough to fail CI; see
# docs/reliability.md.)
smcd_run cargo build --locked --release -p smcd-cli
smcd_run cargo build --locked --release -p smcd-preload
target="${CARGO_TARGET_DIR:-$SMCD_ROOT/target}/release"
smcd="$target/smcd"
export SMCD_PRELOAD_LIB="$target/libsmcd_preload.so"
step build
# nginx's workers run as nobody: let processes of other users fetch DMBs.
export SMCD_PEERS=any

# free_port: a TCP port that no socket of the host uses in any state (not
# even TIME_WAIT: sockperf binds without SO_REUSEADDR), below the ephemeral
# range so that no outgoing connection takes it meanwhile.
free_port() {
    local i port hex
    for i in $(seq 1 200); do
        port=$((20000 + RANDOM % 12000))
        hex="$(printf '%04X' "$port")"
        if ! grep -qi "^ *[0-9]*: [0-9A-F]*:$hex " /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    smcd_die "no free port found"
}

# wait_port PORT LOG: until something listens on 127.0.0.1:PORT (10 s at
# most), read from /proc/net/tcp — connecting would use up one-shot servers.
# LOG: the server's output, shown when it never listens.
wait_port() {
    local i hex
    hex="$(printf '%04X' "$1")"
    for i in $(seq 1 100); do
        if grep -qi "^ *[0-9]*: 0100007F:$hex 00000000:0000 0A" /proc/net/tcp; then return 0; fi
        sleep 0.1
    done
    cat "$2" >&2 || true
    smcd_die "nothing listens on port $1"
}

# wait_gone PID: until the process exited (15 s at most).
wait_gone() {
    local i
    for i in $(seq 1 150); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    smcd_die "process $1 did not exit"
}

# smc_count FILE: the SMC-D connections of a --stats file.
smc_count() {
    local n c
    n=0
    for c in $(grep -o '"smc-d-[a-z]*": [0-9]*' "$1" | grep -o '[0-9]*$'); do n=$((n + c)); done
    echo "$n"
}

# expect_smc NAME FILE [TCP]: SMC-D connections, no fallback and exactly TCP
# (default 0) plain TCP connections in FILE — a connection that stayed plain
# without a Decline (its announcement found no room) is caught too.
expect_smc() {
    local n tcp
    [[ -f "$2" ]] || smcd_die "$1: no stats file"
    n="$(smc_count "$2")"
    [[ "$n" -gt 0 ]] || { cat "$2"; smcd_die "$1: no SMC-D connection"; }
    if ! tr -d ' \n' <"$2" | grep -q '"fallbacks":{}'; then
        cat "$2"
        smcd_die "$1: unexpected fallback"
    fi
    tcp="$(grep -o '"tcp": [0-9]*' "$2" | grep -o '[0-9]*$' || echo 0)"
    if [[ "$tcp" != "${3:-0}" ]]; then
        cat "$2"
        smcd_die "$1: $tcp plain TCP connections (expected ${3:-0})"
    fi
    smcd_log "$1: $n SMC-D connections, no fallback"
}

# ---- nginx + curl + wrk -------------------------------------------------
nginx_port="$(free_port)"
mkdir -p "$work/www" "$work/nginx/logs"
head -c 1048576 /dev/urandom >"$work/www/blob.bin"
echo '<html>smcd</html>' >"$work/www/index.html"
cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server { listen 127.0.0.1:$nginx_port; root $work/www; }
}
EOF
chmod -R a+rX "$work/www"
timeout 120 "$smcd" run --stats "$work/nginx.json" -- nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" \
    >"$work/nginx.log" 2>&1 &
pids+=($!)
nginx_run=$!
wait_port "$nginx_port" "$work/nginx.log"
timeout 30 "$smcd" run --stats "$work/curl.json" -- curl -sS -o "$work/got.bin" http://127.0.0.1:$nginx_port/blob.bin
cmp "$work/got.bin" "$work/www/blob.bin" || smcd_die "curl: the file differs"
expect_smc "curl from nginx (sendfile)" "$work/curl.json"
timeout 30 curl -sS -o "$work/plain.bin" http://127.0.0.1:$nginx_port/blob.bin
cmp "$work/plain.bin" "$work/www/blob.bin" || smcd_die "plain curl: the file differs"
smcd_log "plain curl (no shim) from nginx under smcd run: byte-exact"
timeout 30 "$smcd" run --stats "$work/wrk.json" -- wrk -t1 -c8 -d1s http://127.0.0.1:$nginx_port/index.html | tee "$work/wrk.out"
grep -q 'Socket errors' "$work/wrk.out" && smcd_die "wrk: socket errors"
expect_smc "wrk to nginx" "$work/wrk.json"
# smcd ss during a run: nginx's and wrk's connections are listed over SMC-D.
timeout 30 "$smcd" run -- wrk -t1 -c4 -d2s http://127.0.0.1:$nginx_port/index.html >"$work/wrk-ss.out" &
wrk_ss=$!
pids+=("$wrk_ss")
sleep 1
timeout 10 "$smcd" ss --json >"$work/ss.json"
timeout 10 "$smcd" ss
wait "$wrk_ss" || smcd_die "wrk (during smcd ss) failed"
for cmd in nginx wrk; do
    grep -q "\"command\":\"$cmd\",[^}]*\"transport\":\"smc-d-" "$work/ss.json" \
        || { cat "$work/ss.json"; smcd_die "smcd ss: no SMC-D connection of $cmd"; }
done
grep -qi 'token\|gid' "$work/ss.json" && smcd_die "smcd ss names tokens or GIDs"
smcd_log "smcd ss during wrk: SMC-D connections of nginx and wrk listed"
kill -QUIT "$(cat "$work/nginx/nginx.pid")"
wait_gone "$nginx_run"
# The plain curl above is nginx's one TCP connection.
expect_smc "nginx" "$work/nginx.json" 1
step "nginx + curl + wrk + smcd ss"

# ---- redis ----------------------------------------------------------------
redis_port="$(free_port)"
timeout 120 "$smcd" run --stats "$work/redis.json" -- redis-server --port $redis_port --bind 127.0.0.1 \
    --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
redis_run=$!
wait_port "$redis_port" "$work/redis.log"
head -c 300000 /dev/urandom | base64 -w0 >"$work/value.txt"
timeout 30 "$smcd" run --stats "$work/cli.json" -- redis-cli -p $redis_port -x SET big <"$work/value.txt" >/dev/null
timeout 30 "$smcd" run -- redis-cli -p $redis_port --raw GET big | head -c -1 >"$work/value.got"
cmp "$work/value.txt" "$work/value.got" || smcd_die "redis-cli: the value differs"
expect_smc "redis-cli SET/GET" "$work/cli.json"
timeout 60 "$smcd" run --stats "$work/bench.json" -- redis-benchmark -p $redis_port -q -n 20000 -c 50 -t get,set \
    | tr '\r' '\n' | grep 'requests per second'
expect_smc "redis-benchmark" "$work/bench.json"
timeout 30 redis-cli -p $redis_port shutdown nosave >/dev/null 2>&1 || true
wait_gone "$redis_run"
# The plain redis-cli that shut it down is its one TCP connection.
expect_smc "redis-server" "$work/redis.json" 1
step "redis"

# ---- iperf3 -----------------------------------------------------------------
iperf_port="$(free_port)"
timeout 60 "$smcd" run --stats "$work/iperf-s.json" -- iperf3 -s -1 -p "$iperf_port" -B 127.0.0.1 \
    >"$work/iperf-s.log" 2>&1 &
pids+=($!)
iperf_run=$!
wait_port "$iperf_port" "$work/iperf-s.log"
timeout 30 "$smcd" run --stats "$work/iperf-c.json" -- iperf3 -c 127.0.0.1 -p "$iperf_port" -t 1 | grep receiver
wait_gone "$iperf_run"
expect_smc "iperf3 client" "$work/iperf-c.json"
expect_smc "iperf3 server" "$work/iperf-s.json"
step "iperf3"

# ---- socat echo -------------------------------------------------------------
socat_port="$(free_port)"
timeout 60 "$smcd" run -- socat "TCP-LISTEN:$socat_port,bind=127.0.0.1,reuseaddr" SYSTEM:cat \
    2>"$work/socat-s.log" &
pids+=($!)
socat_run=$!
wait_port "$socat_port" "$work/socat-s.log"
head -c 2000000 /dev/urandom >"$work/socat.in"
timeout 30 "$smcd" run --stats "$work/socat.json" -- socat -t 5 - "TCP:127.0.0.1:$socat_port" \
    <"$work/socat.in" >"$work/socat.out"
cmp "$work/socat.in" "$work/socat.out" || smcd_die "socat: the echo differs"
# The listener served its one connection and exits by itself.
wait_gone "$socat_run"
expect_smc "socat echo" "$work/socat.json"
step "socat"

# ---- sockperf ping-pong ---------------------------------------------------
sockperf_port="$(free_port)"
timeout 60 "$smcd" run -- sockperf sr --tcp -i 127.0.0.1 -p "$sockperf_port" >"$work/sockperf-s.log" 2>&1 &
pids+=($!)
sockperf_run=$!
wait_port "$sockperf_port" "$work/sockperf-s.log"
timeout 30 "$smcd" run --stats "$work/sockperf.json" -- sockperf pp --tcp -i 127.0.0.1 -p "$sockperf_port" -t 1 -m 14 \
    | grep 'Summary: Latency'
expect_smc "sockperf" "$work/sockperf.json"
# The server serves until it is stopped: SIGINT, which timeout passes on
# to its process group (smcd run and sockperf), as a terminal would.
kill -INT "$sockperf_run"
wait_gone "$sockperf_run"
step "sockperf"

# ---- smcd bench --apps --quick (a smoke run: every tool over TCP and under
# smcd run, every connection of the smcd side SMC-D; the figures are not judged)
timeout 150 "$smcd" bench --apps --quick --json >"$work/apps.json" \
    || { cat "$work/apps.json"; smcd_die "smcd bench --apps --quick failed"; }
if grep -q '"all_smcd":false\|"all_smcd":null' "$work/apps.json"; then
    cat "$work/apps.json"
    smcd_die "smcd bench --apps: a tool's smcd run side was not all SMC-D"
fi
smcd_log "smcd bench --apps --quick: every tool ran, all SMC-D under smcd run"
step "smcd bench --apps --quick"

for i in "${!step_names[@]}"; do
    printf '  step %-30s %4ds\n' "${step_names[$i]}" "${step_secs[$i]}" >&2
done

smcd_log "shim: every program passed"
