//! Bound accumulation with the widest vector unit the CPU has, chosen at run time.
//!
//! [`add_dense`] computes `bounds[i] += w * row[i]` (a `u8` block maximum widened to `u32`, wrapping)
//! with AVX-512 (16 lanes) or AVX2 (8 lanes) when the processor has them, and otherwise with the
//! portable loop (which the compiler vectorizes for the build's baseline, SSE2 on x86-64). All
//! three give identical results; the detection result is cached by the standard library.
//!
//! [`add_sparse_page`] computes `page[blocks[i]] += w * maxes[i]` for one page of a sparse
//! block-max row: a `u16` block id always indexes the 65,536-entry page, so the loop needs no
//! bounds check. An AVX-512 variant that gathers, adds and scatters 16 entries at a time is kept
//! for measurement; it is slower than the scalar loop on the processors measured.
//!
//! [`keep_marked`] keeps the postings of a decoded chunk whose block is marked in a bit set (the
//! blocks BMP's term pass scores), 16 at a time with AVX-512: their mark words are permuted out of
//! one 512-bit window (or gathered, where the chunk spans more blocks) and the kept lanes
//! compressed.

/// `bounds[i] += w * row[i]` over `min(bounds.len(), row.len())` entries, wrapping on overflow.
#[inline]
pub fn add_dense(bounds: &mut [u32], row: &[u8], w: u32) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
        {
            // SAFETY: the CPU supports the features the function is compiled for.
            unsafe { add_dense_avx512(bounds, row, w) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            unsafe { add_dense_avx2(bounds, row, w) };
            return;
        }
    }
    add_dense_portable(bounds, row, w);
}

/// The portable loop of [`add_dense`].
#[inline]
pub fn add_dense_portable(bounds: &mut [u32], row: &[u8], w: u32) {
    for (u, &m) in bounds.iter_mut().zip(row) {
        *u = u.wrapping_add(w.wrapping_mul(u32::from(m)));
    }
}

/// [`add_dense`] compiled for AVX2 (the same loop, vectorized 8 lanes wide).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub unsafe fn add_dense_avx2(bounds: &mut [u32], row: &[u8], w: u32) {
    add_dense_portable(bounds, row, w);
}

/// [`add_dense`] compiled for AVX-512 (the same loop, vectorized 16 lanes wide).
///
/// # Safety
/// The CPU must support AVX-512 F and BW.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
pub unsafe fn add_dense_avx512(bounds: &mut [u32], row: &[u8], w: u32) {
    add_dense_portable(bounds, row, w);
}

/// Entries in one page of bounds: every `u16` block id indexes it.
pub const PAGE_ENTRIES: usize = 1 << 16;

/// `page[blocks[i]] += w * maxes[i]` over `min(blocks.len(), maxes.len())` entries, wrapping on
/// overflow.
///
/// This is the scalar loop: the AVX-512 gather/scatter variant
/// ([`add_sparse_page_avx512`]) measured 1.2-1.3x slower end to end on AMD Zen 4, whose scatter
/// is microcoded, so it is not dispatched to; the `scatter` criterion group compares the two.
#[inline]
pub fn add_sparse_page(page: &mut [u32; PAGE_ENTRIES], blocks: &[u16], maxes: &[u8], w: u32) {
    add_sparse_page_portable(page, blocks, maxes, w);
}

/// The scalar loop of [`add_sparse_page`].
#[inline]
pub fn add_sparse_page_portable(
    page: &mut [u32; PAGE_ENTRIES],
    blocks: &[u16],
    maxes: &[u8],
    w: u32,
) {
    let n = blocks.len().min(maxes.len());
    let (blocks, maxes) = (&blocks[..n], &maxes[..n]);
    // 32 ids fill one cache line; the lines `AHEAD` entries on are asked for while these add.
    for (c, (ids, ms)) in blocks.chunks(32).zip(maxes.chunks(32)).enumerate() {
        let next = c * 32 + SPARSE_PREFETCH_AHEAD;
        if next < n {
            prefetch_read(blocks[next..].as_ptr().cast());
            prefetch_read(maxes[next..].as_ptr().cast());
        }
        for (&b, &m) in ids.iter().zip(ms) {
            let u = &mut page[usize::from(b)];
            *u = u.wrapping_add(w.wrapping_mul(u32::from(m)));
        }
    }
}

