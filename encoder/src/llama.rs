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
use candle_core::{DType, Device, Tensor, Var, D};

use crate::error::{EncoderError, Result};

mod gguf_save;

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
    /// The width of one attention head (`hidden_size / num_heads` unless the checkpoint says
    /// otherwise, as Qwen3's do).
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Rotary embedding base.
    pub rope_theta: f32,
}

/// One transformer block's weights (`[out, in]` matrices).
#[derive(Clone)]
struct Block {
    attn_norm: Tensor,
    wq: Tensor,
    wk: Tensor,
    wv: Tensor,
    /// Query / key / value biases (Qwen2 has them, Llama not).
    bq: Option<Tensor>,
    bk: Option<Tensor>,
    bv: Option<Tensor>,
    /// Per-head RMSNorm weights of queries and keys, before the rotary embeddings (Qwen3).
    q_norm: Option<Tensor>,
    k_norm: Option<Tensor>,
    wo: Tensor,
    ffn_norm: Tensor,
    gate: Tensor,
    up: Tensor,
    down: Tensor,
}

impl Block {
    /// The weights under their Hugging Face names (after `model.layers.{l}.`), and the optional
    /// ones (biases, query / key norms).
    #[allow(clippy::type_complexity)]
    fn named_mut(
        &mut self,
    ) -> (
        [(&'static str, &mut Tensor); 9],
        [(&'static str, &mut Option<Tensor>); 5],
    ) {
        (
            [
                ("input_layernorm.weight", &mut self.attn_norm),
                ("self_attn.q_proj.weight", &mut self.wq),
                ("self_attn.k_proj.weight", &mut self.wk),
                ("self_attn.v_proj.weight", &mut self.wv),
                ("self_attn.o_proj.weight", &mut self.wo),
                ("post_attention_layernorm.weight", &mut self.ffn_norm),
                ("mlp.gate_proj.weight", &mut self.gate),
                ("mlp.up_proj.weight", &mut self.up),
                ("mlp.down_proj.weight", &mut self.down),
            ],
            [
                ("self_attn.q_proj.bias", &mut self.bq),
                ("self_attn.k_proj.bias", &mut self.bk),
                ("self_attn.v_proj.bias", &mut self.bv),
                ("self_attn.q_norm.weight", &mut self.q_norm),
                ("self_attn.k_norm.weight", &mut self.k_norm),
            ],
        )
    }
}

/// A Llama decoder with f32 weights.
pub struct LlamaModel {
    config: LlamaConfig,
    embeddings: Tensor,
    blocks: Vec<Block>,
    norm: Tensor,
    lm_head: Tensor,
    /// Whether the lm head is the token embeddings (tied).
    tied: bool,
    /// GGUF stores q and k for interleaved rotary pairs; Hugging Face checkpoints rotate halves.
    interleaved_rope: bool,
    /// Rotary embeddings through composed ops (candle's fused rope kernels have no backward).
    differentiable: bool,
    /// The Hugging Face config.json the model was read from (`None` for GGUF); `save` keeps its
    /// other fields.
    hf_config: Option<serde_json::Value>,
    /// The precision `save` writes: the source's floats (a Hugging Face checkpoint's own dtype),
    /// or f16 for a quantized GGUF source (the weights run in f32 either way).
    storage_dtype: DType,
    device: Device,
    path: PathBuf,
}

/// The `model_type`s of Hugging Face checkpoints this forward pass runs: Llama and Mistral (the
/// same blocks; Mistral's sliding window is wider than any input encoded here), Qwen2 (with
/// query / key / value biases) and Qwen3 (with per-head query / key RMS norms and its own head
/// width).
pub const HF_MODEL_TYPES: [&str; 4] = ["llama", "mistral", "qwen2", "qwen3"];

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

/// Checks the attention heads (`num_heads` a multiple of `num_kv_heads`) and returns how many of
/// the `file_layers` blocks to load (`keep`, at least 1, or all).
fn check_shape(
    path: &Path,
    num_heads: usize,
    num_kv_heads: usize,
    file_layers: usize,
    keep: Option<usize>,
) -> Result<usize> {
    if num_heads == 0 || num_kv_heads == 0 || !num_heads.is_multiple_of(num_kv_heads) {
        return Err(EncoderError::InvalidInput(format!(
            "{}: {num_heads} heads over {num_kv_heads} key/value heads",
            path.display()
        )));
    }
    match keep {
        None => Ok(file_layers),
        Some(n) if (1..=file_layers).contains(&n) => Ok(n),
        Some(n) => Err(EncoderError::InvalidOption {
            option: "keep",
            message: format!("{n} layers: the model has 1..={file_layers}"),
        }),
    }
}

/// The `torch_dtype` of a Hugging Face config for weights stored as `dtype`.
fn torch_dtype(dtype: DType) -> &'static str {
    match dtype {
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        _ => "float32",
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
        let num_layers = check_shape(path, num_heads, num_kv_heads, file_layers, keep)?;
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
                bq: None,
                bk: None,
                bv: None,
                q_norm: None,
                k_norm: None,
                wo: tensor(&format!("{p}.attn_output.weight"))?,
                ffn_norm: tensor(&format!("{p}.ffn_norm.weight"))?,
                gate: tensor(&format!("{p}.ffn_gate.weight"))?,
                up: tensor(&format!("{p}.ffn_up.weight"))?,
                down: tensor(&format!("{p}.ffn_down.weight"))?,
            });
        }
        let norm = tensor("output_norm.weight")?;
        let tied = !content.tensor_infos.contains_key("output.weight");
        let lm_head = match tied {
            false => tensor("output.weight")?,
            true => embeddings.clone(),
        };
        Ok(Self {
            config: LlamaConfig {
                vocab_size,
                hidden_size,
                num_layers,
                num_heads,
                num_kv_heads,
                head_dim: hidden_size / num_heads,
                rms_norm_eps,
                rope_theta,
            },
            embeddings,
            blocks,
            norm,
            lm_head,
            tied,
            interleaved_rope: true,
            differentiable: false,
            hf_config: None,
            storage_dtype: DType::F16,
            device: device.clone(),
            path: path.to_path_buf(),
        })
    }

