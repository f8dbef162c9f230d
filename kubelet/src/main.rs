//! `kubelet`: parse flags, run.

use clap::Parser;

/// The allocator the other daemons use: many small short-lived allocations per object.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let options = kubelet::Options::parse();
    let verbosity = options.verbosity;
    serving::run_daemon("kubelet", verbosity, kubelet::run(options))
}
