# Sourced by the build scripts. timing_record PHASE STATE appends a row
# (phase, seconds since the script started, state) to $KUBEPLAY_TIMINGS
# when it is set: the run's timing table (package test/timing) reads it.
timing_record() {
  [ -n "${KUBEPLAY_TIMINGS:-}" ] || return 0
  printf '%s\t%s\t%s\n' "$1" "$SECONDS" "$2" >> "$KUBEPLAY_TIMINGS"
}