    /// Loads a Hugging Face Llama or Qwen2 directory (`config.json` with a `model_type` of
    /// [`HF_MODEL_TYPES`], `model.safetensors`), as [`LlamaModel::save`] writes it; `keep` loads
    /// only the first blocks.
    pub fn from_safetensors(dir: &Path, keep: Option<usize>, device: &Device) -> Result<Self> {
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|error| EncoderError::Io {
            path: config_path.clone(),
            error,
        })?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|error| EncoderError::Config {
                path: config_path.clone(),
                error,
            })?;
        let field = |name: &'static str| {
            v.get(name).ok_or_else(|| EncoderError::ConfigField {
                path: config_path.clone(),
                field: name,
                message: "missing".into(),
            })
        };
        let int = |name: &'static str| -> Result<usize> {
            field(name)?
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| EncoderError::ConfigField {
                    path: config_path.clone(),
                    field: name,
                    message: "must be a positive integer".into(),
                })
        };
        let model_type = field("model_type")?.as_str().unwrap_or_default();
        if !HF_MODEL_TYPES.contains(&model_type) {
            return Err(EncoderError::ConfigField {
                path: config_path.clone(),
                field: "model_type",
                message: format!("{model_type:?}: expected one of {HF_MODEL_TYPES:?}"),
            });
        }
        let hidden_size = int("hidden_size")?;
        let num_heads = int("num_attention_heads")?;
        let num_kv_heads = v
            .get("num_key_value_heads")
            .and_then(serde_json::Value::as_u64)
            .map_or(num_heads, |n| n as usize);
        let file_layers = int("num_hidden_layers")?;
        let num_layers = check_shape(&config_path, num_heads, num_kv_heads, file_layers, keep)?;
        let head_dim = match v.get("head_dim").filter(|d| !d.is_null()) {
            Some(_) => int("head_dim")?,
            None => hidden_size / num_heads,
        };
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(EncoderError::ConfigField {
                path: config_path.clone(),
                field: "head_dim",
                message: format!("{head_dim}: the head width must be even and positive"),
            });
        }
        let rms_norm_eps = v
            .get("rms_norm_eps")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(1e-6);
        let rope_theta = v
            .get("rope_theta")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(10_000.0) as f32;
        let tied = v
            .get("tie_word_embeddings")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let weights = dir.join("model.safetensors");
        let err = gguf_error(&weights);
        // SAFETY: read-only map; tensors are copied out of it.
        let file =
            unsafe { candle_core::safetensors::MmapedSafetensors::new(&weights) }.map_err(&err)?;
        let tensor = |name: &str| -> Result<Tensor> {
            file.load(name, device)
                .and_then(|t| t.to_dtype(DType::F32))
                .map_err(&err)
        };
        let bias = |name: String| -> Result<Option<Tensor>> {
            match file.get(&name) {
                Ok(_) => tensor(&name).map(Some),
                Err(_) => Ok(None),
            }
        };
        let raw_embeddings = file
            .load("model.embed_tokens.weight", device)
            .map_err(&err)?;
        let storage_dtype = match raw_embeddings.dtype() {
            d @ (DType::F16 | DType::BF16 | DType::F32) => d,
            _ => DType::F32,
        };
        let embeddings = raw_embeddings.to_dtype(DType::F32).map_err(&err)?;
        let (vocab_size, _) = embeddings.dims2().map_err(&err)?;
        let mut blocks = Vec::with_capacity(num_layers);
        for l in 0..num_layers {
            let p = format!("model.layers.{l}");
            blocks.push(Block {
                attn_norm: tensor(&format!("{p}.input_layernorm.weight"))?,
                wq: tensor(&format!("{p}.self_attn.q_proj.weight"))?,
                wk: tensor(&format!("{p}.self_attn.k_proj.weight"))?,
                wv: tensor(&format!("{p}.self_attn.v_proj.weight"))?,
                bq: bias(format!("{p}.self_attn.q_proj.bias"))?,
                bk: bias(format!("{p}.self_attn.k_proj.bias"))?,
                bv: bias(format!("{p}.self_attn.v_proj.bias"))?,
                q_norm: bias(format!("{p}.self_attn.q_norm.weight"))?,
                k_norm: bias(format!("{p}.self_attn.k_norm.weight"))?,
                wo: tensor(&format!("{p}.self_attn.o_proj.weight"))?,
                ffn_norm: tensor(&format!("{p}.post_attention_layernorm.weight"))?,
                gate: tensor(&format!("{p}.mlp.gate_proj.weight"))?,
                up: tensor(&format!("{p}.mlp.up_proj.weight"))?,
                down: tensor(&format!("{p}.mlp.down_proj.weight"))?,
            });
        }
        let norm = tensor("model.norm.weight")?;
        let lm_head = match tied {
            true => embeddings.clone(),
            false => tensor("lm_head.weight")?,
        };
        Ok(Self {
            config: LlamaConfig {
                vocab_size,
                hidden_size,
                num_layers,
                num_heads,
                num_kv_heads,
                head_dim,
                rms_norm_eps,
                rope_theta,
            },
            embeddings,
            blocks,
            norm,
            lm_head,
            tied,
            interleaved_rope: false,
            differentiable: false,
            hf_config: Some(v),
            storage_dtype,
            device: device.clone(),
            path: dir.to_path_buf(),
        })
    }

    /// Writes the model as a Hugging Face directory: `model.safetensors` (q and k in the
    /// rotate-halves layout) and `config.json` (a Llama one for a GGUF model; the loaded one with
    /// the shape updated for a Hugging Face model). The tokenizer is the caller's to write.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(EncoderError::io(dir))?;
        let c = &self.config;
        let dh = c.head_dim;
        // GGUF's interleaved rows [head, pair, 2] back to [head, 2, pair].
        let halves = |w: &Tensor, heads: usize| -> candle_core::Result<Tensor> {
            if !self.interleaved_rope {
                return Ok(w.clone());
            }
            let shape = w.dims().to_vec();
            let inp: usize = shape[1..].iter().product();
            w.reshape((heads, dh / 2, 2, inp))?
                .transpose(1, 2)?
                .contiguous()?
                .reshape(shape)
        };
        let mut tensors = std::collections::HashMap::new();
        tensors.insert(
            "model.embed_tokens.weight".to_string(),
            self.embeddings.clone(),
        );
        for (l, b) in self.blocks.iter().enumerate() {
            let p = format!("model.layers.{l}");
            // Cloning a block clones handles to its tensors, not their data.
            let mut b = b.clone();
            let (weights, biases) = b.named_mut();
            for (name, t) in weights {
                let t = match name {
                    "self_attn.q_proj.weight" => halves(t, c.num_heads)?,
                    "self_attn.k_proj.weight" => halves(t, c.num_kv_heads)?,
                    _ => t.clone(),
                };
                tensors.insert(format!("{p}.{name}"), t);
            }
            for (name, t) in biases {
                if let Some(t) = t {
                    tensors.insert(format!("{p}.{name}"), t.clone());
                }
            }
        }
        tensors.insert("model.norm.weight".to_string(), self.norm.clone());
        if !self.tied {
            tensors.insert("lm_head.weight".to_string(), self.lm_head.clone());
        }
        // Written at the source's precision, not the f32 the forward pass runs in.
        for t in tensors.values_mut() {
            *t = t.to_dtype(self.storage_dtype).map_err(gguf_error(dir))?;
        }
        let weights = dir.join("model.safetensors");
        let tmp = dir.join(".model.safetensors.tmp");
        candle_core::safetensors::save(&tensors, &tmp).map_err(gguf_error(&tmp))?;
        crate::model_dir::readable(&tmp).map_err(EncoderError::io(&tmp))?;
        std::fs::rename(&tmp, &weights).map_err(EncoderError::io(&weights))?;
        let intermediate = self.blocks.first().map_or(0, |b| b.gate.dims()[0]);
        let mut config = self.hf_config.clone().unwrap_or_else(|| {
            serde_json::json!({
                "architectures": ["LlamaForCausalLM"],
                "model_type": "llama",
                "hidden_act": "silu",
                "rope_theta": c.rope_theta,
            })
        });
        if let Some(fields) = config.as_object_mut() {
            for (key, value) in [
                ("vocab_size", serde_json::json!(c.vocab_size)),
                ("hidden_size", serde_json::json!(c.hidden_size)),
                ("intermediate_size", serde_json::json!(intermediate)),
                ("num_hidden_layers", serde_json::json!(c.num_layers)),
                ("num_attention_heads", serde_json::json!(c.num_heads)),
                ("num_key_value_heads", serde_json::json!(c.num_kv_heads)),
                ("rms_norm_eps", serde_json::json!(c.rms_norm_eps)),
                ("tie_word_embeddings", serde_json::json!(self.tied)),
                (
                    "torch_dtype",
                    serde_json::json!(torch_dtype(self.storage_dtype)),
                ),
            ] {
                fields.insert(key.into(), value);
            }
            if fields.contains_key("max_window_layers") {
                fields.insert("max_window_layers".into(), serde_json::json!(c.num_layers));
            }
        }
        let path = dir.join("config.json");
        let text = serde_json::to_string_pretty(&config).unwrap_or_default();
        std::fs::write(&path, text + "\n").map_err(EncoderError::io(&path))
    }

    /// Turns every weight into a trainable `Var` and switches the forward pass to ops that all
    /// have a backward (the rotary embeddings through composed ops). Returns the weights by their
    /// Hugging Face names; gradients of a loss computed afterwards reach each of them.
    pub fn make_trainable(&mut self) -> Result<Vec<(String, Var)>> {
        fn var(t: &mut Tensor, name: String, out: &mut Vec<(String, Var)>) -> Result<()> {
            let v = Var::from_tensor(t)?;
            *t = v.as_tensor().clone();
            out.push((name, v));
            Ok(())
        }
        let mut out = Vec::new();
        var(
            &mut self.embeddings,
            "model.embed_tokens.weight".into(),
            &mut out,
        )?;
        if self.tied {
            self.lm_head = self.embeddings.clone();
        }
        for (l, b) in self.blocks.iter_mut().enumerate() {
            let p = format!("model.layers.{l}");
            let (weights, biases) = b.named_mut();
            for (name, t) in weights {
                var(t, format!("{p}.{name}"), &mut out)?;
            }
            for (name, t) in biases {
                if let Some(t) = t {
                    var(t, format!("{p}.{name}"), &mut out)?;
                }
            }
        }
        var(&mut self.norm, "model.norm.weight".into(), &mut out)?;
        if !self.tied {
            var(&mut self.lm_head, "lm_head.weight".into(), &mut out)?;
        }
        self.differentiable = true;
        Ok(out)
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
        let dh = c.head_dim;
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
            let heads_of =
                |w: &Tensor, bias: &Option<Tensor>, n: usize| -> candle_core::Result<Tensor> {
                    let projected = y.broadcast_matmul(&w.t()?)?;
                    let projected = match bias {
                        Some(bias) => projected.broadcast_add(bias)?,
                        None => projected,
                    };
                    projected
                        .reshape((b, len, n, dh))?
                        .transpose(1, 2)?
                        .contiguous()
                };
            let rotate = |t: Tensor| -> candle_core::Result<Tensor> {
                use candle_nn::rotary_emb::{rope, rope_i, rope_i_slow, rope_slow};
                match (self.interleaved_rope, self.differentiable) {
                    (true, false) => rope_i(&t, &cos, &sin),
                    (true, true) => rope_i_slow(&t, &cos, &sin),
                    (false, false) => rope(&t, &cos, &sin),
                    (false, true) => rope_slow(&t, &cos, &sin),
                }
            };
            let head_norm = |t: Tensor, w: &Option<Tensor>| match w {
                Some(w) => self.rms_norm(&t, w),
                None => Ok(t),
            };
            let q = rotate(head_norm(
                heads_of(&block.wq, &block.bq, heads)?,
                &block.q_norm,
            )?)?;
            let k = rotate(head_norm(
                heads_of(&block.wk, &block.bk, kv)?,
                &block.k_norm,
            )?)?;
            let v = heads_of(&block.wv, &block.bv, kv)?;
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
                .reshape((b, len, heads * dh))?;
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

    /// The final RMSNorm applied to states of any depth (`[.., hidden]`), as the LM head reads
    /// them.
    pub fn final_norm(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.rms_norm(x, &self.norm)
    }

    /// Vocabulary logits of hidden states `[.., hidden]`.
    pub fn logits(&self, hidden: &Tensor) -> candle_core::Result<Tensor> {
        hidden.broadcast_matmul(&self.lm_head.t()?)
    }
}
