//! Combinators: build new linear operators from existing ones without materialising anything.
//!
//! | combinator | forward | adjoint | shapes |
//! |---|---|---|---|
//! | [`Adjoint`] | `Aᴴ x` | `A y` | swapped |
//! | [`Compose`] | `A (B x)` | `Bᴴ (Aᴴ y)` | `B.range == A.domain` |
//! | [`Sum`] | `A x + B x` | `Aᴴ y + Bᴴ y` | identical |
//! | [`Scaled`] | `α A x` | `conj(α) Aᴴ y` | those of `A` |
//! | [`VStack`] | `[A₁x; A₂x; …]` | `Σ Aᵢᴴ yᵢ` | same domain, flat range |
//! | [`HStack`] | `Σ Aᵢ xᵢ` | `[A₁ᴴy; A₂ᴴy; …]` | same range, flat domain |
//! | [`BlockDiag`] | `[A₁x₁; A₂x₂; …]` | `[A₁ᴴy₁; A₂ᴴy₂; …]` | flat domain and range |
//!
//! Every combinator is generic over any `A: LinearOperator<T>`, including
//! `Box<dyn LinearOperator<T>>`, `&A` and `Arc<A>`; stacks hold a `Vec<A>`, so mix operator
//! types with `Vec<Box<dyn LinearOperator<T>>>`.
//!
//! **Flat stacking convention.** The blocks of a stacked side (the range of a `VStack`, the
//! domain of an `HStack`, both sides of a `BlockDiag`) have different n-d shapes, so the
//! stacked side is the 1-D vector of length `Σ sizeᵢ` obtained by flattening each block in
//! row-major order and concatenating them in the order the operators were given. A
//! [`BlockLayout`] describes that layout: [`BlockLayout::split`] gives one view per block
//! (reshaped to the block's shape, no copy) and [`BlockLayout::concat`] builds a stacked vector.
//!
//! Constructors validate shapes and return [`Error`] instead of panicking. Intermediate
//! results go into a scratch buffer owned by the combinator and reused across calls (a
//! concurrent call from another thread falls back to a fresh allocation rather than waiting).

use super::column_norms::{add_into, check_weights};
use super::{probe_weighted_column_norms_sq, LinearOperator, PROBE_WORK_LIMIT};
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Axis, IxDyn, Slice, Zip};
use std::sync::Mutex;

/// A reusable scratch buffer, lent out as an array of any shape.
pub(crate) struct Scratch<T> {
    buf: Mutex<Vec<T>>,
}

impl<T: Scalar> Scratch<T> {
    pub(crate) fn new() -> Self {
        Scratch {
            buf: Mutex::new(Vec::new()),
        }
    }

    /// Run `f` on a scratch array of shape `shape` (contents unspecified). Uses the stored
    /// buffer when it is free, else a fresh allocation (never blocks).
    pub(crate) fn with<R>(&self, shape: &[usize], f: impl FnOnce(ArrayViewMutD<T>) -> R) -> R {
        let n: usize = shape.iter().product();
        match self.buf.try_lock() {
            Ok(mut g) => {
                if g.len() < n {
                    g.resize(n, T::zero());
                }
                let v = ArrayViewMutD::from_shape(IxDyn(shape), &mut g[..n])
                    .expect("scratch: length matches shape");
                f(v)
            }
            Err(_) => {
                let mut a = ArrayD::zeros(IxDyn(shape));
                f(a.view_mut())
            }
        }
    }
}

impl<T: Scalar> Clone for Scratch<T> {
    fn clone(&self) -> Self {
        Scratch::new()
    }
}

/// `y += t` element-wise.
fn add_assign<T: Scalar>(y: &mut ArrayViewMutD<T>, t: &ArrayViewD<T>) {
    Zip::from(y).and(t).for_each(|y, &t| *y += t);
}

/// Call `f` with `flat` (1-D) seen as an array of `shape`; copies through `scratch` only when
/// `flat` is not contiguous.
fn with_reshaped_mut<T: Scalar>(
    flat: ArrayViewMutD<T>,
    shape: &[usize],
    scratch: &Scratch<T>,
    f: impl FnOnce(ArrayViewMutD<T>),
) {
    if flat.is_standard_layout() {
        f(flat
            .into_shape_with_order(IxDyn(shape))
            .expect("contiguous block reshapes"));
    } else {
        let mut flat = flat;
        scratch.with(shape, |mut t| {
            f(t.view_mut());
            flat.iter_mut().zip(t.iter()).for_each(|(d, &s)| *d = s);
        });
    }
}

