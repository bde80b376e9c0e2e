//! `bmp-index train`: learned clustering (CRISP) for the multi-vector stage.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use bmp_encoder::device::open_device;
use bmp_encoder::llm_embed::LlmEncoder;
use bmp_encoder::llm_train::{LlmTrainOptions, LlmTrainer};
use bmp_encoder::train::{ChamferTrainer, StepReport, TrainOptions};
use bmp_encoder::{ClusterSpec, DeviceKind, Precision};
use bmp_eval::CorpusReader;
use clap::Args;

use super::encoding::parse_device;
use super::multivec::{parse_clusters, DEFAULT_TOKEN_MODEL};
use super::progress::count_bar;

/// Fine-tune a token-embedding model with the clustering inside the forward pass (CRISP).
///
/// Each step embeds a batch of (query, positive) pairs, reduces every text by --clusters (the
/// k-means grouping is chosen without gradient, the centroids are differentiable means), scores
/// every query against every document of the batch with Chamfer similarity, and minimises the
/// cross-entropy of each query's own document against the others (in-batch negatives) with AdamW.
/// Pairs come from --pairs (TSV: query<TAB>document) or from a BEIR corpus (--corpus: each
/// document's title as the query, its text as the positive). A held-out set of pairs is scored
/// before and after. The output directory is a model directory: `multivec`, `eval
/// --token-model` and `serve --token-model` take it.
///
/// With a decoder LLM as --model (a .gguf file, or a Llama / Mistral / Qwen2 / Qwen3 directory),
/// every weight is fine-tuned as a dense and a sparse embedder instead (on the CPU): each text is
/// embedded by the mean of its final states, L2-normalized, and the same in-batch loss is
/// minimized over their cosine similarities; with --sparse-weight above 0 (the default) the
/// in-batch loss over the dot products of the LM head's sparse vectors is added, with a FLOPS
/// regularizer (--flops-weight). --clusters does not apply. The output is a Hugging Face
/// directory that `eval --dense --pooling mean`, `encode`, `prune` and every other --model take.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The model to start from: a BERT-family directory (config.json, model.safetensors,
    /// tokenizer.json), or a decoder LLM (a .gguf file or a Hugging Face directory).
    #[arg(long, default_value = DEFAULT_TOKEN_MODEL)]
    pub model: PathBuf,
    /// Training pairs: TSV lines `query<TAB>positive document`.
    #[arg(long, conflicts_with = "corpus")]
    pub pairs: Option<PathBuf>,
    /// Training pairs from a BEIR corpus.jsonl: title -> text of each document with both.
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Where the trained model is written.
    #[arg(long)]
    pub output: PathBuf,
    /// Reduction inside the forward pass (none, CqxD, Cp, Kn, tail).
    #[arg(long, default_value = "C8x32", value_parser = parse_clusters)]
    pub clusters: ClusterSpec,
    /// Optimisation steps.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: u64,
    /// Pairs per step (the other pairs of a batch are each query's negatives).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(2..))]
    pub batch_size: u32,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 2e-5)]
    pub learning_rate: f64,
    /// Softmax temperature of the loss (scores are mean best dot products, in [-1, 1]).
    #[arg(long, default_value_t = 0.05)]
    pub temperature: f64,
    /// Query truncation in tokens.
    #[arg(long, default_value_t = 32)]
    pub query_max_length: usize,
    /// Document truncation in tokens.
    #[arg(long, default_value_t = 128)]
    pub doc_max_length: usize,
    /// Pairs held out to measure the loss before and after training.
    #[arg(long, default_value_t = 64)]
    pub held_out: usize,
    /// Print the mean training loss every this many steps.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub log_every: u64,
    /// Shuffling seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Decoder LLM only: weight of the sparse loss, the same in-batch loss over the dot products
    /// of the LM head's vectors (as `encode` makes them for sparse retrieval), each batch's
    /// scores divided by its mean positive score. 0 trains the dense embedding only.
    #[arg(long, default_value_t = 1.0)]
    pub sparse_weight: f64,
    /// Decoder LLM only: weight of the FLOPS regularizer (the sum over the vocabulary of each
    /// term's squared mean weight in the batch), which makes the sparse vectors sparser.
    #[arg(long, default_value_t = 1e-5)]
    pub flops_weight: f64,
    /// Where training runs: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    pub device: DeviceKind,
}

