#!/bin/sh
# Runs every fuzz target of Gantry, one at a time, each for a set number of
# executions (`make fuzz`). The budget is a count, never a duration: a
# duration (-fuzztime 90s) trips a timing bug of Go 1.26's fuzz coordinator.
#
#   FUZZ_EXECS   executions per target (default 20000)
#   FUZZ_ONLY    a grep -E pattern: run only targets whose "dir Name" matches
#   GO           the go command (default go)
#
# A target that fails leaves its crasher under its package's
# testdata/fuzz/<Name>/, which `go test` then runs as a regression case. The
# script goes on with the other targets and exits non-zero at the end when
# any failed, listing them.
set -eu

cd "$(dirname "$0")/.."
execs=${FUZZ_EXECS:-20000}
only=${FUZZ_ONLY:-}
gocmd=${GO:-go}

case $execs in
'' | *[!0-9]*)
	echo "FUZZ_EXECS must be a whole number of executions, not \"$execs\"" >&2
	exit 2
	;;
esac

# "dir Name" for each fuzz target, from the test files that declare them.
targets=$(grep -rE --include='*_test.go' -o '^func Fuzz[A-Za-z0-9_]*' . |
	sed -E 's|^\./(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)$|\1 \2|; s|^\./[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)$|. \1|' |
	sort -u)
if [ -n "$only" ]; then
	targets=$(printf '%s\n' "$targets" | grep -E "$only" || true)
fi
if [ -z "$targets" ]; then
	echo "no fuzz targets found" >&2
	exit 2
fi

total=$(printf '%s\n' "$targets" | wc -l | tr -d ' ')
n=0
failed=""
printf '%s\n' "$targets" | {
	while read -r dir name; do
		n=$((n + 1))
		echo "== [$n/$total] $name in ./$dir, $execs executions"
		if ! "$gocmd" test -run '^$' -fuzz "^${name}\$" -fuzztime "${execs}x" "./$dir"; then
			failed="$failed ./$dir:$name"
		fi
	done
	if [ -n "$failed" ]; then
		echo "fuzz targets that failed:$failed" >&2
		exit 1
	fi
	echo "all $total fuzz targets ran $execs executions each without a failure"
}