/// Call `f` with `flat` (1-D) seen as an array of `shape`; copies through `scratch` only when
/// `flat` is not contiguous.
fn with_reshaped<T: Scalar>(
    flat: ArrayViewD<T>,
    shape: &[usize],
    scratch: &Scratch<T>,
    f: impl FnOnce(ArrayViewD<T>),
) {
    if flat.is_standard_layout() {
        f(flat
            .into_shape_with_order(IxDyn(shape))
            .expect("contiguous block reshapes"));
    } else {
        scratch.with(shape, |mut t| {
            t.iter_mut().zip(flat.iter()).for_each(|(d, &s)| *d = s);
            f(t.view());
        });
    }
}

// ---------------------------------------------------------------------------------------
// Adjoint

/// The adjoint `Aᴴ` of an operator: `apply` and `adjoint` swapped, domain and range swapped.
///
/// ```
/// use sparseinv_solvers::op::{Adjoint, Diagonal, LinearOperator};
/// use ndarray::array;
/// use num_complex::Complex64 as C;
/// let d = Diagonal::new(array![C::new(1.0, 2.0)].into_dyn());
/// let dh = Adjoint::new(d);
/// let y = dh.apply(array![C::new(1.0, 0.0)].into_dyn().view()).unwrap();
/// assert_eq!(y[[0]], C::new(1.0, -2.0));
/// ```
#[derive(Debug, Clone)]
pub struct Adjoint<A> {
    op: A,
}

impl<A> Adjoint<A> {
    /// Wrap `op` as its adjoint (cannot fail).
    pub fn new(op: A) -> Self {
        Adjoint { op }
    }
    /// The wrapped operator `A`.
    pub fn inner(&self) -> &A {
        &self.op
    }
    /// Unwrap the operator `A`.
    pub fn into_inner(self) -> A {
        self.op
    }
}

impl<T: Scalar, A: LinearOperator<T>> LinearOperator<T> for Adjoint<A> {
    fn domain_shape(&self) -> &[usize] {
        self.op.range_shape()
    }
    fn range_shape(&self) -> &[usize] {
        self.op.domain_shape()
    }
    fn apply_into(&self, x: ArrayViewD<T>, y: ArrayViewMutD<T>) {
        self.op.adjoint_into(x, y)
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, x: ArrayViewMutD<T>) {
        self.op.apply_into(y, x)
    }
}

// ---------------------------------------------------------------------------------------
// Compose

/// The composition `A ∘ B`: `x ↦ A (B x)`, adjoint `y ↦ Bᴴ (Aᴴ y)`.
///
/// Domain is `B`'s domain, range is `A`'s range; `B.range_shape() == A.domain_shape()` is
/// checked at construction. The intermediate `B x` lives in a reused scratch buffer.
///
/// ```
/// use sparseinv_solvers::op::{Compose, Diagonal, LinearOperator};
/// use ndarray::array;
/// let a = Diagonal::new(array![2.0, 3.0].into_dyn());
/// let b = Diagonal::new(array![5.0, 7.0].into_dyn());
/// let ab = Compose::new(a, b).unwrap();
/// let y = ab.apply(array![1.0, 1.0].into_dyn().view()).unwrap();
/// assert_eq!(y, array![10.0, 21.0].into_dyn());
/// ```
#[derive(Clone)]
pub struct Compose<T: Scalar, A, B> {
    a: A,
    b: B,
    scratch: Scratch<T>,
}

impl<T: Scalar, A: LinearOperator<T>, B: LinearOperator<T>> Compose<T, A, B> {
    /// `A ∘ B`; [`Error::ShapeMismatch`] unless `B`'s range shape equals `A`'s domain shape.
    pub fn new(a: A, b: B) -> Result<Self> {
        if a.domain_shape() != b.range_shape() {
            return Err(Error::shape(
                "Compose (A∘B): A's domain vs B's range",
                a.domain_shape(),
                b.range_shape(),
            ));
        }
        Ok(Compose {
            a,
            b,
            scratch: Scratch::new(),
        })
    }
    /// The outer operator `A`.
    pub fn outer(&self) -> &A {
        &self.a
    }
    /// The inner operator `B` (applied first).
    pub fn inner(&self) -> &B {
        &self.b
    }
}

