#!/usr/bin/env bash
# Set up mlee in ./.venv on a fresh Debian/Ubuntu machine.
#   scripts/setup.sh          mlee with the PyTorch extra (enough for the main job)
#   scripts/setup.sh --test   everything the test suite needs: all extras, pytest, and the Debian tools
#                             poppler-utils (pdftotext/pdftoppm), zbar-tools (zbarimg), chromium,
#                             chromium-driver (the report's browser tests, through Selenium),
#                             fonts-dejavu-core (labels in Cyrillic and Arabic), and munge, slurmctld, slurmd,
#                             slurm-client (the `cluster` test starts a one-node SLURM with scripts/slurm_local.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
extras="torch,data"
if [ "$mode" = "--test" ]; then
  extras="all,test"
  need=()
  command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
  command -v zbarimg >/dev/null 2>&1 || need+=(zbar-tools)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
  [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
  for pair in munged:munge slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client; do
    PATH=$PATH:/usr/sbin:/sbin command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
  done
  if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[$extras]"
echo "mlee installed in .venv ($(.venv/bin/mlee --version))" >&2
