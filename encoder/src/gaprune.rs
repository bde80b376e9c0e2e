//! GAPrune: domain-aware pruning of a decoder's MLP weights, and the magnitude baseline.
//!
//! On (query, positive) pairs of a domain and of a general corpus, the InfoNCE loss of mean-pooled
//! final states (in-batch negatives, temperature 0.05) is differentiated batch by batch:
//!
//! - Fisher information per weight: `F = mean over batches of g²`;
//! - mean gradient per weight: `ĝ = mean over batches of g`, divided by its tensor's L2 norm;
//! - alignment `a = ĝ_gen ⊙ ĝ_dom` (per weight);
//! - Domain Alignment Importance
//!   `DAI = softplus((F_dom − β F_gen) |θ| clip(1 + 0.2 a, 0.8, 1.2) + γ sqrt(|θ|))`, β = 1, γ = 0.5.
//!
//! The weights of the MLP projections (gate, up, down of every layer) with the lowest DAI, ranked
//! together over all layers, are set to zero ([`prune_lowest`]); magnitude pruning ranks `|θ|`
//! the same way.

use std::collections::HashMap;

use candle_core::{Device, Tensor, Var};

use crate::batching::pad_batch;
use crate::error::{EncoderError, Result};
use crate::llama::LlamaModel;

/// β of the DAI.
pub const BETA: f64 = 1.0;
/// γ of the DAI.
pub const GAMMA: f64 = 0.5;
const TEMPERATURE: f64 = 0.05;

/// Whether a weight (by Hugging Face name) is one of the MLP projections GAPrune prunes.
pub fn is_mlp(name: &str) -> bool {
    name.ends_with("mlp.gate_proj.weight")
        || name.ends_with("mlp.up_proj.weight")
        || name.ends_with("mlp.down_proj.weight")
}

/// Per-weight statistics of the loss gradients over a set of pairs.
#[derive(Debug)]
pub struct GradientStats {
    /// Mean of squared gradients (Fisher information), by weight name.
    pub fisher: HashMap<String, Tensor>,
    /// Mean gradient, by weight name.
    pub mean: HashMap<String, Tensor>,
    /// Batches averaged.
    pub batches: usize,
}

/// The mean of each text's final states over its tokens, L2-normalized (`[b, hidden]`), as
/// mean-pooled dense embeddings are.
pub(crate) fn pooled(model: &LlamaModel, ids: &[Vec<u32>], device: &Device) -> Result<Tensor> {
    Ok(pooled_and_sparse(model, ids, false, device)?.0)
}

/// [`pooled`], and when `sparse` each text's vector over the vocabulary as the LM head gives it
/// (`max over tokens of log(1 + relu(logit))`, `[b, vocab]`), as sparse vectors are encoded.
pub(crate) fn pooled_and_sparse(
    model: &LlamaModel,
    ids: &[Vec<u32>],
    sparse: bool,
    device: &Device,
) -> Result<(Tensor, Option<Tensor>)> {
    let lens: Vec<usize> = ids.iter().map(Vec::len).collect();
    let (t, m, _) = pad_batch(ids, 0, device)?;
    let h = model.hidden_states(&t, &m)?;
    let mut dense = Vec::with_capacity(lens.len());
    let mut vocab = Vec::new();
    for (row, &n) in lens.iter().enumerate() {
        let states = h.get(row)?.narrow(0, 0, n)?;
        let v = states.mean(0)?;
        let norm = (v.sqr()?.sum_all()? + 1e-12)?.sqrt()?;
        dense.push(v.broadcast_div(&norm)?);
        if sparse {
            let top = model.logits(&states)?.max(0)?;
            vocab.push(top.relu()?.affine(1.0, 1.0)?.log()?);
        }
    }
    let sparse = match sparse {
        true => Some(Tensor::stack(&vocab, 0)?),
        false => None,
    };
    Ok((Tensor::stack(&dense, 0)?, sparse))
}

/// The InfoNCE loss of a batch of (query ids, positive ids) pairs.
pub fn pair_loss(model: &LlamaModel, pairs: &[(Vec<u32>, Vec<u32>)]) -> Result<Tensor> {
    if pairs.len() < 2 || pairs.iter().any(|(q, d)| q.is_empty() || d.is_empty()) {
        return Err(EncoderError::InvalidInput(
            "a batch needs at least 2 pairs of non-empty texts".into(),
        ));
    }
    let device = Device::Cpu;
    let (qs, ds): (Vec<Vec<u32>>, Vec<Vec<u32>>) = pairs.iter().cloned().unzip();
    let q = pooled(model, &qs, &device)?;
    let d = pooled(model, &ds, &device)?;
    let scores = (q.matmul(&d.t()?)? / TEMPERATURE)?;
    Ok(crate::train::in_batch_loss(&scores)?.0)
}