/// Reads the training pairs.
fn read_pairs(args: &TrainArgs) -> anyhow::Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    if let Some(path) = &args.pairs {
        let file = bmp_eval::open_text(path)?;
        for (i, line) in file.lines().enumerate() {
            let line = line.with_context(|| format!("cannot read {}", path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let (q, d) = line.split_once('\t').with_context(|| {
                format!("{}:{}: expected query<TAB>document", path.display(), i + 1)
            })?;
            if q.trim().is_empty() || d.trim().is_empty() {
                anyhow::bail!("{}:{}: empty query or document", path.display(), i + 1);
            }
            pairs.push((q.to_string(), d.to_string()));
        }
    } else if let Some(path) = &args.corpus {
        for doc in CorpusReader::open(path)? {
            let doc = doc?;
            if !doc.title.trim().is_empty() && !doc.text.trim().is_empty() {
                pairs.push((doc.title, doc.text));
            }
        }
    } else {
        anyhow::bail!("give --pairs FILE or --corpus corpus.jsonl");
    }
    Ok(pairs)
}

/// A small deterministic shuffle (Fisher-Yates with SplitMix64).
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        items.swap(i, (next() % (i as u64 + 1)) as usize);
    }
}

/// What the training loop drives: the token model (CRISP) or a decoder LLM.
trait PairTrainer {
    /// The loss of a batch, model unchanged.
    fn evaluate(&self, pairs: &[(&str, &str)]) -> bmp_encoder::Result<StepReport>;
    /// One optimizer step on a batch.
    fn step(&mut self, pairs: &[(&str, &str)]) -> bmp_encoder::Result<StepReport>;
}

impl PairTrainer for ChamferTrainer {
    fn evaluate(&self, pairs: &[(&str, &str)]) -> bmp_encoder::Result<StepReport> {
        ChamferTrainer::evaluate(self, pairs)
    }
    fn step(&mut self, pairs: &[(&str, &str)]) -> bmp_encoder::Result<StepReport> {
        ChamferTrainer::step(self, pairs)
    }
}

impl PairTrainer for LlmTrainer {
    fn evaluate(&self, pairs: &[(&str, &str)]) -> bmp_encoder::Result<StepReport> {
        LlmTrainer::evaluate(self, pairs)
    }
    fn step(&mut self, pairs: &[(&str, &str)]) -> bmp_encoder::Result<StepReport> {
        LlmTrainer::step(self, pairs)
    }
}

/// The mean loss and in-batch accuracy over `pairs`, in batches.
fn held_out_loss(
    trainer: &dyn PairTrainer,
    pairs: &[(String, String)],
    batch: usize,
) -> anyhow::Result<(f64, f64)> {
    let (mut loss, mut correct, mut n, mut batches) = (0.0, 0usize, 0usize, 0usize);
    for chunk in pairs.chunks(batch).filter(|c| c.len() >= 2) {
        let refs: Vec<(&str, &str)> = chunk
            .iter()
            .map(|(q, d)| (q.as_str(), d.as_str()))
            .collect();
        let r = trainer.evaluate(&refs)?;
        loss += f64::from(r.loss);
        correct += r.in_batch_correct;
        n += chunk.len();
        batches += 1;
    }
    Ok((
        loss / batches.max(1) as f64,
        correct as f64 / n.max(1) as f64,
    ))
}

