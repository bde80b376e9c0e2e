//! SPLADE encoding throughput on BEIR SciFact passages (or synthetic sentences).
//!
//! ```text
//! cargo run -p bmp-encoder --release --example splade_throughput -- \
//!     --model models/splade-tiny --docs 512 [--batch-size 32] [--max-length 512] \
//!     [--chunk-tokens N] [--corpus /work/shared/data/scifact/corpus.jsonl] [--device cpu]
//! ```
//!
//! Prints docs/s, tokens/s, time per stage, the GFLOP/s of the vocabulary projection
//! (`2 · tokens · hidden · vocab / projection time`) and, next to it, the GFLOP/s of a plain candle
//! matmul of the same shape (`[batch·len, hidden] × [hidden, vocab]`) measured in the same run.
//! The thread count follows `RAYON_NUM_THREADS` (candle and tokenizers both use it).
//!
//! This binary uses mimalloc as its global allocator (the library itself sets none). candle's
//! BERT allocates large short-lived tensors; with glibc malloc that costs ~850k page faults per
//! 128 SciFact passages, with mimalloc ~20k. Most of the remaining kernel time goes away with
//! `MIMALLOC_PURGE_DELAY=-1 MIMALLOC_ALLOW_LARGE_OS_PAGES=0` in the environment (freed memory is
//! kept instead of being returned to the OS and faulted in again as zeroed huge pages).

use std::error::Error;
use std::io::BufRead;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bmp_encoder::{beir_document_text, EncodeStats, SpladeEncoder, SpladeOptions};
use candle_core::{Device, Tensor};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    model: PathBuf,
    docs: usize,
    corpus: PathBuf,
    options: SpladeOptions,
    baseline: bool,
}

fn parse_args() -> Result<Args, Box<dyn Error>> {
    let mut args = Args {
        model: PathBuf::from("models/splade-tiny"),
        docs: 512,
        corpus: PathBuf::from("/work/shared/data/scifact/corpus.jsonl"),
        options: SpladeOptions::default(),
        baseline: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => args.model = value()?.into(),
            "--docs" => args.docs = value()?.parse()?,
            "--corpus" => args.corpus = value()?.into(),
            "--batch-size" => args.options.batch_size = value()?.parse()?,
            "--max-length" => args.options.max_length = Some(value()?.parse()?),
            "--chunk-tokens" => args.options.projection_chunk_tokens = Some(value()?.parse()?),
            "--device" => args.options.device = value()?.parse()?,
            "--dtype" => args.options.dtype = value()?.parse()?,
            "--no-baseline" => args.baseline = false,
            "-h" | "--help" => {
                println!(
                    "usage: splade_throughput [--model DIR] [--docs N] [--corpus FILE] \
                     [--batch-size N] [--max-length N] [--chunk-tokens N] [--device cpu|cuda] \
                     [--dtype f32|f16|bf16] [--no-baseline]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other} (see --help)").into()),
        }
    }
    Ok(args)
}

