//! The `reviewguard` command line: the thin shell over the library.

use clap::Parser;

mod cli;

/// mimalloc: under `run`'s threads glibc malloc and free are costly;
/// mimalloc's thread-local pages make them cheap. Its `override` feature also
/// serves C's malloc and free, so librdkafka's per-message allocations (made
/// on its fetch thread, freed on ours) go to mimalloc too.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    no_transparent_huge_pages();
    init_tracing();
    match cli::dispatch(cli::Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Transparent huge pages off for this process: where the kernel uses
/// them always, a page mimalloc touches in its arenas can make a whole 2 MiB
/// page resident (an idle `run`: 62 MiB with them, 35 MiB without). The
/// memory bound is the service's promise; alternating stream runs showed no
/// loss of speed without them.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes integers only and touches no
        // memory of ours; a kernel without it returns an error, ignored.
        let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("REVIEWGUARD_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("REVIEWGUARD_LOG_FORMAT").is_ok_and(|f| f == "json") {
        b.json().init();
    } else {
        b.init();
    }
}
