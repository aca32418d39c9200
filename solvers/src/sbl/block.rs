//! Block SBL for a known partition of the atoms into blocks.
//!
//! Every block `b` has one hyperparameter `γ_b` shared by its atoms, `x_b ~ N(0, γ_b I)`
//! (the block-sparse model of Zhang & Rao's BSBL with the intra-block correlation fixed to
//! the identity). The E-step is that of classic SBL; the EM M-step averages the per-atom update
//! over the block, `γ_b ← (1/d_b) Σ_{n∈b} (|μₙ|² + Σₙₙ)`, and pruning removes whole blocks.

use super::dense::DenseScalar;
use super::em::{Sbl, SblResult};
use super::SblParams;
use crate::error::{Error, Result};
use crate::iter::{run, NoObserver, Observer, StopCriteria};
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
/// `phi` is `M × N`, `y` is `M × L`; `blocks` must cover exactly the `N` atoms.
pub fn block_sbl<T: DenseScalar>(
    phi: ArrayView2<T>,
    y: ArrayView2<T>,
    blocks: &Blocks,
    params: &SblParams<T::Real>,
) -> Result<SblResult<T>> {
    block_sbl_observed(phi, y, blocks, params, &mut NoObserver)
}

/// [`block_sbl`] with an [`Observer`].
pub fn block_sbl_observed<T: DenseScalar>(
    phi: ArrayView2<T>,
    y: ArrayView2<T>,
    blocks: &Blocks,
    params: &SblParams<T::Real>,
    observer: &mut dyn Observer<T::Real>,
) -> Result<SblResult<T>> {
    if blocks.len() != phi.ncols() {
        return Err(Error::shape(
            "block partition (atoms covered)",
            &[phi.ncols()],
            &[blocks.len()],
        ));
    }
    let mut s = Sbl::with_groups(phi, y, Some(blocks.ids().to_vec()), params)?;
    let crit = StopCriteria {
        max_iters: params.max_iters,
        rel_tol: params.tol,
        ..Default::default()
    };
    let report = run(&mut s, &crit, observer)?;
    Ok(s.into_result(report))
}
