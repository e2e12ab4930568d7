# bash completion for hoist(1): the verbs and sub-verbs, each one's options,
# the arguments of the options that take a file, a directory, an image or one
# of a few words, and image locations: oci:DIR (directories; a layout is one
# holding an index.json) and, after oci:DIR:, the tags of that layout.
#
# The tables below (_hoist_words, _hoist_opts, _hoist_args, _hoist_images,
# keyed by the command's name: "hoist", "hoist bundle verify") are made at build time from
# the built hoist's --help by scripts/hoist_help.py; this file as it stands
# in the source tree has none. Installed as
# $datadir/bash-completion/completions/hoist.

# @HOIST_COMMANDS@

# The tags of layout $2, as `$1 ls` lists them (a header line, then one
# entry a line, its tag first).
_hoist_tags() {
    "$1" ls "oci:$2" 2>/dev/null | awk 'NR > 1 && $1 != "<none>" { print $1 }'
}

# Adds to COMPREPLY the image locations that complete $2, for hoist binary
# $1: "oci:" itself, then oci:DIR (a layout) or oci:DIR/ (a directory to go
# into), then, after oci:DIR:, that layout's tags.
_hoist_image() {
    local hoist=$1 cur=$2 rest d tag
    if [[ $cur != oci:* ]]; then
        if [[ oci: == "$cur"* ]]; then
            COMPREPLY+=(oci:)
            compopt -o nospace 2>/dev/null
        fi
        return
    fi
    rest=${cur#oci:}
    if [[ $rest == *:* ]]; then
        d=${rest%:*}
        while IFS= read -r tag; do
            [[ $tag == "${rest##*:}"* ]] && COMPREPLY+=("oci:$d:$tag")
        done < <(_hoist_tags "$hoist" "$d")
        return
    fi
    while IFS= read -r d; do
        if [[ -f $d/index.json ]]; then
            COMPREPLY+=("oci:$d")
        else
            COMPREPLY+=("oci:${d%/}/")
        fi
    done < <(compgen -d -- "$rest")
    compopt -o nospace 2>/dev/null
}

_hoist() {
    local cur prev words cword split
    _init_completion -s -n : || return

    # The command: the words that name a command of its own (`bundle
    # verify`); options and their arguments skipped, and the first other
    # word the first operand.
    local hoist=${words[0]} node=hoist i w key kind a
    local -a operands=()
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        if [[ $w == -* ]]; then
            [[ $w != *=* && " ${_hoist_args[$node]} " == *" $w="* ]] && ((i++))
            continue
        fi
        key="$node $w"
        if ((${#operands[@]} == 0)) && [[ -v _hoist_opts[$key] ]]; then
            node=$key
        else
            operands+=("$w")
        fi
    done

    # The argument of an option (`--authfile F`, `--tls-verify=t`).
    if [[ $prev == -* ]]; then
        for a in ${_hoist_args[$node]}; do
            [[ ${a%%=*} == "$prev" ]] && kind=${a#*=}
        done
    fi
    if [[ -n $kind ]]; then
        case $kind in
        file) _filedir ;;
        dir) _filedir -d ;;
        image)
            _hoist_image "$hoist" "$cur"
            __ltrim_colon_completions "$cur"
            ;;
        choice:*)
            a=${kind#choice:}
            COMPREPLY=($(compgen -W "${a//|/ }" -- "$cur"))
            ;;
        esac
        return
    fi
    [[ $split == true ]] && return

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "${_hoist_opts[$node]}" -- "$cur"))
        return
    fi
    # A sub-verb, or the word a command takes first (layer create, service
    # token add, service images list-catalogs).
    if ((${#operands[@]} == 0)) && [[ -n ${_hoist_words[$node]} ]]; then
        COMPREPLY=($(compgen -W "${_hoist_words[$node]}" -- "$cur"))
        return
    fi
    if [[ -n ${_hoist_images[$node]} ]]; then
        _hoist_image "$hoist" "$cur"
        [[ $cur == oci:* ]] || _filedir
        __ltrim_colon_completions "$cur"
    else
        _filedir
    fi
}
complete -F _hoist hoist
