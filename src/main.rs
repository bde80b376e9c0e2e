//! `bmp-index`: build, inspect and search learned-sparse indexes with Block-Max Pruning.

mod commands;

use std::process::ExitCode;

use clap::Parser;

// mimalloc: the encoder maps and unmaps large tensors, which the system allocator turns into
// system calls, and the server allocates per request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