/// How many entries ahead [`add_sparse_page_portable`] prefetches a row.
const SPARSE_PREFETCH_AHEAD: usize = 512;

/// A prefetch hint for reading `p` soon.
#[inline(always)]
fn prefetch_read(p: *const i8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// [`add_sparse_page`] with AVX-512: 16 ids and maxima widened to 32 bits, the 16 bounds
/// gathered, added to and scattered back; the tail runs the scalar loop. The ids of one row are
/// distinct (a row lists each block once); with repeated ids within 16 entries it may add fewer
/// times than the scalar loop, never outside the page.
///
/// # Safety
/// The CPU must support AVX-512 F and BW.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
pub unsafe fn add_sparse_page_avx512(
    page: &mut [u32; PAGE_ENTRIES],
    blocks: &[u16],
    maxes: &[u8],
    w: u32,
) {
    use std::arch::x86_64::*;
    let n = blocks.len().min(maxes.len());
    let whole = n - n % 16;
    let wv = _mm512_set1_epi32(w as i32);
    let base = page.as_mut_ptr();
    let mut i = 0;
    while i < whole {
        // SAFETY: `i + 16 <= n` entries of both slices are read; every lane's index is a
        // zero-extended u16, inside the 65,536-entry page.
        unsafe {
            let ids = _mm256_loadu_si256(blocks.as_ptr().add(i).cast());
            let idx = _mm512_cvtepu16_epi32(ids);
            let m = _mm_loadu_si128(maxes.as_ptr().add(i).cast());
            let add = _mm512_mullo_epi32(_mm512_cvtepu8_epi32(m), wv);
            let cur = _mm512_i32gather_epi32::<4>(idx, base.cast_const().cast());
            _mm512_i32scatter_epi32::<4>(base.cast(), idx, _mm512_add_epi32(cur, add));
        }
        i += 16;
    }
    add_sparse_page_portable(page, &blocks[whole..n], &maxes[whole..n], w);
}

/// Writes the indexes `i` with `bounds[i] >= floor` to the front of `out`, in increasing order,
/// and returns how many there are and the largest such bound (0 when none).
///
/// `out` must hold at least `bounds.len() + 16` entries (the vector loop stores whole vectors).
/// Uses AVX-512 compress (16 bounds per step) when the CPU has it, else [`gather_at_least_portable`].
///
/// # Panics
/// If `out` is shorter than `bounds.len() + 16`.
#[inline]
pub fn gather_at_least(bounds: &[u32], floor: u32, out: &mut [u32]) -> (usize, u32) {
    assert!(
        out.len() >= bounds.len() + 16,
        "gather_at_least: output too short"
    );
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512 F; `out` has the room asserted above.
            return unsafe { gather_at_least_avx512(bounds, floor, out) };
        }
    }
    gather_at_least_portable(bounds, floor, out)
}

/// The scalar loop of [`gather_at_least`]: branch-free, it writes every index and advances only
/// past a kept one. `out` must hold at least `bounds.len()` entries.
#[inline]
pub fn gather_at_least_portable(bounds: &[u32], floor: u32, out: &mut [u32]) -> (usize, u32) {
    let out = &mut out[..bounds.len()];
    let mut n = 0usize;
    let mut max_bound = 0u32;
    for (i, &u) in bounds.iter().enumerate() {
        out[n] = i as u32;
        let keep = u >= floor;
        n += usize::from(keep);
        max_bound = max_bound.max(if keep { u } else { 0 });
    }
    (n, max_bound)
}

