//! The `unistore` command: process setup, tracing, and the library's `run`.

fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("UNISTORE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Multi-call: installed as /sbin/mount.fuse.unistore, act as mount(8)'s type helper.
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let result = if name == "mount.fuse.unistore" {
        unistore_cli::mount_helper_main(std::env::args().skip(1).collect())
    } else {
        unistore_cli::run_from_iter(std::env::args_os())
    };
    if let Err(e) = result {
        #[allow(clippy::print_stderr)]
        {
            // One line, whatever bytes an archive or manifest put into the message.
            let msg: String = format!("{e:#}")
                .chars()
                .flat_map(|c| {
                    if c.is_control() {
                        c.escape_default().collect::<Vec<_>>()
                    } else {
                        vec![c]
                    }
                })
                .collect();
            eprintln!("Error: {msg}");
        }
        std::process::exit(125);
    }
}
