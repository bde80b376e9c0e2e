//! A Llama-family decoder as a text encoder: our own forward pass over weights read from a GGUF
//! file and dequantized to f32, returning the hidden states of every position under a padding
//! mask (candle's `quantized_llama` returns only the last position's logits).
//!
//! Per layer: RMSNorm, grouped-query attention with rotary position embeddings (GGUF's
//! interleaved layout) under a causal and a padding mask, a residual; RMSNorm, the SwiGLU MLP
//! (`down(silu(gate(x)) * up(x))`), a residual. Then the final RMSNorm; the LM head is
//! `output.weight`, or the token embeddings when the file ties them. RMSNorm and softmax are
//! written with composable ops, so gradients flow through every weight.

use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor, D};

use crate::error::{EncoderError, Result};

/// The shape of a Llama model, from the GGUF metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden size.
    pub hidden_size: usize,
    /// Transformer blocks in the file.
    pub num_layers: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Key / value heads (grouped-query attention).
    pub num_kv_heads: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Rotary embedding base.
    pub rope_theta: f32,
}

/// One transformer block's weights (`[out, in]` matrices).
struct Block {
    attn_norm: Tensor,
    wq: Tensor,
    wk: Tensor,
    wv: Tensor,
    wo: Tensor,
    ffn_norm: Tensor,
    gate: Tensor,
    up: Tensor,
    down: Tensor,
}

/// A Llama decoder with f32 weights.
pub struct LlamaModel {
    config: LlamaConfig,
    embeddings: Tensor,
    blocks: Vec<Block>,
    norm: Tensor,
    lm_head: Tensor,
    device: Device,
    path: PathBuf,
}

impl std::fmt::Debug for LlamaModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaModel")
            .field("path", &self.path)
            .field("config", &self.config)
            .field("layers", &self.blocks.len())
            .finish_non_exhaustive()
    }
}

fn gguf_error(path: &Path) -> impl Fn(candle_core::Error) -> EncoderError + '_ {
    move |error| EncoderError::Weights {
        path: path.to_path_buf(),
        error,
    }
}

impl LlamaModel {
    /// Reads a GGUF file of architecture `llama`, dequantizing every weight to f32. `keep` loads
    /// only the first `keep` blocks (a layer cut); `None` loads them all.
    pub fn from_gguf(path: &Path, keep: Option<usize>, device: &Device) -> Result<Self> {
        let err = gguf_error(path);
        let mut file = std::fs::File::open(path).map_err(|error| EncoderError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let content = gguf_file::Content::read(&mut file).map_err(&err)?;
        let meta = |key: &str| {
            content.metadata.get(key).ok_or_else(|| {
                EncoderError::InvalidInput(format!("{}: no metadata {key}", path.display()))
            })
        };
        let int = |key: &str| -> Result<usize> { Ok(meta(key)?.to_u32().map_err(&err)? as usize) };
        let arch = meta("general.architecture")?
            .to_string()
            .map_err(&err)?
            .clone();
        if arch != "llama" {
            return Err(EncoderError::InvalidInput(format!(
                "{}: architecture {arch:?}, expected \"llama\"",
                path.display()
            )));
        }
        let hidden_size = int("llama.embedding_length")?;
        let num_heads = int("llama.attention.head_count")?;
        let num_kv_heads = int("llama.attention.head_count_kv")?;
        let file_layers = int("llama.block_count")?;
        if num_heads == 0 || num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
            return Err(EncoderError::InvalidInput(format!(
                "{}: {num_heads} heads over {num_kv_heads} key/value heads",
                path.display()
            )));
        }
        let num_layers = match keep {
            None => file_layers,
            Some(n) if (1..=file_layers).contains(&n) => n,
            Some(n) => {
                return Err(EncoderError::InvalidOption {
                    option: "keep",
                    message: format!("{n} layers: the model has 1..={file_layers}"),
                })
            }
        };
        let rms_norm_eps = f64::from(
            meta("llama.attention.layer_norm_rms_epsilon")?
                .to_f32()
                .map_err(&err)?,
        );
        let rope_theta = match content.metadata.get("llama.rope.freq_base") {
            Some(v) => v.to_f32().map_err(&err)?,
            None => 10_000.0,
        };
        let mut tensor = |name: &str| -> Result<Tensor> {
            content
                .tensor(&mut file, name, device)
                .and_then(|q| q.dequantize(device))
                .and_then(|t| t.to_dtype(DType::F32))
                .map_err(&err)
        };
        let embeddings = tensor("token_embd.weight")?;
        let (vocab_size, _) = embeddings.dims2().map_err(&err)?;
        let mut blocks = Vec::with_capacity(num_layers);
        for l in 0..num_layers {
            let p = format!("blk.{l}");
            blocks.push(Block {
                attn_norm: tensor(&format!("{p}.attn_norm.weight"))?,
                wq: tensor(&format!("{p}.attn_q.weight"))?,
                wk: tensor(&format!("{p}.attn_k.weight"))?,
                wv: tensor(&format!("{p}.attn_v.weight"))?,
                wo: tensor(&format!("{p}.attn_output.weight"))?,
                ffn_norm: tensor(&format!("{p}.ffn_norm.weight"))?,
                gate: tensor(&format!("{p}.ffn_gate.weight"))?,
                up: tensor(&format!("{p}.ffn_up.weight"))?,
                down: tensor(&format!("{p}.ffn_down.weight"))?,
            });
        }
        let norm = tensor("output_norm.weight")?;
        let lm_head = match content.tensor_infos.contains_key("output.weight") {
            true => tensor("output.weight")?,
            false => embeddings.clone(),
        };
        Ok(Self {
            config: LlamaConfig {
                vocab_size,
                hidden_size,
                num_layers,
                num_heads,
                num_kv_heads,
                rms_norm_eps,
                rope_theta,
            },
            embeddings,
            blocks,
            norm,
            lm_head,
            device: device.clone(),
            path: path.to_path_buf(),
        })
    }