impl<T: Scalar, A: LinearOperator<T>, B: LinearOperator<T>> LinearOperator<T> for Compose<T, A, B> {
    fn domain_shape(&self) -> &[usize] {
        self.b.domain_shape()
    }
    fn range_shape(&self) -> &[usize] {
        self.a.range_shape()
    }
    fn apply_into(&self, x: ArrayViewD<T>, y: ArrayViewMutD<T>) {
        self.scratch.with(self.b.range_shape(), |mut t| {
            self.b.apply_into(x, t.view_mut());
            self.a.apply_into(t.view(), y);
        })
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, x: ArrayViewMutD<T>) {
        self.scratch.with(self.a.domain_shape(), |mut t| {
            self.a.adjoint_into(y, t.view_mut());
            self.b.adjoint_into(t.view(), x);
        })
    }
    /// Closed form when `A` selects rows (mask, diagonal, subsampling: see
    /// [`LinearOperator::pullback_row_weights`]): the pulled-back weights applied to `B`'s
    /// weighted column norms; otherwise the probing default.
    fn weighted_column_norms_sq(&self, w: ArrayViewD<T::Real>) -> Result<ArrayD<T::Real>> {
        check_weights(self.range_shape(), &w)?;
        match self.a.pullback_row_weights(w.view()) {
            Some(v) => self.b.weighted_column_norms_sq(v.view()),
            None => probe_weighted_column_norms_sq(self, w, PROBE_WORK_LIMIT),
        }
    }
    fn pullback_row_weights(&self, w: ArrayViewD<T::Real>) -> Option<ArrayD<T::Real>> {
        let v = self.a.pullback_row_weights(w)?;
        self.b.pullback_row_weights(v.view())
    }
}

// ---------------------------------------------------------------------------------------
// Sum

/// The sum `A + B`: `x ↦ A x + B x`, adjoint `y ↦ Aᴴ y + Bᴴ y`.
///
/// Both operators must have identical domain and range shapes (checked at construction).
///
/// ```
/// use sparseinv_solvers::op::{Diagonal, LinearOperator, Sum};
/// use ndarray::array;
/// let a = Diagonal::new(array![2.0, 3.0].into_dyn());
/// let b = Diagonal::new(array![5.0, 7.0].into_dyn());
/// let s = Sum::new(a, b).unwrap();
/// assert_eq!(s.apply(array![1.0, 2.0].into_dyn().view()).unwrap(), array![7.0, 20.0].into_dyn());
/// ```
#[derive(Clone)]
pub struct Sum<T: Scalar, A, B> {
    a: A,
    b: B,
    scratch: Scratch<T>,
}

impl<T: Scalar, A: LinearOperator<T>, B: LinearOperator<T>> Sum<T, A, B> {
    /// `A + B`; [`Error::ShapeMismatch`] unless domains and ranges agree.
    pub fn new(a: A, b: B) -> Result<Self> {
        if a.domain_shape() != b.domain_shape() {
            return Err(Error::shape(
                "Sum (A+B): domains",
                a.domain_shape(),
                b.domain_shape(),
            ));
        }
        if a.range_shape() != b.range_shape() {
            return Err(Error::shape(
                "Sum (A+B): ranges",
                a.range_shape(),
                b.range_shape(),
            ));
        }
        Ok(Sum {
            a,
            b,
            scratch: Scratch::new(),
        })
    }
    /// The two terms `(A, B)`.
    pub fn terms(&self) -> (&A, &B) {
        (&self.a, &self.b)
    }
}

impl<T: Scalar, A: LinearOperator<T>, B: LinearOperator<T>> LinearOperator<T> for Sum<T, A, B> {
    fn domain_shape(&self) -> &[usize] {
        self.a.domain_shape()
    }
    fn range_shape(&self) -> &[usize] {
        self.a.range_shape()
    }
    fn apply_into(&self, x: ArrayViewD<T>, mut y: ArrayViewMutD<T>) {
        self.a.apply_into(x.view(), y.view_mut());
        self.scratch.with(self.a.range_shape(), |mut t| {
            self.b.apply_into(x, t.view_mut());
            add_assign(&mut y, &t.view());
        })
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, mut x: ArrayViewMutD<T>) {
        self.a.adjoint_into(y.view(), x.view_mut());
        self.scratch.with(self.a.domain_shape(), |mut t| {
            self.b.adjoint_into(y, t.view_mut());
            add_assign(&mut x, &t.view());
        })
    }
}

// ---------------------------------------------------------------------------------------
// Scaled

/// The scaled operator `α A`: `x ↦ α (A x)`, adjoint `y ↦ conj(α) (Aᴴ y)`.
///
/// ```
/// use sparseinv_solvers::op::{Diagonal, LinearOperator, Scaled};
/// use ndarray::array;
/// let s = Scaled::new(3.0, Diagonal::new(array![1.0, 2.0].into_dyn())).unwrap();
/// assert_eq!(s.apply(array![1.0, 1.0].into_dyn().view()).unwrap(), array![3.0, 6.0].into_dyn());
/// ```
#[derive(Debug, Clone)]
pub struct Scaled<T: Scalar, A> {
    alpha: T,
    op: A,
}

