#!/usr/bin/env bash
# A CI chaos job, as one would write it in any language: start faultline
# from a config file in front of PostgreSQL and Redis, run a small
# workload through it, toggle faults with the CLI and with curl, follow
# the event stream, and fail the job on a testkit-style check.
#
#   examples/ci-chaos/run.sh            # needs psql, redis-cli, curl
#
# Environment: FAULTLINE (the binary; default: go build it), REDIS_ADDR
# (default 127.0.0.1:6379), PGUSER (default postgres; database test),
# EXPECT_RESETS (how many resets the check wants to see; default 1).
# It prints PASS and exits 0, or prints what failed and exits 1.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
fl="${FAULTLINE:-}"
if [ -z "$fl" ]; then
	fl="$work/faultline"
	(cd "$here/../.." && go build -o "$fl" ./cmd/faultline)
fi
export REDIS_ADDR="${REDIS_ADDR:-127.0.0.1:6379}"
export PGUSER="${PGUSER:-postgres}"
expect_resets="${EXPECT_RESETS:-1}"

pids=()
cleanup() {
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do # the follower, then faultline
		kill "${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# 1. Start faultline from the config file; read the addresses it prints.
sed "s/\${REDIS_ADDR}/$REDIS_ADDR/" "$here/faultline.yaml" > "$work/faultline.yaml"
"$fl" run --config "$work/faultline.yaml" > "$work/out" 2> "$work/err" &
pids+=($!)
for _ in $(seq 100); do grep -q '^control listening on ' "$work/out" && break; sleep 0.1; done
export FAULTLINE_URL="$(sed -n 's/^control listening on //p' "$work/out")"
[ -n "$FAULTLINE_URL" ] || fail "faultline did not start: $(cat "$work/err")"
addr() { sed -n "s/^proxy $1 listening on \([^ ]*\) -> .*/\1/p" "$work/out"; }
db="$(addr db)" cache="$(addr cache)"
echo "faultline at $FAULTLINE_URL: db on $db, cache on $cache"

# 2. Follow the event stream for the whole job.
"$fl" events --kind fault-fired,closed > "$work/events" &
pids+=($!)
sleep 0.5

query() { psql -h "${db%:*}" -p "${db#*:}" -d test -tAc "$1"; }
cache() { redis-cli -h "${cache%:*}" -p "${cache#*:}" "$@"; }
ms() { date +%s%3N; }

# 3. The workload, before any fault.
[ "$(query 'SELECT 40 + 2')" = 42 ] || fail "query through faultline"
[ "$(cache SET faultline-ci-chaos:k v)" = OK ] || fail "SET through faultline"

# 4. Slow database replies, with the CLI: the query still answers, later.
"$fl" fault add db --name slow --kind latency --delay 300ms --dir down
start=$(ms)
[ "$(query 'SELECT 1')" = 1 ] || fail "query under latency"
took=$(( $(ms) - start ))
[ "$took" -ge 300 ] || fail "a query under 300ms latency took ${took}ms"
"$fl" fault rm db slow
echo "query under latency: ${took}ms"

# 5. Reset the next cache connection, with curl: the workload, which
#    retries a failed command twice as a service would, must still get
#    its answer.
curl -sf -X POST "$FAULTLINE_URL/api/v1/proxies/cache/faults" \
	-d '{"name":"rst","kind":"reset","side":"client","target":{"which":"new","count":1}}' > /dev/null
got=
for _ in 1 2 3; do
	got="$(cache GET faultline-ci-chaos:k 2>&1)" && [ "$got" = v ] && break
	echo "GET failed ($got); retrying"
done
[ "$got" = v ] || fail "GET under a reset: $got"
curl -sf -X DELETE "$FAULTLINE_URL/api/v1/proxies/cache/faults/rst" > /dev/null
cache DEL faultline-ci-chaos:k > /dev/null

# 6. The checks, as the testkit's: the fault fired as often as expected,
#    and no connection is left open.
sleep 0.5
resets=$(grep -c '"kind":"fault-fired".*"fault":"rst"' "$work/events" || true)
[ "$resets" -eq "$expect_resets" ] || fail "the reset fired $resets times, want $expect_resets"
for p in db cache; do
	open=$("$fl" conns "$p" | tail -n +2 | wc -l)
	[ "$open" -eq 0 ] || fail "$open connections of $p left open: $("$fl" conns "$p")"
done
echo PASS
