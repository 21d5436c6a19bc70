//! A window's frames against many steering vectors: the localizer's floor map
//! ([`super::localizer`]), the sum over a window's frames of |frame · steer|² at every
//! grid point, is most of its time, and this module computes it eight frames side by side
//! in vector registers, with the same result to the bit as frame by frame.

use num_complex::Complex32;

/// Frames computed side by side by [`FrameBlock::power`].
pub const LANES: usize = 8;
// `Lanes` is two SSE registers of four: exactly eight.
const _: () = assert!(LANES == 8);

/// Eight f32 lanes: two SSE registers on x86-64 (every x86-64 CPU has SSE2), where the
/// compiler left to itself vectorized the complex products the wrong way round (each
/// value's real part with its imaginary part, then shuffles) and gained nothing; plain
/// arrays elsewhere.
mod lanes {
    #[cfg(target_arch = "x86_64")]
    mod imp {
        use std::arch::x86_64::{
            __m128, _mm_add_ps, _mm_cvtss_f32, _mm_mul_ps, _mm_set1_ps, _mm_setr_ps,
            _mm_setzero_ps, _mm_shuffle_ps, _mm_sub_ps,
        };

        #[derive(Clone, Copy)]
        pub struct Lanes([__m128; 2]);

        impl Lanes {
            #[inline(always)]
            pub fn zero() -> Lanes {
                // SAFETY (each block here): SSE and SSE2 are in every x86-64 CPU (the
                // target's baseline), and these intrinsics touch no memory.
                Lanes(unsafe { [_mm_setzero_ps(); 2] })
            }
            #[inline(always)]
            pub fn splat(x: f32) -> Lanes {
                Lanes(unsafe { [_mm_set1_ps(x); 2] })
            }
            #[inline(always)]
            pub fn from_array(a: [f32; 8]) -> Lanes {
                Lanes(unsafe {
                    [
                        _mm_setr_ps(a[0], a[1], a[2], a[3]),
                        _mm_setr_ps(a[4], a[5], a[6], a[7]),
                    ]
                })
            }
            #[inline(always)]
            pub fn to_array(self) -> [f32; 8] {
                let half = |v: __m128| unsafe {
                    [
                        _mm_cvtss_f32(v),
                        _mm_cvtss_f32(_mm_shuffle_ps::<0b01_01_01_01>(v, v)),
                        _mm_cvtss_f32(_mm_shuffle_ps::<0b10_10_10_10>(v, v)),
                        _mm_cvtss_f32(_mm_shuffle_ps::<0b11_11_11_11>(v, v)),
                    ]
                };
                let (a, b) = (half(self.0[0]), half(self.0[1]));
                [a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]]
            }
            #[inline(always)]
            pub fn add(self, o: Lanes) -> Lanes {
                Lanes(unsafe { [_mm_add_ps(self.0[0], o.0[0]), _mm_add_ps(self.0[1], o.0[1])] })
            }
            #[inline(always)]
            pub fn sub(self, o: Lanes) -> Lanes {
                Lanes(unsafe { [_mm_sub_ps(self.0[0], o.0[0]), _mm_sub_ps(self.0[1], o.0[1])] })
            }
            #[inline(always)]
            pub fn mul(self, o: Lanes) -> Lanes {
                Lanes(unsafe { [_mm_mul_ps(self.0[0], o.0[0]), _mm_mul_ps(self.0[1], o.0[1])] })
            }
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    mod imp {
        #[derive(Clone, Copy)]
        pub struct Lanes([f32; 8]);

        impl Lanes {
            pub fn zero() -> Lanes {
                Lanes([0.0; 8])
            }
            pub fn splat(x: f32) -> Lanes {
                Lanes([x; 8])
            }
            pub fn from_array(a: [f32; 8]) -> Lanes {
                Lanes(a)
            }
            pub fn to_array(self) -> [f32; 8] {
                self.0
            }
            pub fn add(self, o: Lanes) -> Lanes {
                Lanes(std::array::from_fn(|j| self.0[j] + o.0[j]))
            }
            pub fn sub(self, o: Lanes) -> Lanes {
                Lanes(std::array::from_fn(|j| self.0[j] - o.0[j]))
            }
            pub fn mul(self, o: Lanes) -> Lanes {
                Lanes(std::array::from_fn(|j| self.0[j] * o.0[j]))
            }
        }
    }