impl<T: Scalar, A: LinearOperator<T>> Scaled<T, A> {
    /// `α A`; [`Error::NonFinite`] when `α` is NaN or infinite.
    pub fn new(alpha: T, op: A) -> Result<Self> {
        if !alpha.is_finite_scalar() {
            return Err(Error::NonFinite {
                what: "Scaled: scale factor α".into(),
                index: 0,
            });
        }
        Ok(Scaled { alpha, op })
    }
    /// The scale factor `α`.
    pub fn alpha(&self) -> T {
        self.alpha
    }
    /// The operator `A`.
    pub fn inner(&self) -> &A {
        &self.op
    }
}

impl<T: Scalar, A: LinearOperator<T>> LinearOperator<T> for Scaled<T, A> {
    fn domain_shape(&self) -> &[usize] {
        self.op.domain_shape()
    }
    fn range_shape(&self) -> &[usize] {
        self.op.range_shape()
    }
    fn apply_into(&self, x: ArrayViewD<T>, mut y: ArrayViewMutD<T>) {
        self.op.apply_into(x, y.view_mut());
        let a = self.alpha;
        y.mapv_inplace(|v| a * v);
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, mut x: ArrayViewMutD<T>) {
        self.op.adjoint_into(y, x.view_mut());
        let a = self.alpha.conj();
        x.mapv_inplace(|v| a * v);
    }
    /// `|α|²` times those of `A`.
    fn weighted_column_norms_sq(&self, w: ArrayViewD<T::Real>) -> Result<ArrayD<T::Real>> {
        let a2 = self.alpha.abs2();
        Ok(self.op.weighted_column_norms_sq(w)?.mapv_into(|v| a2 * v))
    }
    fn pullback_row_weights(&self, w: ArrayViewD<T::Real>) -> Option<ArrayD<T::Real>> {
        let a2 = self.alpha.abs2();
        Some(self.op.pullback_row_weights(w)?.mapv_into(|v| a2 * v))
    }
}

// ---------------------------------------------------------------------------------------
// Block layout

/// How a flat 1-D stacked vector is cut into blocks of given n-d shapes.
///
/// Block `i` occupies the flat index range `offsets[i]..offsets[i+1]` and is the row-major
/// flattening of an array of shape `shapes[i]`.
///
/// ```
/// use sparseinv_solvers::op::BlockLayout;
/// use ndarray::{array, ArrayD};
/// let l = BlockLayout::new(vec![vec![2, 2], vec![3]]).unwrap();
/// assert_eq!(l.total(), 7);
/// let v = ArrayD::from_shape_vec(vec![7], (0..7).map(|i| i as f64).collect()).unwrap();
/// let parts = l.split(v.view()).unwrap();
/// assert_eq!(parts[0], array![[0.0, 1.0], [2.0, 3.0]].into_dyn());
/// assert_eq!(parts[1], array![4.0, 5.0, 6.0].into_dyn());
/// assert_eq!(l.concat(&parts).unwrap(), v);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockLayout {
    shapes: Vec<Vec<usize>>,
    offsets: Vec<usize>,
    flat: Vec<usize>,
}

