//! Grouping inputs into length-sorted batches so that padding stays small, and padding a batch.

use candle_core::{Device, Tensor};

/// Splits `0..lengths.len()` into batches of at most `batch_size` indices, longest inputs first
/// (equal lengths keep their input order). Padding each batch to its longest member then wastes
/// little, and the most memory-hungry batch runs first. Zero-length inputs are left out.
pub(crate) fn length_sorted_batches(lengths: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).filter(|&i| lengths[i] > 0).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    order
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

/// Token id sequences right-padded with `pad` to the longest (at least 1): ids `[b, len]` (u32)
/// and the mask (1 for a real token, u8), and `len`.
pub(crate) fn pad_batch<S: AsRef<[u32]>>(
    seqs: &[S],
    pad: u32,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor, usize)> {
    let b = seqs.len();
    let len = seqs
        .iter()
        .map(|s| s.as_ref().len())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut ids = Vec::with_capacity(b * len);
    let mut mask = Vec::with_capacity(b * len);
    for (row, seq) in seqs.iter().enumerate() {
        let seq = seq.as_ref();
        ids.extend_from_slice(seq);
        ids.resize((row + 1) * len, pad);
        mask.extend(std::iter::repeat_n(1u8, seq.len()));
        mask.resize((row + 1) * len, 0u8);
    }
    Ok((
        Tensor::from_vec(ids, (b, len), device)?,
        Tensor::from_vec(mask, (b, len), device)?,
        len,
    ))
}

#[cfg(test)]
mod tests {
    use super::length_sorted_batches;

    #[test]
    fn sorts_longest_first_and_keeps_ties_in_order() {
        let lens = [3, 9, 0, 5, 9, 1];
        let batches = length_sorted_batches(&lens, 2);
        assert_eq!(batches, vec![vec![1, 4], vec![3, 0], vec![5]]);
    }

    #[test]
    fn empty_and_degenerate_sizes() {
        assert!(length_sorted_batches(&[], 4).is_empty());
        assert_eq!(length_sorted_batches(&[2, 1], 0), vec![vec![0], vec![1]]);
    }
}
