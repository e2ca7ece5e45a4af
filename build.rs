//! With the `kernel-emulation` feature, compiles the CUDA kernels in cuda/ as host C++ (over
//! cuda/emu/hyflow_emu.h) into a static library the tests call. Without it, does nothing.

fn main() {
    println!("cargo::rerun-if-changed=cuda");
    if std::env::var_os("CARGO_FEATURE_KERNEL_EMULATION").is_none() {
        return;
    }
    cc::Build::new()
        .cpp(true)
        .std("c++20")
        .flag("-pthread")
        .opt_level(2)
        .include("cuda/emu")
        .file("cuda/emu/launch.cpp")
        .compile("hyflow_kernel_emu");
    println!("cargo::rustc-link-lib=stdc++");
    println!("cargo::rustc-link-lib=pthread");
}
