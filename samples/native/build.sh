#!/usr/bin/env bash
# Builds the native targets into OUT (default: artifacts/native).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../../artifacts/native}"
mkdir -p "$out"
gcc -O1 -g -pthread -o "$out/targets" "$here/targets.c"
gcc -O1 -g -pthread -no-pie -o "$out/targets-nopie" "$here/targets.c"
gcc -O1 -g -shared -fPIC -o "$out/libcalc.so" "$here/libcalc.c"
gcc -O1 -g -o "$out/uselib" "$here/uselib.c" -L"$out" -lcalc -Wl,-rpath,'$ORIGIN'
cp "$out/targets" "$out/targets-stripped" && strip "$out/targets-stripped"
gcc -O1 -g -o "$out/bench" "$here/bench.c"
gcc -O1 -g -o "$out/nested" "$here/nested.c"
gcc -O2 -g -pthread -o "$out/strings" "$here/strings.c"
gcc -O1 -g -o "$out/blocked" "$here/blocked.c"
gcc -O1 -g -pthread -o "$out/paced" "$here/paced.c"
gcc -O1 -g -pthread -o "$out/parked" "$here/parked.c"
