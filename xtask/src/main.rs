//! `cargo xtask`: thin entry point; everything lives in the library so tests can reach it.

fn main() -> std::process::ExitCode {
    xtask::main()
}
