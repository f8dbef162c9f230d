//! `kube-controller-manager`: parse flags, run.

use clap::Parser;

/// The allocator the apiserver uses too: many small short-lived allocations per object.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let options = controller_manager::Options::parse();
    let verbosity = options.verbosity;
    serving::run_daemon(
        "kube-controller-manager",
        verbosity,
        controller_manager::run(options),
    )
}
