//! The `mesos-dns` binary: flags and config at the edge, then the pipeline.

use std::process::ExitCode;

/// mimalloc: a refresh builds and frees hundreds of thousands of small
/// strings; with it, freeing a 20,000-task record set takes ~30 ms instead
/// of ~150 ms with glibc's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use mesos_dns::fetch::SetupError;
use mesos_dns::{app, cli, config::Config};

fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "watch") {
        return watch();
    }
    let args = match cli::parse(std::env::args_os()) {
        Ok(args) => args,
        Err(e) => return flags_refused(&e, "mesos-dns", "-help"),
    };
    if args.version {
        println!("{}", mesos_dns::VERSION);
        return ExitCode::SUCCESS;
    }
    app::init_logging(args.verbosity);
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("mesos-dns: {e}");
            return ExitCode::from(2);
        }
    };
    match app::run(&args, config) {
        Ok(()) => ExitCode::SUCCESS,
        // A file the config names (TLS, IAM) is unusable: a config error.
        Err(e) if matches!(e.downcast_ref::<SetupError>(), Some(SetupError::Config(_))) => {
            eprintln!("mesos-dns: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("mesos-dns: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `mesos-dns watch …`: the client mode.
fn watch() -> ExitCode {
    use mesos_dns::watch::{self, WatchError};
    let options = match watch::parse(std::env::args_os()) {
        Ok(options) => options,
        Err(e) => return flags_refused(&e, "mesos-dns watch", "mesos-dns watch --help"),
    };
    // What a watch does (each output written, each command run) is its
    // point: said at the default verbosity.
    app::init_logging(options.verbosity.saturating_add(1));
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mesos-dns watch: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(watch::run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ WatchError::Usage(_)) => {
            eprintln!("mesos-dns watch: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("mesos-dns watch: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--help` (clap's usage text on stdout, exit 0), or bad flags: one line
/// on stderr (clap's first paragraph, its lines joined, without the
/// usage), exit 2.
fn flags_refused(e: &clap::Error, program: &str, help: &str) -> ExitCode {
    if !e.use_stderr() {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let text = e.to_string();
    let message = text.split("\n\n").next().unwrap_or("bad arguments");
    let line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    eprintln!("{program}: {} (see {help})", line.trim_start_matches("error: "));
    ExitCode::from(2)
}
