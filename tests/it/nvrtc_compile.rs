//! Every kernel in cuda/ compiles with NVRTC (through cudarc, as the CUDA engine will load it)
//! for the architectures hyflow targets and assembles with ptxas, and a broken kernel's compile
//! log comes back. No GPU is needed: NVRTC is a compiler library, ptxas a program.
//! scripts/test.sh installs them from the PyPI wheels `nvidia-cuda-nvrtc-cu12` and
//! `nvidia-cuda-nvcc-cu12` when missing (NVRTC on LD_LIBRARY_PATH, ptxas as HYFLOW_PTXAS); set
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

#[test]
fn every_kernel_assembles_with_ptxas() {
    // ptxas turns the PTX into the device's machine code, as the driver does when it loads a
    // module: it checks what NVRTC leaves to the driver (registers, the target's instructions)
    // and reports each kernel's registers and spills, which bound how many blocks fit on an SM.
    if !nvrtc_ready() {
        return;
    }
    let ptxas = std::env::var("HYFLOW_PTXAS").unwrap_or_else(|_| {
        panic!(
            "HYFLOW_PTXAS is not set: run scripts/test.sh, which installs ptxas from the \
             nvidia-cuda-nvcc-cu12 wheel (HYFLOW_SKIP_NVRTC=1 skips)"
        )
    });
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, src) in &kernels() {
        for arch in ARCHS {
            // The options the CUDA engine compiles with (compute/cuda.rs).
            let opts = CompileOptions {
                fmad: Some(false),
                arch: Some(arch),
                ..Default::default()
            };
            let ptx = compile_ptx_with_opts(src, opts)
                .unwrap_or_else(|e| panic!("{path} for {arch}: {e:?}"));
            let file = dir.path().join("kernel.ptx");
            std::fs::write(&file, ptx.to_src()).expect("write PTX");
            let sm = format!("sm_{}", &arch[8..]);
            let out = std::process::Command::new(&ptxas)
                .arg(format!("-arch={sm}"))
                .arg("-v")
                .arg(&file)
                .arg("-o")
                .arg(dir.path().join("kernel.cubin"))
                .output()
                .expect("run ptxas");
            let log = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "{path} for {sm}: ptxas failed:\n{log}"
            );
            // One section per kernel: "Compiling entry function 'NAME' for 'sm_XX'", then its
            // stack, spills, registers and barriers.
            for section in log.split("Compiling entry function '").skip(1) {
                let name = section.split('\'').next().unwrap_or_default();
                let used = section
                    .lines()
                    .find(|l| l.contains("Used"))
                    .unwrap_or_else(|| panic!("{name} for {sm}: no register count:\n{log}"));
                let used = used.trim().trim_start_matches("ptxas info    : ");
                println!("{sm} {name}: {used}");
                if name == "hyflow_features_warp" {
                    assert!(
                        used.contains("used 0 barriers"),
                        "the warp-per-window kernel must not use block barriers: {used}"
                    );
                }
            }
            assert!(
                log.contains("Used"),
                "ptxas -v reported no register use:\n{log}"
            );
        }
    }
}
