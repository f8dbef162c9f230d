//! `kube-apiserver`: parse flags, run.

use clap::Parser;

/// mimalloc instead of glibc's allocator: the apiserver allocates and frees many small JSON
/// nodes per request, where glibc spends a fifth of the CPU (measured with `perf` under the
/// bench) and keeps freed memory mapped.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let options = apiserver::Options::parse();
    let verbosity = options.verbosity;
    serving::run_daemon("kube-apiserver", verbosity, apiserver::run(options))
}
