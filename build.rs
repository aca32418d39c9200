//! Build script of the root crate: turns the models crate's build-time finding of ONNX Runtime
//! (`DEP_SPARSEINV_ORT_FOUND`, published through its `links = "sparseinv_ort"` key; see
//! `models/build.rs`) into the cfg `sparseinv_ort`, so that the CLI tests that need the runtime
//! are marked `#[cfg_attr(not(sparseinv_ort), ignore = "…")]` and show as ignored, not passed,
//! on machines without it. Without the `onnx` feature the cfg is never set.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_SPARSEINV_ORT_FOUND");
    println!("cargo::rustc-check-cfg=cfg(sparseinv_ort)");
    if std::env::var("DEP_SPARSEINV_ORT_FOUND").is_ok_and(|v| v == "1") {
        println!("cargo:rustc-cfg=sparseinv_ort");
    }
}
