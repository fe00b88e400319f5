# bash completion for banger (printed by `banger completion bash`).
# Load it with:  source <(banger completion bash)
# or install it: banger completion bash > ~/.local/share/bash-completion/completions/banger
# Each Tab asks banger itself (`banger __complete -- WORDS`), so project and
# user recipes and VM, image, kernel and snapshot names are always current.
_banger() {
  local words=() i w cur prefix line cand out bin=${COMP_WORDS[0]}
  [[ $bin == "~/"* ]] && bin=$HOME/${bin#"~/"}
  # Readline splits --flag=value at '=' (COMP_WORDBREAKS): join it back.
  for ((i = 1; i <= COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    if ((i > 1 && ${#words[@]} > 0)) && [[ $w == = || ${COMP_WORDS[i - 1]} == = ]]; then
      words[${#words[@]} - 1]+=$w
    else
      words+=("$w")
    fi
  done
  ((${#words[@]} > 0)) || words=("")
  cur=${words[${#words[@]} - 1]}
  # Readline replaces only its own current word: drop what lies before it.
  prefix=${cur%"${COMP_WORDS[COMP_CWORD]}"}
  out=$("$bin" __complete -- "${words[@]}" 2>/dev/null) || return 0
  COMPREPLY=()
  while IFS= read -r line; do
    case $line in
      :file)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return 0
        ;;
      :directory)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
        return 0
        ;;
      "") ;;
      *)
        cand=${line%%$'\t'*}
        COMPREPLY+=("${cand#"$prefix"}")
        ;;
    esac
  done <<<"$out"
  return 0
}
complete -F _banger banger
