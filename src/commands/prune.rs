//! `bmp-index prune`: make a decoder LLM smaller before using it as an encoder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use bmp_encoder::gaprune::{
    gaprune_scores, gradient_batches, gradient_stats, magnitude_scores, prune_lowest,
};
use bmp_encoder::gguf_tokenizer::gguf_tokenizer;
use bmp_encoder::layer_cut::{angular_distances, best_depths, layer_losses};
use bmp_encoder::llama::LlamaModel;
use bmp_eval::CorpusReader;
use candle_core::{Device, Tensor, Var};
use clap::{Args, Subcommand};

use super::progress::count_bar;

/// Prune a decoder LLM (Llama family, GGUF or a Hugging Face directory): cut layers, or zero MLP
/// weights by GAPrune or by magnitude.
#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(subcommand)]
    method: PruneMethod,
}

#[derive(Debug, Subcommand)]
enum PruneMethod {
    LayerCut(LayerCutArgs),
    Gaprune(GapruneArgs),
    Magnitude(MagnitudeArgs),
}

/// GAPrune: zero the MLP weights (gate, up, down of every layer) of lowest Domain Alignment
/// Importance, ranked together over all layers.
///
/// Fisher information (mean squared gradient) and mean gradients of an InfoNCE loss on mean-pooled
/// final states are gathered on (title, text) pairs of --domain-corpus and of --general-corpus;
/// DAI = softplus((F_dom - F_gen) |w| clip(1 + 0.2 a, 0.8, 1.2) + 0.5 sqrt(|w|)), with a the
/// per-weight product of the two tensor-normalised mean gradients. Writes a Hugging Face
/// directory, or a GGUF file at the source's quantization (see --output).
#[derive(Debug, Args)]
struct GapruneArgs {
    #[command(flatten)]
    mlp: MlpPruneArgs,
    /// BEIR corpus.jsonl of the target domain (title -> text pairs).
    #[arg(long)]
    domain_corpus: PathBuf,
    /// BEIR corpus.jsonl of general text (title -> text pairs).
    #[arg(long)]
    general_corpus: PathBuf,
    /// Pairs read from each corpus.
    #[arg(long, default_value_t = 64)]
    pairs: usize,
    /// Pairs per gradient batch (the other pairs are the negatives).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(2..))]
    batch_size: u32,
    /// Tokens per text.
    #[arg(long, default_value_t = 64)]
    max_length: usize,
}

/// Magnitude pruning: zero the MLP weights of smallest |w|, ranked together over all layers (the
/// baseline GAPrune is compared with). Writes a Hugging Face directory, or a GGUF file at the
/// source's quantization (see --output).
#[derive(Debug, Args)]
struct MagnitudeArgs {
    #[command(flatten)]
    mlp: MlpPruneArgs,
}

/// What both ways of zeroing MLP weights take.
#[derive(Debug, Args)]
struct MlpPruneArgs {
    /// The model: a .gguf file, or a directory with config.json and model.safetensors.
    #[arg(long)]
    model: PathBuf,
    /// Fraction of the MLP weights to zero.
    #[arg(long, default_value_t = 0.5)]
    sparsity: f64,
    /// Keep only the first N layers first (a layer cut).
    #[arg(long)]
    keep: Option<usize>,
    #[command(flatten)]
    out: PrunedOutput,
}

/// Keep the first N layers (plus the final norm) and write the model as a Hugging Face directory
/// (model.safetensors, config.json, tokenizer.json), or as a GGUF file at the source's
/// quantization (see --output).
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
    #[command(flatten)]
    out: PrunedOutput,
}

