//! Seeded random arrays, for simulations, noise calibration (e.g. the per-scale noise of a
//! starlet transform) and tests. The generator is ChaCha8 seeded from a `u64`: the same seed
//! gives the same bits on every platform.
//!
//! ```
//! use sparseinv_solvers::random::{randn, rand_uniform};
//! let a = randn::<f64>(&[3, 4], 7);
//! assert_eq!(a, randn::<f64>(&[3, 4], 7));
//! let u = rand_uniform(&[1000], 1);
//! assert!(u.iter().all(|&v| (0.0..1.0).contains(&v)));
//! ```

use crate::scalar::{real, Scalar};
use ndarray::{ArrayD, IxDyn};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// A seeded array of i.i.d. standard normal entries (real and imaginary parts each N(0,1)
/// for complex `T`). The same seed always gives the same bits.
pub fn randn<T: Scalar>(shape: &[usize], seed: u64) -> ArrayD<T> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        let re: f64 = StandardNormal.sample(&mut rng);
        let im: f64 = if T::IS_COMPLEX {
            StandardNormal.sample(&mut rng)
        } else {
            0.0
        };
        T::from_parts(real(re), real(im))
    })
}

/// A seeded array of i.i.d. uniform entries on `[0, 1)`.
pub fn rand_uniform(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.random::<f64>())
}
