//! `bmp-index prune`: make a decoder LLM smaller before using it as an encoder.

use std::path::{Path, PathBuf};

use anyhow::Context;
use bmp_encoder::gguf_tokenizer::gguf_tokenizer;
use bmp_encoder::layer_cut::{angular_distances, best_depths, layer_losses};
use bmp_encoder::llama::LlamaModel;
use bmp_eval::CorpusReader;
use candle_core::Device;
use clap::{Args, Subcommand};

/// Prune a decoder LLM (Llama family, GGUF or a Hugging Face directory).
#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(subcommand)]
    method: PruneMethod,
}

#[derive(Debug, Subcommand)]
enum PruneMethod {
    LayerCut(LayerCutArgs),
}

/// Keep the first N layers (plus the final norm) and write the model as a Hugging Face directory
/// (model.safetensors, config.json, tokenizer.json).
///
/// With --auto, N is chosen as L3Prune does: the untrained InfoNCE loss of each depth's
/// mean-pooled states on (title, text) pairs of --corpus, the best depth in the lower half
/// (or the upper half with --upper). The angular distance arccos(cos(x_l, x_{l+n})) / pi of
/// every block of --block layers (Gromov et al.) is printed as a table either way when --corpus
/// is given: a small distance marks a block that changes little.
#[derive(Debug, Args)]
struct LayerCutArgs {
    /// The model: a .gguf file, or a directory with config.json and model.safetensors.
    #[arg(long)]
    model: PathBuf,
    /// Layers to keep.
    #[arg(long, required_unless_present = "auto", conflicts_with = "auto")]
    keep: Option<usize>,
    /// Choose the depth from the per-layer losses on --corpus pairs.
    #[arg(long, requires = "corpus")]
    auto: bool,
    /// With --auto: the best depth of the upper half instead of the lower half.
    #[arg(long, requires = "auto")]
    upper: bool,
    /// BEIR corpus.jsonl whose (title, text) pairs score the depths.
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Pairs read from --corpus.
    #[arg(long, default_value_t = 64)]
    pairs: usize,
    /// Tokens per text for the analysis.
    #[arg(long, default_value_t = 64)]
    max_length: usize,
    /// Layers per block in the angular distance table.
    #[arg(long, default_value_t = 4)]
    block: usize,
    /// Output directory.
    #[arg(long)]
    output: PathBuf,
}

/// Runs `prune`.
pub fn run(args: &PruneArgs) -> anyhow::Result<()> {
    match &args.method {
        PruneMethod::LayerCut(a) => layer_cut(a),
    }
}

fn load(model: &Path, keep: Option<usize>) -> anyhow::Result<LlamaModel> {
    let device = Device::Cpu;
    Ok(if model.is_dir() {
        LlamaModel::from_safetensors(model, keep, &device)?
    } else {
        LlamaModel::from_gguf(model, keep, &device)?
    })
}

fn tokenizer(model: &Path) -> anyhow::Result<tokenizers::Tokenizer> {
    if model.is_dir() {
        let path = model.join("tokenizer.json");
        tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| anyhow::anyhow!("cannot load {}: {e}", path.display()))
    } else {
        Ok(gguf_tokenizer(model)?)
    }
}

fn layer_cut(args: &LayerCutArgs) -> anyhow::Result<()> {
    let tok = tokenizer(&args.model)?;
    let keep = match &args.corpus {
        None => args.keep,
        Some(corpus) => {
            let full = load(&args.model, None)?;
            let encode = |t: &str| -> anyhow::Result<Vec<u32>> {
                let mut ids = tok
                    .encode(t, false)
                    .map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?
                    .get_ids()
                    .to_vec();
                ids.truncate(args.max_length);
                Ok(ids)
            };
            let (mut queries, mut docs) = (Vec::new(), Vec::new());
            for doc in CorpusReader::open(corpus)? {
                let doc = doc?;
                if doc.title.trim().is_empty() || doc.text.trim().is_empty() {
                    continue;
                }
                queries.push(encode(&doc.title)?);
                docs.push(encode(&doc.text)?);
                if queries.len() == args.pairs {
                    break;
                }
            }
            if queries.len() < 2 {
                anyhow::bail!(
                    "{}: fewer than 2 documents with a title and a text",
                    corpus.display()
                );
            }
            let distances = angular_distances(&full, &docs, args.block)?;
            println!(
                "angular distance of each block of {} layers (layers l..l+{}):",
                args.block, args.block
            );
            println!("{:>6} {:>10}", "l", "distance");
            for (l, d) in distances.iter().enumerate() {
                println!("{l:>6} {d:>10.4}");
            }
            let losses = layer_losses(&full, &queries, &docs)?;
            println!("untrained InfoNCE loss of the pooled states after each depth:");
            println!("{:>6} {:>10}", "depth", "loss");
            for (l, x) in losses.iter().enumerate() {
                println!("{l:>6} {x:>10.4}");
            }
            let (low, high) = best_depths(&losses);
            println!("best depth: {low} (lower half), {high} (upper half)");
            if args.auto {
                Some(if args.upper { high } else { low })
            } else {
                args.keep
            }
        }
    };
    let keep = keep.context("give --keep N or --auto with --corpus")?;
    let model = load(&args.model, Some(keep))?;
    model.save(&args.output)?;
    let tokenizer_path = args.output.join("tokenizer.json");
    tok.save(&tokenizer_path, false)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tokenizer_path.display()))?;
    eprintln!(
        "kept {keep} of the model's layers; written to {}",
        args.output.display()
    );
    Ok(())
}
