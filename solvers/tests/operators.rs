//! Integration tests of the built-in operators (Mask, Subsample, FiniteDiff, Downsample) and
//! the combinators: adjoint dot tests for f32, f64 and Complex64, and comparison of every
//! operator's explicit matrix (built by applying it to unit vectors) with a brute-force
//! expected matrix.

use ndarray::{s, Array2, ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};
use num_complex::Complex64;
use sparseinv_solvers::op::{
    Adjoint, BlockDiag, Compose, Diagonal, Downsample, DownsampleMode, FiniteDiff, HStack,
    LinearOperator, Mask, Scaled, Subsample, Sum, VStack,
};
use sparseinv_solvers::testing::{assert_adjoint, randn};
use sparseinv_solvers::{Error, Real, Scalar, C64};

type BoxOp<T> = Box<dyn LinearOperator<T>>;

/// A dense matrix acting on row-major flattened arrays (test-local reference operator).
struct Dense<T: Scalar> {
    m: Array2<T>,
    dom: Vec<usize>,
    ran: Vec<usize>,
}

impl<T: Scalar> Dense<T> {
    fn random(ran: &[usize], dom: &[usize], seed: u64) -> Self {
        let r: usize = ran.iter().product();
        let c: usize = dom.iter().product();
        let m = randn::<T>(&[r, c], seed).into_dimensionality().unwrap();
        Dense {
            m,
            dom: dom.to_vec(),
            ran: ran.to_vec(),
        }
    }
}

impl<T: Scalar> LinearOperator<T> for Dense<T> {
    fn domain_shape(&self) -> &[usize] {
        &self.dom
    }
    fn range_shape(&self) -> &[usize] {
        &self.ran
    }
    fn apply_into(&self, x: ArrayViewD<T>, mut y: ArrayViewMutD<T>) {
        let xs: Vec<T> = x.iter().cloned().collect();
        for (i, yi) in y.iter_mut().enumerate() {
            *yi = self
                .m
                .row(i)
                .iter()
                .zip(&xs)
                .fold(T::zero(), |a, (&m, &x)| a + m * x);
        }
    }
    fn adjoint_into(&self, y: ArrayViewD<T>, mut x: ArrayViewMutD<T>) {
        let ys: Vec<T> = y.iter().cloned().collect();
        for (j, xj) in x.iter_mut().enumerate() {
            *xj = self
                .m
                .column(j)
                .iter()
                .zip(&ys)
                .fold(T::zero(), |a, (&m, &y)| a + m.conj() * y);
        }
    }
}

/// The explicit matrix of `op`: column j = flatten(A e_j).
fn dense<T: Scalar, A: LinearOperator<T> + ?Sized>(op: &A) -> Array2<T> {
    let n = op.domain_size();
    let m = op.range_size();
    let mut out = Array2::<T>::zeros((m, n));
    let mut e = ArrayD::<T>::zeros(IxDyn(op.domain_shape()));
    for j in 0..n {
        e.as_slice_mut().unwrap()[j] = T::one();
        let col = op.apply(e.view()).unwrap();
        for (i, &v) in col.iter().enumerate() {
            out[[i, j]] = v;
        }
        e.as_slice_mut().unwrap()[j] = T::zero();
    }
    out
}

/// The explicit matrix of the adjoint: column i = flatten(Aᴴ e_i).
fn dense_adjoint<T: Scalar, A: LinearOperator<T> + ?Sized>(op: &A) -> Array2<T> {
    dense(&Adjoint::new(op))
}

fn conj_t<T: Scalar>(m: &Array2<T>) -> Array2<T> {
    m.t().mapv(|v| v.conj())
}

fn assert_close<T: Scalar>(a: &Array2<T>, b: &Array2<T>, tol: f64) {
    assert_eq!(a.shape(), b.shape(), "matrix shapes differ");
    for ((i, j), &x) in a.indexed_iter() {
        let d = (x - b[[i, j]]).modulus().to_f64_lossless();
        assert!(d <= tol, "entry ({i},{j}): {x:?} vs {:?}", b[[i, j]]);
    }
}

/// Forward matrix equals the brute-force `expected`, and the adjoint's matrix is its
/// conjugate transpose.
fn check_matrix<T: Scalar, A: LinearOperator<T> + ?Sized>(op: &A, expected: &Array2<T>, tol: f64) {
    let m = dense(op);
    assert_close(&m, expected, tol);
    assert_close(&dense_adjoint(op), &conj_t(expected), tol);
}

fn block_diag<T: Scalar>(blocks: &[Array2<T>]) -> Array2<T> {
    let r: usize = blocks.iter().map(|b| b.nrows()).sum();
    let c: usize = blocks.iter().map(|b| b.ncols()).sum();
    let mut out = Array2::zeros((r, c));
    let (mut i0, mut j0) = (0, 0);
    for b in blocks {
        out.slice_mut(s![i0..i0 + b.nrows(), j0..j0 + b.ncols()])
            .assign(b);
        i0 += b.nrows();
        j0 += b.ncols();
    }
    out
}

// ------------------------------------------------------------------------------------------
// Brute-force expected matrices