impl BlockLayout {
    /// Layout of the blocks with the given shapes, in order; [`Error::Empty`] for no blocks.
    pub fn new(shapes: Vec<Vec<usize>>) -> Result<Self> {
        if shapes.is_empty() {
            return Err(Error::Empty {
                what: "block list".into(),
            });
        }
        let mut offsets = Vec::with_capacity(shapes.len() + 1);
        let mut acc = 0usize;
        offsets.push(0);
        for s in &shapes {
            acc += s.iter().product::<usize>();
            offsets.push(acc);
        }
        Ok(BlockLayout {
            shapes,
            offsets,
            flat: vec![acc],
        })
    }
    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.shapes.len()
    }
    /// Always `false` (a layout has at least one block); present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.shapes.is_empty()
    }
    /// Total flat length `Σ sizeᵢ`.
    pub fn total(&self) -> usize {
        self.flat[0]
    }
    /// Shape of the flat stacked vector, `[total]`.
    pub fn flat_shape(&self) -> &[usize] {
        &self.flat
    }
    /// The block shapes.
    pub fn shapes(&self) -> &[Vec<usize>] {
        &self.shapes
    }
    /// Flat index range `offsets[i]..offsets[i+1]` of block `i` (panics if `i >= len()`).
    pub fn range(&self, i: usize) -> std::ops::Range<usize> {
        self.offsets[i]..self.offsets[i + 1]
    }

    fn check_flat(&self, got: &[usize]) -> Result<()> {
        super::check_shape("stacked vector", &self.flat, got)
    }

    /// Split a stacked vector (shape `[total]`) into one view per block, each reshaped to the
    /// block's shape (no copy). [`Error::ShapeMismatch`] for a wrong length;
    /// [`Error::Unsupported`] when `v` is not contiguous (e.g. a strided slice).
    pub fn split<'a, T>(&self, v: ArrayViewD<'a, T>) -> Result<Vec<ArrayViewD<'a, T>>> {
        self.check_flat(v.shape())?;
        if !v.is_standard_layout() {
            return Err(Error::Unsupported(
                "splitting a non-contiguous stacked vector (copy it with .to_owned() first)".into(),
            ));
        }
        let mut out = Vec::with_capacity(self.len());
        for (i, s) in self.shapes.iter().enumerate() {
            let mut b = v.clone();
            b.slice_axis_inplace(Axis(0), Slice::from(self.range(i)));
            out.push(
                b.into_shape_with_order(IxDyn(s))
                    .expect("contiguous block reshapes"),
            );
        }
        Ok(out)
    }

    /// Mutable version of [`split`](Self::split).
    pub fn split_mut<'a, T>(&self, v: ArrayViewMutD<'a, T>) -> Result<Vec<ArrayViewMutD<'a, T>>> {
        self.check_flat(v.shape())?;
        if !v.is_standard_layout() {
            return Err(Error::Unsupported(
                "splitting a non-contiguous stacked vector".into(),
            ));
        }
        let mut out = Vec::with_capacity(self.len());
        let mut rest = v;
        for (i, s) in self.shapes.iter().enumerate() {
            let (head, tail) = rest.split_at(Axis(0), self.range(i).len());
            out.push(
                head.into_shape_with_order(IxDyn(s))
                    .expect("contiguous block reshapes"),
            );
            rest = tail;
        }
        Ok(out)
    }

    /// Build the stacked vector from one array per block (each of the block's shape).
    /// [`Error::ShapeMismatch`] for a wrong number of blocks or a wrong block shape.
    pub fn concat<T: Clone>(&self, parts: &[ArrayViewD<T>]) -> Result<ArrayD<T>> {
        if parts.len() != self.len() {
            return Err(Error::shape(
                "stacked vector: number of blocks",
                &[self.len()],
                &[parts.len()],
            ));
        }
        let mut data = Vec::with_capacity(self.total());
        for (p, s) in parts.iter().zip(&self.shapes) {
            super::check_shape("stacked vector block", s, p.shape())?;
            data.extend(p.iter().cloned());
        }
        Ok(ArrayD::from_shape_vec(IxDyn(&self.flat), data).expect("length matches"))
    }

    /// Mutable sub-view of block `i` of a flat 1-D view (private; shapes already checked).
    fn block_mut<'a, T>(&self, v: ArrayViewMutD<'a, T>, i: usize) -> ArrayViewMutD<'a, T> {
        let mut v = v;
        v.slice_axis_inplace(Axis(0), Slice::from(self.range(i)));
        v
    }

    /// Sub-view of block `i` of a flat 1-D view (private; shapes already checked).
    fn block<'a, T>(&self, v: ArrayViewD<'a, T>, i: usize) -> ArrayViewD<'a, T> {
        let mut v = v;
        v.slice_axis_inplace(Axis(0), Slice::from(self.range(i)));
        v
    }
}

