//! Reading a BERT `config.json` into candle's configuration.

use std::path::Path;

use candle_transformers::models::bert::Config as BertConfig;
use serde_json::Value;

use crate::error::{EncoderError, Result};

/// Reads a Hugging Face BERT `config.json`.
///
/// Accepts the activation names transformers writes: `gelu` (exact, erf-based), `gelu_new`,
/// `gelu_pytorch_tanh`, `gelu_fast` (tanh approximation) and `relu`. Missing optional fields take
/// BERT's defaults.
pub fn read_bert_config(path: &Path) -> Result<BertConfig> {
    let text = std::fs::read_to_string(path).map_err(|source| EncoderError::Io {
        path: path.to_path_buf(),
        error: source,
    })?;
    parse_bert_config(&text, path)
}

fn parse_bert_config(text: &str, path: &Path) -> Result<BertConfig> {
    let bad_json = |source| EncoderError::Config {
        path: path.to_path_buf(),
        error: source,
    };
    let field_error = |field: &'static str, message: String| EncoderError::ConfigField {
        path: path.to_path_buf(),
        field,
        message,
    };

    let mut value: Value = serde_json::from_str(text).map_err(bad_json)?;
    let Some(map) = value.as_object_mut() else {
        return Err(field_error("(top level)", "expected a JSON object".into()));
    };

    // Normalise the activation to the names candle's enum understands.
    let act = match map.get("hidden_act") {
        None => "gelu".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(field_error(
                "hidden_act",
                format!("expected a string, got {other}"),
            ))
        }
    };
    let candle_act = match act.as_str() {
        "gelu" => "gelu",
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => "geluapproximate",
        "relu" => "relu",
        other => {
            return Err(field_error(
                "hidden_act",
                format!("unsupported activation `{other}` (expected gelu, gelu_new, relu)"),
            ))
        }
    };
    map.insert("hidden_act".into(), Value::from(candle_act));

    // Defaults for fields that do not affect inference but candle's struct requires.
    for (field, default) in [
        ("hidden_dropout_prob", Value::from(0.1)),
        ("initializer_range", Value::from(0.02)),
        ("type_vocab_size", Value::from(2)),
        ("layer_norm_eps", Value::from(1e-12)),
        ("pad_token_id", Value::from(0)),
    ] {
        if map.get(field).is_none_or(Value::is_null) {
            map.insert(field.into(), default);
        }
    }
    if let Some(kind) = map.get("position_embedding_type").and_then(Value::as_str) {
        if kind != "absolute" {
            return Err(field_error(
                "position_embedding_type",
                format!("only `absolute` is supported, got `{kind}`"),
            ));
        }
    }

    let config: BertConfig = serde_json::from_value(value).map_err(bad_json)?;

    if config.vocab_size == 0 || u32::try_from(config.vocab_size).is_err() {
        return Err(field_error(
            "vocab_size",
            format!("must be in 1..=u32::MAX, got {}", config.vocab_size),
        ));
    }
    if config.hidden_size == 0 {
        return Err(field_error("hidden_size", "must be positive".into()));
    }
    if config.num_attention_heads == 0
        || !config
            .hidden_size
            .is_multiple_of(config.num_attention_heads)
    {
        return Err(field_error(
            "num_attention_heads",
            format!(
                "must divide hidden_size {} (got {})",
                config.hidden_size, config.num_attention_heads
            ),
        ));
    }
    if config.max_position_embeddings < 2 {
        return Err(field_error(
            "max_position_embeddings",
            format!("must be at least 2, got {}", config.max_position_embeddings),
        ));
    }
    if config.pad_token_id >= config.vocab_size {
        return Err(field_error(
            "pad_token_id",
            format!(
                "{} is outside the vocabulary of {}",
                config.pad_token_id, config.vocab_size
            ),
        ));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_transformers::models::bert::HiddenAct;

    const TINY: &str = r#"{
        "architectures": ["BertForMaskedLM"], "hidden_act": "gelu", "hidden_size": 128,
        "intermediate_size": 512, "max_position_embeddings": 512, "model_type": "bert",
        "num_attention_heads": 2, "num_hidden_layers": 2, "vocab_size": 30522,
        "position_embedding_type": "absolute", "classifier_dropout": null
    }"#;

    fn parse(text: &str) -> Result<BertConfig> {
        parse_bert_config(text, Path::new("/m/config.json"))
    }

    #[test]
    fn parses_a_minimal_config_with_defaults() -> Result<()> {
        let c = parse(TINY)?;
        assert_eq!(c.hidden_size, 128);
        assert_eq!(c.hidden_act, HiddenAct::Gelu);
        assert_eq!(c.pad_token_id, 0);
        assert_eq!(c.layer_norm_eps, 1e-12);
        Ok(())
    }

    #[test]
    fn maps_tanh_gelu_names() -> Result<()> {
        let c = parse(&TINY.replace("\"gelu\"", "\"gelu_new\""))?;
        assert_eq!(c.hidden_act, HiddenAct::GeluApproximate);
        Ok(())
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let err = parse(&TINY.replace("\"gelu\"", "\"swish\"")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("/m/config.json") && msg.contains("hidden_act"),
            "{msg}"
        );

        let err = parse(&TINY.replace("\"hidden_size\": 128,", "")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("/m/config.json") && msg.contains("hidden_size"),
            "{msg}"
        );

        let err = parse(&TINY.replace("\"num_attention_heads\": 2", "\"num_attention_heads\": 3"))
            .unwrap_err();
        assert!(err.to_string().contains("num_attention_heads"));

        assert!(parse("not json").is_err());
        assert!(parse("[1]").is_err());
    }
}
