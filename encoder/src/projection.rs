//! The vocabulary projection fused with max-pooling, on the CPU.
//!
//! SPLADE's cost is `[tokens, hidden] × [hidden, vocab]`, whose result is only ever reduced to a
//! per-text max. Materialising the logits (hundreds of MB per batch) costs page faults and memory
//! traffic; here the vocabulary is cut into column blocks, each block is computed in cache-sized
//! row tiles into a small reused buffer and folded into the per-text maxima at once. Column
//! blocks run in parallel on the rayon pool.

use rayon::prelude::*;

/// Vocabulary columns per parallel task.
const COLUMN_BLOCK: usize = 512;
/// Token rows per gemm call (the tile `[ROW_TILE, COLUMN_BLOCK]` stays in L2).
const ROW_TILE: usize = 128;

/// For each text `t` (rows `offset_t..offset_t + lens[t]` of `x`), the max over its rows of
/// `x · w`: returns `[lens.len() * vocab]` row-major.
///
/// `x` is `[sum(lens), hidden]` row-major, `w` is `[hidden, vocab]` row-major. A text with no rows
/// gets `-inf` everywhere.
///
/// # Panics
/// If the slice lengths do not match the shapes.
pub(crate) fn max_pooled_projection(
    x: &[f32],
    w: &[f32],
    hidden: usize,
    vocab: usize,
    lens: &[usize],
) -> Vec<f32> {
    let rows: usize = lens.iter().sum();
    assert_eq!(x.len(), rows * hidden, "x must be [tokens, hidden]");
    assert_eq!(w.len(), hidden * vocab, "w must be [hidden, vocab]");
    let texts = lens.len();

    // Text index of each row.
    let owner: Vec<usize> = lens
        .iter()
        .enumerate()
        .flat_map(|(t, &n)| std::iter::repeat_n(t, n))
        .collect();

    let blocks: Vec<(usize, Vec<f32>)> = (0..vocab.div_ceil(COLUMN_BLOCK))
        .into_par_iter()
        .map(|block| {
            let c0 = block * COLUMN_BLOCK;
            let width = COLUMN_BLOCK.min(vocab - c0);
            let mut maxima = vec![f32::NEG_INFINITY; texts * width];
            let mut tile = vec![0f32; ROW_TILE * width];
            let mut r0 = 0;
            while r0 < rows {
                let m = ROW_TILE.min(rows - r0);
                gemm_tile(
                    &mut tile[..m * width],
                    &x[r0 * hidden..(r0 + m) * hidden],
                    &w[c0..],
                    m,
                    width,
                    hidden,
                    vocab,
                );
                for (i, row) in tile[..m * width].chunks_exact(width).enumerate() {
                    let t = owner[r0 + i];
                    max_into(&mut maxima[t * width..(t + 1) * width], row);
                }
                r0 += m;
            }
            (c0, maxima)
        })
        .collect();

    let mut out = vec![f32::NEG_INFINITY; texts * vocab];
    for (c0, maxima) in blocks {
        let width = maxima.len() / texts.max(1);
        for (t, src) in maxima.chunks_exact(width.max(1)).enumerate().take(texts) {
            out[t * vocab + c0..t * vocab + c0 + width].copy_from_slice(src);
        }
    }
    out
}

/// `dst[m, n] = lhs[m, k] · rhs[k, n]` where `lhs` is row-major with row stride `k` and `rhs`
/// starts at the block's first column of a row-major matrix with row stride `rhs_stride`.
fn gemm_tile(
    dst: &mut [f32],
    lhs: &[f32],
    rhs: &[f32],
    m: usize,
    n: usize,
    k: usize,
    rhs_stride: usize,
) {
    assert!(dst.len() >= m * n);
    assert!(lhs.len() >= m * k);
    assert!(n <= rhs_stride);
    assert!(k == 0 || rhs.len() >= (k - 1) * rhs_stride + n);
    let (Ok(n_i), Ok(k_i), Ok(stride_i)) = (
        isize::try_from(n),
        isize::try_from(k),
        isize::try_from(rhs_stride),
    ) else {
        panic!("matrix dimensions exceed isize");
    };
    // SAFETY: the asserts above keep every element gemm touches inside the three slices:
    // dst is m×n with column stride 1 and row stride n; lhs is m×k with column stride 1 and row
    // stride k; rhs is k×n with column stride 1 and row stride rhs_stride >= n. `dst` is a
    // unique borrow, so it does not alias the inputs. read_dst = false: dst is only written.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n_i,
            false,
            lhs.as_ptr(),
            1,
            k_i,
            rhs.as_ptr(),
            1,
            stride_i,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `acc[j] = max(acc[j], row[j])`, written so that it vectorises.
#[inline]
pub(crate) fn max_into(acc: &mut [f32], row: &[f32]) {
    for (a, &x) in acc.iter_mut().zip(row) {
        *a = if x > *a { x } else { *a };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small deterministic pseudo-random numbers in [-1, 1).
    fn numbers(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn naive(x: &[f32], w: &[f32], hidden: usize, vocab: usize, lens: &[usize]) -> Vec<f32> {
        let mut out = vec![f32::NEG_INFINITY; lens.len() * vocab];
        let mut row = 0;
        for (t, &n) in lens.iter().enumerate() {
            for r in row..row + n {
                for j in 0..vocab {
                    let dot: f32 = (0..hidden)
                        .map(|h| x[r * hidden + h] * w[h * vocab + j])
                        .sum();
                    let o = &mut out[t * vocab + j];
                    *o = o.max(dot);
                }
            }
            row += n;
        }
        out
    }

    #[test]
    fn matches_the_naive_computation() {
        // Vocab not a multiple of the column block, rows spanning several row tiles, texts
        // crossing tile boundaries, and an empty text.
        let (hidden, vocab) = (24, COLUMN_BLOCK + 77);
        let lens = [3, ROW_TILE + 5, 0, 1, 60];
        let rows: usize = lens.iter().sum();
        let x = numbers(rows * hidden, 1);
        let w = numbers(hidden * vocab, 2);
        let got = max_pooled_projection(&x, &w, hidden, vocab, &lens);
        let want = naive(&x, &w, hidden, vocab, &lens);
        assert_eq!(got.len(), want.len());
        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
            if e.is_infinite() {
                assert_eq!(g, e, "element {i}");
            } else {
                assert!((g - e).abs() < 1e-4, "element {i}: {g} vs {e}");
            }
        }
        // The empty text stays at -inf.
        assert!(got[2 * vocab..3 * vocab]
            .iter()
            .all(|v| *v == f32::NEG_INFINITY));
    }

    #[test]
    fn no_texts() {
        assert!(max_pooled_projection(&[], &[0.0; 6], 2, 3, &[]).is_empty());
    }
}
