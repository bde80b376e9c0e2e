//! The BERT masked-LM network used by SPLADE, with the max-over-tokens pooling fused into the
//! vocabulary projection.
//!
//! The transformer body is candle-transformers' `BertModel` (the `bert.*` half of its
//! `BertForMaskedLM`). The MLM head (`cls.predictions.*`: dense, activation, LayerNorm, decoder) is
//! built here from the same weights so that pooling happens before any elementwise work: only
//! real tokens (never padding) are projected onto the vocabulary, the projection is reduced to a
//! per-text max as it is computed (fused kernel on the CPU, blocks of rows elsewhere), and the
//! decoder bias is added after the max (`max_i(x_i + b) = max_i(x_i) + b`). The result equals
//! max-pooling the full `[batch, len, vocab]` logits of `BertForMaskedLM` over the attention
//! mask; relu and log1p follow on `[batch, vocab]`.

use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Storage, Tensor};
use candle_nn::{LayerNorm, Linear, Module, VarBuilder};
use candle_transformers::models::bert::{BertModel, Config as BertConfig, HiddenAct};

use crate::error::{EncoderError, Result};
use crate::projection::max_pooled_projection;

/// Tied decoder weight: SPLADE checkpoints often store only the word embeddings.
const DECODER_WEIGHT: &str = "cls.predictions.decoder.weight";
const TIED_DECODER_WEIGHT: &str = "bert.embeddings.word_embeddings.weight";
/// Decoder bias: transformers saves the shared `cls.predictions.bias` only.
const DECODER_BIAS: &str = "cls.predictions.decoder.bias";
const SHARED_DECODER_BIAS: &str = "cls.predictions.bias";

/// Opens a safetensors file as a VarBuilder, mapping the tied/shared decoder tensors to the names
/// candle's BERT expects when the file lacks them. Old `LayerNorm.gamma/beta` names need no
/// renaming: candle-nn's `layer_norm` looks for `weight`/`gamma` and `bias`/`beta`.
pub(crate) fn bert_mlm_var_builder(
    weights: &Path,
    dtype: DType,
    device: &Device,
) -> Result<VarBuilder<'static>> {
    let weights_error = |source| EncoderError::Weights {
        path: weights.to_path_buf(),
        error: source,
    };
    // SAFETY: the file is memory-mapped read-only; as with every mmap, it must not be modified
    // while the model loads. Tensors are copied out of the map while building the model.
    let tensors = unsafe { candle_core::safetensors::MmapedSafetensors::new(weights) }
        .map_err(weights_error)?;
    let has_decoder_weight = tensors.get(DECODER_WEIGHT).is_ok();
    let has_decoder_bias = tensors.get(DECODER_BIAS).is_ok();
    let vb = VarBuilder::from_backend(Box::new(tensors), dtype, device.clone());
    Ok(vb.rename_f(move |name: &str| match name {
        DECODER_WEIGHT if !has_decoder_weight => TIED_DECODER_WEIGHT.to_owned(),
        DECODER_BIAS if !has_decoder_bias => SHARED_DECODER_BIAS.to_owned(),
        other => other.to_owned(),
    }))
}

/// Time spent in each stage of the network, summed over calls.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct StageTimes {
    /// Embeddings and transformer layers over the padded batch.
    pub(crate) encoder: Duration,
    /// The MLM head transform and the vocabulary projection (matmul) of real tokens.
    pub(crate) projection: Duration,
    /// Max over tokens, bias, copy of the pooled logits to the host.
    pub(crate) pooling: Duration,
}

/// `cls.predictions.*` of BertForMaskedLM.
struct MlmHead {
    dense: Linear,
    activation: HiddenAct,
    norm: LayerNorm,
    /// Decoder weight transposed and contiguous: `[hidden, vocab]`.
    decoder_t: Tensor,
    /// Decoder bias: `[vocab]`.
    bias: Tensor,
    /// The decoder bias as f32 on the host (for pooling in host memory).
    bias_host: Vec<f32>,
}

impl MlmHead {
    fn load(vb: VarBuilder, config: &BertConfig) -> candle_core::Result<Self> {
        let h = config.hidden_size;
        let v = config.vocab_size;
        let dense = candle_nn::linear(h, h, vb.pp("transform.dense"))?;
        let norm = candle_nn::layer_norm(h, config.layer_norm_eps, vb.pp("transform.LayerNorm"))?;
        let decoder_t = vb.get((v, h), "decoder.weight")?.t()?.contiguous()?;
        let bias = vb.get(v, "decoder.bias")?;
        let bias_host = bias.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        Ok(Self {
            dense,
            activation: config.hidden_act,
            norm,
            decoder_t,
            bias,
            bias_host,
        })
    }