/// Row-major flat index of a multi-index.
fn flat(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &n)| acc * n + i)
}

/// All multi-indices of `shape` in row-major order.
fn multi_indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let n: usize = shape.iter().product();
    (0..n)
        .map(|mut k| {
            let mut idx = vec![0; shape.len()];
            for a in (0..shape.len()).rev() {
                idx[a] = k % shape[a];
                k /= shape[a];
            }
            idx
        })
        .collect()
}

fn finite_diff_expected<T: Scalar>(shape: &[usize], axes: &[usize]) -> Array2<T> {
    let n: usize = shape.iter().product();
    let mut out = Array2::zeros((axes.len() * n, n));
    for (j, &a) in axes.iter().enumerate() {
        for idx in multi_indices(shape) {
            if idx[a] + 1 < shape[a] {
                let row = j * n + flat(&idx, shape);
                let mut nxt = idx.clone();
                nxt[a] += 1;
                out[[row, flat(&nxt, shape)]] += T::one();
                out[[row, flat(&idx, shape)]] -= T::one();
            }
        }
    }
    out
}

fn downsample_expected<T: Scalar>(shape: &[usize], f: &[usize], mean: bool) -> Array2<T> {
    let out_shape: Vec<usize> = shape.iter().zip(f).map(|(&n, &f)| n / f).collect();
    let m: usize = out_shape.iter().product();
    let n: usize = shape.iter().product();
    let w = if mean {
        1.0 / f.iter().product::<usize>() as f64
    } else {
        1.0
    };
    let mut out = Array2::zeros((m, n));
    for idx in multi_indices(shape) {
        let o: Vec<usize> = idx.iter().zip(f).map(|(&i, &f)| i / f).collect();
        out[[flat(&o, &out_shape), flat(&idx, shape)]] = T::from_f64(w);
    }
    out
}

fn mask_fixture(shape: &[usize]) -> ArrayD<bool> {
    let mut k = 0usize;
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        k += 1;
        (k * 7) % 3 != 0
    })
}

// ------------------------------------------------------------------------------------------
// Adjoint dot tests for every operator and combinator, per scalar type

fn all_operators<T: Scalar>() -> Vec<(&'static str, BoxOp<T>)> {
    let fd: BoxOp<T> = Box::new(FiniteDiff::new(&[5, 6]).unwrap());
    let mut v: Vec<(&'static str, BoxOp<T>)> = vec![
        ("Mask", Box::new(Mask::new(mask_fixture(&[4, 5])))),
        ("Subsample", Box::new(Subsample::new(mask_fixture(&[4, 5])))),
        (
            "Subsample repeated indices",
            Box::new(Subsample::from_indices(&[3, 3], vec![8, 0, 4, 0, 2]).unwrap()),
        ),
        (
            "FiniteDiff 2-d",
            Box::new(FiniteDiff::new(&[5, 6]).unwrap()),
        ),
        (
            "FiniteDiff 3-d subset",
            Box::new(FiniteDiff::with_axes(&[3, 4, 5], &[2, 0]).unwrap()),
        ),
        ("FiniteDiff 1-d", Box::new(FiniteDiff::new(&[7]).unwrap())),
        (
            "FiniteDiff length-1 axis",
            Box::new(FiniteDiff::new(&[1, 4]).unwrap()),
        ),
        (
            "Downsample sum",
            Box::new(Downsample::new(&[6, 8], &[2, 4]).unwrap()),
        ),
        (
            "Downsample mean 3-d",
            Box::new(Downsample::uniform(&[4, 6, 2], 2).unwrap().mean()),
        ),
        (
            "Adjoint(FiniteDiff)",
            Box::new(Adjoint::new(FiniteDiff::new(&[4, 3]).unwrap())),
        ),
        (
            "Compose(Downsample, Dense)",
            Box::new(
                Compose::new(
                    Downsample::new(&[4, 4], &[2, 2]).unwrap(),
                    Dense::<T>::random(&[4, 4], &[3, 5], 11),
                )
                .unwrap(),
            ),
        ),
        (
            "Sum(Dense, Diagonal)",
            Box::new(
                Sum::new(
                    Dense::<T>::random(&[3, 4], &[3, 4], 12),
                    Diagonal::new(randn::<T>(&[3, 4], 13)),
                )
                .unwrap(),
            ),
        ),
        (
            "Scaled(FiniteDiff)",
            Box::new(
                Scaled::new(
                    T::from_parts(
                        sparseinv_solvers::scalar::real(0.7),
                        sparseinv_solvers::scalar::real(-1.3),
                    ),
                    FiniteDiff::new(&[3, 5]).unwrap(),
                )
                .unwrap(),
            ),
        ),
        (
            "VStack(Dense, FiniteDiff, Mask)",
            Box::new(
                VStack::new(vec![
                    Box::new(Dense::<T>::random(&[7], &[5, 6], 14)) as BoxOp<T>,
                    fd,
                    Box::new(Mask::new(mask_fixture(&[5, 6]))),
                ])
                .unwrap(),
            ),
        ),
        (
            "HStack(Dense, Downsample, Adjoint(Subsample))",
            Box::new(
                HStack::new(vec![
                    Box::new(Dense::<T>::random(&[2, 3], &[4], 15)) as BoxOp<T>,
                    Box::new(Downsample::new(&[4, 6], &[2, 2]).unwrap()),
                    Box::new(Adjoint::new(
                        Subsample::from_indices(&[2, 3], vec![5, 1, 3]).unwrap(),
                    )),
                ])
                .unwrap(),
            ),
        ),
        (
            "BlockDiag(FiniteDiff, Dense, Downsample)",
            Box::new(
                BlockDiag::new(vec![
                    Box::new(FiniteDiff::new(&[3, 3]).unwrap()) as BoxOp<T>,
                    Box::new(Dense::<T>::random(&[5], &[2, 2], 16)),
                    Box::new(Downsample::new(&[2, 6], &[1, 3]).unwrap()),
                ])
                .unwrap(),
            ),
        ),
    ];
    // A nested combinator: Adjoint(Compose(VStack, Scaled)).
    let inner = VStack::new(vec![
        FiniteDiff::new(&[4, 4]).unwrap(),
        FiniteDiff::with_axes(&[4, 4], &[1]).unwrap(),
    ])
    .unwrap();
    let scaled = Scaled::new(T::from_f64(-2.5), Diagonal::new(randn::<T>(&[4, 4], 17))).unwrap();
    v.push((
        "Adjoint(Compose(VStack, Scaled))",
        Box::new(Adjoint::new(Compose::new(inner, scaled).unwrap())),
    ));
    v
}

