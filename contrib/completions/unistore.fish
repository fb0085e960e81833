# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_unistore_global_optspecs
    string join \n store= h/help V/version
end

function __fish_unistore_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_unistore_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_unistore_using_subcommand
    set -l cmd (__fish_unistore_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c unistore -n "__fish_unistore_needs_command" -l store -d 'Store directory' -r -F
complete -c unistore -n "__fish_unistore_needs_command" -s h -l help -d 'Print help'
complete -c unistore -n "__fish_unistore_needs_command" -s V -l version -d 'Print version'
complete -c unistore -n "__fish_unistore_needs_command" -f -a "init" -d 'Create a store (idempotent)'
complete -c unistore -n "__fish_unistore_needs_command" -f -a "import" -d 'Import an image: oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:NAME], containers-storage:IMAGE, docker://HOST/REPO[:TAG|@DIGEST]'
complete -c unistore -n "__fish_unistore_needs_command" -f -a "pull" -d 'Pull an image from a registry (docker://HOST/REPO[:TAG|@DIGEST]), downloading only what the store lacks'
complete -c unistore -n "__fish_unistore_needs_command" -f -a "images" -d 'List images'
complete -c unistore -n "__fish_unistore_needs_command" -f -a "inspect" -d 'Show an image\'s manifest digest, ID, layers and names'
complete -c unistore -n "__fish_unistore_needs_command" -f -a "tag" -d 'Add names to an image'
complete -c unistore -n "__fish_unistore_needs_command" -f -a "rmi" -d 'Remove image names (the image goes with its last name; data goes with gc)'
complete -c unistore -n "__fish_unistore_needs_command" -f -a "gc" -d 'Remove objects and streams no image reaches'
complete -c unistore -n "__fish_unistore_needs_command" -f -a "fsck" -d 'Verify every object, stream, index and catalog entry'
complete -c unistore -n "__fish_unistore_needs_command" -f -a "df" -d 'Show logical and physical space use and the dedup ratio'
complete -c unistore -n "__fish_unistore_needs_command" -f -a "mount" -d 'Mount the store\'s views at MOUNTPOINT (returns when the mount is ready)'
complete -c unistore -n "__fish_unistore_needs_command" -f -a "conf" -d 'Point podman at the store\'s containers-storage view (storage.conf)'
complete -c unistore -n "__fish_unistore_needs_command" -f -a "umount" -d 'Unmount a mounted store and stop its daemon'
complete -c unistore -n "__fish_unistore_needs_command" -f -a "generate" -d 'Generate man pages or shell completions from this CLI definition'
complete -c unistore -n "__fish_unistore_needs_command" -f -a "layer-tar" -d 'Write a layer\'s original tar (bit-exact) to stdout or a file'
complete -c unistore -n "__fish_unistore_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c unistore -n "__fish_unistore_using_subcommand init" -l store -d 'Store directory' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand init" -l json -d 'Print the result as JSON'
complete -c unistore -n "__fish_unistore_using_subcommand init" -s h -l help -d 'Print help'
complete -c unistore -n "__fish_unistore_using_subcommand import" -s n -l name -d 'Name to give the image (repeatable); defaults to the names in the source' -r
complete -c unistore -n "__fish_unistore_using_subcommand import" -l authfile -d 'Credentials file as `podman login` writes it (default: $REGISTRY_AUTH_FILE, then podman\'s and docker\'s)' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand import" -l creds -d 'USERNAME:PASSWORD for the registry' -r
complete -c unistore -n "__fish_unistore_using_subcommand import" -l tls-verify -d 'Require HTTPS with verified certificates (`--tls-verify=false` allows plain HTTP); default: registries.conf\'s `insecure`' -r -f -a "true\t''
false\t''"
complete -c unistore -n "__fish_unistore_using_subcommand import" -l platform -d 'Platform to pick from a multi-platform image: OS/ARCH[/VARIANT] (default: this host\'s)' -r
complete -c unistore -n "__fish_unistore_using_subcommand import" -l registries-conf -d 'registries.conf to use instead of the system\'s (mirrors, insecure, blocked, aliases)' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand import" -l progress -d 'Progress: bar, json or none' -r -f -a "bar\t'Bars per layer on stderr when it is a terminal'
json\t'One JSON event per line on stdout, the last one `{"event":"done",...}`'
none\t'Nothing'"
complete -c unistore -n "__fish_unistore_using_subcommand import" -l store -d 'Store directory' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand import" -s q -l quiet -d 'No progress bars'
complete -c unistore -n "__fish_unistore_using_subcommand import" -l json -d 'Print the result as JSON'
complete -c unistore -n "__fish_unistore_using_subcommand import" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c unistore -n "__fish_unistore_using_subcommand pull" -s n -l name -d 'Name to give the image (repeatable); defaults to the reference' -r
complete -c unistore -n "__fish_unistore_using_subcommand pull" -l authfile -d 'Credentials file as `podman login` writes it (default: $REGISTRY_AUTH_FILE, then podman\'s and docker\'s)' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand pull" -l creds -d 'USERNAME:PASSWORD for the registry' -r
complete -c unistore -n "__fish_unistore_using_subcommand pull" -l tls-verify -d 'Require HTTPS with verified certificates (`--tls-verify=false` allows plain HTTP); default: registries.conf\'s `insecure`' -r -f -a "true\t''
false\t''"
complete -c unistore -n "__fish_unistore_using_subcommand pull" -l platform -d 'Platform to pick from a multi-platform image: OS/ARCH[/VARIANT] (default: this host\'s)' -r
complete -c unistore -n "__fish_unistore_using_subcommand pull" -l registries-conf -d 'registries.conf to use instead of the system\'s (mirrors, insecure, blocked, aliases)' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand pull" -l progress -d 'Progress: bar, json or none' -r -f -a "bar\t'Bars per layer on stderr when it is a terminal'
json\t'One JSON event per line on stdout, the last one `{"event":"done",...}`'
none\t'Nothing'"
complete -c unistore -n "__fish_unistore_using_subcommand pull" -l store -d 'Store directory' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand pull" -s q -l quiet -d 'No progress output (same as --progress=none)'
complete -c unistore -n "__fish_unistore_using_subcommand pull" -l json -d 'Print the result as JSON'
complete -c unistore -n "__fish_unistore_using_subcommand pull" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c unistore -n "__fish_unistore_using_subcommand images" -l store -d 'Store directory' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand images" -l json -d 'Print JSON (podman field names)'
complete -c unistore -n "__fish_unistore_using_subcommand images" -s q -l quiet -d 'Only image IDs'
complete -c unistore -n "__fish_unistore_using_subcommand images" -s h -l help -d 'Print help'
complete -c unistore -n "__fish_unistore_using_subcommand inspect" -l store -d 'Store directory' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand inspect" -l json -d 'Print JSON'
complete -c unistore -n "__fish_unistore_using_subcommand inspect" -s h -l help -d 'Print help'
complete -c unistore -n "__fish_unistore_using_subcommand tag" -l store -d 'Store directory' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand tag" -s h -l help -d 'Print help'
complete -c unistore -n "__fish_unistore_using_subcommand rmi" -l store -d 'Store directory' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand rmi" -s f -l force -d 'Remove even if podman containers use the image through the view'
complete -c unistore -n "__fish_unistore_using_subcommand rmi" -s h -l help -d 'Print help'
complete -c unistore -n "__fish_unistore_using_subcommand gc" -l store -d 'Store directory' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand gc" -s n -l dry-run -d 'Only report what would be removed'
complete -c unistore -n "__fish_unistore_using_subcommand gc" -l json -d 'Print JSON'
complete -c unistore -n "__fish_unistore_using_subcommand gc" -s h -l help -d 'Print help'
complete -c unistore -n "__fish_unistore_using_subcommand fsck" -l store -d 'Store directory' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand fsck" -l repair -d 'Rebuild derived data, remove orphans, name unrepairable images'
complete -c unistore -n "__fish_unistore_using_subcommand fsck" -l json -d 'Print JSON'
complete -c unistore -n "__fish_unistore_using_subcommand fsck" -s h -l help -d 'Print help'
complete -c unistore -n "__fish_unistore_using_subcommand df" -l store -d 'Store directory' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand df" -l json -d 'Print JSON'
complete -c unistore -n "__fish_unistore_using_subcommand df" -s h -l help -d 'Print help'
complete -c unistore -n "__fish_unistore_using_subcommand mount" -s o -l options -d 'Mount options: passthrough=auto|on|off, uring=auto|on|off, threads=N, prefetch=N, verify=on|off, suid, dev, acl, readdirplus (default prefetch=4,nosuid,nodev,noacl,noreaddirplus); comma-separated, repeatable' -r
complete -c unistore -n "__fish_unistore_using_subcommand mount" -l view -d 'Views to show: all, or containers-storage, ostree, images joined with `+`' -r
complete -c unistore -n "__fish_unistore_using_subcommand mount" -l store -d 'Store directory' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand mount" -l foreground -d 'Stay attached (for systemd); default is to run the daemon in the background'
complete -c unistore -n "__fish_unistore_using_subcommand mount" -s h -l help -d 'Print help'
complete -c unistore -n "__fish_unistore_using_subcommand conf; and not __fish_seen_subcommand_from install show remove help" -l store -d 'Store directory' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand conf; and not __fish_seen_subcommand_from install show remove help" -s h -l help -d 'Print help'
complete -c unistore -n "__fish_unistore_using_subcommand conf; and not __fish_seen_subcommand_from install show remove help" -f -a "install" -d 'Add MNT/containers-storage to podman\'s additionalimagestores (idempotent)'
complete -c unistore -n "__fish_unistore_using_subcommand conf; and not __fish_seen_subcommand_from install show remove help" -f -a "show" -d 'Show the storage configuration podman reads and its additional image stores'
complete -c unistore -n "__fish_unistore_using_subcommand conf; and not __fish_seen_subcommand_from install show remove help" -f -a "remove" -d 'Undo `install`, restoring the file exactly as it was'
complete -c unistore -n "__fish_unistore_using_subcommand conf; and not __fish_seen_subcommand_from install show remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c unistore -n "__fish_unistore_using_subcommand conf; and __fish_seen_subcommand_from install" -l mount -d 'Where the store is (or will be) mounted' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand conf; and __fish_seen_subcommand_from install" -l store -d 'Store directory' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand conf; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help'
complete -c unistore -n "__fish_unistore_using_subcommand conf; and __fish_seen_subcommand_from show" -l store -d 'Store directory' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand conf; and __fish_seen_subcommand_from show" -l json -d 'Print JSON'
complete -c unistore -n "__fish_unistore_using_subcommand conf; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c unistore -n "__fish_unistore_using_subcommand conf; and __fish_seen_subcommand_from remove" -l mount -d 'The mount point given to install' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand conf; and __fish_seen_subcommand_from remove" -l store -d 'Store directory' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand conf; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c unistore -n "__fish_unistore_using_subcommand conf; and __fish_seen_subcommand_from help" -f -a "install" -d 'Add MNT/containers-storage to podman\'s additionalimagestores (idempotent)'
complete -c unistore -n "__fish_unistore_using_subcommand conf; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show the storage configuration podman reads and its additional image stores'
complete -c unistore -n "__fish_unistore_using_subcommand conf; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Undo `install`, restoring the file exactly as it was'
complete -c unistore -n "__fish_unistore_using_subcommand conf; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c unistore -n "__fish_unistore_using_subcommand umount" -l store -d 'Store directory' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand umount" -s h -l help -d 'Print help'
complete -c unistore -n "__fish_unistore_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -l store -d 'Store directory' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -s h -l help -d 'Print help'
complete -c unistore -n "__fish_unistore_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -f -a "man" -d 'Man pages (unistore.1, unistore-SUBCOMMAND.1) into DIR'
complete -c unistore -n "__fish_unistore_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -f -a "completions" -d 'Shell completions to stdout'
complete -c unistore -n "__fish_unistore_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c unistore -n "__fish_unistore_using_subcommand generate; and __fish_seen_subcommand_from man" -l store -d 'Store directory' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand generate; and __fish_seen_subcommand_from man" -s h -l help -d 'Print help'
complete -c unistore -n "__fish_unistore_using_subcommand generate; and __fish_seen_subcommand_from completions" -l store -d 'Store directory' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand generate; and __fish_seen_subcommand_from completions" -s h -l help -d 'Print help'
complete -c unistore -n "__fish_unistore_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "man" -d 'Man pages (unistore.1, unistore-SUBCOMMAND.1) into DIR'
complete -c unistore -n "__fish_unistore_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "completions" -d 'Shell completions to stdout'
complete -c unistore -n "__fish_unistore_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c unistore -n "__fish_unistore_using_subcommand layer-tar" -s o -l output -d 'Output file (default stdout)' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand layer-tar" -l store -d 'Store directory' -r -F
complete -c unistore -n "__fish_unistore_using_subcommand layer-tar" -s h -l help -d 'Print help'
complete -c unistore -n "__fish_unistore_using_subcommand help; and not __fish_seen_subcommand_from init import pull images inspect tag rmi gc fsck df mount conf umount generate layer-tar help" -f -a "init" -d 'Create a store (idempotent)'
complete -c unistore -n "__fish_unistore_using_subcommand help; and not __fish_seen_subcommand_from init import pull images inspect tag rmi gc fsck df mount conf umount generate layer-tar help" -f -a "import" -d 'Import an image: oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:NAME], containers-storage:IMAGE, docker://HOST/REPO[:TAG|@DIGEST]'
complete -c unistore -n "__fish_unistore_using_subcommand help; and not __fish_seen_subcommand_from init import pull images inspect tag rmi gc fsck df mount conf umount generate layer-tar help" -f -a "pull" -d 'Pull an image from a registry (docker://HOST/REPO[:TAG|@DIGEST]), downloading only what the store lacks'
complete -c unistore -n "__fish_unistore_using_subcommand help; and not __fish_seen_subcommand_from init import pull images inspect tag rmi gc fsck df mount conf umount generate layer-tar help" -f -a "images" -d 'List images'
complete -c unistore -n "__fish_unistore_using_subcommand help; and not __fish_seen_subcommand_from init import pull images inspect tag rmi gc fsck df mount conf umount generate layer-tar help" -f -a "inspect" -d 'Show an image\'s manifest digest, ID, layers and names'
complete -c unistore -n "__fish_unistore_using_subcommand help; and not __fish_seen_subcommand_from init import pull images inspect tag rmi gc fsck df mount conf umount generate layer-tar help" -f -a "tag" -d 'Add names to an image'
complete -c unistore -n "__fish_unistore_using_subcommand help; and not __fish_seen_subcommand_from init import pull images inspect tag rmi gc fsck df mount conf umount generate layer-tar help" -f -a "rmi" -d 'Remove image names (the image goes with its last name; data goes with gc)'
complete -c unistore -n "__fish_unistore_using_subcommand help; and not __fish_seen_subcommand_from init import pull images inspect tag rmi gc fsck df mount conf umount generate layer-tar help" -f -a "gc" -d 'Remove objects and streams no image reaches'
complete -c unistore -n "__fish_unistore_using_subcommand help; and not __fish_seen_subcommand_from init import pull images inspect tag rmi gc fsck df mount conf umount generate layer-tar help" -f -a "fsck" -d 'Verify every object, stream, index and catalog entry'
complete -c unistore -n "__fish_unistore_using_subcommand help; and not __fish_seen_subcommand_from init import pull images inspect tag rmi gc fsck df mount conf umount generate layer-tar help" -f -a "df" -d 'Show logical and physical space use and the dedup ratio'
complete -c unistore -n "__fish_unistore_using_subcommand help; and not __fish_seen_subcommand_from init import pull images inspect tag rmi gc fsck df mount conf umount generate layer-tar help" -f -a "mount" -d 'Mount the store\'s views at MOUNTPOINT (returns when the mount is ready)'
complete -c unistore -n "__fish_unistore_using_subcommand help; and not __fish_seen_subcommand_from init import pull images inspect tag rmi gc fsck df mount conf umount generate layer-tar help" -f -a "conf" -d 'Point podman at the store\'s containers-storage view (storage.conf)'
complete -c unistore -n "__fish_unistore_using_subcommand help; and not __fish_seen_subcommand_from init import pull images inspect tag rmi gc fsck df mount conf umount generate layer-tar help" -f -a "umount" -d 'Unmount a mounted store and stop its daemon'
complete -c unistore -n "__fish_unistore_using_subcommand help; and not __fish_seen_subcommand_from init import pull images inspect tag rmi gc fsck df mount conf umount generate layer-tar help" -f -a "generate" -d 'Generate man pages or shell completions from this CLI definition'
complete -c unistore -n "__fish_unistore_using_subcommand help; and not __fish_seen_subcommand_from init import pull images inspect tag rmi gc fsck df mount conf umount generate layer-tar help" -f -a "layer-tar" -d 'Write a layer\'s original tar (bit-exact) to stdout or a file'
complete -c unistore -n "__fish_unistore_using_subcommand help; and not __fish_seen_subcommand_from init import pull images inspect tag rmi gc fsck df mount conf umount generate layer-tar help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c unistore -n "__fish_unistore_using_subcommand help; and __fish_seen_subcommand_from conf" -f -a "install" -d 'Add MNT/containers-storage to podman\'s additionalimagestores (idempotent)'
complete -c unistore -n "__fish_unistore_using_subcommand help; and __fish_seen_subcommand_from conf" -f -a "show" -d 'Show the storage configuration podman reads and its additional image stores'
complete -c unistore -n "__fish_unistore_using_subcommand help; and __fish_seen_subcommand_from conf" -f -a "remove" -d 'Undo `install`, restoring the file exactly as it was'
complete -c unistore -n "__fish_unistore_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "man" -d 'Man pages (unistore.1, unistore-SUBCOMMAND.1) into DIR'
complete -c unistore -n "__fish_unistore_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "completions" -d 'Shell completions to stdout'
