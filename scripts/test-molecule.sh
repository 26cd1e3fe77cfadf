#!/usr/bin/env bash
# Run Molecule scenarios in parallel lanes, each lane one scenario after the other, and print the
# time of each. Most of a scenario's time is waiting (apt, pip, systemd, health checks, bounded load
# runs), so two lanes on a 2-core machine finish in a little more than half the time of one; the
# scenarios' timeouts are sized for a loaded machine.
#
#   scripts/test-molecule.sh TIMES_FILE "lane1-scenario lane1-scenario..." "lane2-scenario..." ...
#
# A scenario is NAME or NAME@DISTRO (e.g. smoke@11; default: MOLECULE_DISTRO). Each writes its
# output to .test-logs/NAME-DISTRO.log; the output of a failed one is printed at the end, and the
# script fails when any failed. Scenarios in different lanes must not share container names.
set -euo pipefail

times_file=$1
shift
logs=.test-logs
mkdir -p "$logs"

run_lane() {
    local entry scenario distro log started status
    for entry in $1; do
        scenario=${entry%@*}
        distro=${MOLECULE_DISTRO:-12}
        [[ $entry == *@* ]] && distro=${entry#*@}
        log="$logs/$scenario-$distro.log"
        echo "==> molecule test -s $scenario (Debian $distro): started, output in $log"
        started=$(date +%s)
        status=passed
        MOLECULE_DISTRO=$distro molecule test -s "$scenario" >"$log" 2>&1 || status=FAILED
        echo "$(($(date +%s) - started)) s  molecule $scenario (Debian $distro) $status" | tee -a "$times_file"
        [[ $status == passed ]] || echo "$log" >>"$logs/failed"
    done
}

rm -f "$logs/failed"
for lane in "$@"; do
    run_lane "$lane" &
done
wait

if [[ -s $logs/failed ]]; then
    while read -r log; do
        echo "==> $log"
        cat "$log"
    done <"$logs/failed"
    echo "==> failed: $(tr '\n' ' ' <"$logs/failed")"
    exit 1
fi
