#!/usr/bin/env bash
# The system packages the course uses, installed where this script can (root with apt-get);
# elsewhere it says how, and the tests that need a missing one skip with one line saying so.
#   bubblewrap  sandbox for graded code (course grade)
#   chromium    browser tests of JupyterLab and Formgrader
#   postgresql  the shared-gradebook tests (tests/test_cluster.py start a throwaway server)
#   dataset-fashion-mnist  the real Fashion-MNIST (course.data, tests/test_data.py)
set -u
declare -A needs=([bubblewrap]=bwrap [chromium]=chromium [postgresql]=initdb)
missing=()
for pkg in "${!needs[@]}"; do
  found=$(command -v "${needs[$pkg]}" 2>/dev/null || ls /usr/lib/postgresql/*/bin/"${needs[$pkg]}" 2>/dev/null | head -1)
  [ -n "$found" ] || missing+=("$pkg")
done
[ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || missing+=(dataset-fashion-mnist)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${missing[*]}"
  if apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; then
    exit 0
  fi
  echo "could not install ${missing[*]} with apt-get; the tests that need them will be skipped"
else
  echo "optional system packages missing: ${missing[*]}"
  echo "  Debian/Ubuntu: sudo apt-get install ${missing[*]}   (Fedora: sudo dnf install ${missing[*]})"
  echo "  without them the tests that need them are skipped."
fi
exit 0