fn dot_tests<T: Scalar>(tol: f64) {
    for (name, op) in all_operators::<T>() {
        eprintln!("dot test: {name}");
        assert_adjoint(&*op, tol);
    }
}

#[test]
fn adjoint_dot_test_f32() {
    dot_tests::<f32>(1e-5);
}

#[test]
fn adjoint_dot_test_f64() {
    dot_tests::<f64>(1e-12);
}

#[test]
fn adjoint_dot_test_complex64() {
    dot_tests::<Complex64>(1e-12);
}

// ------------------------------------------------------------------------------------------
// Explicit matrices against brute force

#[test]
fn finite_diff_hand_computed_1d() {
    let g = FiniteDiff::new(&[3]).unwrap();
    #[rustfmt::skip]
    let expected = ndarray::array![
        [-1.0, 1.0, 0.0],
        [0.0, -1.0, 1.0],
        [0.0, 0.0, 0.0],
    ];
    check_matrix::<f64, _>(&g, &expected, 0.0);
    // Adjoint = −div: Dᵀ p = (−p0, p0 − p1, p1) (the last entry of p is ignored).
    let p = ndarray::array![[1.0, 4.0, 100.0]].into_dyn();
    let d = LinearOperator::<f64>::adjoint(&g, p.view()).unwrap();
    assert_eq!(d, ndarray::array![-1.0, -3.0, 4.0].into_dyn());
}

#[test]
fn finite_diff_matrix_matches_brute_force() {
    check_matrix::<f64, _>(
        &FiniteDiff::new(&[3, 4]).unwrap(),
        &finite_diff_expected(&[3, 4], &[0, 1]),
        0.0,
    );
    check_matrix::<C64, _>(
        &FiniteDiff::with_axes(&[2, 3, 4], &[2, 0]).unwrap(),
        &finite_diff_expected(&[2, 3, 4], &[2, 0]),
        0.0,
    );
    check_matrix::<f32, _>(
        &FiniteDiff::new(&[1, 5]).unwrap(),
        &finite_diff_expected(&[1, 5], &[0, 1]),
        0.0,
    );
}

/// The strided path (inputs and outputs not in standard layout: Fortran order) gives the same
/// numbers as the contiguous path, which `finite_diff_matrix_matches_brute_force` pins to the
/// brute-force matrix, in both directions, including a length-1 axis and an axis subset.
#[test]
fn finite_diff_strided_matches_contiguous() {
    use ndarray::ShapeBuilder;
    for (shape, axes) in [
        (vec![4usize, 5], vec![0usize, 1]),
        (vec![3, 1, 6], vec![2, 1, 0]),
        (vec![2, 3, 4], vec![1]),
    ] {
        let d = FiniteDiff::with_axes(&shape, &axes).unwrap();
        let x = randn::<f64>(&shape, 31);
        let mut xf = ArrayD::<f64>::zeros(IxDyn(&shape).f());
        xf.assign(&x);
        let y = LinearOperator::<f64>::apply(&d, x.view()).unwrap();
        let mut yf = ArrayD::<f64>::zeros(IxDyn(LinearOperator::<f64>::range_shape(&d)).f());
        LinearOperator::<f64>::apply_into(&d, xf.view(), yf.view_mut());
        assert!(xf.as_slice().is_none() && yf.as_slice().is_none());
        assert_eq!(y, yf, "apply {shape:?} {axes:?}");
        let z = LinearOperator::<f64>::adjoint(&d, y.view()).unwrap();
        let mut zf = ArrayD::<f64>::zeros(IxDyn(&shape).f());
        LinearOperator::<f64>::adjoint_into(&d, yf.view(), zf.view_mut());
        assert!(
            z.iter()
                .zip(zf.iter())
                .all(|(a, b)| (a - b).abs() <= 1e-14 * (1.0 + a.abs())),
            "adjoint {shape:?} {axes:?}"
        );
    }
}

