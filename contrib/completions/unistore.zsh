#compdef unistore

autoload -U is-at-least

_unistore() {
    typeset -A opt_args
    typeset -a _arguments_options
    local ret=1

    if is-at-least 5.2; then
        _arguments_options=(-s -S -C)
    else
        _arguments_options=(-s -C)
    fi

    local context curcontext="$curcontext" state line
    _arguments "${_arguments_options[@]}" : \
'--store=[Store directory]:STORE:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_unistore_commands" \
"*::: :->unistore" \
&& ret=0
    case $state in
    (unistore)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:unistore-command-$line[1]:"
        case $line[1] in
            (init)
_arguments "${_arguments_options[@]}" : \
'--store=[Store directory]:STORE:_files' \
'--json[Print the result as JSON]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(import)
_arguments "${_arguments_options[@]}" : \
'*-n+[Name to give the image (repeatable); defaults to the names in the source]:NAMES:_default' \
'*--name=[Name to give the image (repeatable); defaults to the names in the source]:NAMES:_default' \
'--authfile=[Credentials file as \`podman login\` writes it (default\: \$REGISTRY_AUTH_FILE, then podman'\''s and docker'\''s)]:AUTHFILE:_files' \
'--creds=[USERNAME\:PASSWORD for the registry]:CREDS:_default' \
'--tls-verify=[Require HTTPS with verified certificates (\`--tls-verify=false\` allows plain HTTP); default\: registries.conf'\''s \`insecure\`]::TLS_VERIFY:(true false)' \
'--platform=[Platform to pick from a multi-platform image\: OS/ARCH\[/VARIANT\] (default\: this host'\''s)]:PLATFORM:_default' \
'--registries-conf=[registries.conf to use instead of the system'\''s (mirrors, insecure, blocked, aliases)]:REGISTRIES_CONF:_files' \
'--progress=[Progress\: bar, json or none]:PROGRESS:((bar\:"Bars per layer on stderr when it is a terminal"
json\:"One JSON event per line on stdout, the last one \`{"event"\:"done",...}\`"
none\:"Nothing"))' \
'--store=[Store directory]:STORE:_files' \
'-q[No progress bars]' \
'--quiet[No progress bars]' \
'--json[Print the result as JSON]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
':src -- Source, in containers-transports(5) syntax:_default' \
&& ret=0
;;
(pull)
_arguments "${_arguments_options[@]}" : \
'*-n+[Name to give the image (repeatable); defaults to the reference]:NAMES:_default' \
'*--name=[Name to give the image (repeatable); defaults to the reference]:NAMES:_default' \
'--authfile=[Credentials file as \`podman login\` writes it (default\: \$REGISTRY_AUTH_FILE, then podman'\''s and docker'\''s)]:AUTHFILE:_files' \
'--creds=[USERNAME\:PASSWORD for the registry]:CREDS:_default' \
'--tls-verify=[Require HTTPS with verified certificates (\`--tls-verify=false\` allows plain HTTP); default\: registries.conf'\''s \`insecure\`]::TLS_VERIFY:(true false)' \
'--platform=[Platform to pick from a multi-platform image\: OS/ARCH\[/VARIANT\] (default\: this host'\''s)]:PLATFORM:_default' \
'--registries-conf=[registries.conf to use instead of the system'\''s (mirrors, insecure, blocked, aliases)]:REGISTRIES_CONF:_files' \
'--progress=[Progress\: bar, json or none]:PROGRESS:((bar\:"Bars per layer on stderr when it is a terminal"
json\:"One JSON event per line on stdout, the last one \`{"event"\:"done",...}\`"
none\:"Nothing"))' \
'--store=[Store directory]:STORE:_files' \
'-q[No progress output (same as --progress=none)]' \
'--quiet[No progress output (same as --progress=none)]' \
'--json[Print the result as JSON]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
':reference -- Image reference; `docker\://` is optional:_default' \
&& ret=0
;;
(images)
_arguments "${_arguments_options[@]}" : \
'--store=[Store directory]:STORE:_files' \
'--json[Print JSON (podman field names)]' \
'-q[Only image IDs]' \
'--quiet[Only image IDs]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(inspect)
_arguments "${_arguments_options[@]}" : \
'--store=[Store directory]:STORE:_files' \
'--json[Print JSON]' \
'-h[Print help]' \
'--help[Print help]' \
':name -- Image name, ID or digest:_default' \
&& ret=0
;;
(tag)
_arguments "${_arguments_options[@]}" : \
'--store=[Store directory]:STORE:_files' \
'-h[Print help]' \
'--help[Print help]' \
':name -- Image name or ID:_default' \
'*::new_names -- New names:_default' \
&& ret=0
;;
(rmi)
_arguments "${_arguments_options[@]}" : \
'--store=[Store directory]:STORE:_files' \
'-f[Remove even if podman containers use the image through the view]' \
'--force[Remove even if podman containers use the image through the view]' \
'-h[Print help]' \
'--help[Print help]' \
'*::names -- Image names or IDs:_default' \
&& ret=0
;;
(gc)
_arguments "${_arguments_options[@]}" : \
'--store=[Store directory]:STORE:_files' \
'-n[Only report what would be removed]' \
'--dry-run[Only report what would be removed]' \
'--json[Print JSON]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(fsck)
_arguments "${_arguments_options[@]}" : \
'--store=[Store directory]:STORE:_files' \
'--repair[Rebuild derived data, remove orphans, name unrepairable images]' \
'--json[Print JSON]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(df)
_arguments "${_arguments_options[@]}" : \
'--store=[Store directory]:STORE:_files' \
'--json[Print JSON]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(mount)
_arguments "${_arguments_options[@]}" : \
'*-o+[Mount options\: passthrough=auto|on|off, uring=auto|on|off, threads=N, prefetch=N, verify=on|off, suid, dev, acl, readdirplus (default prefetch=4,nosuid,nodev,noacl,noreaddirplus); comma-separated, repeatable]:OPTIONS:_default' \
'*--options=[Mount options\: passthrough=auto|on|off, uring=auto|on|off, threads=N, prefetch=N, verify=on|off, suid, dev, acl, readdirplus (default prefetch=4,nosuid,nodev,noacl,noreaddirplus); comma-separated, repeatable]:OPTIONS:_default' \
'--view=[Views to show\: all, or containers-storage, ostree, images joined with \`+\`]:VIEW:_default' \
'--store=[Store directory]:STORE:_files' \
'--foreground[Stay attached (for systemd); default is to run the daemon in the background]' \
'-h[Print help]' \
'--help[Print help]' \
':mountpoint -- Where to mount:_files' \
&& ret=0
;;
(conf)
_arguments "${_arguments_options[@]}" : \
'--store=[Store directory]:STORE:_files' \
'-h[Print help]' \
'--help[Print help]' \
":: :_unistore__subcmd__conf_commands" \
"*::: :->conf" \
&& ret=0

    case $state in
    (conf)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:unistore-conf-command-$line[1]:"
        case $line[1] in
            (install)
_arguments "${_arguments_options[@]}" : \
'--mount=[Where the store is (or will be) mounted]:MOUNT:_files' \
'--store=[Store directory]:STORE:_files' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(show)
_arguments "${_arguments_options[@]}" : \
'--store=[Store directory]:STORE:_files' \
'--json[Print JSON]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(remove)
_arguments "${_arguments_options[@]}" : \
'--mount=[The mount point given to install]:MOUNT:_files' \
'--store=[Store directory]:STORE:_files' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_unistore__subcmd__conf__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:unistore-conf-help-command-$line[1]:"
        case $line[1] in
            (install)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(show)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(remove)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
;;
(umount)
_arguments "${_arguments_options[@]}" : \
'--store=[Store directory]:STORE:_files' \
'-h[Print help]' \
'--help[Print help]' \
':mountpoint -- The mount point:_files' \
&& ret=0
;;
(generate)
_arguments "${_arguments_options[@]}" : \
'--store=[Store directory]:STORE:_files' \
'-h[Print help]' \
'--help[Print help]' \
":: :_unistore__subcmd__generate_commands" \
"*::: :->generate" \
&& ret=0

    case $state in
    (generate)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:unistore-generate-command-$line[1]:"
        case $line[1] in
            (man)
_arguments "${_arguments_options[@]}" : \
'--store=[Store directory]:STORE:_files' \
'-h[Print help]' \
'--help[Print help]' \
':dir -- Output directory:_files' \
&& ret=0
;;
(completions)
_arguments "${_arguments_options[@]}" : \
'--store=[Store directory]:STORE:_files' \
'-h[Print help]' \
'--help[Print help]' \
':shell -- bash, zsh, fish, elvish or powershell:(bash elvish fish powershell zsh)' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_unistore__subcmd__generate__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:unistore-generate-help-command-$line[1]:"
        case $line[1] in
            (man)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(completions)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
;;
(layer-tar)
_arguments "${_arguments_options[@]}" : \
'-o+[Output file (default stdout)]:OUTPUT:_files' \
'--output=[Output file (default stdout)]:OUTPUT:_files' \
'--store=[Store directory]:STORE:_files' \
'-h[Print help]' \
'--help[Print help]' \
':name -- Image name or ID:_default' \
':index -- Layer index, 0 = base:_default' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_unistore__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:unistore-help-command-$line[1]:"
        case $line[1] in
            (init)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(import)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(pull)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(images)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(inspect)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(tag)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(rmi)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(gc)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(fsck)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(df)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(mount)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(conf)
_arguments "${_arguments_options[@]}" : \
":: :_unistore__subcmd__help__subcmd__conf_commands" \
"*::: :->conf" \
&& ret=0

    case $state in
    (conf)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:unistore-help-conf-command-$line[1]:"
        case $line[1] in
            (install)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(show)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(remove)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(umount)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(generate)
_arguments "${_arguments_options[@]}" : \
":: :_unistore__subcmd__help__subcmd__generate_commands" \
"*::: :->generate" \
&& ret=0

    case $state in
    (generate)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:unistore-help-generate-command-$line[1]:"
        case $line[1] in
            (man)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(completions)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(layer-tar)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
}

(( $+functions[_unistore_commands] )) ||
_unistore_commands() {
    local commands; commands=(
'init:Create a store (idempotent)' \
'import:Import an image\: oci\:DIR\[\:REF\], oci-archive\:FILE\[\:REF\], docker-archive\:FILE\[\:NAME\], containers-storage\:IMAGE, docker\://HOST/REPO\[\:TAG|@DIGEST\]' \
'pull:Pull an image from a registry (docker\://HOST/REPO\[\:TAG|@DIGEST\]), downloading only what the store lacks' \
'images:List images' \
'inspect:Show an image'\''s manifest digest, ID, layers and names' \
'tag:Add names to an image' \
'rmi:Remove image names (the image goes with its last name; data goes with gc)' \
'gc:Remove objects and streams no image reaches' \
'fsck:Verify every object, stream, index and catalog entry' \
'df:Show logical and physical space use and the dedup ratio' \
'mount:Mount the store'\''s views at MOUNTPOINT (returns when the mount is ready)' \
'conf:Point podman at the store'\''s containers-storage view (storage.conf)' \
'umount:Unmount a mounted store and stop its daemon' \
'generate:Generate man pages or shell completions from this CLI definition' \
'layer-tar:Write a layer'\''s original tar (bit-exact) to stdout or a file' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'unistore commands' commands "$@"
}
(( $+functions[_unistore__subcmd__conf_commands] )) ||
_unistore__subcmd__conf_commands() {
    local commands; commands=(
'install:Add MNT/containers-storage to podman'\''s additionalimagestores (idempotent)' \
'show:Show the storage configuration podman reads and its additional image stores' \
'remove:Undo \`install\`, restoring the file exactly as it was' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'unistore conf commands' commands "$@"
}
(( $+functions[_unistore__subcmd__conf__subcmd__help_commands] )) ||
_unistore__subcmd__conf__subcmd__help_commands() {
    local commands; commands=(
'install:Add MNT/containers-storage to podman'\''s additionalimagestores (idempotent)' \
'show:Show the storage configuration podman reads and its additional image stores' \
'remove:Undo \`install\`, restoring the file exactly as it was' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'unistore conf help commands' commands "$@"
}
(( $+functions[_unistore__subcmd__conf__subcmd__help__subcmd__help_commands] )) ||
_unistore__subcmd__conf__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'unistore conf help help commands' commands "$@"
}
(( $+functions[_unistore__subcmd__conf__subcmd__help__subcmd__install_commands] )) ||
_unistore__subcmd__conf__subcmd__help__subcmd__install_commands() {
    local commands; commands=()
    _describe -t commands 'unistore conf help install commands' commands "$@"
}
(( $+functions[_unistore__subcmd__conf__subcmd__help__subcmd__remove_commands] )) ||
_unistore__subcmd__conf__subcmd__help__subcmd__remove_commands() {
    local commands; commands=()
    _describe -t commands 'unistore conf help remove commands' commands "$@"
}
(( $+functions[_unistore__subcmd__conf__subcmd__help__subcmd__show_commands] )) ||
_unistore__subcmd__conf__subcmd__help__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'unistore conf help show commands' commands "$@"
}
(( $+functions[_unistore__subcmd__conf__subcmd__install_commands] )) ||
_unistore__subcmd__conf__subcmd__install_commands() {
    local commands; commands=()
    _describe -t commands 'unistore conf install commands' commands "$@"
}
(( $+functions[_unistore__subcmd__conf__subcmd__remove_commands] )) ||
_unistore__subcmd__conf__subcmd__remove_commands() {
    local commands; commands=()
    _describe -t commands 'unistore conf remove commands' commands "$@"
}
(( $+functions[_unistore__subcmd__conf__subcmd__show_commands] )) ||
_unistore__subcmd__conf__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'unistore conf show commands' commands "$@"
}
(( $+functions[_unistore__subcmd__df_commands] )) ||
_unistore__subcmd__df_commands() {
    local commands; commands=()
    _describe -t commands 'unistore df commands' commands "$@"
}
(( $+functions[_unistore__subcmd__fsck_commands] )) ||
_unistore__subcmd__fsck_commands() {
    local commands; commands=()
    _describe -t commands 'unistore fsck commands' commands "$@"
}
(( $+functions[_unistore__subcmd__gc_commands] )) ||
_unistore__subcmd__gc_commands() {
    local commands; commands=()
    _describe -t commands 'unistore gc commands' commands "$@"
}
(( $+functions[_unistore__subcmd__generate_commands] )) ||
_unistore__subcmd__generate_commands() {
    local commands; commands=(
'man:Man pages (unistore.1, unistore-SUBCOMMAND.1) into DIR' \
'completions:Shell completions to stdout' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'unistore generate commands' commands "$@"
}
(( $+functions[_unistore__subcmd__generate__subcmd__completions_commands] )) ||
_unistore__subcmd__generate__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'unistore generate completions commands' commands "$@"
}
(( $+functions[_unistore__subcmd__generate__subcmd__help_commands] )) ||
_unistore__subcmd__generate__subcmd__help_commands() {
    local commands; commands=(
'man:Man pages (unistore.1, unistore-SUBCOMMAND.1) into DIR' \
'completions:Shell completions to stdout' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'unistore generate help commands' commands "$@"
}
(( $+functions[_unistore__subcmd__generate__subcmd__help__subcmd__completions_commands] )) ||
_unistore__subcmd__generate__subcmd__help__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'unistore generate help completions commands' commands "$@"
}
(( $+functions[_unistore__subcmd__generate__subcmd__help__subcmd__help_commands] )) ||
_unistore__subcmd__generate__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'unistore generate help help commands' commands "$@"
}
(( $+functions[_unistore__subcmd__generate__subcmd__help__subcmd__man_commands] )) ||
_unistore__subcmd__generate__subcmd__help__subcmd__man_commands() {
    local commands; commands=()
    _describe -t commands 'unistore generate help man commands' commands "$@"
}
(( $+functions[_unistore__subcmd__generate__subcmd__man_commands] )) ||
_unistore__subcmd__generate__subcmd__man_commands() {
    local commands; commands=()
    _describe -t commands 'unistore generate man commands' commands "$@"
}
(( $+functions[_unistore__subcmd__help_commands] )) ||
_unistore__subcmd__help_commands() {
    local commands; commands=(
'init:Create a store (idempotent)' \
'import:Import an image\: oci\:DIR\[\:REF\], oci-archive\:FILE\[\:REF\], docker-archive\:FILE\[\:NAME\], containers-storage\:IMAGE, docker\://HOST/REPO\[\:TAG|@DIGEST\]' \
'pull:Pull an image from a registry (docker\://HOST/REPO\[\:TAG|@DIGEST\]), downloading only what the store lacks' \
'images:List images' \
'inspect:Show an image'\''s manifest digest, ID, layers and names' \
'tag:Add names to an image' \
'rmi:Remove image names (the image goes with its last name; data goes with gc)' \
'gc:Remove objects and streams no image reaches' \
'fsck:Verify every object, stream, index and catalog entry' \
'df:Show logical and physical space use and the dedup ratio' \
'mount:Mount the store'\''s views at MOUNTPOINT (returns when the mount is ready)' \
'conf:Point podman at the store'\''s containers-storage view (storage.conf)' \
'umount:Unmount a mounted store and stop its daemon' \
'generate:Generate man pages or shell completions from this CLI definition' \
'layer-tar:Write a layer'\''s original tar (bit-exact) to stdout or a file' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'unistore help commands' commands "$@"
}
(( $+functions[_unistore__subcmd__help__subcmd__conf_commands] )) ||
_unistore__subcmd__help__subcmd__conf_commands() {
    local commands; commands=(
'install:Add MNT/containers-storage to podman'\''s additionalimagestores (idempotent)' \
'show:Show the storage configuration podman reads and its additional image stores' \
'remove:Undo \`install\`, restoring the file exactly as it was' \
    )
    _describe -t commands 'unistore help conf commands' commands "$@"
}
(( $+functions[_unistore__subcmd__help__subcmd__conf__subcmd__install_commands] )) ||
_unistore__subcmd__help__subcmd__conf__subcmd__install_commands() {
    local commands; commands=()
    _describe -t commands 'unistore help conf install commands' commands "$@"
}
(( $+functions[_unistore__subcmd__help__subcmd__conf__subcmd__remove_commands] )) ||
_unistore__subcmd__help__subcmd__conf__subcmd__remove_commands() {
    local commands; commands=()
    _describe -t commands 'unistore help conf remove commands' commands "$@"
}
(( $+functions[_unistore__subcmd__help__subcmd__conf__subcmd__show_commands] )) ||
_unistore__subcmd__help__subcmd__conf__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'unistore help conf show commands' commands "$@"
}
(( $+functions[_unistore__subcmd__help__subcmd__df_commands] )) ||
_unistore__subcmd__help__subcmd__df_commands() {
    local commands; commands=()
    _describe -t commands 'unistore help df commands' commands "$@"
}
(( $+functions[_unistore__subcmd__help__subcmd__fsck_commands] )) ||
_unistore__subcmd__help__subcmd__fsck_commands() {
    local commands; commands=()
    _describe -t commands 'unistore help fsck commands' commands "$@"
}
(( $+functions[_unistore__subcmd__help__subcmd__gc_commands] )) ||
_unistore__subcmd__help__subcmd__gc_commands() {
    local commands; commands=()
    _describe -t commands 'unistore help gc commands' commands "$@"
}
(( $+functions[_unistore__subcmd__help__subcmd__generate_commands] )) ||
_unistore__subcmd__help__subcmd__generate_commands() {
    local commands; commands=(
'man:Man pages (unistore.1, unistore-SUBCOMMAND.1) into DIR' \
'completions:Shell completions to stdout' \
    )
    _describe -t commands 'unistore help generate commands' commands "$@"
}
(( $+functions[_unistore__subcmd__help__subcmd__generate__subcmd__completions_commands] )) ||
_unistore__subcmd__help__subcmd__generate__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'unistore help generate completions commands' commands "$@"
}
(( $+functions[_unistore__subcmd__help__subcmd__generate__subcmd__man_commands] )) ||
_unistore__subcmd__help__subcmd__generate__subcmd__man_commands() {
    local commands; commands=()
    _describe -t commands 'unistore help generate man commands' commands "$@"
}
(( $+functions[_unistore__subcmd__help__subcmd__help_commands] )) ||
_unistore__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'unistore help help commands' commands "$@"
}
(( $+functions[_unistore__subcmd__help__subcmd__images_commands] )) ||
_unistore__subcmd__help__subcmd__images_commands() {
    local commands; commands=()
    _describe -t commands 'unistore help images commands' commands "$@"
}
(( $+functions[_unistore__subcmd__help__subcmd__import_commands] )) ||
_unistore__subcmd__help__subcmd__import_commands() {
    local commands; commands=()
    _describe -t commands 'unistore help import commands' commands "$@"
}
(( $+functions[_unistore__subcmd__help__subcmd__init_commands] )) ||
_unistore__subcmd__help__subcmd__init_commands() {
    local commands; commands=()
    _describe -t commands 'unistore help init commands' commands "$@"
}
(( $+functions[_unistore__subcmd__help__subcmd__inspect_commands] )) ||
_unistore__subcmd__help__subcmd__inspect_commands() {
    local commands; commands=()
    _describe -t commands 'unistore help inspect commands' commands "$@"
}
(( $+functions[_unistore__subcmd__help__subcmd__layer-tar_commands] )) ||
_unistore__subcmd__help__subcmd__layer-tar_commands() {
    local commands; commands=()
    _describe -t commands 'unistore help layer-tar commands' commands "$@"
}
(( $+functions[_unistore__subcmd__help__subcmd__mount_commands] )) ||
_unistore__subcmd__help__subcmd__mount_commands() {
    local commands; commands=()
    _describe -t commands 'unistore help mount commands' commands "$@"
}
(( $+functions[_unistore__subcmd__help__subcmd__pull_commands] )) ||
_unistore__subcmd__help__subcmd__pull_commands() {
    local commands; commands=()
    _describe -t commands 'unistore help pull commands' commands "$@"
}
(( $+functions[_unistore__subcmd__help__subcmd__rmi_commands] )) ||
_unistore__subcmd__help__subcmd__rmi_commands() {
    local commands; commands=()
    _describe -t commands 'unistore help rmi commands' commands "$@"
}
(( $+functions[_unistore__subcmd__help__subcmd__tag_commands] )) ||
_unistore__subcmd__help__subcmd__tag_commands() {
    local commands; commands=()
    _describe -t commands 'unistore help tag commands' commands "$@"
}
(( $+functions[_unistore__subcmd__help__subcmd__umount_commands] )) ||
_unistore__subcmd__help__subcmd__umount_commands() {
    local commands; commands=()
    _describe -t commands 'unistore help umount commands' commands "$@"
}
(( $+functions[_unistore__subcmd__images_commands] )) ||
_unistore__subcmd__images_commands() {
    local commands; commands=()
    _describe -t commands 'unistore images commands' commands "$@"
}
(( $+functions[_unistore__subcmd__import_commands] )) ||
_unistore__subcmd__import_commands() {
    local commands; commands=()
    _describe -t commands 'unistore import commands' commands "$@"
}
(( $+functions[_unistore__subcmd__init_commands] )) ||
_unistore__subcmd__init_commands() {
    local commands; commands=()
    _describe -t commands 'unistore init commands' commands "$@"
}
(( $+functions[_unistore__subcmd__inspect_commands] )) ||
_unistore__subcmd__inspect_commands() {
    local commands; commands=()
    _describe -t commands 'unistore inspect commands' commands "$@"
}
(( $+functions[_unistore__subcmd__layer-tar_commands] )) ||
_unistore__subcmd__layer-tar_commands() {
    local commands; commands=()
    _describe -t commands 'unistore layer-tar commands' commands "$@"
}
(( $+functions[_unistore__subcmd__mount_commands] )) ||
_unistore__subcmd__mount_commands() {
    local commands; commands=()
    _describe -t commands 'unistore mount commands' commands "$@"
}
(( $+functions[_unistore__subcmd__pull_commands] )) ||
_unistore__subcmd__pull_commands() {
    local commands; commands=()
    _describe -t commands 'unistore pull commands' commands "$@"
}
(( $+functions[_unistore__subcmd__rmi_commands] )) ||
_unistore__subcmd__rmi_commands() {
    local commands; commands=()
    _describe -t commands 'unistore rmi commands' commands "$@"
}
(( $+functions[_unistore__subcmd__tag_commands] )) ||
_unistore__subcmd__tag_commands() {
    local commands; commands=()
    _describe -t commands 'unistore tag commands' commands "$@"
}
(( $+functions[_unistore__subcmd__umount_commands] )) ||
_unistore__subcmd__umount_commands() {
    local commands; commands=()
    _describe -t commands 'unistore umount commands' commands "$@"
}

if [ "$funcstack[1]" = "_unistore" ]; then
    _unistore "$@"
else
    compdef _unistore unistore
fi
