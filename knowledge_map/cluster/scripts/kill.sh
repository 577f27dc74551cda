# Cancel the jobs in the folders given, started or not: leave the `cancelled`
# marker (a job not yet started then never runs), wait up to 10 s for a starting
# job's process group, then send it SIGTERM and, two seconds later, SIGKILL.
# Arguments: JOB_DIR...
for d in "$@"; do
  ( mkdir -p "$d" && touch "$d/cancelled"
    for i in $(seq 50); do [ -s "$d/pgid" ] && break; sleep 0.2; done
    g=$(cat "$d/pgid" 2>/dev/null); [ -n "$g" ] || exit 0
    kill -TERM -- -"$g" 2>/dev/null; sleep 2; kill -KILL -- -"$g" 2>/dev/null ) &
done
wait
true
