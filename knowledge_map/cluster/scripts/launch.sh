# Link a job's staged files into its folder and start it detached under its GPU lock
# (knowledge_map.cluster.gpu_slots); the jobscript comes on stdin.
# Arguments: JOB_DIR PYTHON PYTHONPATH SLOTS_DIR N_GPUS GPUS HOST COLLECT N_LINKS
#            [SOURCE TARGET]... (N_LINKS pairs) [DIR_TO_CREATE]...
# COLLECT is empty when the job's outputs need not be listed (shared filesystem).
# Returns once the job holds its alive.lock (started.json exists), so a status
# check never mistakes a starting job for a dead one.
set -e
job_dir=$1 python=$2 pythonpath=$3 slots_dir=$4 n_gpus=$5 gpus=$6 host=$7 collect=$8 n_links=$9
shift 9
mkdir -p "$job_dir"
cat > "$job_dir/jobscript.sh"
while [ "$n_links" -gt 0 ]; do
  src=$1 target=$2
  shift 2
  if [ -d "$src" ]; then mkdir -p "$target" && cp -al "$src/." "$target/";
  else mkdir -p "$(dirname "$target")" && ln -f "$src" "$target"; fi
  n_links=$((n_links - 1))
done
for dir in "$@"; do mkdir -p "$dir"; done
touch "$job_dir/staged"
if [ -n "$collect" ]; then set -- --collect "$collect"; else set --; fi
PYTHONPATH=$pythonpath setsid nohup "$python" -m knowledge_map.cluster.gpu_slots --job-dir "$job_dir" \
  --slots-dir "$slots_dir" --n-gpus "$n_gpus" --gpus "$gpus" --host "$host" "$@" \
  -- sh "$job_dir/jobscript.sh" > "$job_dir/job.out" 2>&1 < /dev/null &
for i in $(seq 600); do [ -e "$job_dir/started.json" ] && exit 0; sleep 0.1; done
echo "job did not start; see $job_dir/job.out" >&2
exit 1
