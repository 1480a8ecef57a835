#!/usr/bin/env bash
# Builds the Shop sample (ASP.NET Core in three projects, probes on DI-registered implementations
# called through their interfaces from other projects) and the CLI, then runs Shop under
# `probegen trace` in launch mode: every probe hit from startup, streamed live over the diagnostics
# IPC. Shop sends itself a bounded number of real HTTP requests and stops, so the trace ends by
# itself with its summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build samples/Shop/Shop.Web -v quiet -nologo
dotnet build runtime/ProbeGen.Cli -v quiet -nologo
exec dotnet artifacts/bin/ProbeGen.Cli/debug/probegen.dll trace 'orders:*' 'payments:*' 'pricing:*' 'data:*' "$@" \
  -- dotnet artifacts/bin/Shop.Web/debug/Shop.Web.dll --requests 20
