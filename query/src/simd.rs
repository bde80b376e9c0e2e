//! Bound accumulation with the widest vector unit the CPU has, chosen at run time.
//!
//! [`add_dense`] computes `bounds[i] += w * row[i]` (a `u8` block maximum widened to `u32`, wrapping)
//! with AVX-512 (16 lanes) or AVX2 (8 lanes) when the processor has them, and otherwise with the
//! portable loop (which the compiler vectorizes for the build's baseline, SSE2 on x86-64). All
//! three give identical results; the detection result is cached by the standard library.

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
}