/// Runs `prune`.
pub fn run(args: &PruneArgs) -> anyhow::Result<()> {
    match &args.method {
        PruneMethod::LayerCut(a) => layer_cut(a),
        PruneMethod::Gaprune(a) => gaprune(a),
        PruneMethod::Magnitude(a) => magnitude(a),
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

/// Up to `n` (title, text) pairs of a corpus, as token ids truncated at `max_length`.
fn corpus_pairs(
    corpus: &Path,
    tok: &tokenizers::Tokenizer,
    n: usize,
    max_length: usize,
) -> anyhow::Result<Vec<(Vec<u32>, Vec<u32>)>> {
    let encode = |t: &str| -> anyhow::Result<Vec<u32>> {
        let mut ids = tok
            .encode(t, false)
            .map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?
            .get_ids()
            .to_vec();
        ids.truncate(max_length);
        Ok(ids)
    };
    let mut pairs = Vec::new();
    for doc in CorpusReader::open(corpus)? {
        let doc = doc?;
        if doc.title.trim().is_empty() || doc.text.trim().is_empty() {
            continue;
        }
        pairs.push((encode(&doc.title)?, encode(&doc.text)?));
        if pairs.len() == n {
            break;
        }
    }
    if pairs.len() < 2 {
        anyhow::bail!(
            "{}: fewer than 2 documents with a title and a text",
            corpus.display()
        );
    }
    Ok(pairs)
}

/// Where a pruned model is written, and in which form.
#[derive(Debug, Args)]
struct PrunedOutput {
    /// Output: a path ending in .gguf writes one GGUF file, each tensor at the quantization it
    /// has in the source (a GGUF source only; never larger than the source); any other path is
    /// a Hugging Face directory (model.safetensors at the source's float type, f16 for a
    /// quantized GGUF source, with config.json and tokenizer.json).
    #[arg(long)]
    output: PathBuf,
}

impl PrunedOutput {
    /// Writes a pruned model: a GGUF file at the source's quantization when the output ends in
    /// `.gguf` (the source must be GGUF; its tokenizer is in the metadata), else a Hugging Face
    /// directory with the tokenizer.
    fn write(&self, model: &LlamaModel, tok: &tokenizers::Tokenizer) -> anyhow::Result<()> {
        let output = &self.output;
        if output
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
        {
            model.save_gguf(output)?;
            return Ok(());
        }
        model.save(output)?;
        let path = output.join("tokenizer.json");
        tok.save(&path, false)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        Ok(())
    }
}

fn gaprune(args: &GapruneArgs) -> anyhow::Result<()> {
    prune_mlp(&args.mlp, |model, vars, tok| {
        let batch = args.batch_size as usize;
        let domain = corpus_pairs(&args.domain_corpus, tok, args.pairs, args.max_length)?;
        let general = corpus_pairs(&args.general_corpus, tok, args.pairs, args.max_length)?;
        let start = std::time::Instant::now();
        let batches =
            gradient_batches(domain.len(), batch) + gradient_batches(general.len(), batch);
        let bar = count_bar(batches as u64, "gradient batches");
        let dom = gradient_stats(model, vars, &domain, batch, &mut || bar.inc(1))?;
        let gen = gradient_stats(model, vars, &general, batch, &mut || bar.inc(1))?;
        bar.finish_and_clear();
        eprintln!(
            "gradients of {} domain and {} general pairs in {:.1} s",
            domain.len(),
            general.len(),
            start.elapsed().as_secs_f64()
        );
        Ok(gaprune_scores(vars, &dom, &gen)?)
    })
}

fn magnitude(args: &MagnitudeArgs) -> anyhow::Result<()> {
    prune_mlp(&args.mlp, |_, vars, _| Ok(magnitude_scores(vars)?))
}

/// Loads the model, zeroes the fraction of its MLP weights that `score` ranks lowest, and writes
/// it with its tokenizer.
fn prune_mlp(
    args: &MlpPruneArgs,
    score: impl FnOnce(
        &LlamaModel,
        &[(String, Var)],
        &tokenizers::Tokenizer,
    ) -> anyhow::Result<HashMap<String, Tensor>>,
) -> anyhow::Result<()> {
    let tok = tokenizer(&args.model)?;
    let mut model = load(&args.model, args.keep)?;
    let vars = model.make_trainable()?;
    let scores = score(&model, &vars, &tok)?;
    let zeroed = prune_lowest(&vars, &scores, args.sparsity)?;
    println!("zeroed {zeroed} MLP weights (sparsity {})", args.sparsity);
    args.out.write(&model, &tok)?;
    eprintln!("written to {}", args.out.output.display());
    Ok(())
}

fn layer_cut(args: &LayerCutArgs) -> anyhow::Result<()> {
    let tok = tokenizer(&args.model)?;
    let keep = match &args.corpus {
        None => args.keep,
        Some(corpus) => {
            let full = load(&args.model, None)?;
            let (queries, docs): (Vec<_>, Vec<_>) =
                corpus_pairs(corpus, &tok, args.pairs, args.max_length)?
                    .into_iter()
                    .unzip();
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
    args.out.write(&model, &tok)?;
    eprintln!(
        "kept {keep} of the model's layers; written to {}",
        args.out.output.display()
    );
    Ok(())
}
