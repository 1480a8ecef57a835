#!/usr/bin/env bash
# Builds the sample and the CLI, then runs OrderService under `probegen trace` in launch mode:
# every probe hit from the first instruction, streamed live over the diagnostics IPC. The sample
# takes a bounded number of orders, so the trace ends by itself with its summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build samples/OrderService -v quiet -nologo
dotnet build runtime/ProbeGen.Cli -v quiet -nologo
exec dotnet artifacts/bin/ProbeGen.Cli/debug/probegen.dll trace 'orders:*' 'payments:*' "$@" \
  -- dotnet artifacts/bin/OrderService/debug/OrderService.dll --quiet --orders 40
