//! A minimal celestial WCS: the gnomonic (`TAN`) projection with a linear pixel transform
//! (`CRPIX`, `CRVAL`, `CD` or `CDELT`+`PC`/`CROTA2`), enough to relate the grids of images of
//! the same field (pixel scales, resolution ratios, sub-pixel offsets) — Calabretta & Greisen
//! (2002), A&A 395, 1077, §5.1.3. Distortion terms (SIP, TPV) are ignored: over the small
//! offsets between two grids of one field they cancel to first order.

/// A `TAN` (or, when `CTYPE` is absent, linear-tangent-plane) WCS.
///
/// Pixel coordinates here are 0-based `(x, y)` = (column, row), so FITS pixel `p = x + 1`.
/// Intermediate coordinates (degrees) are `(ξ, η) = CD · (p − CRPIX)`; the world coordinates
/// `(α, δ)` follow from the gnomonic projection about `CRVAL`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Wcs {
    /// Reference pixel (1-based FITS convention), `(CRPIX1, CRPIX2)`.
    pub crpix: [f64; 2],
    /// Reference world coordinates in degrees, `(CRVAL1, CRVAL2)` = (RA, Dec).
    pub crval: [f64; 2],
    /// Linear transform in degrees per pixel, `[[CD1_1, CD1_2], [CD2_1, CD2_2]]`.
    pub cd: [[f64; 2]; 2],
}

impl Wcs {
    /// Pixel scale in arcseconds, `3600 √|det CD|`.
    pub fn scale_arcsec(&self) -> f64 {
        3600.0
            * (self.cd[0][0] * self.cd[1][1] - self.cd[0][1] * self.cd[1][0])
                .abs()
                .sqrt()
    }

    /// World `(α, δ)` in degrees of the 0-based pixel `(x, y)`.
    pub fn pix_to_world(&self, x: f64, y: f64) -> (f64, f64) {
        let (dx, dy) = (x + 1.0 - self.crpix[0], y + 1.0 - self.crpix[1]);
        let xi = (self.cd[0][0] * dx + self.cd[0][1] * dy).to_radians();
        let eta = (self.cd[1][0] * dx + self.cd[1][1] * dy).to_radians();
        let (a0, d0) = (self.crval[0].to_radians(), self.crval[1].to_radians());
        // inverse gnomonic projection
        let den = d0.cos() - eta * d0.sin();
        let a = a0 + xi.atan2(den);
        let d = (d0.sin() + eta * d0.cos()).atan2((xi * xi + den * den).sqrt());
        (a.to_degrees().rem_euclid(360.0), d.to_degrees())
    }

    /// The 0-based pixel `(x, y)` of the world position `(α, δ)` in degrees (`None` on the
    /// far hemisphere, where the projection is undefined).
    pub fn world_to_pix(&self, ra: f64, dec: f64) -> Option<(f64, f64)> {
        let (a, d) = (ra.to_radians(), dec.to_radians());
        let (a0, d0) = (self.crval[0].to_radians(), self.crval[1].to_radians());
        let cosc = d0.sin() * d.sin() + d0.cos() * d.cos() * (a - a0).cos();
        if cosc <= 0.0 {
            return None;
        }
        let xi = (d.cos() * (a - a0).sin() / cosc).to_degrees();
        let eta = ((d0.cos() * d.sin() - d0.sin() * d.cos() * (a - a0).cos()) / cosc).to_degrees();
        let det = self.cd[0][0] * self.cd[1][1] - self.cd[0][1] * self.cd[1][0];
        if det == 0.0 {
            return None;
        }
        let dx = (self.cd[1][1] * xi - self.cd[0][1] * eta) / det;
        let dy = (-self.cd[1][0] * xi + self.cd[0][0] * eta) / det;
        Some((dx + self.crpix[0] - 1.0, dy + self.crpix[1] - 1.0))
    }