#[test]
fn finite_diff_norm_bound() {
    // ‖∇‖² ≤ 4·(number of axes); for a 2-d grid the bound is approached from below.
    let g = FiniteDiff::new(&[16, 16]).unwrap();
    let n: f64 = sparseinv_solvers::op::op_norm::<f64, _>(&g, Default::default());
    assert!(n * n <= 8.0 + 1e-9 && n * n > 7.5, "‖∇‖² = {}", n * n);
}

#[test]
fn downsample_matrix_matches_block_sums() {
    check_matrix::<f64, _>(
        &Downsample::new(&[4, 6], &[2, 3]).unwrap(),
        &downsample_expected(&[4, 6], &[2, 3], false),
        0.0,
    );
    check_matrix::<f64, _>(
        &Downsample::with_mode(&[4, 6], &[2, 3], DownsampleMode::Mean).unwrap(),
        &downsample_expected(&[4, 6], &[2, 3], true),
        1e-15,
    );
    check_matrix::<C64, _>(
        &Downsample::new(&[2, 4, 6], &[1, 2, 3]).unwrap(),
        &downsample_expected(&[2, 4, 6], &[1, 2, 3], false),
        0.0,
    );
    check_matrix::<f32, _>(
        &Downsample::new(&[9], &[3]).unwrap(),
        &downsample_expected(&[9], &[3], false),
        0.0,
    );
}

#[test]
fn downsample_conserves_flux() {
    let d = Downsample::uniform(&[8, 12], 4).unwrap();
    let x = randn::<f64>(&[8, 12], 5);
    let y = d.apply(x.view()).unwrap();
    assert_eq!(y.shape(), &[2, 3]);
    assert!((y.sum() - x.sum()).abs() < 1e-12);
    // Mean mode conserves the average pixel value instead.
    let dm = Downsample::uniform(&[8, 12], 4).unwrap().mean();
    let ym = dm.apply(x.view()).unwrap();
    assert!((ym.mean().unwrap() - x.mean().unwrap()).abs() < 1e-12);
}

#[test]
fn mask_and_subsample_matrices() {
    let m = mask_fixture(&[3, 4]);
    let n = 12;
    let mut diag = Array2::<f64>::zeros((n, n));
    let mut kept = vec![];
    for (i, &b) in m.iter().enumerate() {
        if b {
            diag[[i, i]] = 1.0;
            kept.push(i);
        }
    }
    check_matrix::<f64, _>(&Mask::new(m.clone()), &diag, 0.0);
    let mut sel = Array2::<C64>::zeros((kept.len(), n));
    for (r, &i) in kept.iter().enumerate() {
        sel[[r, i]] = C64::new(1.0, 0.0);
    }
    let sub = Subsample::new(m);
    assert_eq!(sub.indices(), &kept[..]);
    assert_eq!(LinearOperator::<f64>::range_shape(&sub), &[kept.len()]);
    check_matrix::<C64, _>(&sub, &sel, 0.0);
    // Subsampling a non-contiguous (transposed) input still uses row-major order.
    let x = randn::<f64>(&[4, 3], 9);
    let xt = x.t();
    let y = sub.apply(xt.view()).unwrap();
    let xt_owned = xt.as_standard_layout().to_owned();
    for (r, &i) in kept.iter().enumerate() {
        assert_eq!(y[[r]], xt_owned.as_slice().unwrap()[i]);
    }
}

#[test]
fn combinator_matrices() {
    type T = C64;
    let a = Dense::<T>::random(&[3, 2], &[4], 21);
    let b = Dense::<T>::random(&[4], &[5], 22);
    let (ma, mb) = (dense(&a), dense(&b));

    let ab = Compose::new(&a, &b).unwrap();
    check_matrix(&ab, &ma.dot(&mb), 1e-12);

    let adj = Adjoint::new(&a);
    check_matrix(&adj, &conj_t(&ma), 0.0);

    let c = Dense::<T>::random(&[3, 2], &[4], 23);
    check_matrix(&Sum::new(&a, &c).unwrap(), &(&ma + &dense(&c)), 1e-12);

    let alpha = C64::new(0.5, 2.0);
    check_matrix(
        &Scaled::new(alpha, &a).unwrap(),
        &ma.mapv(|v| alpha * v),
        1e-12,
    );

    // VStack: rows of the blocks one after the other.
    let d = Dense::<T>::random(&[2], &[4], 24);
    let vs = VStack::new(vec![&a, &d]).unwrap();
    let expected = ndarray::concatenate![ndarray::Axis(0), ma, dense(&d)];
    check_matrix(&vs, &expected, 0.0);

    // HStack: columns of the blocks one after the other.
    let e = Dense::<T>::random(&[3, 2], &[2, 3], 25);
    let hs = HStack::new(vec![&a, &e]).unwrap();
    let expected = ndarray::concatenate![ndarray::Axis(1), ma, dense(&e)];
    check_matrix(&hs, &expected, 1e-12);

    // BlockDiag with heterogeneous boxed operators.
    let f = FiniteDiff::new(&[2, 2]).unwrap();
    let bd = BlockDiag::new(vec![
        Box::new(&a) as Box<dyn LinearOperator<T> + '_>,
        Box::new(f.clone()),
    ])
    .unwrap();
    let expected = block_diag(&[ma.clone(), dense::<T, _>(&f)]);
    check_matrix(&bd, &expected, 0.0);
}

