# Sourced by demo.sh and test.sh: makes sure Debian's packages that the build needs are present,
# installing them when run as root, or naming exactly what is missing otherwise.
# Usage: ensure_packages pkg...
ensure_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing packages: ${missing[*]}" >&2
    echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
}

QSDPA_BUILD_PACKAGES=(cmake g++ make libcli11-dev libfmt-dev nlohmann-json3-dev)
QSDPA_TEST_PACKAGES=(libgtest-dev)
