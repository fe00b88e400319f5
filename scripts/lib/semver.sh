# shellcheck shell=bash
# Semantic version comparison (semver.org §11), sourced by scripts/release.
# Versions are MAJOR.MINOR.PATCH[-PRE] as cmake/BuildInfo.cmake accepts them.

semver_valid() {
  [[ $1 =~ ^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.]+)?$ ]] || return 1
  local pre=${1#*-}
  [[ $1 == *-* ]] || return 0
  # Empty identifiers ("1.0.0-a..b") are not versions.
  [[ $pre != .* && $pre != *. && $pre != *..* ]]
}

# Prints -1, 0 or 1 as $1 is lower than, equal to or higher than $2.
semver_cmp() {
  local a=$1 b=$2 i LC_ALL=C # identifiers compare in ASCII order
  local a_core=${a%%-*} b_core=${b%%-*} a_pre="" b_pre=""
  [[ $a == *-* ]] && a_pre=${a#*-}
  [[ $b == *-* ]] && b_pre=${b#*-}
  local -a x y
  IFS=. read -ra x <<<"$a_core"
  IFS=. read -ra y <<<"$b_core"
  for i in 0 1 2; do
    if ((10#${x[i]} != 10#${y[i]})); then
      ((10#${x[i]} < 10#${y[i]})) && echo -1 || echo 1
      return
    fi
  done
  # A release is higher than any of its pre-releases.
  if [[ -z $a_pre || -z $b_pre ]]; then
    if [[ -z $a_pre && -z $b_pre ]]; then echo 0
    elif [[ -z $a_pre ]]; then echo 1
    else echo -1; fi
    return
  fi
  IFS=. read -ra x <<<"$a_pre"
  IFS=. read -ra y <<<"$b_pre"
  local n=${#x[@]}
  ((${#y[@]} < n)) && n=${#y[@]}
  for ((i = 0; i < n; i++)); do
    local p=${x[i]} q=${y[i]}
    [[ $p == "$q" ]] && continue
    local pn=0 qn=0
    [[ $p =~ ^[0-9]+$ ]] && pn=1
    [[ $q =~ ^[0-9]+$ ]] && qn=1
    if ((pn && qn)); then
      # Numeric identifiers compare as numbers, whatever their length.
      if ((${#p} != ${#q})); then ((${#p} < ${#q})) && echo -1 || echo 1
      else [[ $p < $q ]] && echo -1 || echo 1; fi
    elif ((pn)); then echo -1 # numeric identifiers are lower than alphanumeric ones
    elif ((qn)); then echo 1
    else [[ $p < $q ]] && echo -1 || echo 1; fi
    return
  done
  # All shared identifiers equal: the longer list is higher.
  if ((${#x[@]} == ${#y[@]})); then echo 0
  elif ((${#x[@]} < ${#y[@]})); then echo -1
  else echo 1; fi
}