    /// The model's shape (with the layers actually loaded).
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    fn rms_norm(&self, x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
        let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
        x.broadcast_div(&(ms + self.config.rms_norm_eps)?.sqrt()?)?
            .broadcast_mul(w)
    }

    /// The rotary tables `[len, head_dim / 2]`.
    fn rope_tables(&self, len: usize, head_dim: usize) -> candle_core::Result<(Tensor, Tensor)> {
        let theta: Vec<f32> = (0..head_dim)
            .step_by(2)
            .map(|i| 1.0 / self.config.rope_theta.powf(i as f32 / head_dim as f32))
            .collect();
        let n = theta.len();
        let theta = Tensor::from_vec(theta, (1, n), &self.device)?;
        let positions = Tensor::arange(0u32, len as u32, &self.device)?
            .to_dtype(DType::F32)?
            .reshape((len, 1))?;
        let angles = positions.matmul(&theta)?;
        Ok((angles.cos()?, angles.sin()?))
    }

    /// The residual stream at every depth, for padded token ids `[b, len]` and their mask
    /// (1 = real token; padding at the end of a row): entry `l` is the input of block `l` (entry
    /// 0: the embeddings) and the last entry the output of the last block, before the final
    /// norm. Every entry is `[b, len, hidden]`.
    pub fn forward_all(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        let (b, len) = ids.dims2()?;
        let c = &self.config;
        let (h, heads, kv) = (c.hidden_size, c.num_heads, c.num_kv_heads);
        let dh = h / heads;
        let (cos, sin) = self.rope_tables(len, dh)?;
        // Causal and padding masks as an additive bias [b, 1, len, len].
        let causal: Vec<f32> = (0..len)
            .flat_map(|i| (0..len).map(move |j| if j <= i { 0.0 } else { f32::NEG_INFINITY }))
            .collect();
        let causal = Tensor::from_vec(causal, (1, 1, len, len), &self.device)?;
        let padding = ((mask.to_dtype(DType::F32)? - 1.0)? * 1e9)?.reshape((b, 1, 1, len))?;
        let bias = causal.broadcast_add(&padding)?;
        let mut x = self
            .embeddings
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, len, h))?;
        let mut states = Vec::with_capacity(self.blocks.len() + 1);
        for block in &self.blocks {
            states.push(x.clone());
            let y = self.rms_norm(&x, &block.attn_norm)?;
            let heads_of = |w: &Tensor, n: usize| -> candle_core::Result<Tensor> {
                y.broadcast_matmul(&w.t()?)?
                    .reshape((b, len, n, dh))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let q = candle_nn::rotary_emb::rope_i(&heads_of(&block.wq, heads)?, &cos, &sin)?;
            let k = candle_nn::rotary_emb::rope_i(&heads_of(&block.wk, kv)?, &cos, &sin)?;
            let v = heads_of(&block.wv, kv)?;
            let group = heads / kv;
            let repeat = |t: Tensor| -> candle_core::Result<Tensor> {
                if group == 1 {
                    return Ok(t);
                }
                t.unsqueeze(2)?
                    .expand((b, kv, group, len, dh))?
                    .reshape((b, heads, len, dh))
            };
            let (k, v) = (repeat(k)?, repeat(v)?);
            let scores =
                (q.matmul(&k.t()?.contiguous()?)? / (dh as f64).sqrt())?.broadcast_add(&bias)?;
            let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
            let ctx = probs
                .matmul(&v.contiguous()?)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b, len, h))?;
            x = (x + ctx.broadcast_matmul(&block.wo.t()?)?)?;
            let y = self.rms_norm(&x, &block.ffn_norm)?;
            let gate = y.broadcast_matmul(&block.gate.t()?)?.silu()?;
            let up = y.broadcast_matmul(&block.up.t()?)?;
            x = (x + (gate * up)?.broadcast_matmul(&block.down.t()?)?)?;
        }
        states.push(x);
        Ok(states)
    }

    /// The final normed hidden states `[b, len, hidden]`.
    pub fn hidden_states(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let mut states = self.forward_all(ids, mask)?;
        let last = states
            .pop()
            .ok_or_else(|| candle_core::Error::Msg("no hidden state".into()))?;
        self.rms_norm(&last, &self.norm)
    }

    /// Vocabulary logits of hidden states `[.., hidden]`.
    pub fn logits(&self, hidden: &Tensor) -> candle_core::Result<Tensor> {
        hidden.broadcast_matmul(&self.lm_head.t()?)
    }
}