    /// The transform (dense, activation, LayerNorm) on `[tokens, hidden]`.
    fn transform(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let xs = self.dense.forward(xs)?;
        let xs = match self.activation {
            HiddenAct::Gelu => xs.gelu_erf()?,
            HiddenAct::GeluApproximate => xs.gelu()?,
            HiddenAct::Relu => xs.relu()?,
        };
        self.norm.forward(&xs)
    }
}

/// Runs `f` on the elements of a contiguous f32 CPU tensor, without copying.
fn with_cpu_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("expected a CPU tensor")
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("expected a contiguous tensor")
    };
    let data = cpu
        .as_slice::<f32>()?
        .get(start..end)
        .ok_or_else(|| candle_core::Error::Msg("tensor layout outside its storage".into()))?;
    Ok(f(data))
}

/// BERT body + MLM head, producing max-pooled vocabulary logits per text.
pub(crate) struct BertMlm {
    bert: BertModel,
    head: MlmHead,
    device: Device,
    pad_token_id: u32,
    vocab_size: usize,
    /// `Some(n)`: project with candle's matmul over blocks of `n` token rows (any device);
    /// `None`: the fused CPU kernel when it applies, else blocks of `default_chunk_rows`.
    chunk_rows: Option<usize>,
    /// Block size for the candle path when none is forced.
    default_chunk_rows: usize,
}

impl BertMlm {
    /// Loads the network. `chunk_tokens` forces candle's blocked matmul for the projection with
    /// blocks of that many token rows; `None` uses the fused CPU kernel where it applies.
    pub(crate) fn load(
        vb: VarBuilder,
        config: &BertConfig,
        weights: &Path,
        chunk_tokens: Option<usize>,
    ) -> Result<Self> {
        let weights_error = |source| EncoderError::Weights {
            path: weights.to_path_buf(),
            error: source,
        };
        let device = vb.device().clone();
        let bert = BertModel::load(vb.pp("bert"), config).map_err(weights_error)?;
        let head = MlmHead::load(vb.pp("cls.predictions"), config).map_err(weights_error)?;
        let pad_token_id = u32::try_from(config.pad_token_id).map_err(|_| {
            EncoderError::InvalidInput(format!("pad_token_id {} too large", config.pad_token_id))
        })?;
        Ok(Self {
            bert,
            head,
            pad_token_id,
            vocab_size: config.vocab_size,
            chunk_rows: chunk_tokens.map(|n| n.max(1)),
            // About 16 MB of f32 logits on the CPU, 256 MB on a GPU.
            default_chunk_rows: (if device.is_cpu() {
                4usize << 20
            } else {
                64 << 20
            } / config.vocab_size)
                .max(16),
            device,
        })
    }

    /// The vocabulary size (number of output logits).
    pub(crate) fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    fn sync(&self) -> candle_core::Result<()> {
        self.device.synchronize()
    }

    /// For each sequence, the max over its tokens of the MLM logits: `[batch * vocab]`, row-major,
    /// as f32 on the host. Every sequence must be non-empty; the batch is padded to its longest.
    pub(crate) fn pooled_logits(
        &self,
        batch: &[&[u32]],
        times: &mut StageTimes,
    ) -> Result<Vec<f32>> {
        let b = batch.len();
        let lens: Vec<usize> = batch.iter().map(|s| s.len()).collect();
        let max_len = lens.iter().copied().max().unwrap_or(0);
        if b == 0 {
            return Ok(Vec::new());
        }
        if lens.contains(&0) {
            return Err(EncoderError::InvalidInput(
                "cannot run the model on an empty token sequence".into(),
            ));
        }

        if u32::try_from(b * max_len).is_err() {
            return Err(EncoderError::InvalidInput(format!(
                "a batch of {b} × {max_len} tokens is too large"
            )));
        }

        let start = Instant::now();
        let mut ids = Vec::with_capacity(b * max_len);
        let mut mask = Vec::with_capacity(b * max_len);
        // Flat positions (in the padded [b * max_len] grid) of real tokens, text after text.
        let mut real_positions = Vec::with_capacity(lens.iter().sum());
        for (row, seq) in batch.iter().enumerate() {
            ids.extend_from_slice(seq);
            ids.resize((row + 1) * max_len, self.pad_token_id);
            mask.extend(std::iter::repeat_n(1u8, seq.len()));
            mask.resize((row + 1) * max_len, 0u8);
            let base = row * max_len;
            real_positions.extend((base..base + seq.len()).map(|p| p as u32));
        }
        let n_real = real_positions.len();
        let ids = Tensor::from_vec(ids, (b, max_len), &self.device)?;
        let type_ids = ids.zeros_like()?;
        let mask = Tensor::from_vec(mask, (b, max_len), &self.device)?;
        let hidden = self.bert.forward(&ids, &type_ids, Some(&mask))?;
        let hidden_size = hidden.dim(2)?;
        let flat = hidden.reshape((b * max_len, hidden_size))?;
        let real = if n_real == b * max_len {
            flat
        } else {
            let index = Tensor::from_vec(real_positions, n_real, &self.device)?;
            flat.index_select(&index, 0)?
        };
        self.sync()?;
        let after_encoder = Instant::now();
        times.encoder += after_encoder - start;

        let transformed = self.head.transform(&real)?;
        if self.use_fused(&transformed) {
            self.fused_pooling(&transformed, &lens, after_encoder, times)
        } else {
            self.chunked_pooling(&transformed, &lens, after_encoder, times)
        }
    }

