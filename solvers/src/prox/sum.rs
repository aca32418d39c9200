//! Separable sums: different proximal terms on different blocks of a flat vector.

use super::Prox;
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};
use num_traits::Zero;
use std::ops::Range;

/// A separable sum `R(x) = Σ_b R_b(x[r_b])` of proximal terms acting on disjoint ranges
/// `r_b` of the flattened (row-major) argument of `n` elements. Elements in no range are not
/// penalised (the prox leaves them unchanged).
///
/// Prox: block by block, `prox_{τR}(v)[r_b] = prox_{τR_b}(v[r_b])` (exact because the terms
/// act on disjoint variables); each block sees a 1-d array of its range's length.
/// Convex when every term is; then its conjugate is the separable sum of the conjugates.
///
/// ```
/// use sparseinv_solvers::prox::{L1, NonNegative, Prox, SeparableSum};
/// use ndarray::array;
/// // x = [a (3 sparse coefficients), b (2 non-negative fluxes)]
/// let r = SeparableSum::<f64>::new(
///     5,
///     vec![(0..3, Box::new(L1::new(1.0).unwrap())), (3..5, Box::new(NonNegative))],
/// )
/// .unwrap();
/// let x = r.prox(array![2.0, -0.5, -3.0, -1.0, 4.0].into_dyn().view(), 1.0);
/// assert_eq!(x, array![1.0, 0.0, -2.0, 0.0, 4.0].into_dyn());
/// ```
pub struct SeparableSum<T: Scalar> {
    n: usize,
    blocks: Vec<(Range<usize>, Box<dyn Prox<T>>)>,
}

impl<T: Scalar> std::fmt::Debug for SeparableSum<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeparableSum")
            .field("n", &self.n)
            .field(
                "ranges",
                &self
                    .blocks
                    .iter()
                    .map(|(r, _)| r.clone())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<T: Scalar> SeparableSum<T> {
    /// Terms on the given ranges of a flat argument of `n` elements. Errors when a range is
    /// empty or reversed, exceeds `n`, overlaps another, or is rejected by its term's
    /// [`Prox::check_shape`] for a 1-d argument of the range's length.
    pub fn new(n: usize, blocks: Vec<(Range<usize>, Box<dyn Prox<T>>)>) -> Result<Self> {
        if n == 0 {
            return Err(Error::Empty {
                what: "SeparableSum argument".into(),
            });
        }
        let mut ranges: Vec<Range<usize>> = blocks.iter().map(|(r, _)| r.clone()).collect();
        for r in &ranges {
            if r.start >= r.end || r.end > n {
                return Err(Error::param(
                    "ranges",
                    format!("range {r:?} is empty, reversed, or exceeds the length {n}"),
                ));
            }
        }
        ranges.sort_by_key(|r| r.start);
        for w in ranges.windows(2) {
            if w[1].start < w[0].end {
                return Err(Error::param(
                    "ranges",
                    format!("ranges {:?} and {:?} overlap", w[0], w[1]),
                ));
            }
        }
        for (r, p) in &blocks {
            p.check_shape(&[r.len()])?;
        }
        Ok(SeparableSum { n, blocks })
    }

    /// Number of elements of the argument.
    pub fn len(&self) -> usize {
        self.n
    }
    /// Always `false` (an empty sum cannot be built); present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl<T: Scalar> Prox<T> for SeparableSum<T> {
    fn value(&self, x: ArrayViewD<T>) -> T::Real {
        let flat = x.as_standard_layout();
        let s = flat.as_slice().expect("standard layout");
        let mut acc = T::Real::zero();
        for (r, p) in &self.blocks {
            let b = ArrayViewD::from_shape(IxDyn(&[r.len()]), &s[r.clone()]).expect("block");
            acc += p.value(b);
        }
        acc
    }
    fn prox_into(&self, v: ArrayViewD<T>, tau: T::Real, mut out: ArrayViewMutD<T>) {
        assert_eq!(
            v.len(),
            self.n,
            "SeparableSum built for {} elements, argument has {}; validate with Prox::check_shape",
            self.n,
            v.len()
        );
        let flat = v.as_standard_layout();
        let s = flat.as_slice().expect("standard layout");
        let mut res: ArrayD<T> = ArrayD::from_shape_vec(IxDyn(&[self.n]), s.to_vec()).unwrap();
        {
            let rs = res.as_slice_mut().expect("contiguous");
            for (r, p) in &self.blocks {
                let b = ArrayViewD::from_shape(IxDyn(&[r.len()]), &s[r.clone()]).expect("block");
                let o = ArrayViewMutD::from_shape(IxDyn(&[r.len()]), &mut rs[r.clone()])
                    .expect("block");
                p.prox_into(b, tau, o);
            }
        }
        let res = res.into_shape_with_order(v.raw_dim()).expect("same size");
        out.assign(&res);
    }
    fn supports_complex(&self) -> bool {
        self.blocks.iter().all(|(_, p)| p.supports_complex())
    }
    fn check_shape(&self, shape: &[usize]) -> Result<()> {
        let len: usize = shape.iter().product();
        if len != self.n {
            return Err(Error::shape(
                "SeparableSum argument (number of elements)",
                &[self.n],
                &[len],
            ));
        }
        Ok(())
    }
}
