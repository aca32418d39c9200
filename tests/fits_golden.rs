//! FITS reading and writing checked against astropy (testdata/gen_golden.py wrote the inputs
//! and testdata/golden/expected.json with the values and header cards astropy reads).
//!
//! Set `SPARSEINV_GOLDEN_OUT=DIR` to keep the written files, then run
//! `python testdata/gen_golden.py --check DIR` to have astropy verify them.
#![cfg(feature = "fits")]

use ndarray::Axis;
use serde_json::Value;
use sparseinv::io::fits::{read_fits, read_fits_spec, write_fits, WriteOptions};
use std::path::{Path, PathBuf};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn expected() -> Vec<Value> {
    let text = std::fs::read_to_string(testdata().join("golden/expected.json")).unwrap();
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn file_of(e: &Value) -> PathBuf {
    let name = e["file"].as_str().unwrap();
    if name.starts_with("m13") {
        testdata().join(name)
    } else {
        testdata().join("golden").join(name)
    }
}

/// Header cards compared without trailing blanks.
fn trimmed<'a>(it: impl Iterator<Item = &'a str>) -> Vec<String> {
    it.map(|c| c.trim_end().to_string()).collect()
}

fn check_values(e: &Value, data: &ndarray::Array3<f64>, as_f32: bool) {
    let shape: Vec<usize> = e["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let got: Vec<usize> = if shape.len() == 2 {
        data.shape()[1..].to_vec()
    } else {
        data.shape().to_vec()
    };
    assert_eq!(got, shape, "{}", e["file"]);
    let round = |v: f64| if as_f32 { v as f32 as f64 } else { v };
    if let Some(vals) = e["values"].as_array() {
        assert_eq!(vals.len(), data.len());
        for (i, (g, x)) in data.iter().zip(vals).enumerate() {
            match x.as_f64() {
                None => assert!(g.is_nan(), "{} pixel {i}: {g} should be NaN", e["file"]),
                Some(v) => assert_eq!(*g, round(v), "{} pixel {i}", e["file"]),
            }
        }
    } else {
        let plane = data.index_axis(Axis(0), 0);
        for s in e["samples"].as_array().unwrap() {
            let (y, x, v) = (
                s[0].as_u64().unwrap() as usize,
                s[1].as_u64().unwrap() as usize,
                s[2].as_f64().unwrap(),
            );
            assert_eq!(plane[[y, x]], round(v), "{} ({y},{x})", e["file"]);
        }
        let sum: f64 = data.iter().filter(|v| v.is_finite()).sum();
        let want = e["sum"].as_f64().unwrap();
        assert!((sum - want).abs() <= 1e-6 * want.abs(), "{sum} vs {want}");
    }
}

#[test]
fn reads_every_golden_file_like_astropy() {
    let all = expected();
    assert!(all.len() >= 13);
    for e in &all {
        let path = file_of(e);
        let hdu = e["hdu"].as_u64().unwrap() as usize;
        // default HDU selection finds the same HDU as the one astropy was told to read
        let img = read_fits(&path, None).unwrap();
        assert_eq!(img.hdu, hdu, "{}", path.display());
        assert_eq!(img.bitpix as i64, e["bitpix"].as_i64().unwrap());
        check_values(e, &img.data, false);
        assert_eq!(
            img.valid.iter().filter(|v| !**v).count(),
            img.data.iter().filter(|v| v.is_nan()).count()
        );
        // every non-structural card astropy sees is ours, in the same order
        let want: Vec<String> = e["cards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().trim_end().to_string())
            .collect();
        assert_eq!(
            trimmed(img.header.non_structural()),
            want,
            "{}",
            path.display()
        );
        // explicit HDU, both as argument and as file.fits[N]
        let again = read_fits_spec(&format!("{}[{hdu}]", path.display()), None).unwrap();
        assert_eq!(again.hdu, hdu);
        assert_eq!(again.header, img.header);
    }
}

#[test]
fn writes_float_fits_that_keeps_the_header() {
    let keep = std::env::var_os("SPARSEINV_GOLDEN_OUT").map(PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    let outdir = keep.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&outdir).unwrap();
    for e in &expected() {
        let path = file_of(e);
        let img = read_fits(&path, None).unwrap();
        let out = outdir.join(format!("out_{}", e["file"].as_str().unwrap()));
        let data32 = img.data.mapv(|v| v as f32);
        let history = vec![
            "sparseinv test: copy of the input".to_string(),
            format!("sparseinv input {} parameters: none", path.display()),
        ];
        let opts = WriteOptions {
            header: Some(&img.header),
            history: history.clone(),
            force: keep.is_some(),
            ..Default::default()
        };
        write_fits(&out, data32.view(), &opts).unwrap();
        let back = read_fits(&out, None).unwrap();
        assert_eq!(back.bitpix, -32);
        assert_eq!(back.hdu, 0);
        check_values(e, &back.data, true);
        let cards_in = trimmed(img.header.non_structural());
        let cards_out = trimmed(back.header.non_structural());
        assert_eq!(
            cards_out[..cards_in.len()],
            cards_in[..],
            "{}",
            out.display()
        );
        // then only our HISTORY text (CFITSIO continues long texts over 72-character cards)
        let added = &cards_out[cards_in.len()..];
        assert!(added.iter().all(|c| c.starts_with("HISTORY ")), "{added:?}");
        let joined: String = added.iter().map(|c| format!("{:<72}", &c[8..])).collect();
        let want: String = history
            .iter()
            .flat_map(|h| {
                h.as_bytes()
                    .chunks(72)
                    .map(|c| format!("{:<72}", String::from_utf8_lossy(c)))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(joined.trim_end(), want.trim_end());
        // the structural keywords describe the new data
        assert_eq!(back.header.get_f64("BITPIX"), Some(-32.0));
        assert_eq!(back.header.get_f64("BSCALE"), None);
        assert_eq!(back.header.get_f64("BLANK"), None);
        assert_eq!(
            back.header.get_f64("NAXIS"),
            Some(if img.n_planes() > 1 { 3.0 } else { 2.0 })
        );
    }
}