/// [`gather_at_least`] with AVX-512: compares 16 bounds with the floor, compresses the kept
/// lanes' indexes into a register and stores the whole vector at the write position.
///
/// # Safety
/// The CPU must support AVX-512 F, and `out` must hold at least `bounds.len() + 16` entries.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub unsafe fn gather_at_least_avx512(bounds: &[u32], floor: u32, out: &mut [u32]) -> (usize, u32) {
    use std::arch::x86_64::*;
    let whole = bounds.len() - bounds.len() % 16;
    let floor_v = _mm512_set1_epi32(floor as i32);
    let step = _mm512_set1_epi32(16);
    let mut idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let mut max_v = _mm512_setzero_si512();
    let mut n = 0usize;
    let mut i = 0;
    while i < whole {
        // SAFETY: `i + 16 <= bounds.len()`; `n <= i`, so `n + 16 <= bounds.len() + 16 <=
        // out.len()`.
        unsafe {
            let u = _mm512_loadu_si512(bounds.as_ptr().add(i).cast());
            let keep = _mm512_cmpge_epu32_mask(u, floor_v);
            max_v = _mm512_mask_max_epu32(max_v, keep, max_v, u);
            let packed = _mm512_maskz_compress_epi32(keep, idx);
            _mm512_storeu_si512(out.as_mut_ptr().add(n).cast(), packed);
            n += keep.count_ones() as usize;
        }
        idx = _mm512_add_epi32(idx, step);
        i += 16;
    }
    let mut max_bound = _mm512_reduce_max_epu32(max_v);
    for (j, &u) in bounds.iter().enumerate().skip(whole) {
        if u >= floor {
            out[n] = j as u32;
            n += 1;
            max_bound = max_bound.max(u);
        }
    }
    (n, max_bound)
}

/// Writes to the front of `out_docs` and `out_impacts` the postings (`docs[i]`, `impacts[i]`) whose
/// block `block(docs[i])` is marked in `marked` (bit `b % 64` of word `b / 64`), in order, and
/// returns how many there are. A block beyond `marked` is not marked.
///
/// Branch-free: every posting is written, and only a kept one advances the write position (whether
/// a block is marked is no more predictable than a coin toss where the marks are dense). Both
/// outputs must hold at least `min(docs.len(), impacts.len())` entries.
#[inline]
pub fn keep_marked_by(
    docs: &[u32],
    impacts: &[u8],
    marked: &[u64],
    block: impl Fn(u32) -> u32,
    out_docs: &mut [u32],
    out_impacts: &mut [u32],
) -> usize {
    let mut n = 0usize;
    for (&d, &imp) in docs.iter().zip(impacts) {
        let b = block(d);
        let bit = marked
            .get((b / 64) as usize)
            .map_or(0, |m| m >> (b % 64) & 1);
        if let (Some(od), Some(oi)) = (out_docs.get_mut(n), out_impacts.get_mut(n)) {
            *od = d;
            *oi = u32::from(imp);
        }
        n += bit as usize;
    }
    n
}

/// [`keep_marked_by`] for blocks of `1 << shift` documents (`block(d) = d >> shift`), with AVX-512
/// when the CPU has it: 16 postings per step, their mark words gathered, the kept lanes
/// compressed into a register and stored whole.
///
/// Both outputs must hold at least `min(docs.len(), impacts.len()) + 16` entries.
///
/// # Panics
/// If an output is shorter than that, or `shift` is 32 or more.
#[inline]
pub fn keep_marked(
    docs: &[u32],
    impacts: &[u8],
    marked: &[u64],
    shift: u32,
    out_docs: &mut [u32],
    out_impacts: &mut [u32],
) -> usize {
    let n = docs.len().min(impacts.len());
    assert!(
        out_docs.len() >= n + 16 && out_impacts.len() >= n + 16 && shift < 32,
        "keep_marked: output too short or shift too large"
    );
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512 F; the outputs have the room asserted above.
            return unsafe {
                keep_marked_avx512(
                    &docs[..n],
                    &impacts[..n],
                    marked,
                    shift,
                    out_docs,
                    out_impacts,
                )
            };
        }
    }
    keep_marked_by(docs, impacts, marked, |d| d >> shift, out_docs, out_impacts)
}