    /// Whether the fused CPU kernel applies: f32 on the CPU and no chunk size forced.
    fn use_fused(&self, xs: &Tensor) -> bool {
        self.chunk_rows.is_none()
            && self.device.is_cpu()
            && xs.dtype() == DType::F32
            && self.head.decoder_t.dtype() == DType::F32
    }

    /// Fused projection + max-pooling on the CPU (see `projection.rs`).
    fn fused_pooling(
        &self,
        transformed: &Tensor,
        lens: &[usize],
        started: Instant,
        times: &mut StageTimes,
    ) -> Result<Vec<f32>> {
        let (hidden, vocab) = (self.head.decoder_t.dim(0)?, self.vocab_size);
        let x = transformed.contiguous()?;
        let mut pooled = with_cpu_f32(&x, |x| {
            with_cpu_f32(&self.head.decoder_t, |w| {
                max_pooled_projection(x, w, hidden, vocab, lens)
            })
        })??;
        let t0 = Instant::now();
        times.projection += t0 - started;
        for row in pooled.chunks_exact_mut(vocab) {
            for (m, &bias) in row.iter_mut().zip(&self.head.bias_host) {
                *m += bias;
            }
        }
        times.pooling += t0.elapsed();
        Ok(pooled)
    }

    /// Projection with candle's matmul over blocks of rows, each reduced to per-text maxima with
    /// candle ops (any device and dtype).
    fn chunked_pooling(
        &self,
        transformed: &Tensor,
        lens: &[usize],
        started: Instant,
        times: &mut StageTimes,
    ) -> Result<Vec<f32>> {
        let b = lens.len();
        let n_real: usize = lens.iter().sum();
        let chunk_rows = self.chunk_rows.unwrap_or(self.default_chunk_rows).max(1);
        self.sync()?;
        let mut projection = started.elapsed();
        let mut pooling = Duration::ZERO;
        let mut per_text: Vec<Option<Tensor>> = vec![None; b];
        let mut text = 0usize; // first text not yet finished
        let mut text_start = 0usize; // flat row where `text` begins
        let mut row = 0usize;
        while row < n_real {
            let rows = chunk_rows.min(n_real - row);
            let t0 = Instant::now();
            let logits = transformed
                .narrow(0, row, rows)?
                .matmul(&self.head.decoder_t)?;
            self.sync()?;
            let t1 = Instant::now();
            projection += t1 - t0;

            // Texts overlapping [row, chunk_end): fold rows lo..hi of the chunk into `text`.
            let chunk_end = row + rows;
            while text < b && text_start < chunk_end {
                let text_end = text_start + lens[text];
                let lo = text_start.max(row) - row;
                let hi = text_end.min(chunk_end) - row;
                let part = logits.narrow(0, lo, hi - lo)?.max(0)?;
                let slot = &mut per_text[text];
                *slot = Some(match slot.take() {
                    Some(prev) => prev.maximum(&part)?,
                    None => part,
                });
                if text_end > chunk_end {
                    break;
                }
                text += 1;
                text_start = text_end;
            }
            row = chunk_end;
            self.sync()?;
            pooling += t1.elapsed();
        }

        let t0 = Instant::now();
        let per_text: Vec<Tensor> = per_text
            .into_iter()
            .map(|t| t.ok_or_else(|| EncoderError::InvalidInput("text without tokens".into())))
            .collect::<Result<_>>()?;
        let pooled = Tensor::stack(&per_text, 0)?
            .broadcast_add(&self.head.bias)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        pooling += t0.elapsed();
        times.projection += projection;
        times.pooling += pooling;
        Ok(pooled)
    }
}
