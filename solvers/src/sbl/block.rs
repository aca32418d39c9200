//! Block SBL for a known partition of the atoms into blocks.
//!
//! Every block `b` has one hyperparameter `γ_b` shared by its atoms, `x_b ~ N(0, γ_b I)`
//! (the block-sparse model of Zhang & Rao's BSBL with the intra-block correlation fixed to
//! the identity). The E-step is that of classic SBL; the EM M-step averages the per-atom update
//! over the block, `γ_b ← (1/d_b) Σ_{n∈b} (|μₙ|² + Σₙₙ)`, and pruning removes whole blocks.

use super::em::{Sbl, SblResult};
use super::SblParams;
use crate::dense::DenseScalar;
use crate::error::{Error, Result};
use crate::iter::{run, Observer, Report};
use crate::scalar::Scalar;
use ndarray::ArrayView2;

/// A partition of `0..N` into blocks, stored as the block id of every atom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocks {
    ids: Vec<usize>,
    count: usize,
}

impl Blocks {
    /// Consecutive blocks of the given sizes (`[2, 3]` → atoms 0–1 and 2–4). Sizes must be
    /// positive.
    pub fn from_sizes(sizes: &[usize]) -> Result<Self> {
        if sizes.is_empty() || sizes.contains(&0) {
            return Err(Error::param(
                "blocks",
                "sizes must be positive and at least one",
            ));
        }
        let ids = sizes
            .iter()
            .enumerate()
            .flat_map(|(b, &s)| std::iter::repeat_n(b, s))
            .collect();
        Ok(Blocks {
            ids,
            count: sizes.len(),
        })
    }
    /// Equal consecutive blocks of size `size` covering `n` atoms (`n` must be a multiple).
    pub fn uniform(n: usize, size: usize) -> Result<Self> {
        if size == 0 || n == 0 || n % size != 0 {
            return Err(Error::param(
                "blocks",
                format!("block size {size} must be positive and divide the number of atoms {n}"),
            ));
        }
        Self::from_sizes(&vec![size; n / size])
    }
    /// From the block id of every atom; the ids must be exactly `0..B` (each used).
    pub fn from_ids(ids: Vec<usize>) -> Result<Self> {
        let count = ids.iter().copied().max().map_or(0, |m| m + 1);
        let mut used = vec![false; count];
        ids.iter().for_each(|&i| used[i] = true);
        if ids.is_empty() || used.iter().any(|u| !u) {
            return Err(Error::param(
                "blocks",
                "block ids must cover 0..B without gaps",
            ));
        }
        Ok(Blocks { ids, count })
    }
    /// Number of atoms covered.
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    /// `true` if the partition covers no atom (never, for a constructed value).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    /// Number of blocks.
    pub fn count(&self) -> usize {
        self.count
    }
    /// Block id of every atom.
    pub fn ids(&self) -> &[usize] {
        &self.ids
    }
}

/// Block SBL: classic SBL ([`super::sbl`]) with one hyperparameter per block of `blocks`.
/// `phi` is `M × N`, `y` is `M × L`; `blocks` must cover exactly the `N` atoms. Stopping
/// rules, observer and return value as for [`super::sbl`].
///
/// ```
/// use sparseinv_solvers::iter::NoObserver;
/// use sparseinv_solvers::sbl::{block_sbl, Blocks, NoiseModel, SblParams};
/// use ndarray::{array, Array2};
/// // 4 atoms in two blocks; the data come from the second block only
/// let phi: Array2<f64> = array![[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0],
///                               [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]];
/// let y = array![[0.0], [0.0], [1.0], [-2.0]];
/// let p = SblParams { noise: NoiseModel::Fixed(1e-6), ..Default::default() };
/// let blocks = Blocks::uniform(4, 2).unwrap();
/// let (r, _report) = block_sbl(phi.view(), y.view(), &blocks, &p, &mut NoObserver).unwrap();
/// assert!((r.mean[[3, 0]] + 2.0).abs() < 1e-3 && r.mean[[0, 0]].abs() < 1e-3);
/// assert_eq!(r.gamma[0], r.gamma[1]); // one hyperparameter per block
/// ```
pub fn block_sbl<T: DenseScalar>(
    phi: ArrayView2<T>,
    y: ArrayView2<T>,
    blocks: &Blocks,
    params: &SblParams<<T as Scalar>::Real>,
    observer: &mut dyn Observer<<T as Scalar>::Real>,
) -> Result<(SblResult<T>, Report<<T as Scalar>::Real>)> {
    if blocks.len() != phi.ncols() {
        return Err(Error::shape(
            "block partition (atoms covered)",
            &[phi.ncols()],
            &[blocks.len()],
        ));
    }
    let mut s = Sbl::with_groups(phi, y, Some(blocks.ids().to_vec()), params)?;
    let report = run(&mut s, &params.stop, observer)?;
    Ok((s.into_result(), report))
}
