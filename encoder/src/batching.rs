//! Grouping inputs into length-sorted batches so that padding stays small.

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
