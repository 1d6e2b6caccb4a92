#!/usr/bin/env bash
# After `docker compose up -d`: wait until the stack's orchestrator has accepted its study (its
# `study NAME: ...` line) or refused it (it exited). A refusal (an unknown experiment, a bad
# override) is then `make up`'s own error, not a line found later in `docker compose logs`.
#
#   scripts/await-study.sh SINCE [SECONDS]   SINCE: the Unix time of `up` (an orchestrator that
#                                            only restarted keeps its earlier runs' lines)
#   exit 0: accepted, or still deciding at the deadline; 1: refused
set -u
since=$1 wait_s=${2:-60}
deadline=$((SECONDS + wait_s))
while ((SECONDS < deadline)); do
  # Compose starts each line with an erase-line code (ESC [2K), even into a pipe: drop it.
  logs=$(docker compose logs --since "$since" --no-log-prefix orchestrator 2>/dev/null |
    sed $'s/\e\\[[0-9;]*[A-Za-z]//g')
  if grep -q '^study ' <<<"$logs"; then
    exit 0
  fi
  read -r state code < <(docker compose ps -a --format '{{.State}} {{.ExitCode}}' orchestrator)
  if [ "${state:-}" = exited ]; then
    if [ "${code:-1}" = 0 ]; then exit 0; fi
    tail -n 5 <<<"$logs" >&2
    echo "the orchestrator refused its study (exit $code); fix it and run \`make up\` again" >&2
    exit 1
  fi
  sleep 0.5
done
echo "the orchestrator has not started its study after $wait_s s: docker compose logs orchestrator" >&2