#[test]
fn stack_split_and_concat() {
    let a = Dense::<f64>::random(&[2, 3], &[4], 31);
    let b = Dense::<f64>::random(&[5], &[4], 32);
    let vs = VStack::new(vec![&a, &b]).unwrap();
    assert_eq!(vs.range_shape(), &[11]);
    let x = randn::<f64>(&[4], 33);
    let y = vs.apply(x.view()).unwrap();
    let parts = vs.split(y.view()).unwrap();
    assert_eq!(parts[0], a.apply(x.view()).unwrap());
    assert_eq!(parts[1], b.apply(x.view()).unwrap());
    assert_eq!(vs.range_layout().concat(&parts).unwrap(), y);
    assert!(vs.split(y.slice(s![..10]).into_dyn()).is_err());

    let hs = HStack::new(vec![Adjoint::new(&a), Adjoint::new(&b)]).unwrap();
    assert_eq!(hs.domain_shape(), &[11]);
    let xs = hs.split(y.view()).unwrap();
    assert_eq!(xs[0].shape(), &[2, 3]);
    assert_eq!(xs[1].shape(), &[5]);
}

#[test]
fn shape_errors_are_errors() {
    let fd = FiniteDiff::new(&[3, 4]).unwrap();
    let ds = Downsample::new(&[4, 4], &[2, 2]).unwrap();
    // Compose: B's range [2,3,4] is not A's domain [4,4].
    assert!(matches!(
        Compose::<f64, _, _>::new(&ds, &fd),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        Sum::<f64, _, _>::new(&fd, &FiniteDiff::new(&[4, 3]).unwrap()),
        Err(Error::ShapeMismatch { .. })
    ));
    // Same domain, different range.
    assert!(matches!(
        Sum::<f64, _, _>::new(&fd, &FiniteDiff::with_axes(&[3, 4], &[0]).unwrap()),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        VStack::<f64, _>::new(vec![&fd as &dyn LinearOperator<f64>, &ds]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        HStack::<f64, _>::new(vec![&fd as &dyn LinearOperator<f64>, &ds]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        VStack::<f64, FiniteDiff>::new(vec![]),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        HStack::<f64, FiniteDiff>::new(vec![]),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        BlockDiag::<f64, FiniteDiff>::new(vec![]),
        Err(Error::Empty { .. })
    ));
    assert!(Scaled::new(f64::NAN, &fd).is_err());

    // Downsample: not divisible, with the shapes in the message.
    let e = Downsample::new(&[5, 4], &[2, 2]).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("[5, 4]") && msg.contains("[2, 2]"), "{msg}");
    assert!(Downsample::new(&[4, 4], &[2]).is_err());
    assert!(Downsample::new(&[4, 4], &[0, 2]).is_err());
    assert!(Downsample::new(&[], &[]).is_err());
    assert!(Downsample::new(&[0, 4], &[1, 2]).is_err());

    // FiniteDiff: bad axes.
    assert!(FiniteDiff::with_axes(&[3, 4], &[2]).is_err());
    assert!(FiniteDiff::with_axes(&[3, 4], &[1, 1]).is_err());
    assert!(FiniteDiff::with_axes(&[3, 4], &[]).is_err());
    assert!(FiniteDiff::new(&[]).is_err());
    assert!(FiniteDiff::new(&[3, 0]).is_err());

    // Subsample: index out of bounds.
    assert!(Subsample::from_indices(&[2, 2], vec![0, 4]).is_err());

    // Applying to a wrongly shaped input is an error, not a panic.
    let vs = VStack::<f64, _>::new(vec![&fd, &fd]).unwrap();
    let x = ArrayD::<f64>::zeros(IxDyn(&[4, 3]));
    assert!(matches!(
        vs.apply(x.view()),
        Err(Error::ShapeMismatch { .. })
    ));
    let y = ArrayD::<f64>::zeros(IxDyn(&[10]));
    assert!(matches!(
        vs.adjoint(y.view()),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(LinearOperator::<f64>::apply(&ds, x.view()).is_err());
}

// ------------------------------------------------------------------------------------------
// Column norms: every closed form against the brute-force explicit matrix

/// `c_j = Σ_i w_i |M_ij|²` of the explicit matrix (the independent reference), in f64.
fn brute_column_norms<T: Scalar>(op: &dyn LinearOperator<T>, w: Option<&[f64]>) -> Vec<f64> {
    let m = dense(op);
    (0..m.ncols())
        .map(|j| {
            m.column(j)
                .iter()
                .enumerate()
                .map(|(i, v)| w.map_or(1.0, |w| w[i]) * v.abs2().to_f64_lossless())
                .sum()
        })
        .collect()
}

/// The operator's `column_norms_sq` and `weighted_column_norms_sq` (random non-negative
/// weights with some zeros) equal the brute force to `tol` relative to the largest norm.
fn check_column_norms<T: Scalar>(name: &str, op: &dyn LinearOperator<T>, tol: f64, seed: u64) {
    let got = op.column_norms_sq().unwrap();
    assert_eq!(got.shape(), op.domain_shape(), "{name}: shape");
    let want = brute_column_norms(op, None);
    let scale = want.iter().fold(1e-300f64, |a, &b| a.max(b));
    for (j, (g, w)) in got.iter().zip(&want).enumerate() {
        let d = (g.to_f64_lossless() - w).abs();
        assert!(d <= tol * scale, "{name}: column {j}: {g} vs {w}");
    }
    let wts: Vec<f64> = randn::<f64>(&[op.range_size()], seed)
        .iter()
        .enumerate()
        .map(|(i, v)| if i % 5 == 3 { 0.0 } else { v.abs() })
        .collect();
    let wt = ArrayD::from_shape_vec(
        IxDyn(op.range_shape()),
        wts.iter()
            .map(|&v| <T::Real as Scalar>::from_f64(v))
            .collect(),
    )
    .unwrap();
    let got = op.weighted_column_norms_sq(wt.view()).unwrap();
    let want = brute_column_norms(op, Some(&wts));
    let scale = want.iter().fold(1e-300f64, |a, &b| a.max(b));
    for (j, (g, w)) in got.iter().zip(&want).enumerate() {
        let d = (g.to_f64_lossless() - w).abs();
        assert!(d <= tol * scale, "{name}: weighted column {j}: {g} vs {w}");
    }
}

fn column_norm_operators<T: Scalar>() -> Vec<(String, BoxOp<T>)> {
    use sparseinv_solvers::op::{Boundary, Conv2d, Kronecker, Matrix};
    let mat = |r: usize, c: usize, seed: u64| -> Array2<T> {
        randn::<T>(&[r, c], seed).into_dimensionality().unwrap()
    };
    let conv = |shape: [usize; 2], k: [usize; 2], mode: Boundary, seed: u64| -> Conv2d<T> {
        Conv2d::new(shape, mat(k[0], k[1], seed).view(), mode).unwrap()
    };
    let mut v: Vec<(String, BoxOp<T>)> = vec![
        ("Mask".into(), Box::new(Mask::new(mask_fixture(&[4, 5])))),
        (
            "Subsample".into(),
            Box::new(Subsample::new(mask_fixture(&[3, 4]))),
        ),
        (
            "Subsample repeated".into(),
            Box::new(Subsample::from_indices(&[3, 3], vec![8, 0, 4, 0, 2, 0]).unwrap()),
        ),
        (
            "Diagonal".into(),
            Box::new(Diagonal::new(randn::<T>(&[3, 4], 1))),
        ),
        ("Matrix".into(), Box::new(Matrix::new(mat(5, 7, 2)))),
        (
            "Kronecker 2".into(),
            Box::new(Kronecker::new(vec![mat(3, 2, 3), mat(2, 4, 4)]).unwrap()),
        ),
        (
            "Kronecker 3".into(),
            Box::new(Kronecker::new(vec![mat(2, 2, 5), mat(3, 2, 6), mat(2, 3, 7)]).unwrap()),
        ),
        // no closed form: the probing default
        (
            "FiniteDiff".into(),
            Box::new(FiniteDiff::new(&[4, 5]).unwrap()),
        ),
        (
            "Sum".into(),
            Box::new(
                Sum::new(
                    Diagonal::new(randn::<T>(&[6], 8)),
                    Matrix::new(mat(6, 6, 9)),
                )
                .unwrap(),
            ),
        ),
        (
            "Adjoint(Matrix)".into(),
            Box::new(Adjoint::new(Matrix::new(mat(4, 6, 10)))),
        ),
    ];
    // Conv2d: every boundary, odd and even kernels, kernels larger than the image
    let modes = [
        Boundary::Same,
        Boundary::Full,
        Boundary::Valid,
        Boundary::Circular,
        Boundary::Reflect,
    ];
    for (mi, &mode) in modes.iter().enumerate() {
        for (ki, k) in [[3usize, 3], [2, 4], [4, 3], [5, 7]]
            .into_iter()
            .enumerate()
        {
            let shape = [6, 7];
            if mode == Boundary::Valid && (k[0] > shape[0] || k[1] > shape[1]) {
                continue;
            }
            let seed = 100 + 10 * mi as u64 + ki as u64;
            v.push((
                format!("Conv2d {mode:?} {k:?}"),
                Box::new(conv(shape, k, mode, seed)),
            ));
        }
        if mode != Boundary::Valid {
            // kernel larger than the image: aliasing in circular and reflect modes
            v.push((
                format!("Conv2d {mode:?} large kernel"),
                Box::new(conv([3, 4], [5, 6], mode, 150 + mi as u64)),
            ));
        }
    }
    // compositions with a closed form: a row selector after a convolution or a matrix
    let m67 = mask_fixture(&[6, 7]);
    v.push((
        "Mask∘Conv2d Same".into(),
        Box::new(
            Compose::new(
                Mask::new(m67.clone()),
                conv([6, 7], [3, 3], Boundary::Same, 200),
            )
            .unwrap(),
        ),
    ));
    v.push((
        "Subsample∘Conv2d Reflect".into(),
        Box::new(
            Compose::new(
                Subsample::new(m67.clone()),
                conv([6, 7], [3, 4], Boundary::Reflect, 201),
            )
            .unwrap(),
        ),
    ));
    v.push((
        "Mask∘Diagonal∘Conv2d Circular".into(),
        Box::new(
            Compose::new(
                Compose::new(
                    Mask::new(m67.clone()),
                    Diagonal::new(randn::<T>(&[6, 7], 202)),
                )
                .unwrap(),
                conv([6, 7], [3, 3], Boundary::Circular, 203),
            )
            .unwrap(),
        ),
    ));
    v.push((
        "Diagonal∘Matrix".into(),
        Box::new(
            Compose::new(
                Diagonal::new(randn::<T>(&[5], 204)),
                Matrix::new(mat(5, 4, 205)),
            )
            .unwrap(),
        ),
    ));
    v.push((
        "Scaled(Mask∘Conv2d Full)".into(),
        Box::new(
            Scaled::new(
                T::from_parts(
                    <T::Real as Scalar>::from_f64(-1.5),
                    <T::Real as Scalar>::from_f64(0.5),
                ),
                Compose::new(
                    Mask::new(mask_fixture(&[7, 9])),
                    conv([5, 6], [3, 4], Boundary::Full, 206),
                )
                .unwrap(),
            )
            .unwrap(),
        ),
    ));
    // a composition whose outer operator is not a row selector: probing
    v.push((
        "Conv2d∘Mask (probed)".into(),
        Box::new(
            Compose::new(
                conv([4, 5], [3, 3], Boundary::Same, 207),
                Mask::new(mask_fixture(&[4, 5])),
            )
            .unwrap(),
        ),
    ));
    // stacks
    let blocks = || -> Vec<BoxOp<T>> {
        vec![
            Box::new(conv([4, 5], [3, 3], Boundary::Same, 208)),
            Box::new(Matrix::new(mat(3, 20, 209))),
            Box::new(FiniteDiff::new(&[4, 5]).unwrap()),
        ]
    };
    v.push((
        "VStack".into(),
        Box::new(
            VStack::new(vec![
                Box::new(conv([4, 5], [3, 3], Boundary::Same, 213)) as BoxOp<T>,
                Box::new(Diagonal::new(randn::<T>(&[4, 5], 214))),
                Box::new(FiniteDiff::new(&[4, 5]).unwrap()),
            ])
            .unwrap(),
        ),
    ));
    v.push((
        "HStack".into(),
        Box::new(
            HStack::new(vec![
                Box::new(Matrix::new(mat(6, 4, 210))) as BoxOp<T>,
                Box::new(Diagonal::new(randn::<T>(&[6], 211))),
                Box::new(Subsample::from_indices(&[3, 3], vec![1, 5, 0, 1, 7, 3]).unwrap()),
            ])
            .unwrap(),
        ),
    ));
    v.push((
        "BlockDiag".into(),
        Box::new(BlockDiag::new(blocks()).unwrap()),
    ));
    v.push((
        "Subsample∘BlockDiag(Mask, Diagonal)".into(),
        Box::new(
            Compose::new(
                Subsample::from_indices(&[9], vec![0, 3, 3, 8, 5]).unwrap(),
                BlockDiag::new(vec![
                    Box::new(Mask::new(mask_fixture(&[5]))) as BoxOp<T>,
                    Box::new(Diagonal::new(randn::<T>(&[4], 212))),
                ])
                .unwrap(),
            )
            .unwrap(),
        ),
    ));
    v
}

fn column_norm_tests<T: Scalar>(tol: f64) {
    for (i, (name, op)) in column_norm_operators::<T>().iter().enumerate() {
        check_column_norms(name, op.as_ref(), tol, 300 + i as u64);
    }
}

#[test]
fn column_norms_match_brute_force_f64() {
    column_norm_tests::<f64>(1e-12);
}

#[test]
fn column_norms_match_brute_force_f32() {
    column_norm_tests::<f32>(2e-5);
}

#[test]
fn column_norms_match_brute_force_complex64() {
    column_norm_tests::<C64>(1e-12);
}

#[test]
fn column_norms_closed_forms_by_hand() {
    use sparseinv_solvers::op::{Boundary, Conv2d};
    // circular: ‖k‖² everywhere
    let k = ndarray::array![[1.0, 2.0], [0.0, -3.0]];
    let c = Conv2d::new([5, 6], k.view(), Boundary::Circular).unwrap();
    let n: ArrayD<f64> = c.column_norms_sq().unwrap();
    assert!(n.iter().all(|v| (v - 14.0).abs() < 1e-12), "{n:?}");
    // Same, 1-D box [1, 1, 1] on 1×5: edge columns lose one tap
    let c = Conv2d::new(
        [1, 5],
        ndarray::array![[1.0, 1.0, 1.0]].view(),
        Boundary::Same,
    )
    .unwrap();
    let n: ArrayD<f64> = c.column_norms_sq().unwrap();
    let want = [2.0, 3.0, 3.0, 3.0, 2.0];
    assert!(
        n.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-12),
        "{n:?}"
    );
    // Reflect, same kernel: the mirrored copies fold back onto the edge pixels. Output 0
    // reads x[0] twice (x̃[-1] = x[0]): A_00 = 2, so column 0 has 2² + 1 = 5, column 1 has 3
    let c = Conv2d::new(
        [1, 5],
        ndarray::array![[1.0, 1.0, 1.0]].view(),
        Boundary::Reflect,
    )
    .unwrap();
    let n: ArrayD<f64> = c.column_norms_sq().unwrap();
    let want = [5.0, 3.0, 3.0, 3.0, 5.0];
    assert!(
        n.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-12),
        "{n:?}"
    );
}

#[test]
fn column_norms_errors() {
    use sparseinv_solvers::op::{probe_weighted_column_norms_sq, Matrix};
    // probing refuses above the work limit instead of running for hours
    let fd = FiniteDiff::new(&[2048, 2048]).unwrap();
    let e = LinearOperator::<f64>::column_norms_sq(&fd).unwrap_err();
    assert!(matches!(e, Error::InvalidParameter { .. }), "{e}");
    assert!(e.to_string().contains("limit"), "{e}");
    // an explicit limit
    let small = FiniteDiff::new(&[3, 3]).unwrap();
    let w = ArrayD::<f64>::ones(IxDyn(LinearOperator::<f64>::range_shape(&small)));
    assert!(probe_weighted_column_norms_sq::<f64, _>(&small, w.view(), 10).is_err());
    assert!(probe_weighted_column_norms_sq::<f64, _>(&small, w.view(), 1 << 20).is_ok());
    // bad weights: wrong shape, negative, NaN
    let a = Matrix::new(ndarray::array![[1.0, 2.0], [3.0, 4.0]]);
    let bad = [
        ndarray::array![1.0, 1.0, 1.0].into_dyn(),
        ndarray::array![1.0, -1.0].into_dyn(),
        ndarray::array![f64::NAN, 1.0].into_dyn(),
    ];
    for b in &bad {
        assert!(a.weighted_column_norms_sq(b.view()).is_err());
        let m = Mask::new(ndarray::array![true, false].into_dyn());
        assert!(LinearOperator::<f64>::weighted_column_norms_sq(&m, b.view()).is_err());
    }
}

/// CEL0 set up from a masked convolution: its column norms equal the hand-derived
/// `a_j² = Σ_{a,b} k[a,b]² · [output j + (a − 1, b − 1) lies in the image and is observed]`
/// (Same mode, 3×3 kernel centred at (1, 1)); weighted l1 from a matrix likewise.
#[test]
fn cel0_and_weights_from_operator_column_norms() {
    use sparseinv_solvers::op::{Boundary, Conv2d, Matrix};
    use sparseinv_solvers::prox::{Cel0, Weights};
    let k = ndarray::array![[0.05, 0.1, 0.05], [0.1, 0.4, 0.1], [0.05, 0.1, 0.05]];
    let (n0, n1) = (6usize, 7usize);
    let obs = Array2::from_shape_fn((n0, n1), |(i, j)| (i * 3 + j * 5) % 4 != 0);
    let a = Compose::new(
        Mask::new(obs.clone().into_dyn()),
        Conv2d::new([n0, n1], k.view(), Boundary::Same).unwrap(),
    )
    .unwrap();
    let p = Cel0::from_operator(0.3, &a).unwrap();
    for ((j0, j1), &got) in p
        .col_norms()
        .view()
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap()
        .indexed_iter()
    {
        let mut want = 0.0;
        for ((a0, a1), &kv) in k.indexed_iter() {
            let (i0, i1) = (j0 as isize + a0 as isize - 1, j1 as isize + a1 as isize - 1);
            if (0..n0 as isize).contains(&i0)
                && (0..n1 as isize).contains(&i1)
                && obs[[i0 as usize, i1 as usize]]
            {
                want += kv * kv;
            }
        }
        assert!(
            (got - f64::sqrt(want)).abs() < 1e-12,
            "({j0},{j1}): {got} vs {}",
            want.sqrt()
        );
    }
    assert_eq!(p.lambda(), 0.3);
    let m = Matrix::new(ndarray::array![[3.0, 0.0, 1.0], [4.0, 0.0, -1.0]]);
    let w = Weights::scaled_column_norms(2.0, &m).unwrap();
    assert_eq!(
        w,
        Weights::PerElement(ndarray::array![10.0, 0.0, 2.0 * 2f64.sqrt()].into_dyn())
    );
    assert!(Weights::scaled_column_norms(-1.0, &m).is_err());
}
