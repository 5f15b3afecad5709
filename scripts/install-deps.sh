#!/usr/bin/env bash
# Installs the Debian (bookworm) packages popcode needs, skipping those already installed.
#   scripts/install-deps.sh          build and run
#   scripts/install-deps.sh --test   also what the test suite needs (GoogleTest, NumPy/h5py peers, Slurm)
set -euo pipefail
packages=(build-essential cmake pkg-config git
          libopenmpi-dev openmpi-bin petsc-dev slepc-dev libhdf5-openmpi-dev hdf5-tools
          libopenblas0-pthread liblapack-dev libcli11-dev libtomlplusplus-dev libfmt-dev librandom123-dev libmatio-dev libzip-dev zlib1g-dev
          libtorch-dev)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(libgtest-dev libgmock-dev python3-numpy python3-scipy python3-sklearn python3-h5py slurm-wlm munge procps clang libclang-rt-14-dev)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
  echo "install-deps: missing packages (install them as root, or see README 'Cluster build'): ${missing[*]}" >&2
  exit 2
fi
echo "install-deps: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
