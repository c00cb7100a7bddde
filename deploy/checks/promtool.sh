#!/usr/bin/env bash
# Checks Tally's Prometheus files with promtool (Debian package "prometheus"), when it is
# installed: the alert rules, their unit tests, and the compose Prometheus configuration.
# Without promtool it says so and exits 0 (go test in deploy/checks parses the rules too).
#
#   bash deploy/checks/promtool.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v promtool >/dev/null 2>&1; then
  echo "promtool not installed (apt-get install -y prometheus): skipping the promtool checks"
  exit 0
fi
promtool --version 2>&1 | head -n 1
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml
promtool check config deploy/prometheus/prometheus.yml
