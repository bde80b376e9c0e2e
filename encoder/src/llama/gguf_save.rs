//! Writing a model read from GGUF back as GGUF, each tensor at the quantization it had there.

use std::io::{BufWriter, Write};
use std::path::Path;

use candle_core::quantized::{gguf_file, QTensor};
use candle_core::Tensor;

use super::{gguf_error, LlamaModel};
use crate::error::{EncoderError, Result};

impl LlamaModel {
    /// Writes the model as a GGUF file at `path`: the source file's metadata (its tokenizer
    /// included) with the block count of the layers kept, and every tensor quantized to the type
    /// it has in the source, so the file is no larger than the source (a pruned model's zeroed
    /// weights stay zero under symmetric types such as Q8_0 and Q4_0; an affine type such as
    /// Q4_1 stores each block's values as its minimum plus a step, so they come back as values
    /// within half a step of zero). Tensors of the source this model does not run are copied
    /// unchanged; those of the blocks cut away are left out. Only for a model read with
    /// [`LlamaModel::from_gguf`]. Written to a temporary file beside `path`, then renamed.
    pub fn save_gguf(&self, path: &Path) -> Result<()> {
        if self.hf_config.is_some() {
            return Err(EncoderError::InvalidInput(format!(
                "{}: a Hugging Face model is written as a directory, not as GGUF",
                self.path.display()
            )));
        }
        let source = &self.path;
        let read_err = gguf_error(source);
        let mut file = std::fs::File::open(source).map_err(EncoderError::io(source))?;
        let content = gguf_file::Content::read(&mut file).map_err(&read_err)?;

        let layers = self.blocks.len();
        let mut metadata: Vec<(String, gguf_file::Value)> = content
            .metadata
            .iter()
            // The writer pads to its own alignment (32 bytes, GGUF's default).
            .filter(|(key, _)| key.as_str() != "general.alignment")
            .map(|(key, value)| {
                let value = match key.as_str() {
                    "llama.block_count" => gguf_file::Value::U32(layers as u32),
                    _ => value.clone(),
                };
                (key.clone(), value)
            })
            .collect();
        metadata.sort_by(|a, b| a.0.cmp(&b.0));

        // The source's tensors in file order.
        let mut infos: Vec<_> = content.tensor_infos.iter().collect();
        infos.sort_by_key(|(_, info)| info.offset);
        let write_err = gguf_error(path);
        let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(infos.len());
        for (name, info) in infos {
            let q = match self.gguf_tensor(name) {
                GgufTensor::Cut => continue,
                GgufTensor::Held(t) => QTensor::quantize(t, info.ggml_dtype).map_err(&write_err)?,
                GgufTensor::Unused => content
                    .tensor(&mut file, name, &candle_core::Device::Cpu)
                    .map_err(&read_err)?,
            };
            tensors.push((name.clone(), q));
        }

        let name = path
            .file_name()
            .map_or_else(|| "model.gguf".into(), |n| n.to_string_lossy().into_owned());
        let tmp = path.with_file_name(format!(".{name}.tmp"));
        let written = (|| -> Result<()> {
            let out = std::fs::File::create(&tmp).map_err(EncoderError::io(&tmp))?;
            let mut out = BufWriter::new(out);
            let metadata: Vec<(&str, &gguf_file::Value)> =
                metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
            let tensors: Vec<(&str, &QTensor)> =
                tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
            gguf_file::write(&mut out, &metadata, &tensors).map_err(gguf_error(&tmp))?;
            out.flush().map_err(EncoderError::io(&tmp))?;
            out.get_ref().sync_all().map_err(EncoderError::io(&tmp))?;
            drop(out);
            crate::model_dir::readable(&tmp).map_err(EncoderError::io(&tmp))?;
            std::fs::rename(&tmp, path).map_err(EncoderError::io(path))
        })();
        if written.is_err() {
            // Nothing half-written is left behind; an earlier file at `path` is untouched.
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// The weight this model holds for the GGUF tensor `name`.
    fn gguf_tensor(&self, name: &str) -> GgufTensor<'_> {
        match name {
            "token_embd.weight" => return GgufTensor::Held(&self.embeddings),
            "output_norm.weight" => return GgufTensor::Held(&self.norm),
            "output.weight" if !self.tied => return GgufTensor::Held(&self.lm_head),
            _ => {}
        }
        let Some((layer, weight)) = name
            .strip_prefix("blk.")
            .and_then(|rest| rest.split_once('.'))
            .and_then(|(l, w)| Some((l.parse::<usize>().ok()?, w)))
        else {
            return GgufTensor::Unused;
        };
        let Some(b) = self.blocks.get(layer) else {
            return GgufTensor::Cut;
        };
        let t = match weight {
            "attn_norm.weight" => &b.attn_norm,
            "attn_q.weight" => &b.wq,
            "attn_k.weight" => &b.wk,
            "attn_v.weight" => &b.wv,
            "attn_output.weight" => &b.wo,
            "ffn_norm.weight" => &b.ffn_norm,
            "ffn_gate.weight" => &b.gate,
            "ffn_up.weight" => &b.up,
            "ffn_down.weight" => &b.down,
            _ => return GgufTensor::Unused,
        };
        GgufTensor::Held(t)
    }
}

/// Where a tensor of the source GGUF file stands in the model.
enum GgufTensor<'a> {
    /// The model's (possibly pruned) weight.
    Held(&'a Tensor),
    /// A tensor of a block the layer cut removed.
    Cut,
    /// A tensor the forward pass does not use: copied from the source.
    Unused,
}
