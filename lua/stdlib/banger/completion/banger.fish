# fish completion for banger (printed by `banger completion fish`).
# Load it with:  banger completion fish | source
# or install it: banger completion fish > ~/.config/fish/completions/banger.fish
# Each Tab asks banger itself (`banger __complete -- WORDS`), so project and
# user recipes and VM, image, kernel and snapshot names are always current.
function __banger_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l bin (string replace -r '^~/' "$HOME/" -- $tokens[1])
    command -q $bin; or return
    for line in ($bin __complete -- $tokens[2..-1] "$cur" 2>/dev/null)
        switch $line
            case :file
                __fish_complete_path "$cur"
                return
            case :directory
                __fish_complete_directories "$cur"
                return
            case '*'
                echo $line
        end
    end
end
complete -c banger -f -a '(__banger_complete)'
