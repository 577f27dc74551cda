# Print a job's state: its exit record (one JSON line), `running` (it holds its
# alive.lock) or `dead`; then, if the job started, an empty line and started.json.
# Arguments: JOB_DIR
cd "$1" 2>/dev/null || { echo dead; exit 0; }
if [ -e exitcode ]; then cat exitcode
elif flock -n alive.lock true; then if [ -e exitcode ]; then cat exitcode; else echo dead; fi
else echo running; fi
[ -e started.json ] && { echo; cat started.json; }
true