    /// The WCS of a header: `CRPIX1/2`, `CRVAL1/2` and `CD1_1..CD2_2`, or `CDELT1/2` with
    /// `PC1_1..PC2_2` or `CROTA2`. `None` when a needed card is missing, the projection is not
    /// `TAN` (`CTYPE1` given and not ending in `-TAN`) or the matrix is singular.
    #[cfg(feature = "fits")]
    pub fn from_header(h: &crate::io::fits::Header) -> Option<Wcs> {
        if let Some(t) = h.get_str("CTYPE1") {
            if !t.trim().ends_with("TAN") {
                return None;
            }
        }
        let crpix = [h.get_f64("CRPIX1")?, h.get_f64("CRPIX2")?];
        let crval = [h.get_f64("CRVAL1")?, h.get_f64("CRVAL2")?];
        let cd = if let (Some(a), Some(d)) = (h.get_f64("CD1_1"), h.get_f64("CD2_2")) {
            [
                [a, h.get_f64("CD1_2").unwrap_or(0.0)],
                [h.get_f64("CD2_1").unwrap_or(0.0), d],
            ]
        } else {
            let (c1, c2) = (h.get_f64("CDELT1")?, h.get_f64("CDELT2")?);
            let pc = if h.get_f64("PC1_1").is_some() || h.get_f64("PC2_2").is_some() {
                [
                    [
                        h.get_f64("PC1_1").unwrap_or(1.0),
                        h.get_f64("PC1_2").unwrap_or(0.0),
                    ],
                    [
                        h.get_f64("PC2_1").unwrap_or(0.0),
                        h.get_f64("PC2_2").unwrap_or(1.0),
                    ],
                ]
            } else {
                let r = h.get_f64("CROTA2").unwrap_or(0.0).to_radians();
                [[r.cos(), -r.sin()], [r.sin(), r.cos()]]
            };
            [
                [c1 * pc[0][0], c1 * pc[0][1]],
                [c2 * pc[1][0], c2 * pc[1][1]],
            ]
        };
        let w = Wcs { crpix, crval, cd };
        let det = cd[0][0] * cd[1][1] - cd[0][1] * cd[1][0];
        (det.is_finite() && det != 0.0).then_some(w)
    }

    /// `h` with its linear WCS replaced by this one: the cards `CRPIXn`, `CRVALn`, `CDi_j`,
    /// `CDELTn`, `PCi_j` and `CROTAn` are dropped, then `CRPIX1/2`, `CRVAL1/2` and
    /// `CD1_1 … CD2_2` written (the projection `CTYPEn` and every other card kept). Reading the
    /// result with [`Wcs::from_header`] gives this WCS back.
    #[cfg(feature = "fits")]
    pub fn replace_in_header(&self, h: &crate::io::fits::Header) -> crate::io::fits::Header {
        use crate::io::fits::Header;
        let linear = |k: &str| {
            ["CRPIX", "CRVAL", "CDELT", "CROTA"]
                .iter()
                .any(|p| k.strip_prefix(p).is_some_and(|r| r.len() == 1))
                || ["CD", "PC"].iter().any(|p| {
                    k.strip_prefix(p)
                        .is_some_and(|r| r.len() == 3 && r.as_bytes()[1] == b'_')
                })
        };
        let mut out = Header::from_cards(
            h.cards()
                .iter()
                .filter(|c| !linear(Header::card_key(c)))
                .cloned(),
        );
        for (a, (p, v)) in self.crpix.iter().zip(&self.crval).enumerate() {
            out.set_f64(&format!("CRPIX{}", a + 1), *p, "reference pixel");
            out.set_f64(&format!("CRVAL{}", a + 1), *v, "[deg] reference coordinate");
        }
        for i in 0..2 {
            for j in 0..2 {
                out.set_f64(
                    &format!("CD{}_{}", i + 1, j + 1),
                    self.cd[i][j],
                    "[deg/pixel] linear transform",
                );
            }
        }
        out
    }

