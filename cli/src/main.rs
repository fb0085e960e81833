//! The `unistore` command: process setup, tracing, and the library's `run`.

fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("UNISTORE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = unistore_cli::run_from_iter(std::env::args_os()) {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("Error: {e:#}");
        }
        std::process::exit(125);
    }
}