/// How many batches [`gradient_stats`] takes from `pairs` pairs in batches of `batch` (at least
/// 2): a last batch of one pair is left out, as it has no negative.
pub fn gradient_batches(pairs: usize, batch: usize) -> usize {
    let batch = batch.max(2);
    pairs / batch + usize::from(pairs % batch >= 2)
}

/// Gradient statistics of the MLP weights over `pairs`, in the [`gradient_batches`] batches of
/// `batch`; `on_batch` is called after each batch.
pub fn gradient_stats(
    model: &LlamaModel,
    vars: &[(String, Var)],
    pairs: &[(Vec<u32>, Vec<u32>)],
    batch: usize,
    on_batch: &mut dyn FnMut(),
) -> Result<GradientStats> {
    let batches = gradient_batches(pairs.len(), batch);
    if batches == 0 {
        return Err(EncoderError::InvalidInput(
            "no batch of at least 2 pairs".into(),
        ));
    }
    let mut fisher: HashMap<String, Tensor> = HashMap::new();
    let mut mean: HashMap<String, Tensor> = HashMap::new();
    for chunk in pairs.chunks(batch.max(2)).take(batches) {
        let loss = pair_loss(model, chunk)?;
        let grads = loss.backward()?;
        for (name, v) in vars.iter().filter(|(n, _)| is_mlp(n)) {
            let g = grads.get(v.as_tensor()).ok_or_else(|| {
                EncoderError::InvalidInput(format!("{name} received no gradient"))
            })?;
            let sq = g.sqr()?;
            match fisher.get_mut(name) {
                Some(f) => *f = (&*f + sq)?,
                None => {
                    fisher.insert(name.clone(), sq);
                }
            }
            match mean.get_mut(name) {
                Some(m) => *m = (&*m + g)?,
                None => {
                    mean.insert(name.clone(), g.clone());
                }
            }
        }
        on_batch();
    }
    let n = batches as f64;
    for t in fisher.values_mut().chain(mean.values_mut()) {
        *t = (&*t / n)?;
    }
    Ok(GradientStats {
        fisher,
        mean,
        batches,
    })
}

/// The DAI of one weight tensor (see the module documentation).
pub fn dai(
    theta: &Tensor,
    f_dom: &Tensor,
    f_gen: &Tensor,
    g_dom: &Tensor,
    g_gen: &Tensor,
) -> Result<Tensor> {
    let unit = |g: &Tensor| -> candle_core::Result<Tensor> {
        let norm = (g.sqr()?.sum_all()? + 1e-30)?.sqrt()?;
        g.broadcast_div(&norm)
    };
    let a = (unit(g_gen)? * unit(g_dom)?)?;
    let factor = ((a * 0.2)? + 1.0)?.clamp(0.8f32, 1.2f32)?;
    let abs = theta.abs()?;
    let x = ((((f_dom - (f_gen * BETA)?)? * &abs)? * factor)? + (abs.sqrt()? * GAMMA)?)?;
    // softplus(x) = log(1 + exp(x)), computed stably as max(x, 0) + log(1 + exp(-|x|)).
    let stable = (x.relu()? + ((x.abs()?.neg()?.exp()? + 1.0)?.log()?))?;
    Ok(stable)
}

/// Zeroes the fraction `sparsity` of the MLP weights with the lowest `score` (one ranking over
/// all of them; ties broken by position) and returns how many were zeroed.
pub fn prune_lowest(
    vars: &[(String, Var)],
    scores: &HashMap<String, Tensor>,
    sparsity: f64,
) -> Result<usize> {
    if !(0.0..1.0).contains(&sparsity) {
        return Err(EncoderError::InvalidOption {
            option: "sparsity",
            message: format!("{sparsity} is not in [0, 1)"),
        });
    }
    let mlp: Vec<&(String, Var)> = vars.iter().filter(|(n, _)| is_mlp(n)).collect();
    let mut all: Vec<f32> = Vec::new();
    let mut flat_scores = Vec::with_capacity(mlp.len());
    for (name, _) in &mlp {
        let s = scores
            .get(name)
            .ok_or_else(|| EncoderError::InvalidInput(format!("no score for {name}")))?
            .flatten_all()?
            .to_vec1::<f32>()?;
        all.extend_from_slice(&s);
        flat_scores.push(s);
    }
    let cut = (all.len() as f64 * sparsity).floor() as usize;
    if cut == 0 {
        return Ok(0);
    }
    let mut sorted = all;
    let (_, &mut threshold, _) = sorted.select_nth_unstable_by(cut - 1, f32::total_cmp);
    // Strictly below the threshold, then ties at it in order until `cut` are zeroed.
    let below = flat_scores
        .iter()
        .flatten()
        .filter(|&&s| s < threshold)
        .count();
    let mut ties_left = cut - below;
    let mut zeroed = 0usize;
    for ((_, var), s) in mlp.iter().zip(&flat_scores) {
        let shape = var.as_tensor().shape().clone();
        let mut w = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
        for (x, &score) in w.iter_mut().zip(s) {
            let drop = score < threshold
                || (score == threshold && ties_left > 0 && {
                    ties_left -= 1;
                    true
                });
            if drop {
                *x = 0.0;
                zeroed += 1;
            }
        }
        var.set(&Tensor::from_vec(w, shape, &Device::Cpu)?)?;
    }
    Ok(zeroed)
}