    /// The WCS of the grid `r` times finer on the same sky: pixel `(x, y)` of this grid covers
    /// fine pixels `r x .. r x + r − 1` (so its centre is the fine coordinate
    /// `r x + (r − 1)/2`), the same projection: `CD/r`, `CRPIX' = r (CRPIX − 1) + (r + 1)/2`.
    pub fn refined(&self, r: usize) -> Wcs {
        let rf = r as f64;
        Wcs {
            crpix: [
                rf * (self.crpix[0] - 1.0) + (rf + 1.0) / 2.0,
                rf * (self.crpix[1] - 1.0) + (rf + 1.0) / 2.0,
            ],
            crval: self.crval,
            cd: [
                [self.cd[0][0] / rf, self.cd[0][1] / rf],
                [self.cd[1][0] / rf, self.cd[1][1] / rf],
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wcs(scale: f64, crpix: [f64; 2]) -> Wcs {
        Wcs {
            crpix,
            crval: [150.1, 2.2],
            cd: [[-scale / 3600.0, 0.0], [0.0, scale / 3600.0]],
        }
    }

    #[test]
    fn round_trip_and_scale() {
        let w = Wcs {
            crpix: [64.5, 60.0],
            crval: [150.1, 2.2],
            cd: [[-2.7e-5, 3.0e-6], [2.5e-6, 2.8e-5]],
        };
        for (x, y) in [(0.0, 0.0), (10.3, 99.7), (300.0, -40.0)] {
            let (a, d) = w.pix_to_world(x, y);
            let (x2, y2) = w.world_to_pix(a, d).unwrap();
            assert!(
                (x - x2).abs() < 1e-9 && (y - y2).abs() < 1e-9,
                "{x},{y} -> {x2},{y2}"
            );
        }
        let det: f64 = 2.7e-5 * 2.8e-5 + 3.0e-6 * 2.5e-6;
        assert!((w.scale_arcsec() - 3600.0 * det.sqrt()).abs() < 1e-12);
        // the reference pixel maps to CRVAL
        let (a, d) = w.pix_to_world(63.5, 59.0);
        assert!((a - 150.1).abs() < 1e-12 && (d - 2.2).abs() < 1e-12);
    }

    /// Closed form near the reference point: one pixel east is −CD1_1/cos δ in RA.
    #[test]
    fn small_offsets_follow_the_linear_transform() {
        let w = wcs(0.1, [64.5, 64.5]);
        let (a0, d0) = w.pix_to_world(63.5, 63.5);
        let (a1, d1) = w.pix_to_world(64.5, 63.5);
        let want = 0.1 / 3600.0 / 2.2f64.to_radians().cos();
        assert!(
            ((a0 - a1) - want).abs() < 1e-6 * want,
            "{} vs {want}",
            a0 - a1
        );
        assert!((d1 - d0).abs() < 1e-12);
    }

    /// The refined grid of a 0.2″ grid is the 0.1″ grid of the simulated multiband data
    /// (fine CRPIX 64.5 for coarse CRPIX 32.5), and a coarse pixel centre maps to the centre
    /// of its 2×2 block.
    #[test]
    #[cfg(feature = "fits")]
    fn replaced_header_reads_back() {
        use crate::io::fits::Header;
        let h = Header::from_cards(
            [
                "CTYPE1  = 'RA---TAN'",
                "CTYPE2  = 'DEC--TAN'",
                "CRPIX1  = 10.0",
                "CRPIX2  = 20.0",
                "CRVAL1  = 150.0",
                "CRVAL2  = 2.0",
                "CDELT1  = -5.5E-5",
                "CDELT2  = 5.5E-5",
                "PC1_1   = 1.0",
                "PC2_2   = 1.0",
                "OBJECT  = 'M13'",
            ]
            .map(String::from),
        );
        let w = Wcs::from_header(&h).unwrap();
        let fine = w.refined(2);
        let h2 = fine.replace_in_header(&h);
        assert_eq!(Wcs::from_header(&h2).unwrap(), fine);
        // CDELT/PC are gone (they would disagree with CD), the rest kept
        assert!(h2.get_f64("CDELT1").is_none() && h2.get_f64("PC1_1").is_none());
        assert_eq!(h2.get_str("OBJECT").as_deref(), Some("M13"));
        assert!(h2.get_str("CTYPE2").unwrap().contains("TAN"));
        // pixel (x, y) of the coarse grid is fine pixel 2x + 0.5 on the same sky
        let (ra, dec) = w.pix_to_world(3.0, 4.0);
        let (fx, fy) = fine.world_to_pix(ra, dec).unwrap();
        assert!(
            (fx - 6.5).abs() < 1e-6 && (fy - 8.5).abs() < 1e-6,
            "{fx} {fy}"
        );
    }

    #[test]
    fn refined_grid_nests() {
        let coarse = wcs(0.2, [32.5, 32.5]);
        let fine = coarse.refined(2);
        assert!((fine.crpix[0] - 64.5).abs() < 1e-12 && (fine.crpix[1] - 64.5).abs() < 1e-12);
        assert!((fine.scale_arcsec() - 0.1).abs() < 1e-12);
        let (a, d) = coarse.pix_to_world(7.0, 12.0);
        let (x, y) = fine.world_to_pix(a, d).unwrap();
        assert!(
            (x - 14.5).abs() < 1e-7 && (y - 24.5).abs() < 1e-7,
            "{x} {y}"
        );
    }
}