/// Up to `n` BEIR passages (title + text), or synthetic sentences when the corpus is absent.
fn load_texts(corpus: &PathBuf, n: usize) -> Result<(Vec<String>, String), Box<dyn Error>> {
    #[derive(serde::Deserialize)]
    struct Doc {
        #[serde(default)]
        title: String,
        #[serde(default)]
        text: String,
    }
    if corpus.is_file() {
        let file = std::io::BufReader::new(std::fs::File::open(corpus)?);
        let mut texts = Vec::with_capacity(n);
        for line in file.lines().take(n) {
            let line = line?;
            let doc: Doc = serde_json::from_str(&line)
                .map_err(|e| format!("{}: bad line: {e}", corpus.display()))?;
            texts.push(beir_document_text(&doc.title, &doc.text));
        }
        return Ok((texts, corpus.display().to_string()));
    }
    let words = [
        "sparse",
        "retrieval",
        "model",
        "expands",
        "documents",
        "with",
        "related",
        "terms",
        "block",
        "max",
        "pruning",
        "visits",
        "promising",
        "ranges",
        "of",
        "the",
        "index",
        "first",
        "queries",
        "are",
        "answered",
        "quickly",
        "and",
        "exactly",
        "on",
        "two",
        "cores",
    ];
    let texts = (0..n)
        .map(|i| {
            let len = 20 + (i * 37) % 60;
            (0..len)
                .map(|j| words[(i * 7 + j * 13) % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    Ok((texts, "synthetic sentences".into()))
}

fn gflops(flops: f64, t: Duration) -> f64 {
    flops / t.as_secs_f64().max(1e-12) / 1e9
}

/// GFLOP/s of `[rows, hidden] × [hidden, vocab]` with candle, best of a few runs.
fn plain_matmul_gflops(
    rows: usize,
    hidden: usize,
    vocab: usize,
    dev: &Device,
) -> Result<f64, Box<dyn Error>> {
    let a = Tensor::randn(0f32, 1.0, (rows, hidden), dev)?;
    let b = Tensor::randn(0f32, 1.0, (hidden, vocab), dev)?;
    let flops = 2.0 * (rows * hidden * vocab) as f64;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t0 = Instant::now();
        let c = a.matmul(&b)?;
        dev.synchronize()?;
        best = best.min(t0.elapsed().as_secs_f64());
        drop(c);
    }
    Ok(flops / best / 1e9)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    let (texts, source) = load_texts(&args.corpus, args.docs)?;
    if texts.is_empty() {
        return Err("no texts to encode".into());
    }

    let t0 = Instant::now();
    let encoder = SpladeEncoder::load(&args.model, args.options.clone())?;
    let load_time = t0.elapsed();
    let opts = encoder.options();
    let (hidden, vocab) = (encoder.hidden_size(), encoder.vocab_size());
    let projection = match opts.projection_chunk_tokens {
        None => "fused kernel on the CPU in f32, candle blocks elsewhere".to_owned(),
        Some(n) => format!("candle matmul over blocks of {n} tokens"),
    };
    println!(
        "model {} (hidden {hidden}, vocab {vocab}) loaded in {:.0} ms; device {}, dtype {}, \
         threads {}, batch {}, max_length {}, projection: {projection}",
        args.model.display(),
        load_time.as_secs_f64() * 1e3,
        opts.device,
        opts.dtype,
        candle_core::utils::get_num_threads(),
        opts.batch_size,
        encoder.max_length(),
    );
    println!("{} texts from {source}", texts.len());

    // Warm-up on one batch (thread pools, allocator).
    let warm = &texts[..texts.len().min(opts.batch_size)];
    encoder.encode_batch(warm)?;

    let t_tok = Instant::now();
    let ids = encoder.tokenize(&texts)?;
    let tokenize_time = t_tok.elapsed();

    let mut stats = EncodeStats::default();
    let t_enc = Instant::now();
    let mut nnz = 0usize;
    for chunk in ids.chunks(4096) {
        let vectors = encoder.encode_token_ids(chunk, &mut |_| {}, &mut stats)?;
        nnz += vectors.iter().map(Vec::len).sum::<usize>();
    }
    let encode_time = t_enc.elapsed();
    let total = tokenize_time + encode_time;

    let secs = |d: Duration| d.as_secs_f64();
    println!(
        "tokens: {} real, {} padded slots ({:.1}% padding), {:.1} per text; {:.1} terms per vector",
        stats.tokens,
        stats.padded_tokens,
        100.0 * (stats.padded_tokens - stats.tokens) as f64 / stats.padded_tokens.max(1) as f64,
        stats.tokens as f64 / stats.texts.max(1) as f64,
        nnz as f64 / stats.texts.max(1) as f64,
    );
    println!(
        "time: tokenize {:.3} s, encoder {:.3} s, projection {:.3} s, pooling {:.3} s, \
         sparsify {:.3} s, total {:.3} s",
        secs(tokenize_time),
        secs(stats.encoder_time),
        secs(stats.projection_time),
        secs(stats.pooling_time),
        secs(stats.sparsify_time),
        secs(total),
    );
    println!(
        "throughput: {:.1} docs/s, {:.0} tokens/s (tokenization included)",
        stats.texts as f64 / secs(total),
        stats.tokens as f64 / secs(total),
    );

    let flops = stats.projection_flops(hidden, vocab);
    if !args.baseline {
        println!(
            "vocabulary projection: {:.1} GFLOP/s over its own time ({:.1} GFLOP/s over all model time)",
            gflops(flops, stats.projection_time),
            gflops(flops, encode_time),
        );
        return Ok(());
    }
    let rows_batch = (stats.padded_tokens / stats.batches.max(1)).max(1);
    let dev = opts.device.open()?;
    let plain_batch = plain_matmul_gflops(rows_batch, hidden, vocab, &dev)?;
    let mut line = format!(
        "vocabulary projection: {:.1} GFLOP/s over its own time ({:.1} GFLOP/s over all model time) \
         | plain candle matmul [{rows_batch}, {hidden}] x [{hidden}, {vocab}]: {plain_batch:.1} GFLOP/s",
        gflops(flops, stats.projection_time),
        gflops(flops, encode_time),
    );
    if let Some(rows_chunk) = opts.projection_chunk_tokens {
        let plain_chunk = plain_matmul_gflops(rows_chunk, hidden, vocab, &dev)?;
        line.push_str(&format!(
            ", [{rows_chunk}, {hidden}] x [{hidden}, {vocab}]: {plain_chunk:.1} GFLOP/s"
        ));
    }
    println!("{line}");
    Ok(())
}
