//! Every kernel in cuda/ compiles with NVRTC (through cudarc, as the CUDA engine will load it)
//! for the architectures hyflow targets, and a broken kernel's compile log comes back.
//! No GPU is needed: NVRTC is a compiler library. scripts/test.sh installs it from the PyPI wheel
//! `nvidia-cuda-nvrtc-cu12` when missing and puts it on LD_LIBRARY_PATH; set
//! HYFLOW_SKIP_NVRTC=1 to skip knowingly.

use cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};

const ARCHS: [&str; 2] = ["compute_80", "compute_90"];

fn nvrtc_ready() -> bool {
    if std::env::var_os("HYFLOW_SKIP_NVRTC").is_some() {
        eprintln!("HYFLOW_SKIP_NVRTC is set: skipped");
        return false;
    }
    // SAFETY: only probes whether the shared library can be loaded.
    let present = unsafe { cudarc::nvrtc::sys::is_culib_present() };
    assert!(
        present,
        "libnvrtc.so.12 not found: run scripts/test.sh, which installs it, or put it on LD_LIBRARY_PATH (HYFLOW_SKIP_NVRTC=1 skips)"
    );
    true
}

fn kernels() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/cuda");
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("cuda/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cu"))
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).expect("read kernel"),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_kernel_compiles_for_the_targeted_architectures() {
    if !nvrtc_ready() {
        return;
    }
    let kernels = kernels();
    assert!(!kernels.is_empty(), "no .cu files in cuda/");
    for (path, src) in &kernels {
        for arch in ARCHS {
            let opts = CompileOptions {
                arch: Some(arch),
                ..Default::default()
            };
            let ptx = compile_ptx_with_opts(src, opts)
                .unwrap_or_else(|e| panic!("{path} for {arch}: {e:?}"));
            let text = ptx.to_src();
            assert!(
                text.contains(&format!(".target sm_{}", &arch[8..])),
                "{path}: PTX for the wrong target"
            );
            assert!(
                text.contains(".entry hyflow_"),
                "{path}: no hyflow_ kernel entry in the PTX"
            );
            // Every kernel the source declares is an entry the driver can find by name.
            for decl in src.split("extern \"C\" __global__ void ").skip(1) {
                let name = decl.split('(').next().unwrap_or_default().trim();
                assert!(
                    text.contains(&format!(".entry {name}(")),
                    "{path}: kernel {name} is not in the PTX"
                );
            }
        }
    }
}

#[test]
fn a_broken_kernel_returns_the_compiler_log() {
    if !nvrtc_ready() {
        return;
    }
    let src =
        "extern \"C\" __global__ void hyflow_broken(double* x) { x[0] = no_such_function(1.0); }";
    let err = compile_ptx_with_opts(
        src,
        CompileOptions {
            arch: Some("compute_90"),
            ..Default::default()
        },
    )
    .expect_err("must not compile");
    let text = format!("{err:?}");
    assert!(text.contains("no_such_function"), "{text}");
}
