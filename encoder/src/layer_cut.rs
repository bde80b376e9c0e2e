//! Choosing how many layers of a decoder to keep (L3Prune) and showing which blocks of layers
//! are redundant (the angular distance of Gromov et al.).
//!
//! - [`angular_distances`]: for a block of `n` layers starting at `l`,
//!   `d(l, l + n) = arccos(cos(x_l, x_{l+n})) / pi`, `x_l` the input of layer `l` at each text's
//!   last real token, averaged over texts. Small means the block changes little.
//! - [`layer_losses`]: for every depth `l` (the states after `l` layers through the final
//!   RMSNorm, as the LM head would read them, mean-pooled over real tokens and L2-normalised;
//!   without the norm a few very large residual dimensions make every text look alike), the untrained InfoNCE loss of (query, positive) pairs with the
//!   other positives of the set as negatives, temperature 0.05. L3Prune keeps the depth with the
//!   lowest loss in the lower half, or in the upper half for the larger model ([`best_depths`]).

use candle_core::{Device, Tensor};

use crate::batching::pad_batch;
use crate::error::{EncoderError, Result};
use crate::llama::LlamaModel;
use crate::token_embed::l2_normalize;

/// The states of every depth for a right-padded batch: `states[l]` is `[b, len, hidden]`, the
/// input of layer `l` (the last entry is the last layer's output).
fn all_states(
    model: &LlamaModel,
    ids: &[Vec<u32>],
    pad: u32,
    device: &Device,
) -> Result<(Vec<Tensor>, Vec<usize>)> {
    if ids.is_empty() || ids.iter().any(Vec::is_empty) {
        return Err(EncoderError::InvalidInput(
            "every text needs at least one token".into(),
        ));
    }
    let lens: Vec<usize> = ids.iter().map(Vec::len).collect();
    let (t, m, _) = pad_batch(ids, pad, device)?;
    Ok((model.forward_all(&t, &m)?, lens))
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        (dot / (na * nb)).clamp(-1.0, 1.0)
    }
}

/// `d(l, l + n)` for `l` in `0..=L - n` (see the module documentation), over token id sequences.
pub fn angular_distances(model: &LlamaModel, ids: &[Vec<u32>], n: usize) -> Result<Vec<f32>> {
    let layers = model.config().num_layers;
    if n == 0 || n > layers {
        return Err(EncoderError::InvalidOption {
            option: "n",
            message: format!("a block of {n} layers: the model has {layers}"),
        });
    }
    let (states, lens) = all_states(model, ids, 0, &Device::Cpu)?;
    // x_l is the input of layer l; x_L is the last layer's output.
    let last_token = |l: usize, row: usize| -> Result<Vec<f32>> {
        Ok(states[l].get(row)?.get(lens[row] - 1)?.to_vec1::<f32>()?)
    };
    let mut out = Vec::with_capacity(layers - n + 1);
    for l in 0..=layers - n {
        let mut sum = 0.0f32;
        for row in 0..ids.len() {
            let c = cosine(&last_token(l, row)?, &last_token(l + n, row)?);
            sum += c.acos() / std::f32::consts::PI;
        }
        out.push(sum / ids.len() as f32);
    }
    Ok(out)
}

/// The untrained InfoNCE loss at every depth `0..=L` (see the module documentation).
pub fn layer_losses(
    model: &LlamaModel,
    queries: &[Vec<u32>],
    positives: &[Vec<u32>],
) -> Result<Vec<f32>> {
    if queries.len() != positives.len() || queries.len() < 2 {
        return Err(EncoderError::InvalidInput(
            "layer losses need at least 2 (query, positive) pairs".into(),
        ));
    }
    let (qs, ql) = all_states(model, queries, 0, &Device::Cpu)?;
    let (ds, dl) = all_states(model, positives, 0, &Device::Cpu)?;
    let pooled = |states: &Tensor, lens: &[usize]| -> Result<Vec<Vec<f32>>> {
        lens.iter()
            .enumerate()
            .map(|(row, &n)| {
                let real = model.final_norm(&states.get(row)?.narrow(0, 0, n)?)?;
                let mut v = real.mean(0)?.to_vec1::<f32>()?;
                l2_normalize(&mut v);
                Ok(v)
            })
            .collect()
    };
    let tau = 0.05f32;
    let mut out = Vec::with_capacity(qs.len());
    for (q_states, d_states) in qs.iter().zip(&ds) {
        let q = pooled(q_states, &ql)?;
        let d = pooled(d_states, &dl)?;
        let mut loss = 0.0f32;
        for (i, qi) in q.iter().enumerate() {
            let scores: Vec<f32> = d
                .iter()
                .map(|dj| qi.iter().zip(dj).map(|(a, b)| a * b).sum::<f32>() / tau)
                .collect();
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let log_sum = max + scores.iter().map(|s| (s - max).exp()).sum::<f32>().ln();
            loss += log_sum - scores[i];
        }
        out.push(loss / q.len() as f32);
    }
    Ok(out)
}

/// L3Prune's choice from per-depth losses (index = layers kept): the depth with the lowest loss
/// in the lower half (`1..=L/2`) and in the upper half (`L/2+1..=L`).
pub fn best_depths(losses: &[f32]) -> (usize, usize) {
    let layers = losses.len().saturating_sub(1);
    let best = |range: std::ops::RangeInclusive<usize>| {
        range
            .filter(|&l| l < losses.len())
            .min_by(|&a, &b| losses[a].total_cmp(&losses[b]).then(a.cmp(&b)))
            .unwrap_or(layers)
    };
    (best(1..=layers / 2), best(layers / 2 + 1..=layers))
}