    pub use imp::Lanes;
}
use lanes::Lanes;

/// A window's frames laid out for [`FrameBlock::power`]: in blocks of [`LANES`] frames
/// (the last padded with zero frames), and within a block value by value
/// (`[block * lk + value]`, each entry one value of the block's frames), real and
/// imaginary parts apart. So a steering vector's products with a block's frames are
/// computed side by side in vector registers. The map over the floor is most of the
/// localizer's time (a 5 x 5 m room: 625 points x 25 frames x 90 products per window); in
/// this layout it takes a fraction of the time frame by frame did, with the same result to
/// the bit: each frame's products are still added in the same order, and a padded frame
/// adds zero.
pub struct FrameBlock {
    re: Vec<Lanes>,
    im: Vec<Lanes>,
    lk: usize,
}

impl FrameBlock {
    /// `frames` is `[frame * lk + value]`.
    pub fn new(frames: &[Complex32], lk: usize) -> FrameBlock {
        let n = frames.len().checked_div(lk).unwrap_or(0);
        let blocks = n.div_ceil(LANES);
        let mut re = vec![[0.0f32; LANES]; blocks * lk];
        let mut im = vec![[0.0f32; LANES]; blocks * lk];
        for (f, frame) in frames.chunks_exact(lk.max(1)).take(n).enumerate() {
            let (block, lane) = (f / LANES, f % LANES);
            for (v, c) in frame.iter().enumerate() {
                re[block * lk + v][lane] = c.re;
                im[block * lk + v][lane] = c.im;
            }
        }
        FrameBlock {
            re: re.into_iter().map(Lanes::from_array).collect(),
            im: im.into_iter().map(Lanes::from_array).collect(),
            lk,
        }
    }

    /// The sum over frames of |frame · steer|², bit for bit as frame by frame (tested).
    pub fn power(&self, steer: &[Complex32]) -> f64 {
        let mut total = -0.0f64; // as `Iterator::sum` starts
        if self.lk == 0 {
            return total;
        }
        for (re, im) in self
            .re
            .chunks_exact(self.lk)
            .zip(self.im.chunks_exact(self.lk))
        {
            let mut acc_re = Lanes::zero();
            let mut acc_im = Lanes::zero();
            for ((&r, &i), s) in re.iter().zip(im).zip(steer) {
                let (sr, si) = (Lanes::splat(s.re), Lanes::splat(s.im));
                // As `acc += y * s` with num_complex's product, term for term.
                acc_re = acc_re.add(r.mul(sr).sub(i.mul(si)));
                acc_im = acc_im.add(r.mul(si).add(i.mul(sr)));
            }
            let (ar, ai) = (acc_re.to_array(), acc_im.to_array());
            for j in 0..LANES {
                total += (ar[j] * ar[j] + ai[j] * ai[j]) as f64;
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_block_gives_the_frame_by_frame_power_to_the_bit() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut c = || Complex32::new(rng.gen_range(-2.0..2.0), rng.gen_range(-2.0..2.0));
        for (n, lk) in [(25, 90), (1, 9), (8, 30), (17, 3), (0, 12)] {
            let frames: Vec<Complex32> = (0..n * lk).map(|_| c()).collect();
            let steer: Vec<Complex32> = (0..lk).map(|_| c()).collect();
            // The localizer's frame-by-frame map at one point.
            let want = crate::sensing::localizer::power_map(&frames, &steer, lk)[0];
            let got = FrameBlock::new(&frames, lk).power(&steer);
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "{n} frames of {lk}: {got} vs {want}"
            );
            if n > 0 {
                assert!(got > 0.0);
            }
        }
    }
}