fn check_nonempty<A>(ops: &[A], what: &str) -> Result<()> {
    if ops.is_empty() {
        return Err(Error::Empty {
            what: format!("{what}: operator list"),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// VStack

/// Vertical stack `[A₁; A₂; …; Aₖ]`: `x ↦ (A₁x, A₂x, …, Aₖx)`, adjoint `y ↦ Σ Aᵢᴴ yᵢ`.
///
/// All operators share one domain shape (checked). The range is the flat 1-D concatenation
/// of the row-major flattened ranges, of length `Σ range_size(Aᵢ)` (see the
/// [module docs](crate::op::combinators)); [`split`](Self::split) cuts a stacked vector into per-block views.
/// Typical use: `[A; λ∇]` in a least-squares or primal–dual formulation.
///
/// ```
/// use sparseinv_solvers::op::{Diagonal, LinearOperator, VStack};
/// use ndarray::array;
/// let v = VStack::new(vec![
///     Diagonal::new(array![1.0, 2.0].into_dyn()),
///     Diagonal::new(array![3.0, 4.0].into_dyn()),
/// ]).unwrap();
/// let y = v.apply(array![1.0, 1.0].into_dyn().view()).unwrap();
/// assert_eq!(y, array![1.0, 2.0, 3.0, 4.0].into_dyn());
/// let parts = v.split(y.view()).unwrap();
/// assert_eq!(parts[1], array![3.0, 4.0].into_dyn());
/// ```
#[derive(Clone)]
pub struct VStack<T: Scalar, A> {
    ops: Vec<A>,
    layout: BlockLayout,
    scratch: Scratch<T>,
}

impl<T: Scalar, A: LinearOperator<T>> VStack<T, A> {
    /// Stack `ops` vertically; [`Error::Empty`] for no operators, [`Error::ShapeMismatch`]
    /// when the domains differ.
    pub fn new(ops: Vec<A>) -> Result<Self> {
        check_nonempty(&ops, "VStack")?;
        for op in &ops[1..] {
            if op.domain_shape() != ops[0].domain_shape() {
                return Err(Error::shape(
                    "VStack: operator domains",
                    ops[0].domain_shape(),
                    op.domain_shape(),
                ));
            }
        }
        let layout = BlockLayout::new(ops.iter().map(|o| o.range_shape().to_vec()).collect())?;
        Ok(VStack {
            ops,
            layout,
            scratch: Scratch::new(),
        })
    }
    /// The stacked operators.
    pub fn ops(&self) -> &[A] {
        &self.ops
    }
    /// Layout of the flat range.
    pub fn range_layout(&self) -> &BlockLayout {
        &self.layout
    }
    /// Split a range vector into per-operator views (see [`BlockLayout::split`]).
    pub fn split<'a>(&self, y: ArrayViewD<'a, T>) -> Result<Vec<ArrayViewD<'a, T>>> {
        self.layout.split(y)
    }
}

impl<T: Scalar, A: LinearOperator<T>> LinearOperator<T> for VStack<T, A> {
    fn domain_shape(&self) -> &[usize] {
        self.ops[0].domain_shape()
    }
    fn range_shape(&self) -> &[usize] {
        self.layout.flat_shape()
    }
    fn apply_into(&self, x: ArrayViewD<T>, mut y: ArrayViewMutD<T>) {
        for (i, op) in self.ops.iter().enumerate() {
            let yi = self.layout.block_mut(y.view_mut(), i);
            with_reshaped_mut(yi, op.range_shape(), &self.scratch, |v| {
                op.apply_into(x.view(), v)
            });
        }
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, mut x: ArrayViewMutD<T>) {
        for (i, op) in self.ops.iter().enumerate() {
            let yi = self.layout.block(y.view(), i);
            with_reshaped(yi, op.range_shape(), &self.scratch, |yi| {
                if i == 0 {
                    op.adjoint_into(yi, x.view_mut());
                } else {
                    self.scratch.with(op.domain_shape(), |mut t| {
                        op.adjoint_into(yi, t.view_mut());
                        add_assign(&mut x, &t.view());
                    });
                }
            });
        }
    }
    /// The sum over the blocks of each block's weighted column norms.
    fn weighted_column_norms_sq(&self, w: ArrayViewD<T::Real>) -> Result<ArrayD<T::Real>> {
        check_weights(self.range_shape(), &w)?;
        let parts = self.layout.split(w)?;
        let mut acc = self.ops[0].weighted_column_norms_sq(parts[0].view())?;
        for (op, wi) in self.ops.iter().zip(&parts).skip(1) {
            add_into(&mut acc, &op.weighted_column_norms_sq(wi.view())?);
        }
        Ok(acc)
    }
    fn pullback_row_weights(&self, w: ArrayViewD<T::Real>) -> Option<ArrayD<T::Real>> {
        let parts = self.layout.split(w).ok()?;
        let mut acc = self.ops[0].pullback_row_weights(parts[0].view())?;
        for (op, wi) in self.ops.iter().zip(&parts).skip(1) {
            add_into(&mut acc, &op.pullback_row_weights(wi.view())?);
        }
        Some(acc)
    }
}

// ---------------------------------------------------------------------------------------
// HStack

/// Horizontal stack `[A₁, A₂, …, Aₖ]`: `(x₁, …, xₖ) ↦ Σ Aᵢ xᵢ`, adjoint
/// `y ↦ (A₁ᴴy, …, Aₖᴴy)`.
///
/// All operators share one range shape (checked). The domain is the flat 1-D concatenation
/// of the row-major flattened domains (see the [module docs](crate::op::combinators));
/// [`split`](Self::split) cuts a stacked vector into per-block views. Typical use: a
/// synthesis dictionary made of several transforms.
///
/// ```
/// use sparseinv_solvers::op::{Diagonal, HStack, LinearOperator};
/// use ndarray::array;
/// let h = HStack::new(vec![
///     Diagonal::new(array![1.0, 2.0].into_dyn()),
///     Diagonal::new(array![3.0, 4.0].into_dyn()),
/// ]).unwrap();
/// let y = h.apply(array![1.0, 1.0, 1.0, 1.0].into_dyn().view()).unwrap();
/// assert_eq!(y, array![4.0, 6.0].into_dyn());
/// ```
#[derive(Clone)]
pub struct HStack<T: Scalar, A> {
    ops: Vec<A>,
    layout: BlockLayout,
    scratch: Scratch<T>,
}

impl<T: Scalar, A: LinearOperator<T>> HStack<T, A> {
    /// Stack `ops` horizontally; [`Error::Empty`] for no operators,
    /// [`Error::ShapeMismatch`] when the ranges differ.
    pub fn new(ops: Vec<A>) -> Result<Self> {
        check_nonempty(&ops, "HStack")?;
        for op in &ops[1..] {
            if op.range_shape() != ops[0].range_shape() {
                return Err(Error::shape(
                    "HStack: operator ranges",
                    ops[0].range_shape(),
                    op.range_shape(),
                ));
            }
        }
        let layout = BlockLayout::new(ops.iter().map(|o| o.domain_shape().to_vec()).collect())?;
        Ok(HStack {
            ops,
            layout,
            scratch: Scratch::new(),
        })
    }
    /// The stacked operators.
    pub fn ops(&self) -> &[A] {
        &self.ops
    }
    /// Layout of the flat domain.
    pub fn domain_layout(&self) -> &BlockLayout {
        &self.layout
    }
    /// Split a domain vector into per-operator views (see [`BlockLayout::split`]).
    pub fn split<'a>(&self, x: ArrayViewD<'a, T>) -> Result<Vec<ArrayViewD<'a, T>>> {
        self.layout.split(x)
    }
}