/// Runs `train`.
pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let mut pairs = read_pairs(args)?;
    let batch = args.batch_size as usize;
    if pairs.len() < batch + 2 {
        anyhow::bail!(
            "{} training pairs: need more than a batch of {batch}",
            pairs.len()
        );
    }
    shuffle(&mut pairs, args.seed);
    let held = args.held_out.min(pairs.len() / 5);
    let (held, train) = pairs.split_at(held);
    if LlmEncoder::recognizes(&args.model) {
        if args.device != DeviceKind::Cpu {
            anyhow::bail!("a decoder LLM trains on the CPU only for now");
        }
        let mut trainer = LlmTrainer::load(
            &args.model,
            LlmTrainOptions {
                learning_rate: args.learning_rate,
                temperature: args.temperature,
                query_max_length: args.query_max_length,
                doc_max_length: args.doc_max_length,
                sparse_weight: args.sparse_weight,
                flops_weight: args.flops_weight,
            },
        )
        .with_context(|| format!("cannot load {}", args.model.display()))?;
        let outputs = match args.sparse_weight > 0.0 {
            true => "mean-pooled dense embeddings and LM-head sparse vectors",
            false => "mean-pooled dense embeddings",
        };
        eprintln!(
            "{} training pairs, {} held out; {} steps of {batch}; decoder LLM, {outputs}, every \
             weight trained",
            train.len(),
            held.len(),
            args.steps,
        );
        train_loop(args, &mut trainer, train, held)?;
        return trainer
            .save(&args.output)
            .with_context(|| format!("cannot write {}", args.output.display()))
            .map(|()| eprintln!("model written to {}", args.output.display()));
    }
    let (device, _) = open_device(args.device, Precision::F32)?;
    let mut trainer = ChamferTrainer::load(
        &args.model,
        TrainOptions {
            clusters: args.clusters.clone(),
            learning_rate: args.learning_rate,
            temperature: args.temperature,
            query_max_length: args.query_max_length,
            doc_max_length: args.doc_max_length,
        },
        &device,
    )
    .with_context(|| format!("cannot load {}", args.model.display()))?;
    eprintln!(
        "{} training pairs, {} held out; {} steps of {batch}, clusters {}",
        train.len(),
        held.len(),
        args.steps,
        args.clusters
    );
    train_loop(args, &mut trainer, train, held)?;
    trainer
        .save(&args.model, &args.output)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    eprintln!("model written to {}", args.output.display());
    Ok(())
}

/// Trains for `--steps` over shuffled batches of `train`, logging the loss, and scores `held`
/// before and after.
fn train_loop(
    args: &TrainArgs,
    trainer: &mut dyn PairTrainer,
    train: &[(String, String)],
    held: &[(String, String)],
) -> anyhow::Result<()> {
    let batch = args.batch_size as usize;
    let (loss0, acc0) = held_out_loss(trainer, held, batch)?;
    println!("held-out before: loss {loss0:.4}, in-batch accuracy {acc0:.3}");
    let bar = count_bar(args.steps, "training");
    let start = Instant::now();
    let (mut window, mut window_correct, mut window_n) = (0.0f64, 0usize, 0usize);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut at = 0usize;
    let mut epoch = 0u64;
    for step in 1..=args.steps {
        if at + batch > order.len() {
            epoch += 1;
            shuffle(&mut order, args.seed ^ epoch);
            at = 0;
        }
        let refs: Vec<(&str, &str)> = order[at..at + batch]
            .iter()
            .map(|&i| (train[i].0.as_str(), train[i].1.as_str()))
            .collect();
        at += batch;
        let r = trainer.step(&refs)?;
        window += f64::from(r.loss);
        window_correct += r.in_batch_correct;
        window_n += 1;
        bar.inc(1);
        if step % args.log_every == 0 || step == args.steps {
            let line = format!(
                "step {step:>6}  loss {:.4}  in-batch accuracy {:.3}  ({:.2} s/step)",
                window / window_n as f64,
                window_correct as f64 / (window_n * batch) as f64,
                start.elapsed().as_secs_f64() / step as f64
            );
            bar.suspend(|| println!("{line}"));
            (window, window_correct, window_n) = (0.0, 0, 0);
        }
    }
    bar.finish_and_clear();
    let (loss1, acc1) = held_out_loss(trainer, held, batch)?;
    println!("held-out after:  loss {loss1:.4}, in-batch accuracy {acc1:.3}");
    Ok(())
}
