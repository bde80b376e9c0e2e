//! The subcommands of `bmp-index`: argument definitions and dispatch.

mod bench;
mod build;
mod check;
mod collection;
mod demo;
mod encode;
mod encoding;
mod eval;
mod export;
mod info;
mod lexical;
mod multivec;
mod progress;
mod prune;
mod search;
mod serve;
mod synth;
mod train;

use clap::{Parser, Subcommand};

/// Learned-sparse retrieval with Block-Max Pruning.
///
/// Encode text with a SPLADE model, build a compressed, memory-mapped block-max index from sparse
/// vectors (JSONL or CIFF) or text, or keep a collection of segments that takes adds and deletes,
/// inspect and check it, export it, answer top-k queries (over HTTP too),
/// rerank them with multi-vector token embeddings (CRISP clustering, which `train` can learn), and
/// evaluate retrieval quality and latency on BEIR / MS MARCO data.
#[derive(Debug, Parser)]
#[command(name = "bmp-index", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Build(build::BuildArgs),
    Add(collection::AddArgs),
    Delete(collection::DeleteArgs),
    Compact(collection::CompactArgs),
    Encode(encode::EncodeArgs),
    Eval(eval::EvalArgs),
    Search(search::SearchArgs),
    Serve(serve::ServeArgs),
    Bench(bench::BenchArgs),
    Info(info::InfoArgs),
    Check(check::CheckArgs),
    Multivec(multivec::MultivecArgs),
    ExportCiff(export::ExportArgs),
    Synth(synth::SynthArgs),
    Train(train::TrainArgs),
    Prune(prune::PruneArgs),
    Demo(demo::DemoArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Build(args) => build::run(&args),
        Command::Add(args) => collection::run_add(&args),
        Command::Delete(args) => collection::run_delete(&args),
        Command::Compact(args) => collection::run_compact(&args),
        Command::Encode(args) => encode::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Search(args) => search::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Info(args) => info::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Multivec(args) => multivec::run(&args),
        Command::ExportCiff(args) => export::run(&args),
        Command::Synth(args) => synth::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Prune(args) => prune::run(&args),
        Command::Demo(args) => demo::run(&args),
    }
}
