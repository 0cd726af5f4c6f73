# Host names for the tn tools that take an SSH host (tn-exec, tn-forward, tn-keysetup), found the way
# bash-completion's ssh completion finds them: Host aliases without patterns from ~/.ssh/config and
# the files it Includes, and the plain (not hashed) names of ~/.ssh/known_hosts, known_hosts2 and the
# UserKnownHostsFile files the config names. Sourced by those tools' completion files; not a command.
#                                                                  -*- shell-script -*-

# Prints $1 and, depth first, the readable files its Include lines name (relative names are under
# ~/.ssh, globs expand as ssh expands them); 16 levels at most, as ssh allows, so a loop ends.
_tn_ssh_config_files() {
    local file=$1 depth=${2:-0} inc path
    [[ -f $file && -r $file ]] || return 0
    printf '%s\n' "$file"
    ((depth < 16)) || return 0
    while IFS= read -r inc; do
        [[ $inc == "~/"* ]] && inc=$HOME/${inc#"~/"}
        [[ $inc == /* ]] || inc=$HOME/.ssh/$inc
        for path in $inc; do  # unquoted on purpose: the glob expands
            _tn_ssh_config_files "$path" $((depth + 1))
        done
    done < <(awk '{ line = $0; sub(/^[ \t]+/, "", line) }
        tolower(line) ~ /^include([ \t]*=|[ \t])/ {
            sub(/^[^ \t=]+[ \t]*=?[ \t]*/, "", line); n = split(line, a, /[ \t]+/)
            for (i = 1; i <= n; i++) if (a[i] != "") print a[i] }' "$file" 2>/dev/null)
}

_tn_ssh_hosts() {
    local -a configs known=()
    local f
    mapfile -t configs < <(_tn_ssh_config_files "$HOME/.ssh/config")
    if ((${#configs[@]})); then
        # Host lines: every name without a pattern character (* ? !), as ssh's own completion offers.
        awk '{ line = $0; sub(/^[ \t]+/, "", line) }
            tolower(line) ~ /^host([ \t]*=|[ \t])/ {
                sub(/^[^ \t=]+[ \t]*=?[ \t]*/, "", line); n = split(line, a, /[ \t]+/)
                for (i = 1; i <= n; i++) if (a[i] != "" && a[i] !~ /[*?!]/) print a[i] }' "${configs[@]}" 2>/dev/null
        while IFS= read -r f; do
            [[ $f == "~/"* ]] && f=$HOME/${f#"~/"}
            known+=("$f")
        done < <(awk '{ line = $0; sub(/^[ \t]+/, "", line) }
            tolower(line) ~ /^userknownhostsfile([ \t]*=|[ \t])/ {
                sub(/^[^ \t=]+[ \t]*=?[ \t]*/, "", line); n = split(line, a, /[ \t]+/)
                for (i = 1; i <= n; i++) if (a[i] != "" && a[i] != "none") print a[i] }' "${configs[@]}" 2>/dev/null)
    fi
    known+=("$HOME/.ssh/known_hosts" "$HOME/.ssh/known_hosts2")
    for f in "${known[@]}"; do
        [[ -f $f && -r $f ]] || continue
        # First field, comma-separated names; [name]:port is the name. Hashed entries (|1|...) and
        # @cert-authority/@revoked lines name no host to offer.
        awk '$1 ~ /^(#|@|\|)/ || NF < 2 { next }
            { n = split($1, a, ",")
              for (i = 1; i <= n; i++) {
                  h = a[i]
                  if (h ~ /^\[/) { sub(/^\[/, "", h); sub(/\](:[0-9]+)?$/, "", h) }
                  if (h != "" && h !~ /[*?!]/) print h } }' "$f" 2>/dev/null
    done
}

# COMPREPLY from the hosts for the word being completed, keeping a user@ prefix.
_tn_ssh_complete_host() {
    local cur=$1 user=
    if [[ $cur == *@* ]]; then
        user=${cur%%@*}@
        cur=${cur#*@}
    fi
    local IFS=$'\n'
    COMPREPLY=($(compgen -P "$user" -W "$(_tn_ssh_hosts | sort -u)" -- "$cur"))
}