/// Magnitude scores `|θ|` of the MLP weights.
pub fn magnitude_scores(vars: &[(String, Var)]) -> Result<HashMap<String, Tensor>> {
    vars.iter()
        .filter(|(n, _)| is_mlp(n))
        .map(|(n, v)| Ok((n.clone(), v.as_tensor().abs()?)))
        .collect()
}

/// GAPrune scores of the MLP weights from the domain and general statistics.
pub fn gaprune_scores(
    vars: &[(String, Var)],
    domain: &GradientStats,
    general: &GradientStats,
) -> Result<HashMap<String, Tensor>> {
    let get = |m: &HashMap<String, Tensor>, n: &str| {
        m.get(n)
            .cloned()
            .ok_or_else(|| EncoderError::InvalidInput(format!("no gradient statistics for {n}")))
    };
    vars.iter()
        .filter(|(n, _)| is_mlp(n))
        .map(|(n, v)| {
            let s = dai(
                v.as_tensor(),
                &get(&domain.fisher, n)?,
                &get(&general.fisher, n)?,
                &get(&domain.mean, n)?,
                &get(&general.mean, n)?,
            )?;
            Ok((n.clone(), s))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dai_follows_the_formula() {
        let d = Device::Cpu;
        let t = |v: &[f32]| Tensor::new(v, &d).unwrap();
        let theta = t(&[0.5, -2.0, 0.0]);
        let (fd, fg) = (t(&[4.0, 1.0, 3.0]), t(&[1.0, 2.0, 0.0]));
        let (gd, gg) = (t(&[1.0, 0.0, 0.0]), t(&[1.0, 0.0, 0.0]));
        let got = dai(&theta, &fd, &fg, &gd, &gg)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let softplus = |x: f64| (1.0 + x.exp()).ln();
        // a = [1, 0, 0] (unit vectors): factor clip(1.2) = 1.2, then 1, 1.
        let want = [
            softplus((4.0 - 1.0) * 0.5 * 1.2 + 0.5 * 0.5f64.sqrt()),
            softplus((1.0 - 2.0) * 2.0 * 1.0 + 0.5 * 2.0f64.sqrt()),
            softplus(0.0),
        ];
        for (g, w) in got.iter().zip(want) {
            assert!((f64::from(*g) - w).abs() < 1e-5, "{g} vs {w}");
        }
    }

    #[test]
    fn prunes_exactly_the_lowest_fraction_over_all_mlp_weights() {
        let d = Device::Cpu;
        let mk = |v: Vec<f32>| Var::from_tensor(&Tensor::from_vec(v, (2, 2), &d).unwrap()).unwrap();
        let vars = vec![
            (
                "model.layers.0.mlp.up_proj.weight".to_string(),
                mk(vec![1.0, -5.0, 0.5, 2.0]),
            ),
            (
                "model.layers.1.mlp.down_proj.weight".to_string(),
                mk(vec![-0.1, 3.0, 4.0, 0.2]),
            ),
            (
                "model.layers.0.self_attn.q_proj.weight".to_string(),
                mk(vec![0.0; 4]),
            ),
        ];
        let scores = magnitude_scores(&vars).unwrap();
        assert_eq!(scores.len(), 2, "only MLP weights are scored");
        assert_eq!(prune_lowest(&vars, &scores, 0.5).unwrap(), 4);
        let w0 = vars[0]
            .1
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let w1 = vars[1]
            .1
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(w0, vec![0.0, -5.0, 0.0, 2.0]);
        assert_eq!(w1, vec![0.0, 3.0, 4.0, 0.0]);
        assert!(prune_lowest(&vars, &scores, 1.0).is_err());
    }
}