impl<T: Scalar, A: LinearOperator<T>> LinearOperator<T> for HStack<T, A> {
    fn domain_shape(&self) -> &[usize] {
        self.layout.flat_shape()
    }
    fn range_shape(&self) -> &[usize] {
        self.ops[0].range_shape()
    }
    fn apply_into(&self, x: ArrayViewD<T>, mut y: ArrayViewMutD<T>) {
        for (i, op) in self.ops.iter().enumerate() {
            let xi = self.layout.block(x.view(), i);
            with_reshaped(xi, op.domain_shape(), &self.scratch, |xi| {
                if i == 0 {
                    op.apply_into(xi, y.view_mut());
                } else {
                    self.scratch.with(op.range_shape(), |mut t| {
                        op.apply_into(xi, t.view_mut());
                        add_assign(&mut y, &t.view());
                    });
                }
            });
        }
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, mut x: ArrayViewMutD<T>) {
        for (i, op) in self.ops.iter().enumerate() {
            let xi = self.layout.block_mut(x.view_mut(), i);
            with_reshaped_mut(xi, op.domain_shape(), &self.scratch, |v| {
                op.adjoint_into(y.view(), v)
            });
        }
    }
    /// The blocks' weighted column norms, concatenated (flat domain).
    fn weighted_column_norms_sq(&self, w: ArrayViewD<T::Real>) -> Result<ArrayD<T::Real>> {
        check_weights(self.range_shape(), &w)?;
        let parts = self
            .ops
            .iter()
            .map(|op| op.weighted_column_norms_sq(w.view()))
            .collect::<Result<Vec<_>>>()?;
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        self.layout.concat(&views)
    }
}

// ---------------------------------------------------------------------------------------
// BlockDiag

/// Block-diagonal operator `diag(A₁, …, Aₖ)`: `(x₁, …, xₖ) ↦ (A₁x₁, …, Aₖxₖ)`, adjoint
/// `(y₁, …, yₖ) ↦ (A₁ᴴy₁, …, Aₖᴴyₖ)`.
///
/// Domain and range are both flat 1-D concatenations (see the [module docs](crate::op::combinators)); any
/// shapes may be mixed. Typical use: one operator per band or per channel.
///
/// ```
/// use sparseinv_solvers::op::{BlockDiag, Diagonal, LinearOperator};
/// use ndarray::array;
/// let b = BlockDiag::new(vec![
///     Diagonal::new(array![2.0].into_dyn()),
///     Diagonal::new(array![3.0, 4.0].into_dyn()),
/// ]).unwrap();
/// let y = b.apply(array![1.0, 1.0, 1.0].into_dyn().view()).unwrap();
/// assert_eq!(y, array![2.0, 3.0, 4.0].into_dyn());
/// ```
#[derive(Clone)]
pub struct BlockDiag<T: Scalar, A> {
    ops: Vec<A>,
    dom: BlockLayout,
    ran: BlockLayout,
    scratch: Scratch<T>,
}

