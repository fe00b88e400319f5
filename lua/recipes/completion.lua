-- banger completion SHELL: the shell completion script (banger.complete).
return {
  summary = "print the shell completion script (bash, zsh or fish)",
  description = "The script asks banger at each Tab, so commands (with your and trusted project recipes),\n"
    .. "flags and VM, image, kernel and snapshot names are always current. Install:\n"
    .. "  bash: source <(banger completion bash)   (in ~/.bashrc), or\n"
    .. "        banger completion bash > ~/.local/share/bash-completion/completions/banger\n"
    .. "  zsh:  source <(banger completion zsh)    (in ~/.zshrc, after compinit), or\n"
    .. "        banger completion zsh > \"${fpath[1]}/_banger\"\n"
    .. "  fish: banger completion fish > ~/.config/fish/completions/banger.fish",
  needs_config = false,
  args = { { "shell", required = true, choices = banger.complete.shells, help = "bash, zsh or fish" } },
  run = function(opts)
    local known = false
    for _, s in ipairs(banger.complete.shells) do
      known = known or s == opts.shell
    end
    if not known then
      banger.errors.usage("unknown shell '" .. opts.shell .. "': one of " .. table.concat(banger.complete.shells, ", "),
        "completion")
    end
    io.stdout:write(banger.complete.script(opts.shell))
  end,
}
