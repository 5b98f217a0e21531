# bash completion for switchboard-cli (and switchboard, switchboard-bench flags).
#   source scripts/switchboard-completion.bash      # or: cmake --install puts it where bash-completion looks
# Completes commands, their subcommands and flags; channel names are not completed (they live in the broker).

_switchboard_cli() {
  local cur prev words cword
  if declare -F _init_completion >/dev/null; then
    _init_completion || return
  else
    cur="${COMP_WORDS[COMP_CWORD]}"; prev="${COMP_WORDS[COMP_CWORD-1]}"; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD
  fi
  local global="--url --admin-url --token --connect-timeout --help --version"
  local commands="pub sub tail channels subscriptions history dead-letters"
  local command="" i
  for ((i = 1; i < cword; i++)); do
    case "${words[i]}" in
      --url|--admin-url|--token|--connect-timeout) ((i++)) ;;
      -*) ;;
      *) command="${words[i]}"; break ;;
    esac
  done
  case "$prev" in
    --url|--admin-url|--token|--connect-timeout|--count|-n|--timeout|-t|--durable|--from-seq|--limit) return ;;
    --ack) COMPREPLY=($(compgen -W "none at_least_once" -- "$cur")); return ;;
    --start) COMPREPLY=($(compgen -W "new all seq: time:" -- "$cur")); return ;;
  esac
  if [ -z "$command" ]; then
    COMPREPLY=($(compgen -W "$global $commands" -- "$cur"))
    return
  fi
  case "$command" in
    pub) COMPREPLY=($(compgen -W "--count --help" -- "$cur")) ;;
    sub) COMPREPLY=($(compgen -W "--count --timeout --durable --ack --start --help" -- "$cur")) ;;
    tail) COMPREPLY=($(compgen -W "--count --filter --help" -- "$cur")) ;;
    channels) COMPREPLY=($(compgen -W "list get put patch delete --help" -- "$cur")) ;;
    subscriptions) COMPREPLY=($(compgen -W "list get create delete --help" -- "$cur")) ;;
    history) COMPREPLY=($(compgen -W "--from-seq --limit --help" -- "$cur")) ;;
    dead-letters) COMPREPLY=($(compgen -W "list redrive --help" -- "$cur")) ;;
  esac
}
complete -F _switchboard_cli switchboard-cli

_switchboard_broker() {
  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
  case "$prev" in
    --config|--check-config|--data-dir) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --log-level) COMPREPLY=($(compgen -W "trace debug info warn error off" -- "$cur")); return ;;
    --log-format) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
    --slow-consumer) COMPREPLY=($(compgen -W "disconnect drop_oldest" -- "$cur")); return ;;
  esac
  # The flags are the broker's own list (--help), so they never drift from the code.
  local flags
  flags=$("${COMP_WORDS[0]}" --help 2>/dev/null | grep -oE -- '--[a-z][a-z-]*' | sort -u)
  COMPREPLY=($(compgen -W "$flags" -- "$cur"))
}
complete -F _switchboard_broker switchboard
