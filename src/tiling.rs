//! Tiled processing of large images: a re-export of [`sparseinv_solvers::tiling`], the one
//! tiler of the project (halo and blend band, raised-cosine blending, memory bound, rayon,
//! progress). See that module for the geometry and the guarantees.
//!
//! ```
//! use ndarray::Array2;
//! use sparseinv::tiling::{process_tiled, TileParams};
//! let img = Array2::from_shape_fn((100, 90), |(y, x)| (y * x) as f64);
//! let p = TileParams { tile: 32, halo: 2, blend: 4, max_in_flight: 2 };
//! let out = process_tiled(img.view(), &p, |t| Ok::<_, ()>(t.mapv(|v| 2.0 * v))).unwrap();
//! assert!((out[[50, 40]] - 4000.0).abs() < 1e-9);
//! ```

pub use sparseinv_solvers::tiling::*;