/// [`keep_marked`] with AVX-512.
///
/// # Safety
/// The CPU must support AVX-512 F; `docs` and `impacts` must be of one length `n`, both outputs
/// must hold at least `n + 16` entries, and `shift` must be below 32.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub unsafe fn keep_marked_avx512(
    docs: &[u32],
    impacts: &[u8],
    marked: &[u64],
    shift: u32,
    out_docs: &mut [u32],
    out_impacts: &mut [u32],
) -> usize {
    use std::arch::x86_64::*;
    let n = docs.len().min(impacts.len());
    let whole = n - n % 16;
    // The marks read as 32-bit words (x86-64 is little-endian): block b is bit b % 32 of word
    // b / 32. A lane whose word lies beyond them gathers nothing and reads as unmarked.
    let words = u32::try_from(marked.len().saturating_mul(2)).unwrap_or(u32::MAX);
    let limit = _mm512_set1_epi32(words as i32);
    let shift_v = _mm512_set1_epi32(shift as i32);
    let low5 = _mm512_set1_epi32(31);
    let one = _mm512_set1_epi32(1);
    let base = marked.as_ptr().cast::<i32>();
    // Where the chunk's blocks all lie within 16 mark words (its doc ids are sorted, and a
    // posting list of a common term spans few blocks per chunk), those words are loaded once
    // and each lane picks its word with a permute instead of a gather.
    let first_block = docs.first().map_or(0, |&d| d >> shift);
    let last_block = docs.last().map_or(0, |&d| d >> shift);
    let first_word = first_block / 32;
    let windowed = (last_block / 32).wrapping_sub(first_word) < 16 && first_word + 16 <= words;
    let window = if windowed {
        // SAFETY: words `first_word..first_word + 16` lie within the marks (checked above).
        unsafe { _mm512_loadu_si512(base.add(first_word as usize).cast()) }
    } else {
        _mm512_setzero_si512()
    };
    let first_word_v = _mm512_set1_epi32(first_word as i32);
    let sixteen = _mm512_set1_epi32(16);
    let mut kept = 0usize;
    let mut i = 0;
    while i < whole {
        // SAFETY: `i + 16 <= n` entries of both inputs are read; `kept <= i`, so
        // `kept + 16 <= n + 16` entries of the outputs are written; only lanes whose word index
        // is below `2 * marked.len()` are gathered.
        unsafe {
            let d = _mm512_loadu_si512(docs.as_ptr().add(i).cast());
            let b = _mm512_srlv_epi32(d, shift_v);
            let w = _mm512_srli_epi32::<5>(b);
            // Lanes inside the window take their word from it; the others (all of them when
            // there is no window, and only out-of-order ids otherwise) gather theirs.
            let rel = _mm512_sub_epi32(w, first_word_v);
            let inside = if windowed {
                _mm512_cmplt_epu32_mask(rel, sixteen)
            } else {
                0
            };
            let mut m = _mm512_permutexvar_epi32(rel, window);
            let outside = !inside & _mm512_cmplt_epu32_mask(w, limit);
            if outside != 0 {
                m = _mm512_mask_i32gather_epi32::<4>(m, outside, w, base);
            }
            let valid = inside | outside;
            let bit = _mm512_and_si512(_mm512_srlv_epi32(m, _mm512_and_si512(b, low5)), one);
            let keep = _mm512_mask_test_epi32_mask(valid, bit, bit);
            _mm512_storeu_si512(
                out_docs.as_mut_ptr().add(kept).cast(),
                _mm512_maskz_compress_epi32(keep, d),
            );
            let imp = _mm512_cvtepu8_epi32(_mm_loadu_si128(impacts.as_ptr().add(i).cast()));
            _mm512_storeu_si512(
                out_impacts.as_mut_ptr().add(kept).cast(),
                _mm512_maskz_compress_epi32(keep, imp),
            );
            kept += keep.count_ones() as usize;
        }
        i += 16;
    }
    kept + keep_marked_by(
        &docs[whole..n],
        &impacts[whole..n],
        marked,
        |d| d >> shift,
        &mut out_docs[kept..],
        &mut out_impacts[kept..],
    )
}

/// Writes the indexes `i` with `scores[i] >= floor` to the front of `out_docs` and their scores
/// to the front of `out_scores`, in increasing order, sets every score to zero, and returns how
/// many were kept. `floor` should be at least 1 (a zero score is never a hit).
///
/// Both outputs must hold at least `scores.len() + 16` entries. Uses AVX-512 (16 scores per
/// step) when the CPU has it, else [`take_at_least_portable`].
///
/// # Panics
/// If an output is shorter than `scores.len() + 16`.
#[inline]
pub fn take_at_least(
    scores: &mut [u32],
    floor: u32,
    out_docs: &mut [u32],
    out_scores: &mut [u32],
) -> usize {
    assert!(
        out_docs.len() >= scores.len() + 16 && out_scores.len() >= scores.len() + 16,
        "take_at_least: output too short"
    );
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512 F; the outputs have the room asserted above.
            return unsafe { take_at_least_avx512(scores, floor, out_docs, out_scores) };
        }
    }
    take_at_least_portable(scores, floor, out_docs, out_scores)
}

