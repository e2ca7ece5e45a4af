//! With the `kernel-emulation` feature, compiles the CUDA kernels in cuda/ as host C++ (over
//! cuda/emu/hyflow_emu.h): into a static library the tests call, and into a CUDA driver and
//! NVML that run on the CPU (cuda/emu/fake_driver.cpp and fake_kernels.cpp, as libcuda.so.1
//! and libnvidia-ml.so.1 in `$OUT_DIR/fake-cuda`, named to the tests by
//! `HYFLOW_FAKE_CUDA_DIR`). Without the feature, does nothing.

use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-changed=cuda");
    if std::env::var_os("CARGO_FEATURE_KERNEL_EMULATION").is_none() {
        return;
    }
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++20")
        .flag("-pthread")
        // No FMA contraction: the kernels must round as the Rust reference does.
        .flag("-ffp-contract=off")
        .opt_level(2)
        .include("cuda/emu");
    build
        .clone()
        .file("cuda/emu/launch.cpp")
        .compile("hyflow_kernel_emu");
    println!("cargo::rustc-link-lib=stdc++");
    println!("cargo::rustc-link-lib=pthread");

    // The fake driver: a shared library, so cudarc loads it as it would load libcuda.
    let dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("fake-cuda");
    std::fs::create_dir_all(&dir).expect("create fake-cuda dir");
    let lib = dir.join("libcuda.so.1");
    let status = build
        .get_compiler()
        .to_command()
        .args(["-shared", "-fPIC", "-fvisibility=hidden", "-Wl,-Bsymbolic"])
        .args(["cuda/emu/fake_driver.cpp", "cuda/emu/fake_kernels.cpp"])
        .arg("-o")
        .arg(&lib)
        .status()
        .expect("run the C++ compiler");
    assert!(
        status.success(),
        "compiling cuda/emu/fake_driver.cpp and fake_kernels.cpp failed"
    );
    for name in ["libcuda.so", "libnvidia-ml.so.1"] {
        std::fs::copy(&lib, dir.join(name)).expect("copy the fake driver");
    }
    println!("cargo::rustc-env=HYFLOW_FAKE_CUDA_DIR={}", dir.display());
}
