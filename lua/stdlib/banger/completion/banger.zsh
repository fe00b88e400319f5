#compdef banger
# zsh completion for banger (printed by `banger completion zsh`).
# Load it with:  source <(banger completion zsh)   (after compinit)
# or install it: banger completion zsh > "${fpath[1]}/_banger"
# Each Tab asks banger itself (`banger __complete -- WORDS`), so project and
# user recipes and VM, image, kernel and snapshot names are always current.
_banger() {
  local bin=${~words[1]} line
  local -a lines specs
  lines=("${(@f)$("$bin" __complete -- "${(@)words[2,CURRENT]}" 2>/dev/null)}")
  for line in "${lines[@]}"; do
    case $line in
      :file) _files; return ;;
      :directory) _files -/; return ;;
      '') ;;
      *$'\t'*) specs+=("${${line%%$'\t'*}//:/\\:}:${line#*$'\t'}") ;;
      *) specs+=("${line//:/\\:}") ;;
    esac
  done
  (( ${#specs} )) || return 1
  _describe -t values banger specs
}
if [[ $funcstack[1] == _banger ]]; then
  _banger "$@"
else
  compdef _banger banger
fi