/// The scalar loop of [`take_at_least`]: branch-free, it writes every entry and advances only
/// past a kept one. Both outputs must hold at least `scores.len()` entries.
#[inline]
pub fn take_at_least_portable(
    scores: &mut [u32],
    floor: u32,
    out_docs: &mut [u32],
    out_scores: &mut [u32],
) -> usize {
    let (out_docs, out_scores) = (
        &mut out_docs[..scores.len()],
        &mut out_scores[..scores.len()],
    );
    let mut n = 0usize;
    for (i, s) in scores.iter_mut().enumerate() {
        out_docs[n] = i as u32;
        out_scores[n] = *s;
        n += usize::from(*s >= floor);
        *s = 0;
    }
    n
}

/// [`take_at_least`] with AVX-512: compares 16 scores with the floor, compresses the kept lanes'
/// indexes and scores into registers, stores them whole at the write position, and stores zeros
/// over the scores.
///
/// # Safety
/// The CPU must support AVX-512 F, and both outputs must hold at least `scores.len() + 16`
/// entries.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub unsafe fn take_at_least_avx512(
    scores: &mut [u32],
    floor: u32,
    out_docs: &mut [u32],
    out_scores: &mut [u32],
) -> usize {
    use std::arch::x86_64::*;
    let len = scores.len();
    let whole = len - len % 16;
    let floor_v = _mm512_set1_epi32(floor as i32);
    let step = _mm512_set1_epi32(16);
    let zero = _mm512_setzero_si512();
    let mut idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let mut n = 0usize;
    let mut i = 0;
    while i < whole {
        // SAFETY: `i + 16 <= len`; `n <= i`, so `n + 16 <= len + 16`, within both outputs.
        unsafe {
            let p = scores.as_mut_ptr().add(i);
            let s = _mm512_loadu_si512(p.cast_const().cast());
            let keep = _mm512_cmpge_epu32_mask(s, floor_v);
            if keep != 0 {
                _mm512_storeu_si512(
                    out_docs.as_mut_ptr().add(n).cast(),
                    _mm512_maskz_compress_epi32(keep, idx),
                );
                _mm512_storeu_si512(
                    out_scores.as_mut_ptr().add(n).cast(),
                    _mm512_maskz_compress_epi32(keep, s),
                );
                n += keep.count_ones() as usize;
            }
            _mm512_storeu_si512(p.cast(), zero);
        }
        idx = _mm512_add_epi32(idx, step);
        i += 16;
    }
    for (j, s) in scores.iter_mut().enumerate().skip(whole) {
        if *s >= floor {
            out_docs[n] = j as u32;
            out_scores[n] = *s;
            n += 1;
        }
        *s = 0;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_variant_equals_the_portable_loop(row in proptest::collection::vec(any::<u8>(), 0..700),
                                                  start in proptest::collection::vec(any::<u32>(), 0..700),
                                                  w in any::<u32>()) {
            let mut want = start.clone();
            add_dense_portable(&mut want, &row, w);
            let mut got = start.clone();
            add_dense(&mut got, &row, w);
            prop_assert_eq!(&got, &want);
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") {
                    let mut got = start.clone();
                    // SAFETY: checked just above.
                    unsafe { add_dense_avx2(&mut got, &row, w) };
                    prop_assert_eq!(&got, &want);
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                {
                    let mut got = start.clone();
                    // SAFETY: checked just above.
                    unsafe { add_dense_avx512(&mut got, &row, w) };
                    prop_assert_eq!(&got, &want);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn sparse_page_variants_agree(entries in proptest::collection::btree_map(any::<u16>(), any::<u8>(), 0..200),
                                      w in any::<u32>(), seed in any::<u32>()) {
            let blocks: Vec<u16> = entries.keys().copied().collect();
            let maxes: Vec<u8> = entries.values().copied().collect();
            let mut want = Box::new([0u32; PAGE_ENTRIES]);
            for (i, u) in want.iter_mut().enumerate() {
                *u = (i as u32).wrapping_mul(seed);
            }
            let mut got = want.clone();
            for (&b, &m) in &entries {
                let u = &mut want[usize::from(b)];
                *u = u.wrapping_add(w.wrapping_mul(u32::from(m)));
            }
            #[cfg(target_arch = "x86_64")]
            let start = got.clone();
            add_sparse_page(&mut got, &blocks, &maxes, w);
            prop_assert!(got[..] == want[..]);
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                {
                    let mut got = start;
                    // SAFETY: checked just above.
                    unsafe { add_sparse_page_avx512(&mut got, &blocks, &maxes, w) };
                    prop_assert!(got[..] == want[..]);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn gather_variants_agree(bounds in proptest::collection::vec(0u32..64, 0..300), floor in 0u32..70) {
            let want: Vec<u32> = (0..bounds.len() as u32).filter(|&i| bounds[i as usize] >= floor).collect();
            let want_max = want.iter().map(|&i| bounds[i as usize]).max().unwrap_or(0);
            let mut out = vec![0u32; bounds.len() + 16];
            let (n, max) = gather_at_least(&bounds, floor, &mut out);
            prop_assert_eq!(&out[..n], &want[..]);
            prop_assert_eq!(max, want_max);
            let (n, max) = gather_at_least_portable(&bounds, floor, &mut out);
            prop_assert_eq!(&out[..n], &want[..]);
            prop_assert_eq!(max, want_max);
        }
    }
    proptest! {
        #[test]
        fn keep_marked_variants_agree(docs in proptest::collection::btree_set(0u32..5000, 0..200),
                                      marked in proptest::collection::vec(any::<u64>(), 0..12),
                                      shift in 0u32..6, swap in any::<Option<(usize, usize)>>()) {
            let mut docs: Vec<u32> = docs.into_iter().collect();
            // Sorted ids as decoded chunks have them, or two of them swapped.
            if let Some((a, b)) = swap.filter(|_| !docs.is_empty()) {
                let n = docs.len();
                docs.swap(a % n, b % n);
            }
            let impacts: Vec<u8> = docs.iter().map(|&d| (d % 251) as u8).collect();
            let want: Vec<(u32, u32)> = docs
                .iter()
                .zip(&impacts)
                .filter(|&(&d, _)| {
                    let b = (d >> shift) as usize;
                    marked.get(b / 64).is_some_and(|m| m >> (b % 64) & 1 == 1)
                })
                .map(|(&d, &i)| (d, u32::from(i)))
                .collect();
            let mut od = vec![0u32; docs.len() + 16];
            let mut oi = vec![0u32; docs.len() + 16];
            let n = keep_marked(&docs, &impacts, &marked, shift, &mut od, &mut oi);
            let got: Vec<(u32, u32)> = od[..n].iter().copied().zip(oi[..n].iter().copied()).collect();
            prop_assert_eq!(&got, &want);
            let n = keep_marked_by(&docs, &impacts, &marked, |d| d >> shift, &mut od, &mut oi);
            let got: Vec<(u32, u32)> = od[..n].iter().copied().zip(oi[..n].iter().copied()).collect();
            prop_assert_eq!(&got, &want);
        }
    }
    proptest! {
        #[test]
        fn take_variants_agree(scores in proptest::collection::vec(0u32..64, 0..300), floor in 1u32..70) {
            let want: Vec<(u32, u32)> = scores
                .iter()
                .enumerate()
                .filter(|&(_, &s)| s >= floor)
                .map(|(i, &s)| (i as u32, s))
                .collect();
            let mut od = vec![0u32; scores.len() + 16];
            let mut os = vec![0u32; scores.len() + 16];
            for portable in [false, true] {
                let mut s = scores.clone();
                let n = if portable {
                    take_at_least_portable(&mut s, floor, &mut od, &mut os)
                } else {
                    take_at_least(&mut s, floor, &mut od, &mut os)
                };
                let got: Vec<(u32, u32)> = od[..n].iter().copied().zip(os[..n].iter().copied()).collect();
                prop_assert_eq!(&got, &want);
                prop_assert!(s.iter().all(|&x| x == 0));
            }
        }
    }
}