impl<T: Scalar, A: LinearOperator<T>> BlockDiag<T, A> {
    /// Block-diagonal operator of `ops`; [`Error::Empty`] for no operators.
    pub fn new(ops: Vec<A>) -> Result<Self> {
        check_nonempty(&ops, "BlockDiag")?;
        let dom = BlockLayout::new(ops.iter().map(|o| o.domain_shape().to_vec()).collect())?;
        let ran = BlockLayout::new(ops.iter().map(|o| o.range_shape().to_vec()).collect())?;
        Ok(BlockDiag {
            ops,
            dom,
            ran,
            scratch: Scratch::new(),
        })
    }
    /// The diagonal blocks.
    pub fn ops(&self) -> &[A] {
        &self.ops
    }
    /// Layout of the flat domain.
    pub fn domain_layout(&self) -> &BlockLayout {
        &self.dom
    }
    /// Layout of the flat range.
    pub fn range_layout(&self) -> &BlockLayout {
        &self.ran
    }
    /// Split a domain vector into per-block views.
    pub fn split_domain<'a>(&self, x: ArrayViewD<'a, T>) -> Result<Vec<ArrayViewD<'a, T>>> {
        self.dom.split(x)
    }
    /// Split a range vector into per-block views.
    pub fn split_range<'a>(&self, y: ArrayViewD<'a, T>) -> Result<Vec<ArrayViewD<'a, T>>> {
        self.ran.split(y)
    }
}

impl<T: Scalar, A: LinearOperator<T>> LinearOperator<T> for BlockDiag<T, A> {
    fn domain_shape(&self) -> &[usize] {
        self.dom.flat_shape()
    }
    fn range_shape(&self) -> &[usize] {
        self.ran.flat_shape()
    }
    fn apply_into(&self, x: ArrayViewD<T>, mut y: ArrayViewMutD<T>) {
        for (i, op) in self.ops.iter().enumerate() {
            let xi = self.dom.block(x.view(), i);
            let yi = self.ran.block_mut(y.view_mut(), i);
            with_reshaped(xi, op.domain_shape(), &self.scratch, |xi| {
                with_reshaped_mut(yi, op.range_shape(), &self.scratch, |yi| {
                    op.apply_into(xi, yi)
                })
            });
        }
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, mut x: ArrayViewMutD<T>) {
        for (i, op) in self.ops.iter().enumerate() {
            let yi = self.ran.block(y.view(), i);
            let xi = self.dom.block_mut(x.view_mut(), i);
            with_reshaped(yi, op.range_shape(), &self.scratch, |yi| {
                with_reshaped_mut(xi, op.domain_shape(), &self.scratch, |xi| {
                    op.adjoint_into(yi, xi)
                })
            });
        }
    }
    /// Each block's weighted column norms on its part of the flat domain.
    fn weighted_column_norms_sq(&self, w: ArrayViewD<T::Real>) -> Result<ArrayD<T::Real>> {
        check_weights(self.range_shape(), &w)?;
        let parts = self
            .ran
            .split(w)?
            .into_iter()
            .zip(&self.ops)
            .map(|(wi, op)| op.weighted_column_norms_sq(wi))
            .collect::<Result<Vec<_>>>()?;
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        self.dom.concat(&views)
    }
    fn pullback_row_weights(&self, w: ArrayViewD<T::Real>) -> Option<ArrayD<T::Real>> {
        let parts = self
            .ran
            .split(w)
            .ok()?
            .into_iter()
            .zip(&self.ops)
            .map(|(wi, op)| op.pullback_row_weights(wi))
            .collect::<Option<Vec<_>>>()?;
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        self.dom.concat(&views).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Diagonal;
    use crate::testing::randn;
    use ndarray::s;

    #[test]
    fn non_contiguous_stacked_inputs_give_same_result() {
        // A strided range vector exercises the copy-through-scratch path.
        let a = Diagonal::new(randn::<f64>(&[2, 3], 1));
        let b = Diagonal::new(randn::<f64>(&[2, 3], 2));
        let v = VStack::new(vec![a, b]).unwrap();
        let y = randn::<f64>(&[24], 3);
        let strided = y.slice(s![..;2]).into_dyn();
        assert!(!strided.is_standard_layout());
        let mut x1 = ArrayD::zeros(IxDyn(&[2, 3]));
        v.adjoint_into(strided.view(), x1.view_mut());
        let x2 = v.adjoint(strided.to_owned().view()).unwrap();
        assert_eq!(x1, x2);
        let mut big = ArrayD::<f64>::zeros(IxDyn(&[24]));
        let x = randn::<f64>(&[2, 3], 4);
        v.apply_into(x.view(), big.slice_mut(s![..;2]).into_dyn());
        assert_eq!(big.slice(s![..;2]).into_dyn(), v.apply(x.view()).unwrap());
        assert!(v.split(strided).is_err());
    }
}
