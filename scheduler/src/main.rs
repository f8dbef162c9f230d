//! `kube-scheduler`: parse flags, run.

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let options = scheduler::Options::parse();
    let verbosity = options.verbosity;
    serving::run_daemon("kube-scheduler", verbosity, scheduler::run(options))
}
